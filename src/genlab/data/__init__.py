"""Datasets as in-memory tensors; see :mod:`genlab.data.base`."""
from .base import ArrayDataset, BatchLoader, DataConfig, data_config_from_spec, load_dataset

__all__ = ["ArrayDataset", "BatchLoader", "DataConfig", "data_config_from_spec", "load_dataset"]
