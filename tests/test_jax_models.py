"""The JAX networks are the torch networks: one config, the same state dict, the same forward.

A ``jepa_torch`` model config builds, in JAX, modules with the same official state-dict names and
shapes, the same fixed position tables and the official initialisation; the image ViT (2-D
positions, the patch convolution) computes torch's forward on torch's weights, with several
context and target masks; weights move by name both ways, strictly. The backend's padded, jitted
members equal the plain eager computation, and the library's traceable pieces (schedules, EMA,
gathers) behave under ``jax.jit`` as documented.
"""

from __future__ import annotations


import numpy as np
import pytest

pytest.importorskip("jax", reason="the JAX backend needs the 'jax' extra: pip install -e '.[jax]'")
pytest.importorskip("equinox", reason="the JAX backend needs the 'jax' extra: pip install -e '.[jax]'")
torch = pytest.importorskip("torch", reason="the comparison with torch needs the 'torch' extra")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

import jepa_jax  # noqa: E402
from jepa_jax import models as jax_models  # noqa: E402
from jepa_jax.backend import backend as jax_backend  # noqa: E402
from jepa_jax.backend import small_model  # noqa: E402
from jepa_jax.ema import ema_update  # noqa: E402
from jepa_jax.loss import gather_tokens  # noqa: E402
from jepa_jax.regularisers import sigreg_directions  # noqa: E402
from jepa_jax.schedules import CosineWeightDecay, MomentumSchedule, WarmupCosineLR  # noqa: E402
from jepa_jax.state_dict import StateDictError, from_state_dicts, infer_config, state_dict, state_dicts  # noqa: E402
from jepa_torch import models as torch_models  # noqa: E402
from jepa_torch.io.checkpoint import official_state_dict  # noqa: E402

TOL = 1e-6


def _numpy(module: object) -> dict[str, np.ndarray]:
    return {k: v.detach().cpu().numpy().copy() for k, v in official_state_dict(module).items()}  # type: ignore[arg-type]


CONFIGS = {
    "sequence": torch_models.JEPAConfig.sequence(3, 10, depth=2, pred_depth=2, pred_emb_dim=48),
    "image": torch_models.JEPAConfig.image("vit_tiny", img_size=(16, 24), patch_size=8, depth=2, pred_depth=2,
                                           pred_emb_dim=48),
}


def test_importing_turns_on_float64() -> None:
    assert jax.config.jax_enable_x64
    assert jnp.zeros(1).dtype == jnp.float64


@pytest.mark.parametrize("which", sorted(CONFIGS))
def test_a_config_builds_the_torch_architecture(which: str) -> None:
    """Same names, shapes and fixed position tables as torch's networks of the config; the official init."""
    config = CONFIGS[which]
    torch.manual_seed(0)
    theirs = torch_models.build(config).double()
    mine = jax_models.build(config, jax.random.key(0))
    for part in ("encoder", "predictor", "target_encoder"):
        a, b = state_dict(getattr(mine, part)), _numpy(getattr(theirs, part))
        assert {k: v.shape for k, v in a.items()} == {k: v.shape for k, v in b.items()}, part
        for table in ("pos_embed", "predictor_pos_embed"):
            if table in b:
                np.testing.assert_array_equal(a[table], b[table], err_msg=f"{part}.{table}")
    weights = state_dict(mine.encoder)
    qkv = weights["blocks.0.attn.qkv.weight"]
    assert abs(qkv.std() - 0.02) < 0.002 and np.abs(qkv).max() < 2.0
    assert not np.any(weights["blocks.0.attn.qkv.bias"]) and np.all(weights["norm.weight"] == 1.0)
    assert abs(state_dict(mine.predictor)["mask_token"].std() - 0.02) < 0.02
    np.testing.assert_array_equal(state_dict(mine.target_encoder)["blocks.1.mlp.fc2.weight"],
                                  weights["blocks.1.mlp.fc2.weight"])


def test_depth_rescaling_divides_the_residual_projections() -> None:
    config = CONFIGS["sequence"]
    plain = state_dict(jax_models.build(config, jax.random.key(3)).encoder)
    from dataclasses import replace

    scaled = state_dict(jax_models.build(replace(config, depth_rescale=True), jax.random.key(3)).encoder)
    for i in range(2):
        for name in (f"blocks.{i}.attn.proj.weight", f"blocks.{i}.mlp.fc2.weight"):
            np.testing.assert_allclose(scaled[name], plain[name] / np.sqrt(2.0 * (i + 1)), rtol=1e-15)
        np.testing.assert_array_equal(scaled[f"blocks.{i}.attn.qkv.weight"], plain[f"blocks.{i}.attn.qkv.weight"])


