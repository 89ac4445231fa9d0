# Set-up and checks. `make demo` runs the main job, `make test` every check CI runs.
#   TORCH="torch torchvision" make test    # let pip choose the torch build
# The default pins a CUDA build of torch with its torchvision; it runs on the CPU too.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH ?= torch==2.14.1 torchvision==0.29.1
HYPOTHESIS_PROFILE ?= ci
export HYPOTHESIS_PROFILE

.PHONY: install demo spec-demo test typecheck unit laws mutants bench clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check $(TORCH) -e ".[torch,dev,interop,jax]"
	touch $@

demo: install
	$(VENV)/bin/jepa-torch demo --out runs/demo

spec-demo: install
	$(PY) examples/spec_demo.py

typecheck: install
	$(PY) -m mypy --strict jepa_core jepa_torch jepa_jax tests/typing_conformance.py

unit: install
	$(PY) -m pytest tests

laws: install
	$(PY) -m pytest properties --jepa-backend=jepa_core.reference:backend
	$(PY) -m pytest properties --jepa-backend=jepa_torch.conformance.backend:backend
	$(PY) -m pytest properties --jepa-backend=jepa_jax.backend:backend

test: typecheck unit laws

mutants: install
	$(PY) -m tests.mutants

bench: install
	$(PY) benchmarks/bench_step.py
	$(PY) benchmarks/bench_masks.py

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .hypothesis
