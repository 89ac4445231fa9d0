"""The model config of a training config: what ``model:`` and the data say about the networks' shapes."""

from __future__ import annotations

from jepa_core.model_config import JEPAConfig

from jepa_torch.config.schema import TrainConfig

__all__ = ["model_config"]


def model_config(cfg: TrainConfig, spec: tuple[str, tuple[int, ...]]) -> JEPAConfig:
    """The networks of a training config for its data (``spec`` from ``jepa_torch.data.datasets.input_spec``)."""
    kind, shape = spec
    m = cfg.model
    common = dict(preset=m.preset, depth=m.depth, pred_depth=m.pred_depth, pred_emb_dim=m.pred_emb_dim,
                  depth_rescale=m.depth_rescale)
    if kind == "sequence":
        seq_len, input_dim = shape
        return JEPAConfig.sequence(input_dim, seq_len, **common)  # type: ignore[arg-type]
    return JEPAConfig.image(img_size=cfg.data.img_size, patch_size=m.patch_size, in_chans=shape[0],
                            **common)  # type: ignore[arg-type]
