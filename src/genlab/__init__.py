"""genlab: deep generative models on PyTorch.

Reading order: ``models/base.py`` (the contract), one family file (``models/vae.py``), then
``training/trainer.py`` (the one loop).
"""
from __future__ import annotations

from ._version import __version__
from .checkpoint import load
from .config import Config
from .errors import CheckpointError, ConfigError, DataError, GenlabError, TrainingError
from .models.base import GenerativeModel, LossOutput, Phase, build_model
from .registry import MODELS, register_model
from . import reports  # noqa: E402,F401  (registers every family's evaluator and reporter, which sit above the models)

__all__ = [
    "__version__", "load", "Config", "GenerativeModel", "LossOutput", "Phase", "build_model",
    "MODELS", "register_model", "GenlabError", "ConfigError", "DataError", "CheckpointError", "TrainingError",
]
