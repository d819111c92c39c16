"""One clip through one augmentation: the registered function, its checks and the peak rule.

A clip whose peak exceeds full scale (|y| > 1) after augmentation is scaled
down to a peak of 0.99 (:func:`limit_peak`), so that it can be written as
PCM without clipping.
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from ..errors import AsctoolError, AudioError
from .registry import Augmentation, ClipContext, clip_rng

__all__ = ["PEAK_LIMIT", "PEAK_TARGET", "limit_peak", "augment_clip"]

PEAK_LIMIT = 1.0
PEAK_TARGET = 0.99


def limit_peak(y: np.ndarray) -> tuple[np.ndarray, bool]:
    """Scale ``y`` to a peak of 0.99 when its peak exceeds full scale (1.0)."""
    peak = float(np.max(np.abs(y))) if y.size else 0.0
    if peak > PEAK_LIMIT:
        return (y * (PEAK_TARGET / peak)).astype(y.dtype, copy=False), True
    return y, False


def augment_clip(aug: Augmentation, y: np.ndarray, sr: int, *, seed: int, out_id: str, ctx: ClipContext,
                 params: Mapping[str, Any], source: str = "audio") -> tuple[np.ndarray, bool]:
    """The augmented copy ``out_id`` of one clip.

    Parameters
    ----------
    aug : the registered augmentation
    y : np.ndarray [shape=(channels, samples)] the source clip
    sr : its sample rate in Hz
    seed : the run's seed; the clip's generator is :func:`~asctool.augment.registry.clip_rng`
        of (seed, method, ``out_id``), so the copy does not depend on order or process
    out_id : id of the copy
    ctx : what the function may use besides the clip
    params : the method's resolved parameters
    source : the source file, for error messages

    Returns
    -------
    y : np.ndarray [shape=(channels, samples), dtype=float32], peak at most full scale
    scaled : whether the peak had to be scaled down (see :func:`limit_peak`)
    """
    out = aug.func(y, sr, rng=clip_rng(seed, aug.name, out_id), ctx=ctx, **params)
    if out.shape != y.shape:
        raise AsctoolError(f"{source}: augment {aug.name} returned shape {out.shape}, expected {y.shape}")
    if not np.all(np.isfinite(out)):
        raise AudioError(f"{source}: augment {aug.name} produced NaN or Inf samples")
    return limit_peak(out.astype(np.float32, copy=False))
