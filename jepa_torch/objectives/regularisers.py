"""VICReg's variance and covariance terms and SIGReg, in torch (the spec's ``jepa_core.regularisers``).

Each function takes embeddings ``(..., D)``, flattens the leading axes to rows ``(n, D)``,
and returns a differentiable 0-d tensor. They compute in float32, or in float64 when given
float64: a bf16 (or fp16) input is cast up and autocast is switched off inside, so no
reduction or matmul of a regulariser runs in half precision. Directions and knots come from
the spec (:func:`sigreg_directions`, :func:`default_knots`), so both backends project onto
the same directions.

:func:`sigreg` is a statistic of the whole batch; under ``torch.distributed`` it reduces
across ranks and returns the value of the global batch (see its docstring for the gradient
each rank receives). The VICReg terms are per-rank, as the trainer has always used them.
"""

from __future__ import annotations

import contextlib
from typing import Any, cast

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor

from jepa_core import regularisers as spec
from jepa_core.regularisers import VICREG_EPS

__all__ = [
    "VICREG_EPS",
    "default_knots",
    "sigreg",
    "sigreg_directions",
    "variance_covariance",
    "vicreg_covariance",
    "vicreg_variance",
]


def _compute_dtype(z: Tensor) -> torch.dtype:
    """float64 for float64 input, float32 for everything else (bf16, fp16, fp32)."""
    return torch.float64 if z.dtype == torch.float64 else torch.float32


def _full_precision(z: Tensor) -> contextlib.AbstractContextManager[Any]:
    """Autocast off on ``z``'s device: inside, matmuls run in the dtype of their inputs."""
    return torch.autocast(device_type=z.device.type, enabled=False)


def _centred_rows(z: Tensor) -> Tensor:
    """``(..., D) -> (n, D)`` rows in the compute dtype, minus their column means."""
    if z.ndim < 2 or z.numel() == 0:
        raise ValueError(f"embeddings of shape {tuple(z.shape)}: expected (..., N, D) with N >= 1 and D >= 1")
    x = z.reshape(-1, z.size(-1)).to(_compute_dtype(z))  # (n, D)
    return x - x.mean(dim=0)  # (n, D)


def _variance_term(x: Tensor, gamma: float, eps: float) -> Tensor:
    """The mean hinge ``relu(gamma - sqrt(var + eps))`` over the columns of centred ``x: (n, D)``.

    The variance is the unbiased one, or the population one (0) for a single row, as the spec.
    """
    if not gamma >= 0.0:
        raise ValueError(f"gamma={gamma}: the target standard deviation must be >= 0")
    if not eps >= 0.0:
        raise ValueError(f"eps={eps}: the variance epsilon must be >= 0")
    std = torch.sqrt(x.var(dim=0, correction=1 if x.size(0) >= 2 else 0) + eps)  # (D,)
    return F.relu(gamma - std).mean()


def _covariance_term(x: Tensor) -> Tensor:
    """The sum of squared off-diagonal covariances of centred ``x: (n, D)``, divided by ``D``."""
    n, d = x.shape
    cov = (x.T @ x) / max(n - 1, 1)  # (D, D)
    off = cov - torch.diag(torch.diagonal(cov))  # (D, D)
    return off.pow(2).sum() / d


def vicreg_variance(z: Tensor, gamma: float = 1.0, eps: float = VICREG_EPS) -> Tensor:
    """VICReg's variance hinge of embeddings (``jepa_core.regularisers.vicreg_variance``).

    Args:
        z: ``(..., D)`` embeddings with at least one leading axis, flattened to ``(n, D)``.
        gamma: the target standard deviation of every feature, ``>= 0``.
        eps: added to each column's variance before the square root, ``>= 0``. The variance
            is the unbiased one (divisor ``n - 1``); for ``n = 1`` it is 0, as in the spec.

    Returns:
        0-d: the mean over features of ``max(0, gamma - sqrt(var + eps))``; 0 when every
        feature's standard deviation reaches ``gamma``, ``gamma - sqrt(eps)`` when all collapse.
    """
    with _full_precision(z):
        return _variance_term(_centred_rows(z), gamma, eps)


