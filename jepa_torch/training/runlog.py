"""What a user watches during a run: a progress bar, a CSV log, TensorBoard, PNG curves."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from tqdm import tqdm

from jepa_torch.io.files import atomic_write

__all__ = ["COLUMNS", "RunLogger", "read_log"]

COLUMNS = ("step", "epoch", "loss", "prediction_loss", "regulariser", "lr", "weight_decay", "momentum",
           "images_per_s", "rankme", "feature_std", "probe_linear", "probe_knn")


def read_log(path: Path) -> list[dict[str, float]]:
    """The rows of a run's ``log.csv`` as floats (empty cells skipped)."""
    if not path.is_file():
        return []
    with path.open(newline="") as f:
        return [{k: float(v) for k, v in row.items() if v not in ("", None)} for row in csv.DictReader(f)]


class RunLogger:
    """Rank 0's log of a run: ``log.csv`` (rows after a resumed step are dropped), tqdm, TensorBoard.

    Args:
        out_dir: the run folder.
        start_step: the step the run starts (or resumes) at.
        tensorboard: also write TensorBoard events when the package is installed.
        total_steps: the run's last step, for the progress bar.
        progress: show the progress bar.
    """

    def __init__(self, out_dir: Path, start_step: int, *, tensorboard: bool, total_steps: int,
                 progress: bool) -> None:
        self.path = out_dir / "log.csv"
        kept = [r for r in read_log(self.path) if r.get("step", 0) <= start_step]
        text = io.StringIO(newline="")
        writer = csv.DictWriter(text, fieldnames=COLUMNS)
        writer.writeheader()
        for row in kept:
            writer.writerow(self._cells(row))
        atomic_write(self.path, lambda f: f.write(text.getvalue().encode()))  # a kill never truncates it
        self._file = self.path.open("a", newline="")
        self._writer = csv.DictWriter(self._file, fieldnames=COLUMNS)
        self._tb: Any = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:  # tensorboard is an optional extra
                self._tb = None
            else:
                self._tb = SummaryWriter(str(out_dir / "tensorboard"), purge_step=start_step + 1)
        self._bar = tqdm(total=total_steps, initial=start_step, disable=not progress, unit="step",
                         dynamic_ncols=True, mininterval=0.5)
        self._last = start_step

    @staticmethod
    def _cells(row: dict[str, float]) -> dict[str, str]:
        return {k: (str(int(v)) if k in ("step", "epoch") else repr(float(v))) for k, v in row.items() if k in COLUMNS}

    def tick(self) -> None:
        """One step done without a log line."""
        self._bar.update(1)
        self._last += 1

    def log(self, row: dict[str, float]) -> None:
        """Write one row (keys from :data:`COLUMNS`) everywhere."""
        step = int(row["step"])
        self._writer.writerow(self._cells(row))
        self._file.flush()
        if self._tb is not None:
            for key, value in row.items():
                if key not in ("step", "epoch"):
                    self._tb.add_scalar(f"train/{key}", value, step)
        self._bar.update(step - self._last)
        self._last = step
        self._bar.set_postfix(loss=f"{row['loss']:.4g}", lr=f"{row['lr']:.2e}",
                              img_s=f"{row['images_per_s']:.0f}", refresh=False)

    def close(self) -> None:
        self._bar.close()
        self._file.close()
        if self._tb is not None:
            self._tb.close()

    def plot(self, path: Path) -> None:
        """PNG of loss, learning rate and EMA momentum (and collapse monitors when logged)."""
        from jepa_torch.io.plots import plot_training_curves

        plot_training_curves(read_log(self.path), path)
