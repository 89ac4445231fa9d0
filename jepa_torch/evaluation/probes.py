"""Probes on frozen features, trained from chunked reads of a feature store.

- **Linear heads** (:class:`LinearHead`) on standardised features (``pooled`` or ``lastk``).
- **Attentive probe** (:class:`AttentiveProbe`): learned query tokens cross-attend to the frozen
  tokens (one pre-norm cross-attention block with an MLP), the queries are averaged, then a
  LayerNorm and a linear classifier: the frozen evaluation of V-JEPA.
- **kNN** (:func:`knn_predict`): cosine similarity, the ``k`` nearest training rows vote with weight
  ``1 / (1 - cos)`` (an exact match takes the vote alone), as scikit-learn's
  ``KNeighborsClassifier(metric="cosine", weights="distance")``, computed chunk against chunk.

Several heads, one per ``(learning rate, weight decay)`` of a grid, are trained at once on the same
batches, each in its own AdamW parameter group (the loss is the sum of the heads' losses, so each
head's gradient is its own). :func:`train_heads` runs a linear warm-up then a cosine decay to zero.
Which head is reported is chosen on a selection part of the training split, never on the val split.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch
import torch.nn.functional as F
from numpy.typing import NDArray
from torch import Tensor, nn

from jepa_torch.evaluation.store import FeatureStore

__all__ = ["ArrayBatches", "AttentiveProbe", "Batches", "HeadGrid", "LinearHead", "Standardise", "StoreBatches",
           "knn_predict", "predict", "predict_on", "train_heads", "visit_order"]

CHUNK_BYTES = 16 * 2**20
"""Bytes of one chunked read of a store: what a probe holds of the features at a time."""


class LinearHead(nn.Module):
    """A linear classifier on standardised ``(B, F)`` features."""

    def __init__(self, features: int, classes: int) -> None:
        super().__init__()
        self.linear = nn.Linear(features, classes)
        nn.init.zeros_(self.linear.bias)
        nn.init.trunc_normal_(self.linear.weight, std=0.01)

    def forward(self, x: Tensor) -> Tensor:
        out: Tensor = self.linear(x)  # (B, classes)
        return out


class AttentiveProbe(nn.Module):
    """Cross-attention pooling of frozen tokens ``(B, N, D)`` by ``queries`` learned tokens, then a classifier.

    With ``blocks=1`` it is I-JEPA's attentive probe: one cross-attention block. With ``blocks=k`` the tokens
    first pass ``k - 1`` pre-norm self-attention blocks of the probe's own (V-JEPA 2's video probes use 4):
    the probe can relate tokens to each other before it pools them. The self-attention blocks add no
    positions, so the probe is blind to the tokens' order; where they sit is what the encoder put in them.

    Args:
        dim: token width ``D``.
        classes: number of classes.
        num_heads: attention heads (``D`` must divide by it).
        queries: learned query tokens; their outputs are averaged.
        mlp_ratio: hidden width of each block's MLP over ``D``.
        blocks: 1 + the self-attention blocks before the cross-attention one.
    """

    def __init__(self, dim: int, classes: int, num_heads: int, queries: int = 1, mlp_ratio: float = 4.0,
                 blocks: int = 1) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"AttentiveProbe: width {dim} is not a multiple of {num_heads} heads")
        if blocks < 1:
            raise ValueError(f"AttentiveProbe: blocks={blocks}; need at least the cross-attention block")
        from jepa_torch.models.vit import Block

        self.num_heads = num_heads
        self.blocks = nn.ModuleList(Block(dim, num_heads, int(dim * mlp_ratio)) for _ in range(blocks - 1))
        self.query = nn.Parameter(torch.zeros(1, queries, dim))
        self.norm_kv = nn.LayerNorm(dim)
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm_mlp = nn.LayerNorm(dim)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))
        self.norm_out = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, classes)
        nn.init.trunc_normal_(self.query, std=0.02)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)
        with torch.no_grad():  # the residual branches of block i start 1 / sqrt(2 i) smaller, as in a deep ViT
            for i, block in enumerate(self.blocks, start=1):
                assert isinstance(block, Block)
                block.attn.proj.weight.div_(math.sqrt(2.0 * i))
                block.mlp.fc2.weight.div_(math.sqrt(2.0 * i))

    def forward(self, tokens: Tensor) -> Tensor:
        for block in self.blocks:
            tokens = block(tokens)
        b, n, d = tokens.shape
        h, hd = self.num_heads, d // self.num_heads
        x = self.norm_kv(tokens)
        k, v = self.kv(x).view(b, n, 2, h, hd).permute(2, 0, 3, 1, 4)  # each (B, h, N, hd)
        q = self.q(self.query).view(1, -1, h, hd).transpose(1, 2).expand(b, -1, -1, -1)  # (B, h, Q, hd)
        pooled = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, -1, d)  # (B, Q, D)
        z = self.query + self.proj(pooled)  # (B, Q, D)
        z = z + self.mlp(self.norm_mlp(z))
        out: Tensor = self.head(self.norm_out(z.mean(dim=1)))  # (B, classes)
        return out


class Standardise:
    """``(x - mean) / std`` with the training rows' statistics of a store array (computed in chunks)."""

    def __init__(self, store: FeatureStore, name: str, rows: NDArray[np.bool_] | None = None) -> None:
        total = np.zeros(store.row_shape(name), np.float64)
        squares, count = np.zeros_like(total), 0
        for start, chunk in store.chunks(name, store.chunk_rows(name, CHUNK_BYTES)):
            if rows is not None:
                chunk = chunk[rows[start:start + len(chunk)]]
            total += chunk.sum(0, dtype=np.float64)  # accumulated in float64, no float64 copy of the chunk
            squares += np.square(chunk).sum(0, dtype=np.float64)
            count += len(chunk)
        mean = total / max(count, 1)
        std = np.sqrt(np.maximum(squares / max(count, 1) - mean * mean, 0.0))
        self.mean = torch.from_numpy(mean).float()
        self.std = torch.from_numpy(np.where(std > 1e-6 * max(float(std.max()), 1e-12), std, 1.0)).float()

    def __call__(self, x: Tensor) -> Tensor:
        return (x - self.mean.to(x.device)) / self.std.to(x.device)


