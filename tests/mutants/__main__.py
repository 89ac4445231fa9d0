"""Print the mutation table: ``python -m tests.mutants [KEY ...]``.

For each mutant: the Backend member it breaks, whether the suite rejected it,
the laws that must fail and the laws that did. Exits 1 if any mutant escaped.
"""

from __future__ import annotations

import sys

from . import MUTANTS
from .run import run_many


def main(argv: list[str]) -> int:
    keys = argv or sorted(MUTANTS, key=lambda k: (MUTANTS[k].member, k))
    unknown = [k for k in keys if k not in MUTANTS]
    if unknown:
        print(f"unknown mutants {unknown}; known: {sorted(MUTANTS)}", file=sys.stderr)
        return 2
    outcomes = run_many(MUTANTS[k].spec for k in keys)
    escaped = 0
    print(f"| mutant | member | caught | must fail at | also failed | s |\n|---|---|---|---|---|---|")
    for k in keys:
        m, out = MUTANTS[k], outcomes[MUTANTS[k].spec]
        missing = [law for law in m.caught_by if law not in out.failed]
        ok = out.returncode == 1 and not missing
        escaped += not ok
        others = sorted(out.failed - set(m.caught_by))
        verdict = "yes" if ok else f"NO (exit {out.returncode}, escaped {missing})"
        print(f"| {k} | {m.member} | {verdict} | {', '.join(m.caught_by)} | {', '.join(others) or '-'} "
              f"| {out.seconds:.0f} |")
    print(f"\n{len(keys) - escaped} of {len(keys)} mutants caught at their named laws")
    return 1 if escaped else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
