"""Training engine: input pipeline, batch augmentation, schedule and trainer.

``train(train_paths, model_name, out_dir, **options)`` is the ``asctool train``
stage (see :mod:`asctool.training.trainer`). TensorFlow is imported only when
training starts, so importing this package is cheap.
"""
from __future__ import annotations

from .schedule import Schedule, cycle_ends, cycle_starts, learning_rate
from .trainer import PROFILES, resolve_profile, train

__all__ = ["train", "PROFILES", "resolve_profile", "Schedule", "learning_rate", "cycle_starts", "cycle_ends"]