def vicreg_covariance(z: Tensor) -> Tensor:
    """VICReg's covariance penalty of embeddings (``jepa_core.regularisers.vicreg_covariance``).

    Args:
        z: ``(..., D)`` embeddings with at least one leading axis, flattened to ``(n, D)``.

    Returns:
        0-d: the sum of squared off-diagonal entries of the covariance ``(D, D)`` (divisor
        ``max(n - 1, 1)``), divided by ``D``; 0 for uncorrelated features.
    """
    with _full_precision(z):
        return _covariance_term(_centred_rows(z))


def variance_covariance(z: Tensor, eps: float = VICREG_EPS) -> tuple[Tensor, Tensor]:
    """Both VICReg terms (``gamma = 1``) of ``z: (..., D)`` from one centring, as the step uses them.

    Returns:
        ``(vicreg_variance(z, 1.0, eps), vicreg_covariance(z))``, equal bit for bit to the two calls.
    """
    with _full_precision(z):
        x = _centred_rows(z)  # (n, D)
        return _variance_term(x, 1.0, eps), _covariance_term(x)


class _SumOverRanks(torch.autograd.Function):
    """``all_reduce(SUM)`` with a backward.

    Every rank's output is the sum of all ranks' inputs, so the gradient of one rank's input
    is the sum over ranks of the gradients of their outputs: the backward is the same all-reduce.
    """

    @staticmethod
    def forward(ctx: Any, tensor: Tensor, group: dist.ProcessGroup | None) -> Tensor:
        ctx.group = group
        out = tensor.clone(memory_format=torch.contiguous_format)
        dist.all_reduce(out, op=dist.ReduceOp.SUM, group=group)
        return out

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None]:
        out = grad.clone(memory_format=torch.contiguous_format)
        dist.all_reduce(out, op=dist.ReduceOp.SUM, group=ctx.group)
        return out, None


def _reduces_across_ranks(group: dist.ProcessGroup | None) -> bool:
    """Whether a batch statistic must be summed over ranks: a group is named, or the world has > 1 rank."""
    if not (dist.is_available() and dist.is_initialized()):
        if group is not None:
            raise ValueError("sigreg: a process group was given but torch.distributed is not initialised")
        return False
    return group is not None or dist.get_world_size() > 1


