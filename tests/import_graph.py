"""The project's import graph and its layering rules: ``python -m tests.import_graph``.

Prints every import edge between the project's modules (function-level imports included), then
each rule and the edges that break it; exits 1 if any does. Arrows point down, toward the spec:

- ``jepa_core`` imports numpy and the standard library only, and nothing of the other wings;
- ``properties`` knows backends only through ``--jepa-backend``: it never imports ``jepa_torch``;
- ``jepa_torch``'s packages are layered in the order of :data:`LAYERS`: a module imports modules of its
  own package and of the packages before it, never after (so evaluation and io never import training,
  and the models never import a method); only the entry points (the package root, ``cli``, ``demo``)
  import the root package or sit above every layer.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("jepa_core", "jepa_torch", "properties")

LAYERS = ("objectives", "models", "io", "config", "data", "methods", "evaluation", "training", "conformance")
"""jepa_torch's packages, lowest first: each may import itself and the ones before it."""
ENTRY_POINTS = {"jepa_torch", "jepa_torch.cli", "jepa_torch.demo"}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """Absolute names of the modules ``path`` imports, anywhere in the file."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def graph() -> dict[str, set[str]]:
    """Module -> the project modules it imports."""
    files = [p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))]
    names = {module_name(p) for p in files}
    return {module_name(p): {m for m in imports(p) if m in names and m != module_name(p)} for p in files}


def layer(module: str) -> int | None:
    """The position in :data:`LAYERS` of a ``jepa_torch`` module's package; None for an entry point."""
    parts = module.split(".")
    if module in ENTRY_POINTS or len(parts) < 2 or parts[1] not in LAYERS:
        return None
    return LAYERS.index(parts[1])


def violations(edges: dict[str, set[str]]) -> dict[str, list[str]]:
    """Each rule and the edges that break it."""
    rules: dict[str, list[str]] = {
        "jepa_core imports only numpy and the standard library": [],
        "properties never imports jepa_torch": [],
        "every jepa_torch module is an entry point or in a layer": [],
        "jepa_torch's layers import only themselves and the layers before them": [],
    }
    for path in sorted((ROOT / "jepa_core").rglob("*.py")):
        for m in imports(path):
            top = m.split(".")[0]
            if top not in sys.stdlib_module_names and top not in ("numpy", "jepa_core", "__future__"):
                rules["jepa_core imports only numpy and the standard library"].append(f"{module_name(path)} -> {m}")
    for src, dsts in sorted(edges.items()):
        if src.startswith("jepa_torch") and src not in ENTRY_POINTS and layer(src) is None:
            rules["every jepa_torch module is an entry point or in a layer"].append(src)
        for dst in sorted(dsts):
            edge = f"{src} -> {dst}"
            if src.startswith("properties") and dst.startswith("jepa_torch"):
                rules["properties never imports jepa_torch"].append(edge)
            if not (src.startswith("jepa_torch.") and dst.startswith("jepa_torch")) or src in ENTRY_POINTS:
                continue
            a, b = layer(src), layer(dst)
            if a is not None and (b is None or b > a):
                rules["jepa_torch's layers import only themselves and the layers before them"].append(edge)
    return rules


def main() -> int:
    edges = graph()
    for src, dsts in sorted(edges.items()):
        if dsts:
            print(f"{src} -> {', '.join(sorted(dsts))}")
    broken = 0
    print()
    for rule, bad in violations(edges).items():
        broken += len(bad)
        print(f"{'ok ' if not bad else 'BROKEN'} {rule}" + "".join(f"\n    {e}" for e in bad))
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
