"""The front end's signal processing: pure functions, arrays in, arrays out.

STFT framing (:func:`frame_view`, :func:`frame_segments`),
:func:`power_spectrogram`, the mel filterbank (:func:`mel_filterbank`,
:func:`filterbank_blocks`, :func:`apply_filterbank`), regression deltas
(:func:`regression_delta`, :func:`stack_deltas`), the clip rules
(:func:`match_channels`, :func:`fit_duration`) and :class:`FrontEnd`, which
precomputes the constants of one configuration and maps a waveform to exactly
what a model consumes (log, per-clip min-max scaling and deltas included).
No I/O, no processes, no global state.

The computation follows the DCASE 2020 reference system (Hu et al.,
"Device-robust acoustic scene classification based on two-stage
categorization and data augmentation", DCASE 2020 Task 1 technical report;
see ``docs/featurize.md``): STFT (n_fft 2048, periodic Hann, hop 1024,
centred with reflect padding) -> power -> 128 HTK mel bands without filter
normalisation -> ``log(mel + 1e-8)`` -> min-max over the whole clip -> N = 2
regression deltas without padding, stacked as ``[static[4:-4], delta[2:-2],
delta-delta]`` on the channel axis. It runs in float32 with a banded mel
projection; the tests check it against an independent float64 computation.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
import scipy.fft

from ..errors import AudioError

__all__ = [
    "frame_count",
    "window_function",
    "hz_to_mel",
    "mel_to_hz",
    "mel_filterbank",
    "frame_view",
    "frame_segments",
    "power_spectrogram",
    "preemphasis",
    "filterbank_blocks",
    "apply_filterbank",
    "regression_delta",
    "stack_deltas",
    "match_channels",
    "fit_duration",
    "FrontEnd",
]

#: Largest finite float16 value: features beyond it cannot be stored as float16.
_FLOAT16_MAX = 65504.0


def frame_count(n_samples: int, *, n_fft: int, hop_length: int, center: bool = True) -> int:
    """Number of STFT frames of a signal of ``n_samples`` samples."""
    padded = n_samples + 2 * (n_fft // 2) if center else n_samples
    return 1 + (padded - n_fft) // hop_length


def window_function(name: str, win_length: int, n_fft: int | None = None) -> np.ndarray:
    """A periodic ("DFT-even") window, centred and zero-padded to ``n_fft``.

    Parameters
    ----------
    name : hann, hamming, blackman or rectangular
    win_length : window length in samples
    n_fft : frame length in samples (default ``win_length``)

    Returns
    -------
    window : np.ndarray [shape=(n_fft,), dtype=float64]
    """
    n_fft = win_length if n_fft is None else n_fft
    phase = 2.0 * np.pi * np.arange(win_length) / win_length
    if name == "hann":
        w = 0.5 - 0.5 * np.cos(phase)
    elif name == "hamming":
        w = 0.54 - 0.46 * np.cos(phase)
    elif name == "blackman":
        w = 0.42 - 0.5 * np.cos(phase) + 0.08 * np.cos(2.0 * phase)
    elif name == "rectangular":
        w = np.ones(win_length)
    else:
        raise ValueError(f"unknown window {name!r}")
    left = (n_fft - win_length) // 2
    return np.pad(w, (left, n_fft - win_length - left))


def hz_to_mel(frequencies: np.ndarray | float, *, htk: bool = True) -> np.ndarray:
    """Hz to mel: HTK ``2595 log10(1 + f / 700)`` or Slaney (linear below 1 kHz)."""
    f = np.asarray(frequencies, dtype=np.float64)
    if htk:
        return 2595.0 * np.log10(1.0 + f / 700.0)
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, np.log(6.4) / 27.0
    with np.errstate(divide="ignore"):
        log_part = min_log_mel + np.log(np.maximum(f, 1e-300) / min_log_hz) / logstep
    return np.where(f >= min_log_hz, log_part, f / f_sp)


def mel_to_hz(mels: np.ndarray | float, *, htk: bool = True) -> np.ndarray:
    """Mel to Hz, the inverse of :func:`hz_to_mel`."""
    m = np.asarray(mels, dtype=np.float64)
    if htk:
        return 700.0 * (10.0 ** (m / 2595.0) - 1.0)
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, np.log(6.4) / 27.0
    return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), f_sp * m)


def mel_filterbank(
    *, sr: int, n_fft: int, n_mels: int, fmin: float = 0.0, fmax: float | None = None,
    htk: bool = True, norm: str | None = None,
) -> np.ndarray:
    """Triangular mel filters over the bins of a real FFT.

    Band ``i`` rises linearly from mel point ``i`` to ``i + 1`` and falls to
    ``i + 2`` (``n_mels + 2`` points equally spaced in mel from ``fmin`` to
    ``fmax``). With ``norm=None`` every triangle peaks at 1; ``"slaney"``
    scales each to unit area.

    Returns
    -------
    weights : np.ndarray [shape=(n_mels, 1 + n_fft // 2), dtype=float64]
    """
    fmax = sr / 2 if fmax is None else fmax
    fft_freqs = np.fft.rfftfreq(n_fft, d=1.0 / sr)
    mel_points = np.linspace(hz_to_mel(fmin, htk=htk), hz_to_mel(fmax, htk=htk), n_mels + 2)
    hz_points = mel_to_hz(mel_points, htk=htk)
    widths = np.diff(hz_points)
    ramps = hz_points[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    if norm == "slaney":
        weights *= (2.0 / (hz_points[2:] - hz_points[:-2]))[:, None]
    elif norm is not None:
        raise ValueError(f"unknown filter norm {norm!r}")
    return weights


def frame_view(
    y: np.ndarray, n_fft: int, *, hop_length: int, center: bool = True, pad_mode: str = "reflect",
) -> np.ndarray:
    """Overlapping frames of ``y`` as a read-only strided view (the frames are not copied).

    With ``center``, the signal is padded by ``n_fft // 2`` samples at both
    ends (``pad_mode`` as in :func:`numpy.pad`) so that frame ``t`` is
    centred on sample ``t * hop_length``.

    Parameters
    ----------
    y : np.ndarray [shape=(channels, samples)]
    n_fft : frame length in samples
    hop_length : hop between frames in samples

    Returns
    -------
    frames : np.ndarray [shape=(channels, frames, n_fft)], a view
    """
    channels, n = y.shape
    pad = n_fft // 2 if center else 0
    if center and pad_mode == "reflect" and n <= pad:
        raise ValueError(f"signal of {n} samples is too short to reflect-pad by {pad}")
    n_frames = frame_count(n, n_fft=n_fft, hop_length=hop_length, center=center)
    if n_frames < 1:
        raise ValueError(f"signal of {n} samples is shorter than one frame of {n_fft}")
    if center:
        y = np.pad(y, ((0, 0), (pad, pad)), mode=pad_mode)
    return np.lib.stride_tricks.sliding_window_view(y, n_fft, axis=-1)[:, ::hop_length][:, :n_frames]


def frame_segments(
    y: np.ndarray, n_fft: int, *, hop_length: int, center: bool = True, pad_mode: str = "reflect",
) -> list[np.ndarray]:
    """The frames of :func:`frame_view` in up to three consecutive pieces, without
    padding the whole signal.

    Only the first and last few frames reach into the padding; they are taken
    from two short padded copies of the ends, and every other frame is a view
    of ``y`` itself. Concatenated on the frame axis, the pieces equal
    :func:`frame_view` exactly.

    Returns
    -------
    segments : list of np.ndarray [shape=(channels, frames_i, n_fft)]
    """
    channels, n = y.shape
    pad = n_fft // 2 if center else 0
    n_frames = frame_count(n, n_fft=n_fft, hop_length=hop_length, center=center)
    first = -(-pad // hop_length)                                  # first frame inside y
    last = min(n_frames - 1, (n + pad - n_fft) // hop_length)      # last frame inside y
    if not center or pad == 0 or n <= n_fft + pad or last < first:
        return [frame_view(y, n_fft, hop_length=hop_length, center=center, pad_mode=pad_mode)]
    if pad_mode == "reflect" and n <= pad:
        raise ValueError(f"signal of {n} samples is too short to reflect-pad by {pad}")
    segments = []
    if first > 0:  # frames 0..first-1: padding + y[:stop]
        stop = (first - 1) * hop_length - pad + n_fft
        head = np.pad(y[:, :max(stop, pad + 1)], ((0, 0), (pad, 0)), mode=pad_mode)[:, :pad + stop]
        segments.append(np.lib.stride_tricks.sliding_window_view(head, n_fft, axis=-1)[:, ::hop_length][:, :first])
    start = first * hop_length - pad
    inner = np.lib.stride_tricks.sliding_window_view(y[:, start:], n_fft, axis=-1)[:, ::hop_length]
    segments.append(inner[:, :last - first + 1])
    if last < n_frames - 1:  # frames last+1..: y[begin:] + padding
        begin = (last + 1) * hop_length - pad
        keep = min(begin, n - pad - 1)                               # reflect needs pad + 1 samples
        tail = np.pad(y[:, keep:], ((0, 0), (0, pad)), mode=pad_mode)[:, begin - keep:]
        segments.append(np.lib.stride_tricks.sliding_window_view(tail, n_fft, axis=-1)[:, ::hop_length]
                        [:, :n_frames - 1 - last])
    return segments

#: Frames transformed at a time by :func:`power_spectrogram`: a block of
#: windowed frames and its spectrum stay in the CPU cache (about 1.5x faster
#: than transforming all frames of a 10 s clip at once).
_BLOCK_FRAMES = 64


def power_spectrogram(
    y: np.ndarray, window: np.ndarray, *, hop_length: int, center: bool = True,
    pad_mode: str = "reflect", power: float = 2.0,
) -> np.ndarray:
    """Magnitude spectrogram ``|STFT|**power`` of each channel, in float32.

    Frames are windowed and transformed in blocks of ``_BLOCK_FRAMES``.

    Parameters
    ----------
    y : np.ndarray [shape=(channels, samples)] waveform
    window : np.ndarray [shape=(n_fft,)] analysis window (see :func:`window_function`)
    hop_length : hop between frames in samples
    center : pad ``n_fft // 2`` samples at both ends so frame ``t`` is centred
        on sample ``t * hop_length``
    pad_mode : numpy padding mode for ``center`` (``reflect`` mirrors without
        repeating the edge sample)
    power : exponent of the magnitude (2 gives the power spectrogram)

    Returns
    -------
    spectrogram : np.ndarray [shape=(channels, frames, 1 + n_fft // 2), dtype=float32]
        time-major (frames before frequency bins), the layout the rest of the
        front end works in.
    """
    y = np.asarray(y, dtype=np.float32)
    if y.ndim == 1:
        y = y[None]
    window = window.astype(np.float32, copy=False)
    n_fft = window.shape[0]
    segments = frame_segments(y, n_fft, hop_length=hop_length, center=center, pad_mode=pad_mode)
    channels = y.shape[0]
    n_frames = sum(segment.shape[1] for segment in segments)
    out = np.empty((channels, n_frames, n_fft // 2 + 1), dtype=np.float32)
    block = np.empty((min(_BLOCK_FRAMES, n_frames), n_fft), dtype=np.float32)
    blocks = []  # (segment, first frame in it, first frame in out, frames)
    offset = 0
    for segment in segments:
        for start in range(0, segment.shape[1], _BLOCK_FRAMES):
            blocks.append((segment, start, offset + start, min(_BLOCK_FRAMES, segment.shape[1] - start)))
        offset += segment.shape[1]
    for channel in range(channels):
        for segment, start, first, count in blocks:
            windowed = block[:count]
            np.multiply(segment[channel, start:start + count], window, out=windowed)
            spectrum = scipy.fft.rfft(windowed, axis=-1, overwrite_x=True, workers=1)
            magnitude = out[channel, first:first + count]
            np.abs(spectrum, out=magnitude)  # one contiguous pass: twice as fast as re**2 + im**2
            if power == 2.0:
                np.square(magnitude, out=magnitude)
            elif power != 1.0:
                np.power(magnitude, np.float32(power), out=magnitude)
    return out


@dataclass(frozen=True)
class _Block:
    bands: slice
    bins: slice
    weights: np.ndarray  # (bins, bands) float32, C-contiguous


def filterbank_blocks(weights: np.ndarray, *, bands_per_block: int = 8) -> tuple[_Block, ...]:
    """Split a filterbank into dense blocks covering only its non-zero bins.

    Mel triangles are narrow, so projecting a spectrogram band-block by
    band-block over each block's bin range does about 1/10 of the work of
    one dense product, with the same result up to float rounding.

    Parameters
    ----------
    weights : np.ndarray [shape=(n_bands, n_bins)]
    bands_per_block : bands per block

    Returns
    -------
    blocks : tuple of blocks for :func:`apply_filterbank`
    """
    weights = np.asarray(weights, dtype=np.float32)
    blocks = []
    for start in range(0, weights.shape[0], bands_per_block):
        stop = min(start + bands_per_block, weights.shape[0])
        nonzero = np.flatnonzero(weights[start:stop].any(axis=0))
        if nonzero.size == 0:
            lo = hi = 0
        else:
            lo, hi = int(nonzero[0]), int(nonzero[-1]) + 1
        part = np.ascontiguousarray(weights[start:stop, lo:hi].T)
        blocks.append(_Block(slice(start, stop), slice(lo, hi), part))
    return tuple(blocks)


def apply_filterbank(spectrogram: np.ndarray, blocks: Sequence[_Block], n_bands: int) -> np.ndarray:
    """Project a time-major spectrogram onto filterbank bands.

    Parameters
    ----------
    spectrogram : np.ndarray [shape=(..., frames, n_bins), dtype=float32]
    blocks : from :func:`filterbank_blocks`
    n_bands : number of bands

    Returns
    -------
    bands : np.ndarray [shape=(..., frames, n_bands), dtype=float32]
    """
    out = np.empty((*spectrogram.shape[:-1], n_bands), dtype=np.float32)
    for block in blocks:
        if block.bins.start == block.bins.stop:
            out[..., block.bands] = 0.0
        else:
            np.matmul(spectrogram[..., block.bins], block.weights, out=out[..., block.bands])
    return out

def _minmax_inplace(x: np.ndarray) -> np.ndarray:
    """Scale ``x`` in place to [0, 1], ``(x - min) / (max - min)`` over the whole
    array; a constant array (digital silence) becomes zeros instead of NaN."""
    lo, hi = x.min(), x.max()
    if not hi > lo:
        x[...] = 0.0
        return x
    x -= lo
    x /= hi - lo
    return x


def regression_delta(x: np.ndarray, *, width: int = 2, axis: int = -1) -> np.ndarray:
    """Regression deltas without padding ("valid"): the result is ``2 * width`` shorter.

    ``d[t] = sum_{n=1..N} n (x[t+n] - x[t-n]) / (2 sum_{n=1..N} n^2)``; for
    N = 2: ``(x[t+1] - x[t-1]) / 10 + (x[t+2] - x[t-2]) / 5``.

    Parameters
    ----------
    x : np.ndarray [shape=(..., frames, ...)]
    width : N, frames on each side
    axis : the time axis

    Returns
    -------
    delta : np.ndarray [shape=(..., frames - 2 N, ...)], ``delta[t]`` belongs to frame ``t + N``
    """
    x = np.asarray(x)
    axis = axis % x.ndim
    length = x.shape[axis]
    if length <= 2 * width:
        raise ValueError(f"{length} frames are too few for deltas of width {width}")
    denominator = 2 * sum(n * n for n in range(1, width + 1))

    def frames(start: int) -> np.ndarray:
        index = [slice(None)] * x.ndim
        index[axis] = slice(start, start + length - 2 * width)
        return x[tuple(index)]

    out = None
    for n in range(1, width + 1):
        term = frames(width + n) - frames(width - n)
        term /= denominator / n
        if out is None:
            out = term
        else:
            out += term
    return out


def stack_deltas(x: np.ndarray, *, width: int = 2, out: np.ndarray | None = None) -> np.ndarray:
    """The model input: static, delta and delta-delta stacked on the channel axis.

    Parameters
    ----------
    x : np.ndarray [shape=(channels, frames, freq)] scaled log-mel of each
        channel, time-major (the layout :func:`power_spectrogram` and
        :func:`apply_filterbank` give)
    width : delta width N
    out : optional array of shape ``(freq, frames - 4 N, 3 channels)`` (any
        float dtype) to fill

    Returns
    -------
    features : np.ndarray [shape=(freq, frames - 4 N, 3 channels)], float32 unless ``out`` is given
        channels ordered ``[x_1..x_C, dx_1..dx_C, ddx_1..ddx_C]`` with the
        static part cut to ``x[2N:-2N]`` and the delta to ``dx[N:-N]`` (frames).
    """
    x = np.asarray(x, dtype=np.float32)
    channels, n_frames, n_freq = x.shape
    keep = n_frames - 4 * width
    if out is None:
        out = np.empty((n_freq, keep, 3 * channels), dtype=np.float32)
    delta = regression_delta(x, width=width, axis=1)
    delta2 = regression_delta(delta, width=width, axis=1)
    # gather time-major (time, 3 channels, freq) with contiguous copies, then
    # one transposing cast into out (twice as fast as gathering freq-major)
    stacked = np.empty((keep, 3 * channels, n_freq), dtype=np.float32)
    for c in range(channels):
        stacked[:, c] = x[c, 2 * width:2 * width + keep]
        stacked[:, channels + c] = delta[c, width:width + keep]
        stacked[:, 2 * channels + c] = delta2[c]
    out[...] = stacked.transpose(2, 0, 1)
    return out


def match_channels(y: np.ndarray, channels: int, *, downmix: bool, path: str | os.PathLike = "audio") -> tuple[np.ndarray, bool]:
    """Give ``y`` the configured number of channels.

    Parameters
    ----------
    y : np.ndarray [shape=(file_channels, samples)]
    channels : channels the front end needs
    downmix : with ``channels == 1``, average a multi-channel file to mono
    path : file name for the error message

    Returns
    -------
    y : np.ndarray [shape=(channels, samples)]
    downmixed : whether ``y`` was averaged to mono

    Raises
    ------
    AudioError
        the file has another number of channels and cannot be downmixed.
    """
    found = y.shape[0]
    if found == channels:
        return y, False
    if channels == 1 and downmix:
        return y.mean(axis=0, keepdims=True, dtype=np.float32), True
    hint = "" if channels != 1 else " (set downmix: true to average channels)"
    raise AudioError(f"{path}: {found} channel{'s' if found != 1 else ''}, the front end needs {channels}{hint}")


def fit_duration(
    y: np.ndarray, n_samples: int, *, pad_tolerance: float, sr: int, path: str | os.PathLike = "audio",
) -> tuple[np.ndarray, int]:
    """Cut or zero-pad ``y`` to exactly ``n_samples`` samples.

    Longer clips keep their first ``n_samples`` samples. Shorter clips are
    zero-padded at the end when they lack at most ``pad_tolerance`` of the
    duration (0.1: up to 10 %; 1: any shorter clip); anything shorter is an error.

    Returns
    -------
    y : np.ndarray [shape=(channels, n_samples)]
    change : samples added (> 0), cut (< 0) or 0

    Raises
    ------
    AudioError
        the clip is shorter than ``(1 - pad_tolerance) * n_samples``.
    """
    length = y.shape[-1]
    if length >= n_samples:
        return y[..., :n_samples], n_samples - length
    minimum = math.ceil(n_samples * (1.0 - pad_tolerance) - 1e-9)
    if length < minimum:
        raise AudioError(
            f"{path}: {length / sr:.3f} s long, the front end needs {n_samples / sr:g} s "
            f"(shorter clips are zero-padded only down to {minimum / sr:.3f} s, pad_tolerance {pad_tolerance:g}; "
            "asctool featurize --duration SECONDS|auto sets the length, --pad-tolerance 1 pads any shorter clip)"
        )
    out = np.zeros((*y.shape[:-1], n_samples), dtype=y.dtype)
    out[..., :length] = y
    return out, n_samples - length


def preemphasis(y: np.ndarray, coefficient: float) -> np.ndarray:
    """Pre-emphasis ``y[n] = x[n] - a x[n-1]`` along the last axis, ``y[0] = x[0]``.

    The first-order high-pass of RawNet's input (Jung et al., Interspeech 2019
    and 2020; a = 0.97).

    Parameters
    ----------
    y : np.ndarray [shape=(..., samples)]
    coefficient : float
        ``a`` in [0, 1).

    Returns
    -------
    np.ndarray, float32, same shape
    """
    y = np.asarray(y, dtype=np.float32)
    out = y.copy()
    out[..., 1:] -= np.float32(coefficient) * y[..., :-1]
    return out


class FrontEnd:
    """One front-end configuration with its constants precomputed.

    Calling it maps a waveform of the configured rate, channels and duration
    to exactly what a model consumes. Build it once and reuse it: the window
    and mel filters are computed here, not per clip.

    Parameters
    ----------
    config : a resolved configuration (:func:`resolve_config`)

    Attributes
    ----------
    n_samples : samples per clip (``duration * sr``)
    n_frames : STFT frames per clip
    feature_shape : (freq, time, channels) of the output; preset 1a gives
        (128, 423, 3), preset 1b (128, 461, 6)
    """

    def __init__(self, config: Mapping[str, Any]) -> None:
        self.config = dict(config)
        c = self.config
        self.sr = int(c["sr"])
        self.channels = int(c["channels"])
        self.n_samples = int(round(c["duration"] * c["sr"]))
        if c.get("frontend") == "raw":   # the waveform itself, pre-emphasised (1, samples, channels)
            self.n_frames, self.feature_shape = self.n_samples, (1, self.n_samples, self.channels)
            return
        self.n_frames = frame_count(self.n_samples, n_fft=c["n_fft"], hop_length=c["hop_length"],
                                    center=c["center"])
        self.window = window_function(c["window"], c["win_length"], c["n_fft"]).astype(np.float32)
        self.filterbank = mel_filterbank(sr=c["sr"], n_fft=c["n_fft"], n_mels=c["n_mels"], fmin=c["fmin"],
                                         fmax=c["fmax"], htk=c["htk"], norm=c["norm"])
        self.blocks = filterbank_blocks(self.filterbank)
        width = int(c["delta_width"])
        if c["deltas"]:
            self.feature_shape = (int(c["n_mels"]), self.n_frames - 4 * width, 3 * self.channels)
        else:
            self.feature_shape = (int(c["n_mels"]), self.n_frames, self.channels)

    def __call__(self, y: np.ndarray, *, out: np.ndarray | None = None) -> np.ndarray:
        """Features of one clip.

        Parameters
        ----------
        y : np.ndarray [shape=(channels, n_samples)] float waveform, full scale 1.0
        out : optional array of shape ``feature_shape`` (any float dtype) to fill

        Returns
        -------
        features : np.ndarray [shape=feature_shape], float32 unless ``out`` is given
        """
        c = self.config
        y = np.asarray(y, dtype=np.float32)
        if y.shape != (self.channels, self.n_samples):
            raise ValueError(f"expected a waveform of shape {(self.channels, self.n_samples)}, got {y.shape}")
        if c.get("frontend") == "raw":
            if out is None:
                out = np.empty(self.feature_shape, dtype=np.float32)
            out[0] = preemphasis(y, float(c["preemphasis"])).T
            return out
        spec = power_spectrogram(y, self.window, hop_length=c["hop_length"], center=c["center"],
                                 pad_mode=c["pad_mode"], power=c["power"])
        mel = apply_filterbank(spec, self.blocks, c["n_mels"])  # (channels, frames, n_mels)
        if c["log"]:
            mel += np.float32(c["log_offset"])
            np.log(mel, out=mel)
        lo, hi = mel.min(), mel.max()
        if not (np.isfinite(lo) and np.isfinite(hi)):
            raise ValueError("the spectrogram holds NaN or Inf values")
        if c["scaling"] == "minmax":
            mel = _minmax_inplace(mel)
        elif out is not None and out.dtype == np.float16 and max(-lo, hi) > _FLOAT16_MAX:
            # deltas are never larger than the static values, so this bounds every channel
            raise ValueError(f"features up to {max(-lo, hi):.3g} overflow float16")
        if out is None:
            out = np.empty(self.feature_shape, dtype=np.float32)
        if c["deltas"]:
            stack_deltas(mel, width=int(c["delta_width"]), out=out)
        else:
            out[...] = mel.transpose(2, 1, 0)
        return out
