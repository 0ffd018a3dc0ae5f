from .ema import EMA
from .trainer import FitResult, TrainConfig, Trainer

__all__ = ["EMA", "FitResult", "TrainConfig", "Trainer"]
