"""The table of ``benchmarks/gpu_check.sh``: one markdown table from the JSON rows its parts wrote.

    python benchmarks/gpu_table.py runs/gpu_check

Rows: each timed step (ms/step, throughput, achieved TFLOP/s, MFU where the card's peak is known, peak
memory, the ratio to the official step with its range over rounds), then each part's exit status and
seconds. A part that wrote nothing appears as missing.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def _cell(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def _ratio(row: dict[str, Any]) -> str:
    s = row.get("speedup_vs_official")
    return "-" if not s else f"{s['median']:.2f}x ({s['min']:.2f}-{s['max']:.2f})"


def rows_of(folder: Path) -> list[list[str]]:
    out: list[list[str]] = []
    for part in ("ijepa_b16", "ijepa_h14"):
        path = folder / f"{part}.json"
        for row in json.loads(path.read_text()) if path.is_file() else []:
            what = (f"I-JEPA {row['preset']} {row['img_size']} px/{row['patch_size']}, batch {row['batch']}, "
                    f"{row['precision']}, {row['mode']}")
            out.append([what, _cell(row["median_ms"], ".1f"), f"{row['images_per_s']:.0f} img/s",
                        _cell(row["achieved_gflops"] / 1e3, ".2f"), _cell(100 * row["mfu"] if "mfu" in row else None,
                                                                         ".1f"),
                        _cell(row.get("peak_memory_gib"), ".1f"), _ratio(row)])
    path = folder / "lejepa.json"
    if path.is_file():
        data = json.loads(path.read_text())
        for row in data["rows"]:
            for precision in ("bf16", "fp32"):
                r = row[precision]
                out.append([f"LeJEPA ({row['config']}), batch {row['batch']}, {precision}", _cell(r["median_ms"], ".1f"),
                            f"{1e3 * row['batch'] / r['median_ms']:.0f} img/s", _cell(r["achieved_gflops"] / 1e3, ".2f"),
                            "-", _cell(r.get("peak_memory_gib"), ".1f"), "-"])
    path = folder / "vjepa.json"
    if path.is_file():
        for row in json.loads(path.read_text())["rows"]:
            what = (f"V-JEPA {row['preset']} {row['frames']}x{row['img_size']} px, batch {row['batch']}, "
                    f"{row['precision']}, {row['mode']}")
            out.append([what, _cell(row["median_ms"], ".1f"), f"{row['clips_per_s']:.1f} clips/s",
                        _cell(row["achieved_gflops"] / 1e3, ".2f"), "-", _cell(row.get("peak_memory_gib"), ".1f"),
                        _ratio(row)])
    return out


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or not Path(args[0]).is_dir():
        print("usage: gpu_table.py FOLDER (the $OUT of gpu_check.sh)", file=sys.stderr)
        return 2
    folder = Path(args[0])
    header = ["step", "ms/step", "throughput", "TFLOP/s", "MFU %", "peak GiB", "vs official"]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows_of(folder):
        print("| " + " | ".join(row) + " |")
    status = folder / "status.txt"
    print("\n| part | exit | seconds |\n|---|---|---|")
    for line in status.read_text().splitlines() if status.is_file() else []:
        name, rc, seconds = line.split()
        print(f"| {name} | {rc} | {seconds} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