def test_image_vit_agrees_with_torch_on_its_weights() -> None:
    """A ViT (patch convolution, 2-D positions on a 2 x 3 grid) with two context and two target masks of
    two lengths: predictions, targets and context tokens equal torch's, in the official row order."""
    torch.manual_seed(1)
    theirs = torch_models.build(CONFIGS["image"]).double()
    mine = from_state_dicts(_numpy(theirs.encoder), _numpy(theirs.predictor), _numpy(theirs.target_encoder),
                            num_heads=3, grid=(2, 3))
    assert infer_config(_numpy(theirs.encoder), _numpy(theirs.predictor), num_heads=3,
                        grid=(2, 3)) == CONFIGS["image"]
    rng = np.random.default_rng(0)
    images = rng.standard_normal((2, 3, 16, 24))
    contexts = [np.array([[0, 1, 5], [2, 3, 4]]), np.array([[1, 2, 3], [0, 4, 5]])]
    targets = [np.array([[3, 4], [0, 1]]), np.array([[2], [5]]), np.array([[4, 5], [1, 5]])]
    got = mine(jnp.asarray(images), [jnp.asarray(c) for c in contexts], [jnp.asarray(t) for t in targets])
    with torch.no_grad():
        want = theirs(torch.from_numpy(images), [torch.from_numpy(c) for c in contexts],
                      [torch.from_numpy(t) for t in targets])
    for name, a, b in zip(("predictions", "targets"), got[:2], want[:2], strict=True):
        assert len(a) == len(b) == 2, name
        for x, y in zip(a, b, strict=True):
            assert x.shape == tuple(y.shape) and np.max(np.abs(np.asarray(x) - y.numpy())) <= TOL, name
    assert np.max(np.abs(np.asarray(got[2]) - want[2].numpy())) <= TOL


def test_an_official_checkpoint_loads(tmp_path: object) -> None:
    """An official-layout file (``module.``-prefixed state dicts, written by ``jepa_torch.io.checkpoint``) loads into
    JAX by name, and the JAX networks compute torch's target tokens."""
    from pathlib import Path

    from jepa_torch.io.checkpoint import read_official, save_official

    torch.manual_seed(2)
    theirs = torch_models.build(CONFIGS["sequence"]).double()
    path = Path(str(tmp_path)) / "jepa.pth.tar"
    save_official(path, theirs.encoder, theirs.predictor, theirs.target_encoder)
    ckpt = read_official(path)
    states = [{k: v.numpy() for k, v in ckpt[part].items()} for part in ("encoder", "predictor", "target_encoder")]
    assert all(k.startswith("module.") for k in states[0])
    mine = from_state_dicts(*states, num_heads=3)
    tokens = np.random.default_rng(0).standard_normal((2, 10, 3))
    with torch.no_grad():
        want = theirs.target_encoder(torch.from_numpy(tokens)).numpy()
    assert np.max(np.abs(np.asarray(mine.target_encoder(jnp.asarray(tokens))) - want)) <= TOL


def test_weights_round_trip_by_name_and_strictly() -> None:
    model = small_model(4, 6, 2)
    states = state_dicts(model)
    prefixed = {f"module.{k}": v for k, v in states["encoder"].items()}  # a DDP checkpoint's names
    again = from_state_dicts(prefixed, states["predictor"], states["target_encoder"], num_heads=3)
    for part in states:
        for name, value in states[part].items():
            np.testing.assert_array_equal(state_dicts(again)[part][name], value, err_msg=f"{part}.{name}")
    missing = dict(states["predictor"])
    del missing["mask_token"]
    with pytest.raises(StateDictError, match="mask_token"):
        from_state_dicts(states["encoder"], missing, num_heads=3)
    wrong = dict(states["encoder"], **{"norm.bias": np.zeros(5)})
    with pytest.raises(StateDictError, match=r"norm\.bias.*\(5,\)"):
        from_state_dicts(wrong, states["predictor"], num_heads=3)
    with pytest.raises(StateDictError, match="square"):
        infer_config({**states["encoder"], "patch_embed.proj.weight": np.zeros((24, 3, 2, 2))},
                     states["predictor"], num_heads=3)


# --- the backend's static shapes are exact ------------------------------------------------------


