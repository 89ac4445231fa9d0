"""jepa_torch: the PyTorch implementation of the JEPA spec, and its trainer.

ViT encoders (tiny to giant) and the I-JEPA predictor with the official state-dict
layout, the I-JEPA and LeJEPA training steps (CPU fp32, CUDA bf16), the regularisers
(VICReg, SIGReg), official checkpoint I/O, and the torch backend of the law suite
(``jepa_torch.backend:backend``).
The trainer is ``jepa_torch.train.train`` and the ``jepa-torch`` command.
"""

from . import methods as methods  # registers the methods: a config can name them from here on
from .checkpoint import CheckpointError as CheckpointError
from .checkpoint import infer_vit_config as infer_vit_config
from .checkpoint import load_official as load_official
from .checkpoint import save_official as save_official
from .export import export_encoder as export_encoder
from .export import load_encoder as load_encoder
from .lejepa import LeJEPA as LeJEPA
from .lejepa import LeJEPAStepConfig as LeJEPAStepConfig
from .lejepa import lejepa_step as lejepa_step
from .models import JEPA as JEPA
from .models import VIT_PRESETS as VIT_PRESETS
from .models import JEPAConfig as JEPAConfig
from .models import build as build
from .models import build_image_jepa as build_image_jepa
from .models import build_predictor as build_predictor
from .models import build_sequence_jepa as build_sequence_jepa
from .models import build_vit as build_vit
from .models import make_target_encoder as make_target_encoder
from .models import output_size as output_size
from .optim import make_optimizer as make_optimizer
from .predictor import Predictor as Predictor
from .regularisers import sigreg as sigreg
from .regularisers import vicreg_covariance as vicreg_covariance
from .regularisers import vicreg_variance as vicreg_variance
from .step import StepConfig as StepConfig
from .step import train_step as train_step
from .tokens import SequenceTransformer as SequenceTransformer
from .vit import TransformerEncoder as TransformerEncoder
from .vit import VisionTransformer as VisionTransformer
from .vit import apply_masks as apply_masks
from .views import MultiCrop as MultiCrop
from .vit import repeat_interleave_batch as repeat_interleave_batch

__all__ = [
    "JEPA",
    "JEPAConfig",
    "build",
    "VIT_PRESETS",
    "CheckpointError",
    "LeJEPA",
    "LeJEPAStepConfig",
    "MultiCrop",
    "Predictor",
    "SequenceTransformer",
    "StepConfig",
    "TransformerEncoder",
    "VisionTransformer",
    "apply_masks",
    "build_image_jepa",
    "build_predictor",
    "build_sequence_jepa",
    "build_vit",
    "export_encoder",
    "infer_vit_config",
    "lejepa_step",
    "load_encoder",
    "load_official",
    "make_optimizer",
    "make_target_encoder",
    "output_size",
    "repeat_interleave_batch",
    "save_official",
    "sigreg",
    "train_step",
    "vicreg_covariance",
    "vicreg_variance",
]
