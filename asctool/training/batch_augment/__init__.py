"""Per-batch augmentation of model inputs, drawn in NumPy and applied in TensorFlow.

Applied to every training batch, in this order:

1. the random crop of ``crop`` frames at an offset drawn per example: the
   reader reads only those frames (built into the pipeline, not a registry
   entry, since it decides what is read);
2. the registered augmentations that are switched on, in registration order:
   :mod:`.specaugment` (frequency and time masks), :mod:`.mixup` (inputs and
   targets), :mod:`.swap` (left/right channel pairs).

The random parameters are drawn with NumPy from a per-batch seed, one stream
per augmentation, so a batch is augmented the same way whichever thread
computes it and whenever a run is resumed. Evaluation and prediction use the
full, unaugmented input.

A new batch augmentation is one module here plus its name in the import line
below (see :mod:`.registry` and ``docs/extending.md``).
"""
from __future__ import annotations

from . import specaugment, mixup, swap  # noqa: F401, I001  (fill the registry, in application order)
from .batch import apply_batch, draw_batch, draw_crop, param_signature
from .config import REFERENCE_CROP, AugmentConfig, augment_names, parse_augment
from .registry import REGISTRY, BatchAugmentation, available, get, register

__all__ = ["AugmentConfig", "REFERENCE_CROP", "augment_names", "parse_augment", "draw_crop", "draw_batch",
           "param_signature", "apply_batch", "REGISTRY", "BatchAugmentation", "available", "get", "register"]
