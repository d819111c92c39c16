"""SpecAugment: one frequency band and one time band set to 0, per example and channel.

Widths are uniform in ``0..freq_mask`` bins and ``0..time_mask`` frames,
positions uniform over the valid starts, drawn independently per example and
per channel (the reference system's masks: 0-12 bins, 0-39 frames, value 0).
"""
from __future__ import annotations

import numpy as np

from .registry import register

__all__ = ["band_keep", "draw_masks", "apply_masks"]


def band_keep(rng: np.random.Generator, length: int, max_width: int, size: tuple[int, int]) -> np.ndarray:
    """Keep mask with one zero band per (example, channel).

    Parameters
    ----------
    rng : numpy.random.Generator
    length : int
        Length of the masked axis (bins or frames).
    max_width : int
        Largest band width; widths are uniform in ``0..max_width`` (capped at ``length``).
    size : (batch, channels)

    Returns
    -------
    np.ndarray [shape=(batch, length, channels)], float32: 0 on the band, 1 elsewhere.
    """
    width = np.minimum(rng.integers(0, max_width + 1, size), length)
    start = rng.integers(0, length - width + 1)
    pos = np.arange(length)[None, :, None]
    masked = (pos >= start[:, None, :]) & (pos < (start + width)[:, None, :])
    return (~masked).astype(np.float32)


def draw_masks(rng: np.random.Generator, shape, *, window, freq_mask: int, time_mask: int) -> dict[str, np.ndarray]:
    """Keep masks ``fkeep`` (B, F, C) and ``tkeep`` (B, T', C), float32 0/1.

    The time mask is drawn over the full length and then cropped like the
    input (``window``), which equals masking before cropping.
    """
    batch, freq, time, channels = shape
    fkeep = band_keep(rng, freq, freq_mask, (batch, channels))
    tkeep = band_keep(rng, time, time_mask, (batch, channels))
    if window is not None:
        offset, length = window
        index = np.asarray(offset)[:, None] + np.arange(length)[None, :]
        tkeep = np.take_along_axis(tkeep, index[:, :, None], axis=1)
    return {"fkeep": fkeep, "tkeep": tkeep}


@register("specaugment", draw=draw_masks, params={"freq_mask": 12, "time_mask": 39}, stream=0, auto=True)
def apply_masks(x, y, *, fkeep, tkeep):
    """``x * fkeep * tkeep``, broadcast over time and frequency; targets unchanged."""
    return x * fkeep[:, :, None, :] * tkeep[:, None, :, :], y
