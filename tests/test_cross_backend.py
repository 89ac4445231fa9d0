"""The torch backend agrees with the numpy reference within 1e-6 in float64, on the same inputs."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from jepa_core.reference import backend as reference
from jepa_torch.backend import backend as torch_backend

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "properties"))
from strategies import BlockProblem, block_problems, float_arrays, loss_kinds, param_pairs  # noqa: E402

TOL = 1e-6


def _both(fn_name: str, *args: object) -> tuple[object, object]:
    def conv(backend: object, a: object) -> object:
        if isinstance(a, np.ndarray):
            return backend.asarray(a)  # type: ignore[attr-defined]
        if isinstance(a, list):
            return [conv(backend, x) for x in a]
        if isinstance(a, dict):
            return {k: conv(backend, v) for k, v in a.items()}
        return a

    return (getattr(reference, fn_name)(*[conv(reference, a) for a in args]),
            getattr(torch_backend, fn_name)(*[conv(torch_backend, a) for a in args]))


@settings(max_examples=100, deadline=None)
@given(p=block_problems(), kind=loss_kinds, reduction=st.sampled_from(["sum", "mean"]))
def test_jepa_loss_agrees(p: BlockProblem, kind: str, reduction: str) -> None:
    ref, tor = _both("jepa_loss", p.predictions, p.targets, p.blocks, kind, reduction)
    assert abs(float(ref) - float(tor)) <= TOL * max(1.0, abs(float(ref)))  # type: ignore[arg-type]


@settings(max_examples=100, deadline=None)
@given(data=st.data(), shape=st.tuples(st.integers(1, 4), st.integers(1, 9)), kind=loss_kinds)
def test_rep_loss_and_layer_norm_agree(data: st.DataObject, shape: tuple[int, int], kind: str) -> None:
    t, q = data.draw(float_arrays(shape)), data.draw(float_arrays(shape))
    ref, tor = _both("rep_loss", t, q, kind)
    np.testing.assert_allclose(torch_backend.to_numpy(tor), ref, rtol=TOL, atol=TOL)
    ref, tor = _both("layer_norm", t)
    np.testing.assert_allclose(torch_backend.to_numpy(tor), ref, rtol=TOL, atol=TOL)


@settings(max_examples=100, deadline=None)
@given(pair=param_pairs(), m=st.floats(0.0, 1.0))
def test_ema_agrees(pair: tuple[dict[str, np.ndarray], dict[str, np.ndarray]], m: float) -> None:
    ref, tor = _both("ema_update", pair[0], pair[1], m)
    for k in pair[1]:
        np.testing.assert_allclose(torch_backend.to_numpy(tor[k]), ref[k], rtol=TOL, atol=TOL)  # type: ignore[index]


def test_float64_stays_float64() -> None:
    x = torch_backend.asarray(np.zeros((2, 3)))
    assert str(x.dtype) == "torch.float64"
