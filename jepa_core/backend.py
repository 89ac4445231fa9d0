"""The Backend protocol: what an implementation exposes to the law suite.

A backend is one object (any class, module or namespace) with the members
below. The law suite in ``properties/`` draws inputs as numpy arrays, converts
them with :meth:`Backend.asarray`, calls the backend, and reads the results back
with :meth:`Backend.to_numpy`. Name a backend with
``pytest properties --jepa-backend=package.module:attr``.

Every member is a function of its arguments alone: the suite calls them many
times with shrinking inputs and must see the same answer for the same input.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from numpy.typing import NDArray

from .loss import Reduction
from .representation import LossKind

__all__ = ["Backend", "ObjectiveParts", "Schedule"]

Schedule = Callable[[int], float]
"""A schedule: the value at a step."""


@dataclass(frozen=True)
class ObjectiveParts:
    """What a backend's objective is made of, in the backend's arrays.

    The law suite checks the objective against the spec's loss of these parts, and
    the parts against the model's laws (the targets are the layer-normed target
    tokens; the context encoder sees the context alone).

    Attributes:
        context: ``(B, Kc, D)`` the context encoder's output on the context tokens.
        target_tokens: ``(B, N, D)`` the target encoder's output on all tokens,
            before normalisation.
        targets: ``(B, N, D)`` ``target_tokens`` layer-normed over features: what
            the loss compares the predictions with.
        predictions: one ``(B, K_i, D)`` prediction per target block, in the
            order of the blocks.
    """

    context: Any
    target_tokens: Any
    targets: Any
    predictions: Sequence[Any]


class Backend(Protocol):
    """The functions of a JEPA implementation that the law suite checks.

    Arrays are the backend's own type (``Any`` here); indices are integer arrays
    of token positions.
    """

    name: str
    """A short human-readable name, printed in test reports."""

    @property
    def mask_sampler(self) -> Any:
        """The backend's multi-block mask sampler (the API of :mod:`jepa_core.masks`),
        or ``None`` when the backend has none; the mask laws then skip, and the report says so."""
        ...

    def asarray(self, x: NDArray[Any], /) -> Any:
        """Convert a numpy array (float64 values or int64 indices) to the backend's array.

        Float64 inputs *must* keep float64 precision: the suite compares backends
        at 1e-6.
        """
        ...

    def to_numpy(self, x: Any, /) -> NDArray[Any]:
        """Convert a backend array back to numpy (detached, on the host)."""
        ...

    def rep_loss(self, target: Any, prediction: Any, kind: LossKind) -> Any:
        """Per-token representation loss, reduced over the last axis: ``(..., D) -> (...)``."""
        ...

    def layer_norm(self, x: Any) -> Any:
        """Normalise over the last axis without affine parameters (eps 1e-5)."""
        ...

    def jepa_loss(
        self,
        predictions: Sequence[Any],
        targets: Any,
        target_blocks: Sequence[Any],
        kind: LossKind,
        reduction: Reduction,
    ) -> float:
        """The JEPA loss over target blocks (see :func:`jepa_core.loss.jepa_loss_blocks`).

        Args:
            predictions: one ``(B, K_i, D)`` array per block.
            targets: ``(B, N, D)`` target tokens; only selected positions may be read.
            target_blocks: one ``(B, K_i)`` index array per block.
            kind: ``"smooth_l1"`` or ``"l2"``.
            reduction: ``"sum"`` (the objective) or ``"mean"`` (its normalisation).
        """
        ...

    def objective(
        self,
        tokens: Any,
        context_indices: Any,
        target_blocks: Sequence[Any],
        seed: int,
        kind: LossKind,
        reduction: Reduction,
        context_lengths: Any | None = None,
    ) -> float:
        """The whole JEPA objective of a small model made from ``seed``.

        The backend builds (deterministically from ``seed`` and the token width)
        a context encoder, a target encoder and a predictor, encodes
        ``tokens[:, context_indices]`` as context and all ``tokens`` as targets,
        predicts each target block from the context alone, and returns the loss.

        Args:
            tokens: ``(B, N, input_dim)`` inputs.
            context_indices: ``(B, Kc)`` visible positions, ``Kc >= 1``.
            target_blocks: one ``(B, K_i)`` index array per target block.
            seed: fixes the model's weights.
            kind: the representation loss.
            reduction: ``"sum"`` or ``"mean"``.
            context_lengths: None, or ``(B,)`` integers in ``[1, Kc]``: contexts of unequal
                length padded into one batch (``MaskConfig.context_trim="none"``). Row ``b``'s
                context is its first ``context_lengths[b]`` entries; the entries after it are
                padding and *must not* change any prediction, target or loss: every sample's
                parts and loss *must* equal those of the sample alone with its unpadded context.

        It *must* equal the spec's loss (:func:`jepa_core.loss.jepa_loss_blocks`) of
        :meth:`objective_parts`' predictions and targets, computed in float64.
        """
        ...

    def objective_parts(
        self,
        tokens: Any,
        context_indices: Any,
        target_blocks: Sequence[Any],
        seed: int,
        context_lengths: Any | None = None,
    ) -> ObjectiveParts:
        """The context tokens, target tokens and predictions behind :meth:`objective`.

        The same model, from the same ``seed``, on the same inputs (``context_lengths`` as
        there): every part in float64. With ``context_lengths`` the context rows past each
        length are padding, and their values are unspecified.
        """
        ...

    def ema_update(
        self, context: Mapping[str, Any], target: Mapping[str, Any], momentum: float
    ) -> Mapping[str, Any]:
        """New target parameters ``m * target + (1 - m) * context``, inputs untouched."""
        ...

    def momentum_schedule(self, start: float, end: float, total_steps: int) -> Schedule:
        """The EMA momentum schedule (linear from ``start`` to ``end``)."""
        ...

    def lr_schedule(
        self, start_lr: float, ref_lr: float, final_lr: float, warmup_steps: int, total_steps: int
    ) -> Schedule:
        """The learning-rate schedule (linear warm-up, then cosine)."""
        ...

    def wd_schedule(self, start: float, end: float, total_steps: int) -> Schedule:
        """The weight-decay schedule (cosine from ``start`` to ``end``)."""
        ...

    def vicreg_variance(self, embeddings: Any, gamma: float, eps: float) -> float:
        """VICReg's variance hinge (see :func:`jepa_core.regularisers.vicreg_variance`).

        Args:
            embeddings: ``(..., D)`` embeddings, flattened to ``(n, D)``; the suite
                draws ``n >= 2``.
            gamma: the target standard deviation.
            eps: added to each unbiased variance under the square root.
        """
        ...

    def vicreg_covariance(self, embeddings: Any) -> float:
        """VICReg's covariance penalty (see :func:`jepa_core.regularisers.vicreg_covariance`).

        Args:
            embeddings: ``(..., D)`` embeddings, flattened to ``(n, D)``.
        """
        ...

    def sigreg(self, embeddings: Any, directions: Any, knots: Any) -> float:
        """SIGReg, the mean Epps-Pulley statistic of the projections (see :func:`jepa_core.regularisers.sigreg`).

        Args:
            embeddings: ``(N, D)`` embeddings.
            directions: ``(D, M)`` directions; they *must* be used as given (the
                caller draws unit vectors), never renormalised.
            knots: ``(T,)`` increasing integration points.
        """
        ...

    def sigreg_directions(self, dim: int, num: int, seed: int) -> Any:
        """The directions the backend's training uses for SIGReg: ``(dim, num)``.

        Each column *must* be a unit vector drawn uniformly on the sphere, and the
        result *must* be a function of ``(dim, num, seed)`` alone. It *may* differ
        from :func:`jepa_core.regularisers.sigreg_directions` value for value (a
        backend may use its own generator).
        """
        ...

