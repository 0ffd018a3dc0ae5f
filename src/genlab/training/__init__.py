from .ema import EMA
from .keeper import Keeper
from .runlog import RunLog
from .trainer import FitResult, TrainConfig, Trainer

__all__ = ["EMA", "FitResult", "Keeper", "RunLog", "TrainConfig", "Trainer"]
