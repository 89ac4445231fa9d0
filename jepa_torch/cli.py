"""The ``jepa-torch`` command: thin argument parsing around train, export and eval.

    jepa-torch train --config configs/digits_tiny_cpu.yaml --set optimization.lr=5e-4
    torchrun --nproc_per_node 4 -m jepa_torch.cli train --config run.yaml
    jepa-torch export --checkpoint runs/x/checkpoints/step_00001000.pt --out encoder.safetensors

A mistake a user can make (a config key, a path, a checkpoint, an argument) ends the
command with one line on stderr naming it and a non-zero exit status; a traceback
means a bug.

Under torchrun, rank 0 speaks for the job: the run's notes, warnings and summary are printed by it
alone. Another rank prints only what is its own (a video it could not read, the error that ended
it), as ``jepa-torch: rank <r>: ...``.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from jepa_torch.evaluation.protocol import PROBES

__all__ = ["main"]

EXIT_USAGE = 2
EXIT_DIVERGED = 3


def _one_line(text: str) -> str:
    """A message as one line: line breaks (from a path or value the user typed) shown escaped."""
    return text.replace("\r", "\\r").replace("\n", "\\n")


class _Parser(argparse.ArgumentParser):
    """argparse, with its error line kept to one line (sub-commands' parsers are of this class too)."""

    def error(self, message: str) -> NoReturn:
        super().error(_one_line(message))


def _rank() -> int:
    """This process's rank under torchrun (``RANK`` of a ``WORLD_SIZE`` above 1), else 0."""
    try:
        return int(os.environ.get("RANK", "0")) if int(os.environ.get("WORLD_SIZE", "1")) > 1 else 0
    except ValueError:
        return 0


def _prefix() -> str:
    rank = _rank()
    return "jepa-torch: " if rank == 0 else f"jepa-torch: rank {rank}: "


def _say(text: str) -> None:
    """One line on stderr from this process (prefixed by its rank on ranks other than 0).

    Written in one call, newline included: under torchrun stderr is unbuffered and shared by the ranks, and
    ``print`` writes the text and its newline separately, so two ranks' lines could run into one.
    """
    sys.stderr.write(f"{_prefix()}{_one_line(text)}\n")
    sys.stderr.flush()


class _Stderr(logging.StreamHandler):  # type: ignore[type-arg]
    """The library's log on the current ``sys.stderr``: ``jepa-torch: <note>`` for information,
    ``jepa-torch: warning: <message>`` for warnings and worse.

    On ranks other than 0 only the records logged with ``extra={"rank_local": True}`` (what happened to
    this process alone) are printed, prefixed by the rank; the rest rank 0 prints for the job.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return (_rank() == 0 or bool(getattr(record, "rank_local", False))) and bool(super().filter(record))

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr  # the stream of now (a test's capture, a redirected stderr)
        super().emit(record)

    def format(self, record: logging.LogRecord) -> str:
        kind = "" if record.levelno < logging.WARNING else f"{record.levelname.lower()}: "
        return f"{_prefix()}{kind}{_one_line(record.getMessage())}"


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="jepa-torch", description="Train and export I-JEPA models.")
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
    ev = sub.add_parser("eval", help="probe a checkpoint's frozen encoder: linear, last-k, attentive, kNN, low-shot")
    ev.add_argument("--checkpoint", required=True, help="ours, an official I-JEPA .pth.tar, or a .safetensors export")
    ev.add_argument("--train", help="ImageFolder root of the labelled training split (with --val)")
    ev.add_argument("--val", help="ImageFolder root of the val split; default: the run's own held-out split")
    ev.add_argument("--encoder", nargs="+", choices=["target", "context"], default=["target"],
                    help="target: the EMA encoder I-JEPA evaluates (default); several: one row each")
    ev.add_argument("--probes", nargs="+", default=list(PROBES), metavar="PROBE",
                    help=f"any of {' '.join(PROBES)} (default: all)")
    ev.add_argument("--last-k", type=int, default=4, help="layers the last-k probe concatenates (default 4)")
    ev.add_argument("--epochs", type=int, help="passes of the linear heads over the training split (default 100, and "
                    "at least 2000 steps: a split under 5120 images gets smaller batches)")
    ev.add_argument("--attentive-epochs", type=int, help="passes of the attentive probes over the training split "
                    "(default 20, and at least 500 steps: a split under 3200 images gets smaller batches)")
    ev.add_argument("--attentive-blocks", type=int, default=1,
                    help="blocks of the attentive probe: 1, I-JEPA's cross-attention pooler (default); 4, V-JEPA 2's "
                         "video probe (three self-attention blocks over the tokens first: far slower)")
    ev.add_argument("--min-steps", type=int,
                    help="updates a head gets at least, however small the split (default 2000 linear, 500 attentive; "
                         "0: exactly the epochs)")
    ev.add_argument("--low-shot", nargs="+", default=[], metavar="N|P%",
                    help="labelled images per class (1 10) or a percentage (1%%) of the training split")
    ev.add_argument("--draws", type=int, default=3, help="low-shot subsets per entry (default 3)")
    ev.add_argument("--cache", help="keep the features in this folder and reuse them (default: a temporary one)")
    ev.add_argument("--img-size", type=int, help="image side for --train/--val (default: the encoder's)")
    ev.add_argument("--clips", type=int, default=1,
                    help="videos: evenly spaced clips per video, their features averaged (default 1, the middle)")
    ev.add_argument("--frame-encoder", action="append", default=[], metavar="CHECKPOINT",
                    help="videos: an image checkpoint applied frame by frame (tokens averaged over time), as a baseline")
    ev.add_argument("--label", help="videos: which labels to probe (a labels.csv column, e.g. digit or direction; "
                                    "default: the run's data.label)")
    ev.add_argument("--token-disk-gib", type=float, default=16.0,
                    help="store the attentive probe's tokens up to this size, else encode again each epoch")
    ev.add_argument("--batch-size", type=int, default=128, help="feature extraction batch (default 128)")
    ev.add_argument("--workers", type=int, default=0, help="DataLoader worker processes for images (default 0)")
    ev.add_argument("--device", default="auto",
                    help="where encoders and probes run: auto (CUDA when available, as train), cpu, cuda or cuda:N")
    ev.add_argument("--seed", type=int, default=0, help="probes' initialisation, batch order, selection, draws")
    ev.add_argument("--no-baselines", action="store_true", help="skip random-init and raw-pixel baselines")
    ev.add_argument("--json", help="also write the report as JSON")
    ev.add_argument("--confusion", help="also write a PNG of the best probe's confusion matrix")
    ev.add_argument("--pca", help="also write a PNG of the val features' 2-D PCA, coloured by label")
    ev.add_argument("--no-progress", action="store_true", help="no progress bars")
    demo = sub.add_parser("demo", help="pretrain on the bundled digits, evaluate, write pictures (CPU minutes)")
    demo.add_argument("--config", default=None, help="default: the best digits recipe, configs/digits_lejepa.yaml")
    demo.add_argument("--out", default="runs/demo")
    demo.add_argument("--seeds", type=int, nargs="+", default=[0], help="several seeds: mean and std")
    demo.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE")
    return parser


def _demo(args: argparse.Namespace) -> int:
    from jepa_torch.demo import DEFAULT_CONFIG, run_demo, run_seeds

    config = args.config or DEFAULT_CONFIG
    if len(args.seeds) == 1:
        run_demo(config, args.out, args.seeds[0], tuple(args.overrides))
    else:
        run_seeds(args.seeds, config, args.out, tuple(args.overrides))
    return 0


def _eval(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from jepa_torch.evaluation import EvalConfig, EvaluationError, evaluate, write_json
    from jepa_torch.io.plots import plot_confusion, plot_projection

    if min(args.epochs or 1, args.attentive_epochs or 1) < 1:
        raise EvaluationError("--epochs and --attentive-epochs must be >= 1")
    if args.min_steps is not None and args.min_steps < 0:
        raise EvaluationError(f"--min-steps {args.min_steps}: must be >= 0")
    defaults = EvalConfig()
    floor = {} if args.min_steps is None else {"min_steps": args.min_steps}
    config = EvalConfig(
        probes=tuple(args.probes), last_k=args.last_k, low_shot=tuple(args.low_shot), draws=args.draws,
        batch_size=args.batch_size, num_workers=args.workers, seed=args.seed, device=args.device,
        progress=not args.no_progress, cache=args.cache, img_size=args.img_size, token_disk_gib=args.token_disk_gib,
        clips=args.clips, label=args.label, attentive_blocks=args.attentive_blocks,
        linear=replace(defaults.linear, **floor, **({} if args.epochs is None else {"epochs": args.epochs})),
        attentive=replace(defaults.attentive, **floor,
                          **({} if args.attentive_epochs is None else {"epochs": args.attentive_epochs})))
    report = evaluate(args.checkpoint, train=args.train, val=args.val, encoders=args.encoder,
                      baselines=not args.no_baselines, config=config, frame_encoders=args.frame_encoder)
    print(f"evaluation of {args.checkpoint} (step {report.step}): {report.train_size} training and "
          f"{report.val_size} val images, {len(report.classes)} classes")
    print(report.table())
    print(f"{report.seconds:.0f} s, peak memory {report.peak_rss_mib:.0f} MiB (resident)")
    first = next(iter(report.rows))
    if args.json:
        print(f"wrote {write_json(report, args.json)}")
    if args.confusion and report.confusion is not None:
        probe, counts = report.confusion
        print(f"wrote {plot_confusion(counts, report.classes, args.confusion, f'{first}, {probe} probe, val split')}")
    if args.pca and report.projection is not None:
        xy, labels, explained = report.projection
        plot_projection(xy, labels, explained, args.pca, title=f"val split, {first} features, PCA")
        print(f"wrote {args.pca}")
    return 0


def _train(args: argparse.Namespace) -> int:
    from jepa_torch.config.yaml_io import load_config
    from jepa_torch.training.loop import train

    overrides = list(args.overrides)
    for flag, key in (("out", "run.out_dir"), ("device", "run.device"), ("resume", "run.resume"),
                      ("max_steps", "run.max_steps")):
        value = getattr(args, flag)
        if value is not None:
            overrides.append(f"{key}={value}")
    cfg = load_config(args.config, overrides)
    summary = train(cfg, progress=not args.no_progress)
    if summary.rank != 0:  # rank 0 reports for the job
        return 0
    if summary.losses:
        print(f"trained steps {summary.resumed_from}..{summary.steps} of {summary.out_dir}: "
              f"final loss {summary.losses[-1][1]:.5g}, {summary.images_per_s:.1f} images/s; "
              f"checkpoint {summary.last_checkpoint}")
    else:
        print(f"nothing to do: {summary.out_dir} is already at step {summary.steps}")
    return 0


def _export(args: argparse.Namespace) -> int:
    from jepa_torch.io.export import export_encoder

    path = export_encoder(args.checkpoint, args.out, which=args.encoder, fmt=args.format)
    print(f"wrote the {args.encoder} encoder to {path} ({args.format})")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = _parser().parse_args(argv)
    # the library speaks through logging: its notes (a run's header) as "jepa-torch: ...", its warnings as
    # "jepa-torch: warning: ...", like the errors
    library = logging.getLogger("jepa_torch")
    if not any(isinstance(h, _Stderr) for h in library.handlers):  # main() may run many times in one process
        library.addHandler(_Stderr())
    library.setLevel(logging.INFO)
    from jepa_torch.io.checkpoint import CheckpointError
    from jepa_torch.config.schema import ConfigError
    from jepa_torch.data.datasets import DataError
    from jepa_torch.evaluation import EvaluationError
    from jepa_torch.io.files import describe_os_error
    from jepa_torch.training.loop import TrainingDiverged

    try:
        if args.command == "train":
            return _train(args)
        if args.command == "eval":
            return _eval(args)
        if args.command == "demo":
            return _demo(args)
        return _export(args)
    except (ConfigError, CheckpointError, DataError, EvaluationError) as exc:
        _say(f"error: {exc}")
        return EXIT_USAGE
    except OSError as exc:  # a full disk, a missing permission: the environment, not a bug
        _say(f"error: {describe_os_error(exc)}")
        return EXIT_USAGE
    except TrainingDiverged as exc:
        _say(f"training diverged: {exc}")
        return EXIT_DIVERGED
    except KeyboardInterrupt:
        _say("interrupted; resume with the same command (run.resume=auto)")
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
