"""The networks: ViT, video (V-JEPA) and sequence encoders, the predictor, heads, positions, the one build path
from the model config (``jepa_core.model_config``), the EMA target and FSDP sharding.

The names of :mod:`jepa_torch.models.jepa` (``JEPA``, ``build``, ``JEPAConfig`` ...) are re-exported here."""

from jepa_torch.models.jepa import HEADS_BY_WIDTH as HEADS_BY_WIDTH
from jepa_torch.models.jepa import JEPA as JEPA
from jepa_torch.models.jepa import VIT_PRESETS as VIT_PRESETS
from jepa_torch.models.jepa import EncoderConfig as EncoderConfig
from jepa_torch.models.jepa import JEPAConfig as JEPAConfig
from jepa_torch.models.jepa import ModelConfigError as ModelConfigError
from jepa_torch.models.jepa import PredictorConfig as PredictorConfig
from jepa_torch.models.jepa import ProjectorConfig as ProjectorConfig
from jepa_torch.models.jepa import ViTPreset as ViTPreset
from jepa_torch.models.jepa import build as build
from jepa_torch.models.jepa import build_image_jepa as build_image_jepa
from jepa_torch.models.jepa import build_predictor as build_predictor
from jepa_torch.models.jepa import build_sequence_jepa as build_sequence_jepa
from jepa_torch.models.jepa import build_vit as build_vit
from jepa_torch.models.jepa import get_preset as get_preset
from jepa_torch.models.jepa import group_by_length as group_by_length
from jepa_torch.models.jepa import make_encoder as make_encoder
from jepa_torch.models.jepa import make_predictor as make_predictor
from jepa_torch.models.jepa import make_projector as make_projector
from jepa_torch.models.jepa import make_target_encoder as make_target_encoder
from jepa_torch.models.jepa import networks as networks
from jepa_torch.models.jepa import output_size as output_size
from jepa_torch.models.video import VideoPredictor as VideoPredictor
from jepa_torch.models.video import VideoTransformer as VideoTransformer
from jepa_torch.models.video import build_video_encoder as build_video_encoder
from jepa_torch.models.video import build_video_predictor as build_video_predictor

__all__ = ["EncoderConfig", "HEADS_BY_WIDTH", "JEPA", "JEPAConfig", "ModelConfigError", "PredictorConfig", "ProjectorConfig", "VIT_PRESETS", "ViTPreset", "VideoPredictor", "VideoTransformer", "build", "build_image_jepa", "build_predictor", "build_sequence_jepa", "build_video_encoder", "build_video_predictor", "build_vit", "get_preset", "group_by_length", "make_encoder", "make_predictor", "make_projector", "make_target_encoder", "networks", "output_size"]
