"""Datasets as tensors in memory or rows of a memory-mapped image store; see :mod:`genlab.data.base`
and :mod:`genlab.data.store`. Every image file is read through :mod:`genlab.data.imageio`."""
from .base import ArrayDataset, BatchLoader, DataConfig, data_config_from_spec, load_dataset
from . import celeba  # noqa: F401  registers "celeba" and "labelled-folder"
from .images import adapt_images, binarize, dynamic_binarize, read_idx  # registers the image loaders
from .store import StoredDataset
from . import paired  # registers the paired datasets (paired, facades, edges2digits, colorize)
from . import unpaired  # registers the unpaired datasets (unpaired, domains, celeba-attribute, facades-unpaired)
from . import toy  # registers the toy datasets (ring8, grid25, robot-arm, ...)
from . import text  # registers "wordnet-sentences" (WordNet's example sentences)

__all__ = [
    "ArrayDataset", "BatchLoader", "DataConfig", "data_config_from_spec", "load_dataset",
    "adapt_images", "binarize", "dynamic_binarize", "read_idx", "StoredDataset",
]
