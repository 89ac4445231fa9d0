"""Compare training recipes on the bundled digits by the frozen encoder's held-out probes.

    python examples/recipe_sweep.py --out runs/sweep                    # the default variants, seed 0
    python examples/recipe_sweep.py --variants ijepa_vc ijepa_sigreg lejepa --seeds 0 1 2
    python examples/recipe_sweep.py --variants official corrected --seeds 0 1 2 --set run.device=cuda

Each variant is a config (the demo's I-JEPA recipe, or configs/digits_lejepa.yaml) plus a few
overrides; the table gives the training time, final loss, RankMe and probe accuracies (of the
target encoder; LeJEPA has one encoder), next to the random-init and raw-pixel baselines.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from dataclasses import replace
from pathlib import Path

from jepa_torch.config.yaml_io import load_config
from jepa_torch.demo import CONFIGS
from jepa_torch.evaluation import EvalConfig, evaluate
from jepa_torch.training.runlog import read_log
from jepa_torch.training.loop import train

NO_VC = ["optimization.var_weight=0", "optimization.cov_weight=0"]
VARIANTS: dict[str, tuple[str, list[str]]] = {
    # I-JEPA (configs/digits_ijepa.yaml carries VICReg's variance/covariance terms)
    "official": ("ijepa", ["mask.official_compatible=true", *NO_VC]),
    "corrected": ("ijepa", NO_VC),
    "ijepa_vc": ("ijepa", []),
    "vc_strong": ("ijepa", ["optimization.var_weight=2.0", "optimization.cov_weight=0.1"]),
    "vc_cov": ("ijepa", ["optimization.cov_weight=0.2"]),
    "ema099": ("ijepa", [*NO_VC, "optimization.ema=[0.99,1.0]"]),
    "lr3e-4": ("ijepa", [*NO_VC, "optimization.lr=3e-4"]),
    "official_vc": ("ijepa", ["mask.official_compatible=true"]),
    "ijepa_sigreg": ("ijepa", [*NO_VC, "optimization.sigreg_weight=0.01"]),  # context tokens: the best weight tried
    "ijepa_sigreg_pooled": ("ijepa", [*NO_VC, "optimization.sigreg_weight=0.05",
                                      "optimization.sigreg_embedding=context_pooled"]),
    # LeJEPA (configs/digits_lejepa.yaml)
    "lejepa": ("lejepa", []),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("runs/sweep"))
    parser.add_argument("--variants", nargs="+", default=["ijepa_vc", "ijepa_sigreg", "lejepa"], choices=list(VARIANTS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args()

    results: dict[str, list[dict[str, float]]] = {}
    baselines: dict[str, list[tuple[float, float]]] = {}
    for name in args.variants:
        for seed in args.seeds:
            base, overrides = VARIANTS[name]
            cfg = load_config(CONFIGS[base], [*overrides, *args.overrides])
            out = args.out / f"{name}-s{seed}"
            cfg = replace(cfg, run=replace(cfg.run, out_dir=str(out), seed=seed, tensorboard=False))
            t0 = time.perf_counter()
            summary = train(cfg, progress=False)
            seconds = time.perf_counter() - t0
            assert summary.last_checkpoint is not None
            report = evaluate(summary.last_checkpoint, config=EvalConfig(seed=seed, probes=("linear", "knn"),
                                                                         progress=False))
            first = next(iter(report.rows.values()))
            log = read_log(out / "log.csv")
            ranks = [r["rankme"] for r in log if "rankme" in r]
            row = {"seed": seed, "seconds": seconds, "final_loss": summary.losses[-1][1],
                   "rankme": ranks[-1] if ranks else float("nan"),
                   "linear": first["linear"].accuracy, "knn": first["knn"].accuracy}
            results.setdefault(name, []).append(row)
            for r_name, r in report.rows.items():
                pair = (r["linear"].accuracy, r["knn"].accuracy)
                if r_name == "same ViT, random init":  # each variant's own architecture, at its seed
                    baselines.setdefault(f"{name}: same ViT, random init", []).append(pair)
                elif r_name == "raw pixels" and len(baselines.get(r_name, [])) < len(args.seeds):
                    baselines.setdefault(r_name, []).append(pair)  # once per seed
            print(f"{name:24s} seed {seed}: loss {row['final_loss']:.4f} RankMe {row['rankme']:.1f} "
                  f"linear {100 * row['linear']:.2f}% kNN {100 * row['knn']:.2f}% ({seconds:.0f} s)", flush=True)

    def ms(values: list[float]) -> str:
        return f"{100 * statistics.fmean(values):6.2f} ± {100 * statistics.pstdev(values):4.2f}"

    print(f"\n{'variant':24s} {'linear %':>15s} {'kNN %':>15s} {'RankMe':>7s} {'train s':>8s}  (seeds {args.seeds})")
    for name, rows in results.items():
        print(f"{name:24s} {ms([r['linear'] for r in rows])} {ms([r['knn'] for r in rows])} "
              f"{statistics.fmean(r['rankme'] for r in rows):7.1f} {statistics.fmean(r['seconds'] for r in rows):8.0f}")
    for name, pairs in baselines.items():
        print(f"{name:24s} {ms([p[0] for p in pairs])} {ms([p[1] for p in pairs])}")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "sweep.json").write_text(json.dumps({"results": results, "baselines": baselines}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
