"""jepa_jax: the JEPA spec (:mod:`jepa_core`) implemented in JAX, a second framework beside ``jepa_torch``.

- :mod:`jepa_jax.backend` — the law suite's backend: ``--jepa-backend=jepa_jax.backend:backend``;
- :mod:`jepa_jax.models`, :mod:`jepa_jax.vit`, :mod:`jepa_jax.predictor` — the I-JEPA networks as
  equinox modules whose attribute paths are the official state-dict names;
- :mod:`jepa_jax.state_dict` — weights in and out by those names (official checkpoints, ``jepa_torch``);
- :mod:`jepa_jax.step` — the jit-compiled training step (AdamW from optax, then the EMA);
- :mod:`jepa_jax.loss`, :mod:`jepa_jax.representation`, :mod:`jepa_jax.regularisers`,
  :mod:`jepa_jax.ema`, :mod:`jepa_jax.schedules` — the spec's functions in ``jax.numpy``.

Importing the package turns on ``jax_enable_x64`` for the process: the spec computes in float64,
and JAX otherwise silently casts float64 inputs to float32. Models are still built in any dtype
(``build(config, key, dtype=jnp.float32)``); only the default changes.
"""

import jax

jax.config.update("jax_enable_x64", True)  # type: ignore[no-untyped-call]

from .backend import JaxBackend as JaxBackend  # noqa: E402
from .backend import backend as backend  # noqa: E402
from .models import JEPA as JEPA  # noqa: E402
from .models import EncoderConfig as EncoderConfig  # noqa: E402
from .models import JEPAConfig as JEPAConfig  # noqa: E402
from .models import PredictorConfig as PredictorConfig  # noqa: E402
from .models import build as build  # noqa: E402
from .state_dict import from_state_dicts as from_state_dicts  # noqa: E402
from .state_dict import state_dicts as state_dicts  # noqa: E402

__all__ = [
    "JEPA",
    "EncoderConfig",
    "JEPAConfig",
    "JaxBackend",
    "PredictorConfig",
    "backend",
    "build",
    "from_state_dicts",
    "state_dicts",
]
