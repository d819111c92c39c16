"""Training engine: input pipeline, batch augmentation, schedule and trainer.

The ``asctool train`` stage (:mod:`asctool.stages.train`) validates options,
writes the run's ``config.json`` and calls :func:`asctool.training.trainer.fit`.
TensorFlow is imported only when training starts, so importing this package is
cheap.
"""
from __future__ import annotations

from .schedule import Schedule, cycle_ends, cycle_starts, cycles, learning_rate
from .trainer import PROFILES, fit, resolve_profile

__all__ = ["fit", "PROFILES", "resolve_profile", "Schedule", "learning_rate", "cycles", "cycle_starts", "cycle_ends"]
