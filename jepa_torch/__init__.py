"""jepa_torch: the PyTorch implementation of the JEPA spec, and its trainer.

What a user calls is here; the packages below hold the rest, in the order data flows:

- ``objectives``: representation losses, the JEPA loss, VICReg, SIGReg, LeJEPA's loss (tensors in, tensors out);
- ``models``: ViT and sequence encoders, the predictor, heads, the build path from the model config
  (``jepa_core.model_config``), the EMA target, FSDP sharding;
- ``io``: atomic files, our checkpoints and the official layout, export, timm and Hugging Face, figures;
- ``config``: the typed training config and its YAML;
- ``data``: digits, image folders, sequences, transforms, multi-crop views;
- ``methods``: one module per training method (I-JEPA, LeJEPA, V-JEPA) behind one Protocol, and the registry;
- ``evaluation``: probes, feature stores, the collapse monitor;
- ``training``: the loop (which knows no method), the optimiser, exact resume, the run log;
- ``conformance``: the torch backend of the law suite (``jepa_torch.conformance.backend:backend``).

Each package imports only the packages above it in this list (``tests/import_graph.py`` checks it).
"""

from jepa_torch.config import ConfigError as ConfigError
from jepa_torch.config import TrainConfig as TrainConfig
from jepa_torch.config import load_config as load_config
from jepa_torch.config import save_config as save_config
from jepa_torch.evaluation import EvalConfig as EvalConfig
from jepa_torch.evaluation import evaluate as evaluate
from jepa_torch.io.checkpoint import CheckpointError as CheckpointError
from jepa_torch.io.checkpoint import load_official as load_official
from jepa_torch.io.checkpoint import save_official as save_official
from jepa_torch.io.export import export_encoder as export_encoder
from jepa_torch.io.export import load_encoder as load_encoder
from jepa_torch.methods import Method as Method
from jepa_torch.methods import get_method as get_method
from jepa_torch.methods import load_model as load_model
from jepa_torch.methods import register as register
from jepa_torch.models import JEPA as JEPA
from jepa_torch.models import VIT_PRESETS as VIT_PRESETS
from jepa_torch.models import EncoderConfig as EncoderConfig
from jepa_torch.models import JEPAConfig as JEPAConfig
from jepa_torch.models import PredictorConfig as PredictorConfig
from jepa_torch.models import build as build
from jepa_torch.models import build_image_jepa as build_image_jepa
from jepa_torch.models import build_predictor as build_predictor
from jepa_torch.models import build_sequence_jepa as build_sequence_jepa
from jepa_torch.models import build_vit as build_vit
from jepa_torch.models import make_target_encoder as make_target_encoder
from jepa_torch.models import output_size as output_size
from jepa_torch.models.lejepa import LeJEPA as LeJEPA
from jepa_torch.models.predictor import Predictor as Predictor
from jepa_torch.models.tokens import SequenceTransformer as SequenceTransformer
from jepa_torch.models.vit import TransformerEncoder as TransformerEncoder
from jepa_torch.models.vit import VisionTransformer as VisionTransformer
from jepa_torch.training.loop import TrainingDiverged as TrainingDiverged
from jepa_torch.training.loop import train as train

__all__ = [
    "JEPA",
    "VIT_PRESETS",
    "CheckpointError",
    "ConfigError",
    "EncoderConfig",
    "EvalConfig",
    "JEPAConfig",
    "LeJEPA",
    "Method",
    "Predictor",
    "PredictorConfig",
    "SequenceTransformer",
    "TrainConfig",
    "TrainingDiverged",
    "TransformerEncoder",
    "VisionTransformer",
    "build",
    "build_image_jepa",
    "build_predictor",
    "build_sequence_jepa",
    "build_vit",
    "evaluate",
    "export_encoder",
    "get_method",
    "load_config",
    "load_encoder",
    "load_model",
    "load_official",
    "make_target_encoder",
    "output_size",
    "register",
    "save_config",
    "save_official",
    "train",
]
