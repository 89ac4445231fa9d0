"""jepa_core: the framework-free specification of JEPA training.

The objective, its representation losses and regularisers, the EMA, the
schedules and the mask sampler as pure functions over numpy arrays, plus typed
Protocols that any backend (PyTorch, JAX, MLX ...) implements. Imports numpy
and nothing else.
"""

from .backend import Backend as Backend
from .backend import ObjectiveParts as ObjectiveParts
from .backend import Schedule as Schedule
from .ema import DEFAULT_MOMENTUM as DEFAULT_MOMENTUM
from .ema import ema_closed_form as ema_closed_form
from .ema import ema_update as ema_update
from .loss import Reduction as Reduction
from .representation import check_loss_kind as check_loss_kind
from .loss import gather_tokens as gather_tokens
from .loss import jepa_loss as jepa_loss
from .loss import jepa_loss_blocks as jepa_loss_blocks
from .loss import mean_normalised as mean_normalised
from .model_config import EncoderConfig as EncoderConfig
from .model_config import JEPAConfig as JEPAConfig
from .model_config import PredictorConfig as PredictorConfig
from .model_config import ProjectorConfig as ProjectorConfig
from .mask_schedules import TargetScaleSchedule as TargetScaleSchedule
from .mask_schedules import config_at as mask_config_at
from .masks import MaskBatch as MaskBatch
from .masks import MaskConfig as MaskConfig
from .masks import max_context_keep as max_context_keep
from .masks import sample_mask as sample_mask
from .masks import sample_masks as sample_masks
from .masks import sample_masks_1d as sample_masks_1d
from .masks import validate as validate_masks
from .protocols import ContextEncoder as ContextEncoder
from .protocols import FloatArray as FloatArray
from .protocols import IndexArray as IndexArray
from .protocols import Predictor as Predictor
from .protocols import Representation as Representation
from .protocols import RepresentationLoss as RepresentationLoss
from .protocols import TargetEncoder as TargetEncoder
from .protocols import TargetIndices as TargetIndices
from .regularisers import DEFAULT_KNOTS as DEFAULT_KNOTS
from .regularisers import VICREG_EPS as VICREG_EPS
from .regularisers import Regulariser as Regulariser
from .regularisers import epps_pulley as epps_pulley
from .regularisers import regularised_objective as regularised_objective
from .regularisers import sigreg as sigreg
from .regularisers import sigreg_directions as sigreg_directions
from .regularisers import sigreg_floor as sigreg_floor
from .regularisers import vicreg_covariance as vicreg_covariance
from .regularisers import vicreg_variance as vicreg_variance
from .representation import LossKind as LossKind
from .representation import elementwise_loss as elementwise_loss
from .representation import layer_norm as layer_norm
from .representation import representation_loss as representation_loss
from .representation import smooth_l1 as smooth_l1
from .representation import squared_l2 as squared_l2
from .schedules import CosineWeightDecay as CosineWeightDecay
from .schedules import MomentumSchedule as MomentumSchedule
from .schedules import WarmupCosineLR as WarmupCosineLR

__all__ = [
    "EncoderConfig",
    "JEPAConfig",
    "PredictorConfig",
    "ProjectorConfig",
    "DEFAULT_KNOTS",
    "DEFAULT_MOMENTUM",
    "VICREG_EPS",
    "Backend",
    "ContextEncoder",
    "CosineWeightDecay",
    "FloatArray",
    "IndexArray",
    "LossKind",
    "MaskBatch",
    "MaskConfig",
    "MomentumSchedule",
    "ObjectiveParts",
    "Predictor",
    "Reduction",
    "Regulariser",
    "Representation",
    "RepresentationLoss",
    "Schedule",
    "TargetEncoder",
    "TargetIndices",
    "TargetScaleSchedule",
    "WarmupCosineLR",
    "check_loss_kind",
    "elementwise_loss",
    "ema_closed_form",
    "ema_update",
    "epps_pulley",
    "gather_tokens",
    "jepa_loss",
    "jepa_loss_blocks",
    "layer_norm",
    "mask_config_at",
    "max_context_keep",
    "mean_normalised",
    "regularised_objective",
    "representation_loss",
    "sample_mask",
    "sample_masks",
    "sample_masks_1d",
    "sigreg",
    "sigreg_directions",
    "sigreg_floor",
    "smooth_l1",
    "squared_l2",
    "validate_masks",
    "vicreg_covariance",
    "vicreg_variance",
]
