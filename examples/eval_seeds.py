"""Every probe on several runs (one per seed): mean and standard deviation over the runs.

    for s in 0 1 2; do jepa-torch train --config configs/digits_lejepa.yaml --set run.seed=$s --out runs/lejepa_s$s; done
    python examples/eval_seeds.py runs/lejepa_s0 runs/lejepa_s1 runs/lejepa_s2 --low-shot 1 10 --json seeds.json

Each run's last checkpoint is probed on its held-out split with the probes' seed equal to the run's
seed (``jepa_torch.evaluation.evaluate``, every probe, the baselines); the summary is the population
standard deviation over runs. This is what ``jepa-torch demo --seeds 0 1 2`` prints after training.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from jepa_torch.evaluation import EvalConfig, evaluate
from jepa_torch.training.resume import list_checkpoints


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--low-shot", nargs="*", default=[])
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    accs: dict[tuple[str, str], list[float]] = {}
    per_run = []
    for run in args.runs:
        checkpoints = list_checkpoints(run / "checkpoints")
        if not checkpoints:
            raise SystemExit(f"{run}: no checkpoints")
        step, path = checkpoints[-1]
        import yaml

        seed = int(yaml.safe_load((run / "config.yaml").read_text())["run"]["seed"])
        report = evaluate(path, config=EvalConfig(seed=seed, low_shot=tuple(args.low_shot), progress=False))
        print(f"{run} (seed {seed}, step {step}, {report.seconds:.0f} s)\n{report.table()}\n", flush=True)
        per_run.append(report.to_dict())
        for name, scores in report.rows.items():
            for probe, score in scores.items():
                accs.setdefault((name, probe), []).append(score.accuracy)
        for shot in report.low_shot:
            accs.setdefault((shot.features, f"{shot.probe} {shot.shots}/class" if not shot.shots.endswith("%")
                             else f"{shot.probe} {shot.shots}"), []).append(shot.mean)

    print(f"over {len(args.runs)} runs (mean ± std of the runs' accuracies; low-shot: of each run's draw mean)")
    for (name, probe), values in accs.items():
        print(f"{name:30s} {probe:18s} {100 * statistics.fmean(values):6.2f} ± "
              f"{100 * statistics.pstdev(values):4.2f}%   ({', '.join(f'{100 * v:.2f}' for v in values)})")
    if args.json:
        args.json.write_text(json.dumps({"runs": per_run}, indent=1))


if __name__ == "__main__":
    main()
