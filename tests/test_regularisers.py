"""The torch regularisers: equal to the numpy spec, float32 under bf16 autocast, correct gradients,
and under DDP the statistic and the parameter gradient of the global batch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
from numpy.typing import NDArray
from torch import Tensor, nn
from torch.multiprocessing.spawn import spawn
from torch.nn.parallel import DistributedDataParallel

from jepa_core import regularisers as spec
from jepa_torch.objectives.regularisers import (
    default_knots,
    sigreg,
    sigreg_directions,
    variance_covariance,
    vicreg_covariance,
    vicreg_variance,
)

WORLD = 2
LOCAL_ROWS = 16
IN_DIM, DIM, DIRECTIONS = 7, 5, 8


def _embeddings(kind: str) -> NDArray[np.float64]:
    """``(24, 6)`` float64 embeddings: standard normal, one repeated row, or rank one."""
    rng = np.random.default_rng(0)
    if kind == "random":
        return rng.standard_normal((24, 6))
    if kind == "collapsed":
        return np.repeat(rng.standard_normal((1, 6)), 24, axis=0)  # (24, 6)
    if kind == "rank1":
        return np.outer(rng.standard_normal(24), rng.standard_normal(6))  # (24, 6)
    raise ValueError(kind)


@pytest.mark.parametrize("kind", ["random", "collapsed", "rank1"])
def test_float64_regularisers_equal_the_spec(kind: str) -> None:
    z = _embeddings(kind)
    directions = spec.sigreg_directions(6, 10, seed=3)
    zt = torch.from_numpy(z)
    dt = sigreg_directions(6, 10, seed=3, dtype=torch.float64)
    assert torch.equal(dt, torch.from_numpy(directions)), "both backends must project on the same directions"

    diffs = {
        "sigreg": abs(float(sigreg(zt, dt, default_knots(dtype=torch.float64))) - spec.sigreg(z, directions)),
        "sigreg, 9 knots on [-3, 3]": abs(
            float(sigreg(zt, dt, torch.linspace(-3, 3, 9, dtype=torch.float64)))
            - spec.sigreg(z, directions, np.linspace(-3, 3, 9))),
        "variance": abs(float(vicreg_variance(zt)) - spec.vicreg_variance(z)),
        "variance, gamma 2, eps 0.01": abs(
            float(vicreg_variance(zt, 2.0, 1e-2)) - spec.vicreg_variance(z, 2.0, 1e-2)),
        "covariance": abs(float(vicreg_covariance(zt)) - spec.vicreg_covariance(z)),
        "variance of one row": abs(float(vicreg_variance(zt[:1])) - spec.vicreg_variance(z[:1])),
    }
    print(kind, {k: f"{v:.1e}" for k, v in diffs.items()})
    assert max(diffs.values()) < 1e-6, diffs


def test_leading_axes_are_flattened_and_the_step_pair_is_the_two_terms() -> None:
    z = torch.randn(3, 8, 6, dtype=torch.float64)
    rows = z.reshape(24, 6)  # (B*K, D)
    d = sigreg_directions(6, 4, seed=0, dtype=torch.float64)
    assert torch.equal(sigreg(z, d), sigreg(rows, d))
    variance, covariance = variance_covariance(z)
    assert torch.equal(variance, vicreg_variance(rows)) and torch.equal(covariance, vicreg_covariance(rows))


def test_bf16_autocast_computes_in_float32() -> None:
    """Under bf16 autocast the result is float32 and equals fp32 on the same bf16-rounded inputs."""
    z = torch.randn(64, 32).bfloat16()
    d, knots = sigreg_directions(32, 16, seed=1), default_knots()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        under = {"sigreg": sigreg(z, d, knots), "variance": vicreg_variance(z), "covariance": vicreg_covariance(z)}
    exact = {"sigreg": sigreg(z.float(), d, knots), "variance": vicreg_variance(z.float()),
             "covariance": vicreg_covariance(z.float())}
    for name, value in under.items():
        assert value.dtype == torch.float32, name
        # a bf16 projection matmul would be off by ~1e-3 relative
        torch.testing.assert_close(value, exact[name], rtol=1e-5, atol=1e-6, msg=name)


def test_gradients_match_finite_differences() -> None:
    g = torch.Generator().manual_seed(0)
    z = torch.randn(6, 3, generator=g, dtype=torch.float64, requires_grad=True)
    d = torch.randn(3, 4, generator=g, dtype=torch.float64, requires_grad=True)
    knots = default_knots(dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda a, b: sigreg(a, b, knots), (z, d))
    small = (0.3 * torch.randn(6, 3, generator=g, dtype=torch.float64)).requires_grad_(True)  # every hinge active
    assert torch.autograd.gradcheck(vicreg_variance, (small,))
    assert torch.autograd.gradcheck(vicreg_covariance, (z,))


def test_bad_shapes_and_a_group_without_distributed_are_refused() -> None:
    z, d = torch.randn(8, 4), sigreg_directions(4, 3, seed=0)
    with pytest.raises(ValueError, match="directions"):
        sigreg(z, d[:3])
    with pytest.raises(ValueError, match="knots"):
        sigreg(z, d, torch.zeros(1))
    with pytest.raises(ValueError, match="not initialised"):
        sigreg(z, d, group=object())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="embeddings"):
        vicreg_variance(torch.randn(4))


def _global_batch() -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Embeddings ``(WORLD * LOCAL_ROWS, DIM)``, inputs ``(WORLD * LOCAL_ROWS, IN_DIM)``, directions, knots."""
    g = torch.Generator().manual_seed(7)
    z = 1.5 * torch.randn(WORLD * LOCAL_ROWS, DIM, generator=g, dtype=torch.float64) + 0.2
    x = torch.randn(WORLD * LOCAL_ROWS, IN_DIM, generator=g, dtype=torch.float64)
    return z, x, sigreg_directions(DIM, DIRECTIONS, seed=5, dtype=torch.float64), default_knots(dtype=torch.float64)


