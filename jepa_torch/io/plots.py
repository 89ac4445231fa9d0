"""PNG renderings for people: sampled masks over the patch grid (or over an image).

Matplotlib is an optional dependency: it is imported inside the functions, with
the non-interactive Agg backend, so importing this module costs nothing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from jepa_core.masks import Grid, MaskBatch

__all__ = ["plot_confusion", "plot_feature_pca", "plot_projection", "plot_training_curves", "render_masks",
           "render_video_masks", "render_views", "unit_range"]

_TARGET_COLOURS = ["#e4572e", "#f3a712", "#a8c686", "#669bbc", "#b07bac", "#8c564b"]
_CONTEXT_COLOUR = "#1f3b73"


def _sample_masks(masks: MaskBatch | tuple[Sequence[Any], Sequence[Any]],
                  sample: int) -> tuple[list[NDArray[np.int64]], list[NDArray[np.int64]]]:
    """The 1-D index arrays of one sample, from a MaskBatch or ``(contexts, targets)``."""
    contexts, targets = (masks.context, masks.targets) if isinstance(masks, MaskBatch) else masks

    def row(m: Any) -> NDArray[np.int64]:
        a = np.asarray(m.cpu() if hasattr(m, "cpu") else m, dtype=np.int64)
        return a[sample] if a.ndim == 2 else a

    return [row(c) for c in contexts], [row(t) for t in targets]


def unit_range(x: Any) -> NDArray[Any]:
    """``x`` (an array or a tensor; an image ``(C, H, W)`` becomes ``(H, W, C)``) scaled to ``[0, 1]``."""
    a = np.asarray(x.detach().cpu().numpy() if hasattr(x, "detach") else x, dtype=np.float64)
    if a.ndim == 3 and a.shape[0] in (1, 3) and a.shape[-1] not in (1, 3):
        a = a.transpose(1, 2, 0)  # (H, W, C)
    out: NDArray[Any] = (a - a.min()) / max(float(np.ptp(a)), 1e-12)
    return out


def render_masks(masks: MaskBatch | tuple[Sequence[Any], Sequence[Any]], grid: Grid, path: str | Path,
                 image: NDArray[Any] | None = None, samples: int = 4, title: str | None = None) -> Path:
    """Draw the context and target blocks of the first ``samples`` samples to a PNG.

    Context patches are dark blue, each target block has its own colour (a patch
    in a target and the context is hatched), unmasked patches are left blank. Over an
    image the fills are translucent and each target patch is outlined in its block's
    colour, so the input stays visible under the masks. One panel per sample, in a row.

    Args:
        masks: a :class:`MaskBatch`, or ``(contexts, targets)``: sequences of
            ``(B, K)`` (or one sample's ``(K,)``) index arrays or LongTensors.
        grid: the ``(H, W)`` patch grid the indices refer to.
        path: the PNG to write (parent folders are created).
        image: optional ``(H_px, W_px)`` or ``(H_px, W_px, 3)`` image drawn under
            the masks, stretched to the grid.
        samples: how many samples to draw (at most the batch size).
        title: optional figure title.

    Returns:
        The path written.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch, Rectangle

    h, w = grid
    first = masks.context[0] if isinstance(masks, MaskBatch) else masks[0][0]
    shape = tuple(first.shape)
    count = 1 if len(shape) == 1 else max(1, min(samples, int(shape[0])))
    fig, axes = plt.subplots(1, count, figsize=(3.2 * count, 3.4), squeeze=False)
    for k, ax in enumerate(axes[0]):
        contexts, targets = _sample_masks(masks, k)
        over = image is not None
        if over:
            ax.imshow(image, extent=(0, w, h, 0), cmap="gray", interpolation="nearest")
        in_context = np.zeros(h * w, dtype=bool)
        for c in contexts:
            in_context[c] = True
        for cell in np.nonzero(in_context)[0]:
            ax.add_patch(Rectangle((float(cell % w), float(cell // w)), 1, 1, color=_CONTEXT_COLOUR,
                                   alpha=0.35 if over else 0.75, lw=0))
        for j, t in enumerate(targets):
            colour = _TARGET_COLOURS[j % len(_TARGET_COLOURS)]
            for cell in t:
                both = bool(in_context[cell])  # context overlapping a target: hatched in black
                xy = (float(cell % w), float(cell // w))
                ax.add_patch(Rectangle(xy, 1, 1, facecolor=colour, alpha=0.3 if over else 0.8, lw=0,
                                       hatch="xxx" if both else None, edgecolor="black" if both else "white"))
                if over:  # the block's colour as an opaque outline: the image shows through the fill
                    ax.add_patch(Rectangle((xy[0] + 0.06, xy[1] + 0.06), 0.88, 0.88, fill=False, edgecolor=colour,
                                           lw=1.2))
        ax.set_xlim(0, w)
        ax.set_ylim(h, 0)
        ax.set_aspect("equal")
        ax.set_xticks(np.arange(0, w + 1, max(1, w // 4)))
        ax.set_yticks(np.arange(0, h + 1, max(1, h // 4)))
        ax.grid(True, color="#cccccc", lw=0.3)
        ax.set_title(f"sample {k}: context {int(in_context.sum())} patches", fontsize=8)
    handles = [Patch(color=_CONTEXT_COLOUR, label="context")]
    handles += [Patch(color=_TARGET_COLOURS[j % len(_TARGET_COLOURS)], label=f"target {j}")
                for j in range(len(_sample_masks(masks, 0)[1]))]
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=8, frameon=False)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout(rect=(0, 0.07, 1, 0.95 if title else 1))
    return _save(fig, path, dpi=100)


def render_video_masks(batches: Sequence[MaskBatch], path: str | Path, clip: NDArray[Any] | None = None,
                       sample: int = 0, names: Sequence[str] | None = None, title: str | None = None) -> Path:
    """Draw one sample's 3-D masks to a PNG: one row per mask configuration, one panel per tubelet frame.

    Target tokens (the union of the configuration's blocks) are orange, context tokens dark blue;
    tokens in neither (past ``context_frames``, or dropped by the batch cut) are left blank. Over a clip
    the fills are translucent and the frame shows through.

    Args:
        batches: one :class:`MaskBatch` per configuration, on one ``(T, H, W)`` grid.
        path: the PNG to write (parent folders are created).
        clip: optional ``(T, H_px, W_px)`` grey frames, one per tubelet frame (e.g. each tubelet's first).
        sample: which sample of the batch.
        names: a label per configuration (default ``config 0`` ...).
        title: optional figure title.

    Returns:
        The path written.
    """
    plt = _pyplot()
    from matplotlib.patches import Patch

    frames, rows, cols = (int(v) for v in batches[0].grid)
    n = frames * rows * cols
    fig, axes = plt.subplots(len(batches), frames, figsize=(1.9 * frames, 2.3 * len(batches) + 0.6), squeeze=False)
    target_rgb, context_rgb = (0.894, 0.341, 0.18), (0.122, 0.231, 0.451)
    for i, batch in enumerate(batches):
        contexts, targets = _sample_masks(batch, sample)
        ctx_len = None if batch.context_lengths is None else int(batch.context_lengths[0][sample])
        tgt_len = None if batch.target_lengths is None else int(batch.target_lengths[0][sample])
        flat = np.zeros(n, dtype=np.int8)  # 0 blank, 1 context, 2 target
        flat[contexts[0][:ctx_len]] = 1
        flat[targets[0][:tgt_len]] = 2
        state = flat.reshape(frames, rows, cols)
        for t in range(frames):
            ax = axes[i][t]
            rgba = np.zeros((rows, cols, 4))
            rgba[state[t] == 1, :3], rgba[state[t] == 2, :3] = context_rgb, target_rgb
            rgba[..., 3] = np.where(state[t] > 0, 0.45 if clip is not None else 0.9, 0.0)
            if clip is not None:
                ax.imshow(clip[t], extent=(0, cols, rows, 0), cmap="gray", interpolation="nearest")
            ax.imshow(rgba, extent=(0, cols, rows, 0), interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            label = names[i] if names else f"config {i}"
            ax.set_title(f"{label}, t={t}" if t == 0 else f"t={t}", fontsize=8)
    handles = [Patch(color=context_rgb, label="context"), Patch(color=target_rgb, label="target (union of blocks)")]
    fig.legend(handles=handles, loc="lower center", ncol=2, fontsize=8, frameon=False)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout(rect=(0, 0.06, 1, 0.95 if title else 1))
    return _save(fig, path, dpi=100)


def render_views(views: Sequence[NDArray[Any]], path: str | Path, num_global: int, title: str | None = None) -> Path:
    """Draw the views of a few images to a PNG: one row per image, one column per view.

    Args:
        views: one ``(samples, H_v, W_v)`` or ``(samples, H_v, W_v, 3)`` array per view, values in ``[0, 1]``
            (views may differ in size: each is drawn at the same panel size).
        path: the PNG to write (parent folders are created).
        num_global: how many leading views are global (their titles say so).
        title: optional figure title.

    Returns:
        The path written.
    """
    plt = _pyplot()
    rows, cols = int(views[0].shape[0]), len(views)
    fig, axes = plt.subplots(rows, cols, figsize=(max(1.5 * cols, 3.2), 1.5 * rows + 0.6), squeeze=False)
    for j, view in enumerate(views):
        for i in range(rows):
            ax = axes[i][j]
            ax.imshow(view[i], cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                side = view.shape[2]
                ax.set_title(f"{'global' if j < num_global else 'local'} {side}px", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return _save(fig, path, dpi=100)


def _save(fig: Any, path: str | Path, dpi: int) -> Path:
    """Write the figure to ``path`` (its folder created), close it, return the path."""
    import matplotlib.pyplot as plt

    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=dpi)
    plt.close(fig)
    return out


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_training_curves(rows: Sequence[dict[str, float]], path: str | Path) -> None:
    """Write a PNG of a run's curves: loss, learning rate, EMA momentum (I-JEPA), and, when the rows
    carry them, the collapse monitors (RankMe, feature std) and the online probe's held-out accuracy
    (linear and kNN in one panel).

    Args:
        rows: log rows with at least ``step``, ``loss`` and ``lr``.
        path: the PNG to write.
    """
    plt = _pyplot()
    panels: list[tuple[tuple[str, ...], str, bool]] = [(("loss",), "loss", True), (("lr",), "learning rate", False)]
    panels += [((k,), t, False) for k, t in (("momentum", "EMA momentum"), ("rankme", "RankMe"),
                                             ("feature_std", "feature std")) if any(k in r for r in rows)]
    if any("probe_linear" in r for r in rows):
        panels.append((("probe_linear", "probe_knn"), "online probe, held-out accuracy", False))
    colours = ("#1f3b73", "#c0392b")
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.4), squeeze=False)
    for ax, (keys, title, log_scale) in zip(axes[0], panels, strict=True):
        low = math.inf
        for key, colour in zip(keys, colours, strict=False):
            pts = [(r["step"], r[key]) for r in rows if key in r and "step" in r]
            if pts:
                xs, ys = zip(*pts, strict=True)
                ax.plot(xs, ys, lw=1.4, color=colour, label=key.removeprefix("probe_") if len(keys) > 1 else None)
                low = min(low, *ys)
        if log_scale and low > 0 and math.isfinite(low):
            ax.set_yscale("log")
        if len(keys) > 1:
            ax.legend(fontsize=8)
        ax.set_title(title)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    _save(fig, path, dpi=110)


def plot_feature_pca(features: NDArray[np.floating], labels: NDArray[np.integer], path: str | Path,
                     title: str = "held-out target-encoder features, PCA") -> None:
    """Write a PNG of the first two principal components of ``(N, D)`` features, coloured by label."""
    x = np.asarray(features, dtype=np.float64)
    x = x - x.mean(axis=0)
    _, s, vt = np.linalg.svd(x, full_matrices=False)
    explained = (s[:2] ** 2) / max(float((s**2).sum()), 1e-12)
    plot_projection(x @ vt[:2].T, labels, (float(explained[0]), float(explained[1])), path, title)


def plot_projection(xy: NDArray[np.floating], labels: NDArray[np.integer], explained: tuple[float, float],
                    path: str | Path, title: str = "held-out target-encoder features, PCA") -> None:
    """Write a PNG of features already projected on two principal components ``(N, 2)``, coloured by label.

    Args:
        xy: the projected features.
        labels: ``(N,)`` classes.
        explained: the fraction of the variance each component explains.
        path: the PNG.
        title: its title.
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.6, 4.8))
    points = ax.scatter(xy[:, 0], xy[:, 1], c=labels, cmap="tab10", s=9, alpha=0.85)
    ax.legend(*points.legend_elements(), title="label", fontsize=7, loc="best", markerscale=0.8)
    ax.set_xlabel(f"PC1 ({100 * explained[0]:.0f}% of variance)")
    ax.set_ylabel(f"PC2 ({100 * explained[1]:.0f}% of variance)")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    _save(fig, path, dpi=110)


def plot_confusion(counts: NDArray[np.integer], classes: Sequence[str], path: str | Path, title: str) -> Path:
    """Write a PNG of a confusion matrix ``(classes, classes)`` (true rows, predicted columns), rows normalised.

    Counts are written in the cells when there are at most 20 classes.
    """
    from sklearn.metrics import ConfusionMatrixDisplay

    plt = _pyplot()
    counts = np.asarray(counts)
    rates = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    side = min(12.0, 3.0 + 0.35 * len(classes))
    fig, ax = plt.subplots(figsize=(side, side))
    labels = list(classes) if len(classes) <= 50 else None
    ConfusionMatrixDisplay(rates, display_labels=labels).plot(
        ax=ax, cmap="Blues", colorbar=False, include_values=len(classes) <= 20, values_format=".2f",
        xticks_rotation="vertical")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return _save(fig, path, dpi=110)