def sigreg(z: Tensor, directions: Tensor, knots: Tensor | None = None, *,
           group: dist.ProcessGroup | None = None) -> Tensor:
    """SIGReg: the sliced Epps-Pulley statistic of embeddings (``jepa_core.regularisers.sigreg``).

    The rows are projected onto each direction; for each projection the statistic is
    ``N * trapezoid_t(w(t) * |phi_N(t) - exp(-t^2 / 2)|^2)`` over the knots ``t``, with
    ``phi_N(t) = mean_n exp(i t x_n)`` the empirical characteristic function, ``exp(-t^2/2)``
    that of N(0, 1), and the window ``w(t) = exp(-t^2 / 2)``. The result is its mean over
    directions. Memory: the angles ``(N_local, M, T)`` are kept for the backward.

    Precision: computed in float64 for float64 ``z``, else in float32 with autocast off, so
    under bf16 autocast the projection matmul and the sums run in float32.

    Distributed: when ``torch.distributed`` is initialised with more than one rank, or
    ``group`` is given, the statistic is that of the global batch (the rows of all ranks):
    each rank sums ``cos(t x)`` and ``sin(t x)`` over its rows, and those sums and the row
    count are summed over ranks (one all-reduce with a backward) before the mean. Every rank
    then returns the same value ``L``. Every rank must call this, and backpropagate through
    it, the same number of times with the same ``M`` and ``T``: forward and backward are
    collectives.

    Gradients under DDP: the backward of the all-reduce sums the upstream gradients of all
    ranks, and these are equal (each rank's loss is the same ``L`` of the same sums), so a
    rank's own rows receive ``world_size * dL/dz`` for those rows. DistributedDataParallel
    averages parameter gradients (the sum over ranks divided by ``world_size``), which gives
    ``sum over ranks of (dL/dtheta through that rank's rows) = dL/dtheta``: exactly the
    gradient one process computes on the global batch. Without DDP's averaging, divide the
    summed gradients by ``world_size``.

    Args:
        z: ``(..., D)`` embeddings, flattened to ``(N, D)`` rows (this rank's rows).
        directions: ``(D, M)`` projection directions (unit columns, see :func:`sigreg_directions`).
        knots: ``(T,)`` strictly increasing integration points, ``T >= 2`` (the values are not
            checked here: that would wait on the device every step); :func:`default_knots`
            when None.
        group: the process group to reduce over; the default group when None.

    Returns:
        0-d tensor in the compute dtype: the mean statistic over the ``M`` directions; about
        ``jepa_core.regularisers.sigreg_floor()`` for N(0, I) rows and unit directions, whatever
        ``N``, and growing like ``N`` for any other distribution.
    """
    across_ranks = _reduces_across_ranks(group)
    dtype = _compute_dtype(z)
    if z.ndim < 2 or directions.ndim != 2 or directions.size(0) != z.size(-1) or directions.size(1) < 1:
        raise ValueError(f"sigreg: directions of shape {tuple(directions.shape)} for embeddings of shape "
                         f"{tuple(z.shape)}: expected (..., N, D) and (D, M) with M >= 1")
    t = default_knots(z.device, dtype) if knots is None else knots.to(z.device, dtype)  # (T,)
    if t.ndim != 1 or t.size(0) < 2:
        raise ValueError(f"sigreg: knots of shape {tuple(t.shape)}: expected (T,) with T >= 2")
    with _full_precision(z):
        x = z.reshape(-1, z.size(-1)).to(dtype)  # (N, D)
        if not across_ranks and x.size(0) == 0:
            raise ValueError(f"sigreg: no rows in z of shape {tuple(z.shape)}")
        proj = x @ directions.to(z.device, dtype)  # (N, M)
        angles = proj.unsqueeze(-1) * t  # (N, M, T)
        sums = torch.stack([angles.cos().sum(dim=0), angles.sin().sum(dim=0)])  # (2, M, T)
        count = proj.new_full((1,), float(x.size(0)))  # (1,)
        if across_ranks:
            packed = torch.cat([sums.flatten(), count])  # (2*M*T + 1,)
            packed = cast(Tensor, _SumOverRanks.apply(packed, group))
            sums, count = packed[:-1].view_as(sums), packed[-1:]  # (2, M, T), (1,)
        cos_mean, sin_mean = sums / count  # (M, T) each
        gauss = torch.exp(-0.5 * t * t)  # (T,): N(0, 1)'s characteristic function, also the window
        err = (cos_mean - gauss).square() + sin_mean.square()  # (M, T)
        stat = count * torch.trapezoid(gauss * err, t, dim=-1)  # (M,)
        return stat.mean()


def sigreg_directions(dim: int, num: int, seed: int, device: torch.device | str | None = None,
                      dtype: torch.dtype = torch.float32) -> Tensor:
    """The spec's ``num`` unit directions in ``R^dim`` for ``seed``, as a ``(dim, num)`` tensor.

    Drawn by ``jepa_core.regularisers.sigreg_directions`` (numpy), so every backend and every
    rank projects onto the same directions for the same seed.
    """
    return torch.tensor(spec.sigreg_directions(dim, num, seed), dtype=dtype, device=device)  # (dim, num)


def default_knots(device: torch.device | str | None = None, dtype: torch.dtype = torch.float32) -> Tensor:
    """The spec's integration points ``jepa_core.regularisers.DEFAULT_KNOTS``, copied into a ``(T,)`` tensor."""
    return torch.tensor(spec.DEFAULT_KNOTS, dtype=dtype, device=device)  # (T,)