def _linear() -> nn.Linear:
    torch.manual_seed(11)
    return nn.Linear(IN_DIM, DIM).double()


def _rank(rank: int, init_file: str, out_dir: str) -> None:
    """One gloo rank: SIGReg of this rank's rows, and one DDP backward through a linear map."""
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD)
    try:
        z_all, x_all, d, knots = _global_batch()
        rows = slice(rank * LOCAL_ROWS, (rank + 1) * LOCAL_ROWS)
        z = z_all[rows].clone().requires_grad_(True)  # (LOCAL_ROWS, DIM)
        value = sigreg(z, d, knots)
        value.backward()  # type: ignore[no-untyped-call]
        model = DistributedDataParallel(_linear())
        loss = sigreg(model(x_all[rows]), d, knots)
        loss.backward()  # type: ignore[no-untyped-call]
        torch.save({"value": value.detach(), "grad": z.grad, "loss": loss.detach(),
                    "weight": model.module.weight.grad, "bias": model.module.bias.grad},
                   Path(out_dir) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_two_gloo_ranks_get_the_global_statistic_and_ddp_the_global_gradient(tmp_path: Path) -> None:
    """Each rank's value is the global batch's SIGReg; its rows' gradient is WORLD x the global one's
    rows (so DDP's average over ranks is exact); DDP's parameter gradient is the one-process one."""
    z_all, x_all, d, knots = _global_batch()
    z_one = z_all.clone().requires_grad_(True)
    value_one = sigreg(z_one, d, knots)
    value_one.backward()  # type: ignore[no-untyped-call]
    assert z_one.grad is not None
    linear = _linear()
    loss_one = sigreg(linear(x_all), d, knots)
    loss_one.backward()  # type: ignore[no-untyped-call]
    assert linear.weight.grad is not None and linear.bias.grad is not None

    spawn(_rank, args=(str(tmp_path / "store"), str(tmp_path)), nprocs=WORLD, join=True)  # type: ignore[no-untyped-call]
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(WORLD)]

    assert torch.equal(ranks[0]["value"], ranks[1]["value"]), "every rank must hold the same value"
    diffs = {"value": 0.0, "grad rows / WORLD": 0.0, "DDP loss": 0.0, "DDP weight grad": 0.0, "DDP bias grad": 0.0}
    for r, out in enumerate(ranks):
        rows = slice(r * LOCAL_ROWS, (r + 1) * LOCAL_ROWS)
        pairs = {"value": (out["value"], value_one), "grad rows / WORLD": (out["grad"] / WORLD, z_one.grad[rows]),
                 "DDP loss": (out["loss"], loss_one), "DDP weight grad": (out["weight"], linear.weight.grad),
                 "DDP bias grad": (out["bias"], linear.bias.grad)}
        for name, (got, want) in pairs.items():
            diffs[name] = max(diffs[name], float((got - want.detach()).abs().max()))
    print(f"one process: value {float(value_one.detach()):.6f}", {k: f"{v:.1e}" for k, v in diffs.items()})
    assert max(diffs.values()) < 1e-6, diffs
    assert float(z_one.grad.abs().max()) > 1e-3 and float(linear.weight.grad.abs().max()) > 1e-3, "vacuous gradient"
