"""Dynamic range compression: a vectorised feed-forward compressor.

Signal flow (all numpy/scipy, no per-sample Python loop):

1. level detection: the channel-averaged rectified signal ``|x|`` is smoothed
   by two one-pole low-pass filters (:func:`scipy.signal.lfilter`), one with
   the attack time constant and one with the release time constant. Their
   pointwise maximum (minimum when attack > release) rises with the attack
   and falls with the release time constant: the attack/release asymmetry
   without a sample loop;
2. gain computer: a piecewise-linear transfer curve in dB (sox ``compand``
   style points ``in,out``; slope 1 below the first point and above the last)
   with quadratic soft knees of width ``knee_db`` at every breakpoint;
3. gain = curve(level) - level + make-up gain, applied to every channel.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy.signal import lfilter

__all__ = ["CURVES", "transfer_curve", "envelope", "compress"]

#: Transfer curves as (input dB, output dB) points, chosen at random by
#: ``reverb-drc`` (docs/reference.md 5): quiet parts raised by 20 dB and the range
#: above compressed linearly to 0 dB, or identity (make-up gain only).
CURVES: dict[str, tuple[tuple[float, float], ...]] = {
    "-90,-70": ((-90.0, -70.0), (0.0, 0.0)),
    "-60,-40": ((-60.0, -40.0), (0.0, 0.0)),
    "0,0": ((0.0, 0.0),),
}

_FLOOR_DB = -200.0


def transfer_curve(level_db: np.ndarray, points: Sequence[tuple[float, float]], *, knee_db: float = 6.0) -> np.ndarray:
    """Output level in dB for input level ``level_db`` (same shape).

    Parameters
    ----------
    level_db : np.ndarray, input levels in dB (full scale 0 dB)
    points : (in_db, out_db) breakpoints, increasing in_db; slope 1 outside
    knee_db : width of the quadratic soft knee centred on each breakpoint
        (0 = hard knee); breakpoints should be at least ``knee_db`` apart
    """
    level_db = np.asarray(level_db, dtype=np.float64)
    xs = np.array([p[0] for p in points], dtype=np.float64)
    ys = np.array([p[1] for p in points], dtype=np.float64)
    # slopes of the segments, with slope 1 beyond both ends
    inner = np.diff(ys) / np.diff(xs) if len(xs) > 1 else np.zeros(0)
    slopes = np.concatenate([[1.0], inner, [1.0]])
    out = np.interp(level_db, xs, ys)
    out = np.where(level_db < xs[0], ys[0] + (level_db - xs[0]), out)
    out = np.where(level_db > xs[-1], ys[-1] + (level_db - xs[-1]), out)
    if knee_db > 0:
        half = knee_db / 2.0
        for k, x_k in enumerate(xs):
            change = slopes[k + 1] - slopes[k]
            if change == 0:
                continue
            d = level_db - x_k
            inside = np.abs(d) < half
            soft = change * (d + half) ** 2 / (2.0 * knee_db)
            hard = change * np.maximum(d, 0.0)
            out = out + np.where(inside, soft - hard, 0.0)
    return out


def envelope(x: np.ndarray, sr: int, *, attack: float, release: float) -> np.ndarray:
    """Attack/release level envelope of a rectified signal.

    Parameters
    ----------
    x : np.ndarray [shape=(samples,)], non-negative (e.g. ``|y|``)
    sr : sample rate in Hz
    attack, release : time constants in seconds (> 0)

    Returns
    -------
    np.ndarray [shape=(samples,)]
    """
    x = np.asarray(x, dtype=np.float64)
    start = float(x[: max(1, int(0.01 * sr))].mean())

    def smooth(tau: float) -> np.ndarray:
        a = float(np.exp(-1.0 / (tau * sr)))
        out, _ = lfilter([1.0 - a], [1.0, -a], x, zi=[a * start])
        return out

    fast, slow = smooth(attack), smooth(release)
    return np.maximum(fast, slow) if attack <= release else np.minimum(fast, slow)


def compress(y: np.ndarray, sr: int, *, points: Sequence[tuple[float, float]], knee_db: float = 6.0,
             attack: float = 0.2, release: float = 0.3, makeup_db: float = 0.0) -> np.ndarray:
    """Apply the compressor to ``y`` (channels linked).

    Parameters
    ----------
    y : np.ndarray [shape=(channels, samples)], full scale 1.0
    sr : sample rate in Hz
    points : transfer curve (see :func:`transfer_curve`)
    knee_db : soft-knee width in dB
    attack, release : detector time constants in seconds
    makeup_db : gain added after compression, in dB

    Returns
    -------
    np.ndarray [shape=(channels, samples)], same dtype as ``y``
    """
    level = envelope(np.abs(y).mean(axis=0), sr, attack=attack, release=release)
    level_db = np.maximum(20.0 * np.log10(np.maximum(level, 1e-12)), _FLOOR_DB)
    gain_db = transfer_curve(level_db, points, knee_db=knee_db) - level_db + makeup_db
    return (y * 10.0 ** (gain_db / 20.0)).astype(y.dtype, copy=False)
