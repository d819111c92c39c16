"""Waveform augmentations (``asctool augment METHOD``), one module per family.

- :mod:`.basic`: pitch, speed, noise, mix
- :mod:`.spectrum`: spectrum-correction (device response from parallel recordings)
- :mod:`.reverb`: reverb, reverb-drc (measured or simulated impulse responses)
- :mod:`.drc`: the dynamic range compressor used by reverb-drc
- :mod:`.stage`: the run loop (:func:`run`)

A new augmentation is one function plus one registry line
(:func:`asctool.augment.registry.register`). See ``docs/augment.md``.
"""
from __future__ import annotations

from . import basic, spectrum, reverb  # noqa: F401, I001  (fill the registry, in CLI order)
from .registry import REGISTRY, Augmentation, available, clip_rng, get, parse_params, register
from .stage import run

__all__ = ["run", "REGISTRY", "Augmentation", "available", "get", "parse_params", "register", "clip_rng"]
