"""Training: the one Trainer, its objectives, optimizers, checkpoints and distributed setup."""

from lmstack.train.config import ConfigError, TrainConfig, load_config, parse_config
from lmstack.train.objectives import CausalLM, MaskedLM, build_objective
from lmstack.train.optim import WarmupCosine, build_optimizer
from lmstack.train.recipe import build_trainer, train_from_config
from lmstack.train.trainer import Trainer, TrainingInterrupted

__all__ = [
    "CausalLM", "ConfigError", "MaskedLM", "TrainConfig", "Trainer", "TrainingInterrupted",
    "WarmupCosine", "build_objective", "build_optimizer", "build_trainer", "load_config", "parse_config",
    "train_from_config",
]
