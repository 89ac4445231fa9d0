"""The ``jepa-torch`` command: thin argument parsing around train, export and eval.

    jepa-torch train --config configs/digits_tiny_cpu.yaml --set optimization.lr=5e-4
    torchrun --nproc_per_node 4 -m jepa_torch.cli train --config run.yaml
    jepa-torch export --checkpoint runs/x/checkpoints/step_00001000.pt --out encoder.safetensors

A mistake a user can make (a config key, a path, a checkpoint, an argument) ends the
command with one line on stderr naming it and a non-zero exit status; a traceback
means a bug.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

__all__ = ["main"]

EXIT_USAGE = 2
EXIT_DIVERGED = 3


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="jepa-torch", description="Train and export I-JEPA models.")
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="pretrain (or resume) a JEPA encoder")
    train.add_argument("--config", help="YAML config (ours or the official I-JEPA layout); default: all defaults")
    train.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                       help="override one config value, e.g. --set optimization.lr=5e-4 (repeatable)")
    train.add_argument("--out", help="run folder (same as --set run.out_dir=...)")
    train.add_argument("--device", choices=["auto", "cpu", "cuda"], help="same as --set run.device=...")
    train.add_argument("--resume", help="auto, never, or a checkpoint path (same as --set run.resume=...)")
    train.add_argument("--max-steps", type=int, help="stop after this many steps (same as run.max_steps)")
    train.add_argument("--no-progress", action="store_true", help="no progress bar (logs still written)")

    export = sub.add_parser("export", help="write an encoder as safetensors or in the official layout")
    export.add_argument("--checkpoint", required=True, help="a training checkpoint or an official .pth.tar")
    export.add_argument("--out", required=True, help="the file to write")
    export.add_argument("--format", choices=["safetensors", "official"], default="safetensors")
    export.add_argument("--encoder", choices=["target", "context"], default="target",
                        help="target: the EMA encoder I-JEPA evaluates (default)")
    ev = sub.add_parser("eval", help="linear probe and kNN of a checkpoint's frozen features on held-out data")
    ev.add_argument("--checkpoint", required=True, help="a training checkpoint of this project")
    ev.add_argument("--device", default="cpu")
    ev.add_argument("--seed", type=int, default=0, help="seeds the probe's cross-validation folds")
    ev.add_argument("--no-baselines", action="store_true", help="skip random-init and raw-pixel baselines")
    ev.add_argument("--pca", help="also write a PNG of the held-out target features' 2-D PCA, coloured by label")
    demo = sub.add_parser("demo", help="pretrain on the bundled digits, evaluate, write pictures (CPU minutes)")
    demo.add_argument("--config", default=None, help="default: the best digits recipe, configs/digits_lejepa.yaml")
    demo.add_argument("--out", default="runs/demo")
    demo.add_argument("--seeds", type=int, nargs="+", default=[0], help="several seeds: mean and std")
    demo.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE")
    return parser


def _demo(args: argparse.Namespace) -> int:
    from .demo import DEFAULT_CONFIG, run_demo, run_seeds

    config = args.config or DEFAULT_CONFIG
    if len(args.seeds) == 1:
        run_demo(config, args.out, args.seeds[0], tuple(args.overrides))
    else:
        run_seeds(args.seeds, config, args.out, tuple(args.overrides))
    return 0


def _eval(args: argparse.Namespace) -> int:
    from .evaluate import evaluate_checkpoint, format_table

    report = evaluate_checkpoint(args.checkpoint, seed=args.seed, device=args.device, baselines=not args.no_baselines)
    print(f"held-out evaluation of {args.checkpoint} (step {report.step})")
    print(format_table(report.rows))
    if args.pca:
        from .plots import plot_feature_pca

        plot_feature_pca(report.test_features, report.test_labels, args.pca)
        print(f"wrote {args.pca}")
    return 0


def _train(args: argparse.Namespace) -> int:
    from .config_io import load_config
    from .train import train

    overrides = list(args.overrides)
    for flag, key in (("out", "run.out_dir"), ("device", "run.device"), ("resume", "run.resume"),
                      ("max_steps", "run.max_steps")):
        value = getattr(args, flag)
        if value is not None:
            overrides.append(f"{key}={value}")
    cfg = load_config(args.config, overrides)
    summary = train(cfg, progress=not args.no_progress)
    if summary.losses:
        print(f"trained steps {summary.resumed_from}..{summary.steps} of {summary.out_dir}: "
              f"final loss {summary.losses[-1][1]:.5g}, {summary.images_per_s:.1f} images/s; "
              f"checkpoint {summary.last_checkpoint}")
    else:
        print(f"nothing to do: {summary.out_dir} is already at step {summary.steps}")
    return 0


def _export(args: argparse.Namespace) -> int:
    from .export import export_encoder

    path = export_encoder(args.checkpoint, args.out, which=args.encoder, fmt=args.format)
    print(f"wrote the {args.encoder} encoder to {path} ({args.format})")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = _parser().parse_args(argv)
    # every warning of the library goes through logging; on the command line it reads like the errors
    logging.basicConfig(format="jepa-torch: warning: %(message)s", level=logging.WARNING)
    from .checkpoint import CheckpointError
    from .config import ConfigError
    from .data import DataError
    from .evaluate import EvaluationError
    from .train import TrainingDiverged

    try:
        if args.command == "train":
            return _train(args)
        if args.command == "eval":
            return _eval(args)
        if args.command == "demo":
            return _demo(args)
        return _export(args)
    except (ConfigError, CheckpointError, DataError, EvaluationError) as exc:
        print(f"jepa-torch: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:  # a full disk, a missing permission: the environment, not a bug
        lines = str(exc).splitlines() or [type(exc).__name__]
        print(f"jepa-torch: error: {lines[0]}", file=sys.stderr)
        return EXIT_USAGE
    except TrainingDiverged as exc:
        print(f"jepa-torch: training diverged: {exc}", file=sys.stderr)
        return EXIT_DIVERGED
    except KeyboardInterrupt:
        print("jepa-torch: interrupted; resume with the same command (run.resume=auto)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
