"""The training configuration: the typed schema, YAML in and out (the official layout too), a run's plan.

The names of :mod:`~jepa_torch.config.schema` and :mod:`~jepa_torch.config.yaml_io` are re-exported here."""

from jepa_torch.config.schema import ConfigError as ConfigError
from jepa_torch.config.schema import DataConfig as DataConfig
from jepa_torch.config.schema import MaskSection as MaskSection
from jepa_torch.config.schema import MethodConfig as MethodConfig
from jepa_torch.config.schema import ModelConfig as ModelConfig
from jepa_torch.config.schema import OptimConfig as OptimConfig
from jepa_torch.config.schema import RunConfig as RunConfig
from jepa_torch.config.schema import TrainConfig as TrainConfig
from jepa_torch.config.schema import check_precision as check_precision
from jepa_torch.config.schema import check_step_options as check_step_options
from jepa_torch.config.schema import known_methods as known_methods
from jepa_torch.config.schema import register_method_check as register_method_check
from jepa_torch.config.yaml_io import config_from_dict as config_from_dict
from jepa_torch.config.yaml_io import config_to_dict as config_to_dict
from jepa_torch.config.yaml_io import load_config as load_config
from jepa_torch.config.yaml_io import save_config as save_config
from jepa_torch.config.model import model_config as model_config
from jepa_torch.config.plan import Plan as Plan
from jepa_torch.config.plan import make_plan as make_plan

__all__ = ["ConfigError", "DataConfig", "MaskSection", "MethodConfig", "ModelConfig", "OptimConfig", "Plan", "RunConfig", "TrainConfig", "check_precision", "check_step_options", "config_from_dict", "config_to_dict", "known_methods", "load_config", "make_plan", "model_config", "register_method_check", "save_config"]
