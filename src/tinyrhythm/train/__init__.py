"""Training: typed config, augmentation, the loop (single process or torchrun/DDP)."""

from .config import AugmentConfig, TrainConfig
from .loop import score_split, train

__all__ = ["AugmentConfig", "TrainConfig", "score_split", "train"]
