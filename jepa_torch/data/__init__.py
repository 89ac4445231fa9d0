"""Data: the bundled digits, image folders and sequences, their transforms, and LeJEPA's multi-crop views.

The names of :mod:`~jepa_torch.data.datasets` are re-exported here."""

from jepa_torch.data.datasets import SPLIT_SEED as SPLIT_SEED
from jepa_torch.data.datasets import DataError as DataError
from jepa_torch.data.datasets import EpochBatches as EpochBatches
from jepa_torch.data.datasets import InputSpec as InputSpec
from jepa_torch.data.datasets import JepaDataset as JepaDataset
from jepa_torch.data.datasets import build_dataset as build_dataset
from jepa_torch.data.datasets import digits_splits as digits_splits
from jepa_torch.data.datasets import image_folder as image_folder
from jepa_torch.data.datasets import input_spec as input_spec
from jepa_torch.data.datasets import make_loader as make_loader
from jepa_torch.data.datasets import sample_seed as sample_seed

__all__ = ["DataError", "EpochBatches", "InputSpec", "JepaDataset", "SPLIT_SEED", "build_dataset", "digits_splits", "image_folder", "input_spec", "make_loader", "sample_seed"]
