"""The layering rules of tests/import_graph.py hold, and a broken rule is seen."""

from __future__ import annotations

from tests.import_graph import graph, violations


def test_no_import_runs_back_up() -> None:
    broken = {rule: edges for rule, edges in violations(graph()).items() if edges}
    assert not broken, broken


def test_an_upward_import_is_reported() -> None:
    edges = graph()
    edges["jepa_torch.evaluation.probes"] = edges["jepa_torch.evaluation.probes"] | {"jepa_torch.train"}
    edges["jepa_torch.config"] = edges["jepa_torch.config"] | {"jepa_torch.models"}
    broken = violations(edges)
    assert broken["evaluation never imports training"] == ["jepa_torch.evaluation.probes -> jepa_torch.train"]
    assert broken["the config modules never import model code"] == ["jepa_torch.config -> jepa_torch.models"]