def visit_order(rows: NDArray[np.bool_], chunk: int, seed: int, epoch: int) -> list[tuple[int, NDArray[np.int64]]]:
    """An epoch's visit of the ``rows`` of a stored split: per chunk (in a random order of chunks), its first
    row and its selected rows (global numbers) in a random order. Pure in ``(rows, chunk, seed, epoch)``."""
    rng = np.random.default_rng([seed, epoch])
    plan = []
    for c in rng.permutation(-(-len(rows) // chunk)):
        start = int(c) * chunk
        kept = np.flatnonzero(rows[start:start + chunk]) + start
        plan.append((start, kept[rng.permutation(len(kept))]))
    return plan


class StoreBatches:
    """Shuffled minibatches of the ``rows`` of a store array, read a chunk at a time.

    Each epoch visits the chunks in a fresh random order and shuffles the rows within a chunk
    (:func:`visit_order`); rows left over from one chunk start the next batch, so every batch but an
    epoch's last is full, and the batches are consecutive slices of the visit order. The store's training
    rows are already in a shuffled order (:func:`~jepa_torch.evaluation.features.stored_order`).
    """

    def __init__(self, store: FeatureStore, name: str, rows: NDArray[np.bool_], batch_size: int, seed: int) -> None:
        self.store, self.name, self.rows, self.batch_size, self.seed = store, name, rows, batch_size, seed
        self.labels = store.read("labels", 0, store.rows)
        self.chunk = store.chunk_rows(name, CHUNK_BYTES)

    def __len__(self) -> int:
        return -(-int(self.rows.sum()) // self.batch_size)

    def epoch(self, epoch: int) -> Iterator[tuple[NDArray[Any], NDArray[np.int64]]]:
        carry_x: list[NDArray[Any]] = []
        carry_y: list[NDArray[np.int64]] = []
        held = 0
        for start, kept in visit_order(self.rows, self.chunk, self.seed, epoch):
            if not len(kept):
                continue
            chunk = self.store.read(self.name, start, start + self.chunk)
            carry_x.append(chunk[kept - start])
            carry_y.append(self.labels[kept])
            held += len(kept)
            if held >= self.batch_size:
                x, y = np.concatenate(carry_x), np.concatenate(carry_y)
                full = len(x) // self.batch_size * self.batch_size
                for i in range(0, full, self.batch_size):
                    yield x[i:i + self.batch_size], y[i:i + self.batch_size]
                carry_x, carry_y, held = [x[full:]], [y[full:]], len(x) - full
        if held:
            yield np.concatenate(carry_x), np.concatenate(carry_y)


class ArrayBatches:
    """Shuffled minibatches of in-memory rows (a low-shot subset)."""

    def __init__(self, x: NDArray[Any], y: NDArray[np.int64], batch_size: int, seed: int) -> None:
        self.x, self.y, self.batch_size, self.seed = x, y, batch_size, seed

    def __len__(self) -> int:
        return -(-len(self.y) // self.batch_size)

    def epoch(self, epoch: int) -> Iterator[tuple[NDArray[Any], NDArray[np.int64]]]:
        perm = np.random.default_rng([self.seed, epoch]).permutation(len(self.y))
        for i in range(0, len(perm), self.batch_size):
            yield self.x[perm[i:i + self.batch_size]], self.y[perm[i:i + self.batch_size]]


class Batches(Protocol):
    """Minibatches ``(x, labels)`` of an epoch; ``len`` is the number per epoch."""

    def __len__(self) -> int: ...

    def epoch(self, epoch: int) -> Iterator[tuple[NDArray[Any] | Tensor, NDArray[np.int64]]]: ...


@dataclass(frozen=True)
class HeadGrid:
    """How a grid of heads is trained: epochs over the training rows, the batch, the grid, and the warm-up's
    share of the steps.

    The length is ``epochs`` passes over the data. A head also needs a number of updates to converge
    whatever the data size (``min_steps``): a small split would give it too few, so its batch shrinks
    (:meth:`batch_for`, never below ``min_batch`` rows) until ``epochs`` passes make ``min_steps``, and
    where even ``min_batch`` rows a batch do not, it passes over the data until they do. The work of that
    floor is at most ``min_steps x min_batch`` rows: it scales with the data, not a fixed cost.
    """

    epochs: int
    batch_size: int
    lrs: tuple[float, ...]
    weight_decays: tuple[float, ...]
    warmup_fraction: float = 0.1
    min_steps: int = 0
    min_batch: int = 16

    def points(self) -> list[tuple[float, float]]:
        return [(lr, wd) for lr in self.lrs for wd in self.weight_decays]

    def batch_for(self, rows: int) -> int:
        """The batch for ``rows`` training rows: ``batch_size``, or less so ``epochs`` passes make ``min_steps``."""
        if not self.min_steps:
            return self.batch_size
        per_epoch = -(-self.min_steps // self.epochs)  # batches an epoch needs
        return max(1, min(self.batch_size, max(self.min_batch, -(-rows // per_epoch))))

    def steps(self, rows: int) -> int:
        """Optimiser steps of a training on ``rows`` rows."""
        return max(self.epochs * -(-rows // self.batch_for(rows)), self.min_steps)


def _lr_factor(step: int, total: int, warmup: int) -> float:
    if step < warmup:
        return (step + 1) / warmup
    return 0.5 * (1.0 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))


def train_heads(make_head: Callable[[], nn.Module], batches: Batches, grid: HeadGrid, seed: int,
                device: torch.device, prepare: Callable[[Tensor], Tensor] = lambda x: x, *,
                progress: str | None = None) -> list[nn.Module]:
    """Train one head per grid point on the same batches, ``grid.epochs`` passes and at least ``grid.min_steps``
    steps; returns them in ``grid.points()`` order.

    Args:
        make_head: builds one untrained head (called under ``torch.manual_seed(seed)``, in grid order).
        batches: the training rows, in batches of ``grid.batch_for(rows)``.
        grid: epochs (at least ``min_steps`` steps), learning rates and weight decays.
        seed: initialisation and batch order.
        device: where the heads train.
        prepare: applied to every float32 batch on the device (e.g. :class:`Standardise`).
        progress: show a progress bar (steps, rate, time left) on stderr with this label; None: none.
    """
    from tqdm import tqdm

    torch.manual_seed(seed)
    points = grid.points()
    heads = [make_head().to(device) for _ in points]
    groups = [{"params": list(h.parameters()), "lr": lr, "weight_decay": wd, "base_lr": lr}
              for h, (lr, wd) in zip(heads, points)]
    optimizer = torch.optim.AdamW(groups)
    total = max(grid.epochs * len(batches), grid.min_steps)
    warmup = max(1, round(grid.warmup_fraction * total))
    step, epoch = 0, 0
    with tqdm(total=total, desc=progress, disable=progress is None, unit="step", leave=False, dynamic_ncols=True,
              mininterval=0.5) as bar:
        while step < total:
            for x_np, y_np in batches.epoch(epoch):
                if step == total:
                    break
                x = prepare(_tensor(x_np).to(device).float())
                y = torch.from_numpy(y_np).to(device)
                for group in optimizer.param_groups:
                    group["lr"] = group["base_lr"] * _lr_factor(step, total, warmup)
                loss = sum(F.cross_entropy(h(x), y) for h in heads)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()  # type: ignore[union-attr]
                optimizer.step()
                step += 1
                bar.update(1)
            epoch += 1
    return [h.eval() for h in heads]


def _tensor(x: NDArray[Any] | Tensor) -> Tensor:
    return x if isinstance(x, Tensor) else torch.from_numpy(x)


@torch.no_grad()
def predict_on(heads: Sequence[nn.Module], pieces: Iterable[NDArray[Any] | Tensor], device: torch.device,
               prepare: Callable[[Tensor], Tensor] = lambda x: x, batch_size: int = 256) -> NDArray[np.int64]:
    """Each head's predicted class for the rows of ``pieces`` (arrays or tensors, in order): ``(heads, rows)``."""
    out: list[NDArray[np.int64]] = []
    for piece in pieces:
        for i in range(0, len(piece), batch_size):  # a chunk's worth of attention at once would be large
            x = prepare(_tensor(piece[i:i + batch_size]).to(device).float())
            out.append(torch.stack([h(x).argmax(dim=1) for h in heads]).cpu().numpy())
    return np.concatenate(out, axis=1) if out else np.zeros((len(heads), 0), np.int64)


def predict(heads: Sequence[nn.Module], store: FeatureStore, name: str, device: torch.device,
            prepare: Callable[[Tensor], Tensor] = lambda x: x, rows: NDArray[np.bool_] | None = None,
            batch_size: int = 256) -> NDArray[np.int64]:
    """Each head's predicted class for the (selected) rows of a store array: ``(heads, rows)``."""
    pieces = (chunk if rows is None else chunk[rows[start:start + len(chunk)]]
              for start, chunk in store.chunks(name, store.chunk_rows(name, CHUNK_BYTES)))
    return predict_on(heads, pieces, device, prepare, batch_size)


def _unit(x: NDArray[Any]) -> Tensor:
    t = torch.from_numpy(np.asarray(x, dtype=np.float64))
    out: Tensor = t / t.norm(dim=1, keepdim=True).clamp_min(1e-12)
    return out


def knn_predict(train_x: FeatureStore | NDArray[Any], train_y: NDArray[np.int64], query: FeatureStore | NDArray[Any],
                classes: int, k: int = 20, name: str = "pooled", chunk: int = 2048) -> NDArray[np.int64]:
    """Cosine, distance-weighted kNN predictions of the query rows, computed chunk against chunk in float64.

    Args:
        train_x: the training rows (a store's ``name`` array, or an array ``(n, D)``).
        train_y: their labels ``(n,)``.
        query: the rows to classify (a store's ``name`` array, or an array ``(m, D)``).
        classes: number of classes.
        k: neighbours (at most ``n``).
        name: the store array.
        chunk: training rows compared at a time (query rows: an eighth of it).

    Returns:
        ``(m,)`` predicted classes.
    """
    def chunks(src: FeatureStore | NDArray[Any], rows: int) -> Iterator[tuple[int, NDArray[Any]]]:
        if isinstance(src, FeatureStore):
            yield from src.chunks(name, rows)
        else:
            for i in range(0, len(src), rows):
                yield i, src[i:i + rows]

    k = min(k, len(train_y))
    labels = torch.from_numpy(train_y)
    out: list[Tensor] = []
    for _, q_np in chunks(query, max(1, chunk // 4)):
        q = _unit(q_np)  # (m, D)
        best_sim = torch.full((len(q), k), -math.inf, dtype=torch.float64)
        best_lab = torch.zeros((len(q), k), dtype=torch.int64)
        for start, t_np in chunks(train_x, chunk):
            sim = q @ _unit(t_np).T  # (m, c)
            top_sim, top_idx = sim.topk(min(k, sim.shape[1]), dim=1)  # this chunk's best, then merged
            both_sim = torch.cat([best_sim, top_sim], dim=1)  # (m, k + k')
            both_lab = torch.cat([best_lab, labels[start + top_idx]], dim=1)
            best_sim, idx = both_sim.topk(k, dim=1)
            best_lab = both_lab.gather(1, idx)
        dist = (1.0 - best_sim).clamp_min(0.0)
        exact = dist == 0
        weight = torch.where(exact.any(dim=1, keepdim=True), exact.double(), 1.0 / dist.clamp_min(1e-300))
        votes = torch.zeros((len(q), classes), dtype=torch.float64).scatter_add_(1, best_lab, weight)
        out.append(votes.argmax(dim=1))
    return torch.cat(out).numpy() if out else np.zeros(0, np.int64)