@pytest.mark.parametrize("lengths", [None, np.array([2, 4, 1])])
def test_padded_jitted_objective_equals_the_eager_model(lengths: np.ndarray | None) -> None:
    """The backend pads batch, context, blocks and input width to static sizes and jits; the plain eager
    forward and loss of the same model give the same numbers."""
    rng = np.random.default_rng(2)
    tokens, context = rng.standard_normal((3, 7, 3)), rng.integers(0, 7, (3, 4))
    blocks = [rng.integers(0, 7, (3, k)) for k in (2, 3, 2)]
    model = small_model(9, 7, 3)
    valid = None if lengths is None else jepa_jax.vit.context_valid([jnp.asarray(lengths)], 4)
    args = (jax_backend.asarray(tokens), jax_backend.asarray(context), [jax_backend.asarray(b) for b in blocks], 9)
    extra = {} if lengths is None else {"context_lengths": jax_backend.asarray(lengths)}
    for kind in ("smooth_l1", "l2"):
        for reduction in ("sum", "mean"):
            eager = float(model.loss(jnp.asarray(tokens), [jnp.asarray(context)], [jnp.asarray(b) for b in blocks],
                                     kind, reduction, valid))
            assert jax_backend.objective(*args, kind, reduction, **extra) == pytest.approx(eager, rel=1e-12)
    parts = jax_backend.objective_parts(*args, **extra)
    for i, block in enumerate(blocks):
        predictions, _, _ = model(jnp.asarray(tokens), [jnp.asarray(context)], [jnp.asarray(block)], valid)
        np.testing.assert_allclose(np.asarray(parts.predictions[i]), np.asarray(predictions[0]), rtol=0, atol=1e-12)


def test_out_of_range_indices_are_errors_or_nan() -> None:
    """The backend refuses an index outside [0, N) in one line; under jit a gather reads NaN there, never
    a neighbour (no wrap-around, no clamp)."""
    tokens = np.arange(12.0).reshape(1, 4, 3)
    with pytest.raises(IndexError, match=r"\[0, 4\)"):
        jax_backend.jepa_loss([jax_backend.asarray(np.zeros((1, 1, 3)))], jax_backend.asarray(tokens),
                              [jax_backend.asarray(np.array([[4]]))], "l2", "sum")
    with pytest.raises(IndexError, match="context_indices"):
        jax_backend.objective(jax_backend.asarray(tokens), jax_backend.asarray(np.array([[-1]])),
                              [jax_backend.asarray(np.array([[0]]))], 0, "l2", "sum")
    out = np.asarray(jax.jit(gather_tokens)(jnp.asarray(tokens), jnp.asarray(np.array([[1, 4, -1]]))))
    np.testing.assert_array_equal(out[0, 0], tokens[0, 1])
    assert np.all(np.isnan(out[0, 1:]))


# --- traceable pieces -------------------------------------------------------------------------


def test_schedules_run_inside_jit_and_validate_like_the_spec() -> None:
    """``at`` traces inside a jitted function (constants there may fold, so to rounding) and the
    constructors reject what the spec's reject."""
    lr, wd, m = WarmupCosineLR(0.0, 1e-3, 1e-6, 5, 50), CosineWeightDecay(0.04, 0.4, 50), MomentumSchedule(0.996, 1.0, 50)
    traced = jax.jit(lambda s: jnp.stack([lr.at(s), wd.at(s), m.at(s)]))
    for step in (0, 3, 5, 17, 50, 80):
        np.testing.assert_allclose(np.asarray(traced(jnp.asarray(step))), [lr(step), wd(step), m(step)], rtol=1e-13)
    with pytest.raises(ValueError, match="warmup_steps=50"):
        WarmupCosineLR(0.0, 1e-3, 0.0, 50, 50)
    with pytest.raises(ValueError, match="step=-1"):
        m(-1)


def test_ema_pairs_pytrees_by_name_and_refuses_mismatches() -> None:
    model = small_model(0, 5, 2)
    moved = ema_update(model.encoder, jax.tree.map(jnp.zeros_like, model.target_encoder), 0.25)
    for name, value in state_dict(moved).items():
        np.testing.assert_allclose(value, 0.75 * state_dict(model.encoder)[name], rtol=1e-15)
    a, b = {"w": jnp.ones(2), "v": jnp.zeros(3)}, {"v": jnp.ones(3), "w": jnp.zeros(2)}
    out = ema_update(a, b, 0.5)
    np.testing.assert_array_equal(np.asarray(out["w"]), [0.5, 0.5])
    with pytest.raises(KeyError, match="missing in target"):
        ema_update(a, {"w": jnp.ones(2)}, 0.5)
    with pytest.raises(ValueError, match="shape"):
        ema_update(a, {"w": jnp.ones(2), "v": jnp.ones(4)}, 0.5)
    with pytest.raises(ValueError, match="momentum"):
        ema_update(a, b, 1.5)


def test_sigreg_directions_come_from_a_jax_key() -> None:
    """JAX's own draw: a function of (dim, num, seed), unit columns, the same from a seed or its key, and
    independent of how many directions are asked for beyond the first ones within a draw."""
    d = np.asarray(sigreg_directions(5, 3, 7))
    np.testing.assert_array_equal(d, np.asarray(sigreg_directions(5, 3, jax.random.key(7))))
    np.testing.assert_allclose(np.linalg.norm(d, axis=0), 1.0, rtol=1e-14)
    np.testing.assert_array_equal(d, np.asarray(sigreg_directions(5, 4, 7))[:, :3])
    assert not np.array_equal(d, np.asarray(sigreg_directions(5, 3, 8)))
