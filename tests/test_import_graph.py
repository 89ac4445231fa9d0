"""The layering rules of tests/import_graph.py hold, and a broken rule is seen."""

from __future__ import annotations

from pathlib import Path

from tests.import_graph import ENTRY_POINTS, LAYERS, ROOT, graph, layer, violations


def test_no_import_runs_back_up() -> None:
    broken = {rule: edges for rule, edges in violations(graph()).items() if edges}
    assert not broken, broken


def test_an_upward_import_is_reported() -> None:
    edges = graph()
    edges["jepa_torch.evaluation.probes"] = edges["jepa_torch.evaluation.probes"] | {"jepa_torch.training.loop"}
    edges["jepa_torch.models.vit"] = edges["jepa_torch.models.vit"] | {"jepa_torch.methods.base"}
    edges["jepa_torch.io.export"] = edges["jepa_torch.io.export"] | {"jepa_torch"}
    broken = violations(edges)["jepa_torch's layers import only themselves and the layers before them"]
    assert broken == ["jepa_torch.evaluation.probes -> jepa_torch.training.loop", "jepa_torch.io.export -> jepa_torch",
                      "jepa_torch.models.vit -> jepa_torch.methods.base"]


def test_every_module_has_a_layer() -> None:
    assert set(LAYERS) == {p.name for p in (ROOT / "jepa_torch").iterdir() if (p / "__init__.py").is_file()}
    assert all(layer(m) is not None or m in ENTRY_POINTS for m in graph() if m.startswith("jepa_torch"))


def _method_tests(path: Path) -> list[str]:
    """Where ``path`` compares a value with a method's name or tests an object against a method's model class."""
    import ast

    names, classes = {"ijepa", "lejepa"}, {"JEPA", "LeJEPA"}
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Compare):
            consts = [c for c in (node.left, *node.comparators) if isinstance(c, ast.Constant)]
            if any(c.value in names for c in consts):
                found.append(f"{path.name}:{node.lineno}")
        elif isinstance(node, ast.Call) and getattr(node.func, "id", "") == "isinstance" and len(node.args) == 2:
            kinds = node.args[1].elts if isinstance(node.args[1], ast.Tuple) else [node.args[1]]
            if any(getattr(k, "id", getattr(k, "attr", "")) in classes for k in kinds):
                found.append(f"{path.name}:{node.lineno}")
    return found


def test_no_method_is_tested_outside_the_methods(tmp_path: Path) -> None:
    """The loop, resume, monitor, evaluation, io and the entry points ask the method; they never test which it is."""
    outside = [p for p in (ROOT / "jepa_torch").rglob("*.py") if "methods" not in p.parts]
    assert [hit for p in outside for hit in _method_tests(p)] == []
    planted = tmp_path / "loop.py"  # what the loop looked like before methods were objects is seen
    planted.write_text('if cfg.method.name == "lejepa":\n    pass\nif isinstance(model, LeJEPA):\n    pass\n')
    assert _method_tests(planted) == ["loop.py:1", "loop.py:3"]
