"""Waveform augmentations (``asctool augment METHOD``), one module per family.

- :mod:`.basic`: pitch, speed, noise, mix
- :mod:`.spectrum`: spectrum-correction (device response from parallel recordings)
- :mod:`.reverb`: reverb, reverb-drc (measured or simulated impulse responses)
- :mod:`.drc`: the dynamic range compressor used by reverb-drc
- :mod:`.sources`: source rows, the leakage guard, source devices
- :mod:`.apply`: one clip through one augmentation, and the peak rule

The stage ``asctool augment`` (:mod:`asctool.stages.augment`) runs them over a
manifest.

A new augmentation is one function plus one registry line
(:func:`asctool.augment.registry.register`). See ``docs/augment.md``.
"""
from __future__ import annotations

from . import basic, spectrum, reverb  # noqa: F401, I001  (fill the registry, in CLI order)
from .registry import REGISTRY, Augmentation, available, clip_rng, get, parse_params, register

__all__ = ["REGISTRY", "Augmentation", "available", "get", "parse_params", "register", "clip_rng"]
