"""Compare training recipes on the bundled digits by the frozen target encoder's held-out probes.

    python examples/recipe_sweep.py --out runs/sweep                    # every variant, seed 0
    python examples/recipe_sweep.py --variants official corrected --seeds 0 1 2 --set run.device=cuda

Each variant is the demo config plus a few overrides; the table gives the final loss,
RankMe and probe accuracies, next to the random-init and raw-pixel baselines.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from dataclasses import replace
from pathlib import Path

from jepa_torch.config_io import load_config
from jepa_torch.demo import DEFAULT_CONFIG
from jepa_torch.evaluate import evaluate_checkpoint
from jepa_torch.runlog import read_log
from jepa_torch.train import train

VARIANTS: dict[str, list[str]] = {
    "official": ["mask.official_compatible=true"],
    "corrected": [],
    "vc": ["optimization.var_weight=1.0", "optimization.cov_weight=0.04"],
    "vc_strong": ["optimization.var_weight=2.0", "optimization.cov_weight=0.1"],
    "vc_cov": ["optimization.var_weight=1.0", "optimization.cov_weight=0.2"],
    "official_vc": ["mask.official_compatible=true", "optimization.var_weight=1.0", "optimization.cov_weight=0.04"],
    "ema099": ["optimization.ema=[0.99,1.0]"],
    "lr3e-4": ["optimization.lr=3e-4"],
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=str(DEFAULT_CONFIG))
    parser.add_argument("--out", type=Path, default=Path("runs/sweep"))
    parser.add_argument("--variants", nargs="+", default=["official", "corrected", "vc"], choices=list(VARIANTS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args()

    results: dict[str, list[dict[str, float]]] = {}
    baselines: dict[str, list[tuple[float, float]]] = {}
    for name in args.variants:
        for seed in args.seeds:
            cfg = load_config(args.config, [*VARIANTS[name], *args.overrides])
            out = args.out / f"{name}-s{seed}"
            cfg = replace(cfg, run=replace(cfg.run, out_dir=str(out), seed=seed, tensorboard=False))
            t0 = time.perf_counter()
            summary = train(cfg, progress=False)
            seconds = time.perf_counter() - t0
            assert summary.last_checkpoint is not None
            first_of_seed = not any(r["seed"] == seed for rows in results.values() for r in rows)
            report = evaluate_checkpoint(summary.last_checkpoint, seed=seed, baselines=first_of_seed)
            log = read_log(out / "log.csv")
            ranks = [r["rankme"] for r in log if "rankme" in r]
            row = {"seed": seed, "seconds": seconds, "final_loss": summary.losses[-1][1],
                   "rankme": ranks[-1] if ranks else float("nan"),
                   "linear": report.rows[0].linear, "knn": report.rows[0].knn,
                   "context_linear": report.rows[1].linear}
            results.setdefault(name, []).append(row)
            for r in report.rows[2:]:
                baselines.setdefault(r.name, []).append((r.linear, r.knn))
            print(f"{name:24s} seed {seed}: loss {row['final_loss']:.4f} RankMe {row['rankme']:.1f} "
                  f"linear {100 * row['linear']:.2f}% kNN {100 * row['knn']:.2f}% ({seconds:.0f} s)", flush=True)

    def ms(values: list[float]) -> str:
        return f"{100 * statistics.fmean(values):6.2f} ± {100 * statistics.pstdev(values):4.2f}"

    print(f"\n{'variant':24s} {'linear %':>15s} {'kNN %':>15s} {'RankMe':>7s}  (seeds {args.seeds})")
    for name, rows in results.items():
        print(f"{name:24s} {ms([r['linear'] for r in rows])} {ms([r['knn'] for r in rows])} "
              f"{statistics.fmean(r['rankme'] for r in rows):7.1f}")
    for name, pairs in baselines.items():
        print(f"{name:24s} {ms([p[0] for p in pairs])} {ms([p[1] for p in pairs])}")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "sweep.json").write_text(json.dumps({"results": results, "baselines": baselines}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
