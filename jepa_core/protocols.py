"""The four roles of a JEPA, as typed Protocols.

A joint-embedding predictive architecture is made of four pieces, and this module
names each one by what it *does* (its ``__call__``), never by a base class:

- a :class:`ContextEncoder` turns the visible part of an input into a context
  representation;
- a :class:`TargetEncoder` turns the whole input into target representations,
  one per index (in I-JEPA: an exponential moving average of the context
  encoder, whose output is layer-normed and never back-propagated through);
- a :class:`Predictor` maps the context representation and one target index to
  a predicted representation of that target;
- a :class:`RepresentationLoss` compares a target representation with its
  prediction and returns a non-negative number.

The protocols are generic in the types they exchange, exactly as the formal
definition is: a backend chooses its own array type (a numpy array, a torch
tensor, a JAX array ...) and its own notion of *index* (an integer patch
position, or a whole target block of patch positions, as I-JEPA uses).

Conformance is proven statically: a backend assigns its implementations to
names annotated with these protocols in a file that ``mypy --strict`` checks.
``isinstance`` against a ``runtime_checkable`` protocol only checks attribute
names, so it is not offered here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, TypeAlias, TypeVar

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "ContextEncoder",
    "FloatArray",
    "IndexArray",
    "Predictor",
    "RepresentationLoss",
    "Representation",
    "TargetEncoder",
    "TargetIndices",
]

# Concept names used in signatures across the spec (numpy form).
FloatArray: TypeAlias = NDArray[np.floating]
"""A floating-point array of any shape."""

IndexArray: TypeAlias = NDArray[np.int64]
"""An integer array of token (patch) positions."""

Representation: TypeAlias = NDArray[np.floating]
"""A representation: ``(D,)`` for one token, ``(K, D)`` for a block of K tokens."""

Idx = TypeVar("Idx")
TargetIndices: TypeAlias = Sequence[Idx]
"""The list of target indices the loss ranges over, in order (``targetIdxs``)."""

Input_contra = TypeVar("Input_contra", contravariant=True)
Idx_contra = TypeVar("Idx_contra", contravariant=True)
Context_co = TypeVar("Context_co", covariant=True)
Context_contra = TypeVar("Context_contra", contravariant=True)
Target_co = TypeVar("Target_co", covariant=True)
Target_contra = TypeVar("Target_contra", contravariant=True)
Prediction_co = TypeVar("Prediction_co", covariant=True)
Prediction_contra = TypeVar("Prediction_contra", contravariant=True)


class ContextEncoder(Protocol[Input_contra, Context_co]):
    """Encodes the visible (context) part of an input."""

    def __call__(self, x: Input_contra, /) -> Context_co:
        """Return the context representation of ``x``.

        Args:
            x: the context view of an input; in I-JEPA, an image together with
                the patch indices of its context block.

        Returns:
            The context representation, e.g. ``(B, Kc, D)`` tokens.

        The encoder *must* be a function of ``x`` alone (no hidden state that
        changes between calls of one loss evaluation).
        """
        ...


class TargetEncoder(Protocol[Input_contra, Target_co]):
    """Encodes the whole input into the representations to be predicted."""

    def __call__(self, x: Input_contra, /) -> Target_co:
        """Return the target representations of ``x``.

        Args:
            x: the whole input.

        Returns:
            Target representations, e.g. ``(B, N, D)`` tokens, from which the loss
            reads only the selected target indices.

        Gradients *must not* flow from the loss into the target encoder: the
        target branch is a constant of the objective (stop-gradient). The formal
        counterpart is ``jepaLoss_target_ext``: the loss depends on the target
        branch only through its values at the selected indices.
        """
        ...


class Predictor(Protocol[Context_contra, Idx_contra, Prediction_co]):
    """Predicts the representation of one target from the context."""

    def __call__(self, context: Context_contra, index: Idx_contra, /) -> Prediction_co:
        """Return the predicted representation of the target at ``index``.

        Args:
            context: the context encoder's output.
            index: one target index (a patch position, or a target block).

        Returns:
            The prediction, of the same shape as the target representation at
            ``index``.

        The prediction for one index *must not* depend on which other indices
        are in the target list: this is what makes the loss a sum over indices
        (``jepaLoss_append``). I-JEPA's predictor satisfies it with *blocks* as
        indices, since it is run once per target block.
        """
        ...


class RepresentationLoss(Protocol[Target_contra, Prediction_contra]):
    """A non-negative discrepancy between a target and its prediction."""

    def __call__(self, target: Target_contra, prediction: Prediction_contra, /) -> float:
        """Return the loss of ``prediction`` against ``target``.

        The result *must* be non-negative and *should* be zero exactly when the
        prediction equals the target (smooth-L1 and squared L2 both are).
        """
        ...
