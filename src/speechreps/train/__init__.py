"""Training: one loop for every representation model (:mod:`.trainer`) and its checkpoints (:mod:`.checkpoint`)."""

from .trainer import Trainer, TrainResult, default_device, seed_everything

__all__ = ["Trainer", "TrainResult", "default_device", "seed_everything"]
