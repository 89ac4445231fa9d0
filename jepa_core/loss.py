"""The JEPA objective: a sum of representation losses over target indices.

The formal objective (TorchLean, ``NN.MLTheory.SelfSupervised.JEPA.jepaLoss``) is

    jepaLoss targetIdxs context target predict repLoss
        = sum over i in targetIdxs of repLoss (target i) (predict context i)

and :func:`jepa_loss` is that definition, word for word, over any types. Its
laws (each checked by ``properties/test_loss_laws.py``):

- ``jepaLoss_nil``: the empty list of indices gives 0;
- ``jepaLoss_append``: ``loss(xs ++ ys) = loss(xs) + loss(ys)``;
- ``jepaLoss_reverse``: reversing the list changes nothing (and so does any
  permutation, since addition is commutative);
- ``jepaLoss_target_ext``: two target branches that agree on the selected
  indices give the same loss. This is how stop-gradient is modelled: the loss
  sees the target branch only through its values at the targets.

Backends compute the same objective on arrays. In I-JEPA an *index* is a target
block of patch positions and its representation a ``(B, K, D)`` array (the batch
rides along); :func:`jepa_loss_blocks` is that form. Training code usually
reports the *mean* instead of the sum: :func:`mean_normalised` divides the sum by
the number of target tokens times D, which makes it equal to
``torch.nn.functional.smooth_l1_loss(pred, target)`` with its default mean
reduction. The mean is a normalisation, not a new objective, and it is *not*
append-additive: the mean of a longer list is a weighted average of the means
of its parts, not their sum.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal, TypeVar

import numpy as np

from .protocols import FloatArray, IndexArray, RepresentationLoss
from .representation import LossKind, elementwise_loss

__all__ = [
    "Reduction",
    "gather_tokens",
    "jepa_loss",
    "jepa_loss_blocks",
    "mean_normalised",
]

Idx = TypeVar("Idx")
Context = TypeVar("Context")
Target = TypeVar("Target")
Prediction = TypeVar("Prediction")

Reduction = Literal["sum", "mean"]


def jepa_loss(
    target_indices: Sequence[Idx],
    context: Context,
    target: Callable[[Idx], Target],
    predict: Callable[[Context, Idx], Prediction],
    rep_loss: RepresentationLoss[Target, Prediction],
) -> float:
    """The formal JEPA loss: ``sum(rep_loss(target(i), predict(context, i)))``.

    Args:
        target_indices: the indices to predict, summed in the order given
            (floating-point addition is not associative, so the order fixes the
            last bits); may be empty.
        context: the context encoder's output.
        target: the target branch, read at one index at a time.
        predict: the predictor, called once per index.
        rep_loss: the per-index representation loss.

    Returns:
        The sum of the per-index losses; ``0.0`` for an empty list.
    """
    total = 0.0
    for i in target_indices:
        total += float(rep_loss(target(i), predict(context, i)))
    return total


def gather_tokens(tokens: FloatArray, indices: IndexArray) -> FloatArray:
    """Select tokens by position, per sample: ``(B, N, D), (B, K) -> (B, K, D)``.

    This is the official ``apply_masks`` for one mask. Indices must lie in
    ``[0, N)``; an out-of-range index is an error, never a wrap-around.
    """
    tokens = np.asarray(tokens)
    indices = np.asarray(indices)
    if tokens.ndim != 3 or indices.ndim != 2 or indices.shape[0] != tokens.shape[0]:
        raise ValueError(
            f"gather_tokens expects tokens (B, N, D) and indices (B, K); got "
            f"{tokens.shape} and {indices.shape}"
        )
    n = tokens.shape[1]
    if indices.size and (indices.min() < 0 or indices.max() >= n):
        raise IndexError(f"token index out of range [0, {n}): {indices.min()}..{indices.max()}")
    out: FloatArray = np.take_along_axis(tokens, indices[:, :, None], axis=1)
    return out


def jepa_loss_blocks(
    predictions: Sequence[FloatArray],
    targets: FloatArray,
    target_blocks: Sequence[IndexArray],
    kind: LossKind = "smooth_l1",
    reduction: Reduction = "sum",
) -> float:
    """The JEPA loss over target blocks, as backends compute it.

    Each target block is one index of the formal objective; its target
    representation is ``gather_tokens(targets, block)``.

    Args:
        predictions: one ``(B, K_i, D)`` array per target block, in the same
            order as ``target_blocks``.
        targets: ``(B, N, D)`` target-encoder tokens (already layer-normed if the
            recipe normalises them). Only the selected positions are read.
        target_blocks: one ``(B, K_i)`` integer array per block.
        kind: the representation loss.
        reduction: ``"sum"`` (the formal objective) or ``"mean"`` (the sum
            divided by the number of target tokens times D; 0 when empty).

    Returns:
        The loss as a Python float.
    """
    if len(predictions) != len(target_blocks):
        raise ValueError(
            f"{len(predictions)} predictions for {len(target_blocks)} target blocks: "
            "give one prediction per block"
        )
    total = 0.0
    count = 0
    dim = int(np.asarray(targets).shape[-1])
    for pred, block in zip(predictions, target_blocks, strict=True):
        selected = gather_tokens(targets, block)
        total += float(elementwise_loss(selected, np.asarray(pred), kind).sum())
        count += int(np.asarray(block).size)
    if reduction == "sum":
        return total
    if reduction == "mean":
        return mean_normalised(total, count, dim)
    raise ValueError(f"unknown reduction {reduction!r}: use 'sum' or 'mean'")


def mean_normalised(total: float, num_tokens: int, dim: int) -> float:
    """The usual mean: ``total / (num_tokens * dim)``, and 0 when nothing is selected.

    Args:
        total: the summed loss over ``num_tokens`` target tokens.
        num_tokens: the number of target tokens (batch included).
        dim: the feature width D.
    """
    if num_tokens < 0 or dim <= 0:
        raise ValueError(f"num_tokens={num_tokens}, dim={dim}: need num_tokens >= 0, dim > 0")
    if num_tokens == 0:
        return 0.0
    return total / (num_tokens * dim)
