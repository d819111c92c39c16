"""The front end: log-mel spectrogram, per-clip scaling and deltas (``asctool featurize``).

The module has three layers:

- **configuration**: the packaged presets ``1a`` and ``1b`` and YAML files,
  validated into one flat dict (:func:`resolve_config`); that dict is stored
  with the features so that later stages can compare front ends.
- **pure functions** (arrays in, arrays out, no I/O): :func:`window_function`,
  :func:`mel_filterbank`, :func:`power_spectrogram`, :func:`apply_filterbank`,
  :func:`minmax_scale`, :func:`regression_delta`, :func:`stack_deltas`,
  :func:`fit_duration`, :func:`match_channels` and :class:`FrontEnd`, which
  precomputes the constants of one configuration and maps a waveform to
  exactly what a model consumes.
- **the stage** :func:`featurize`: manifest in, features file out, with worker
  processes, shards and the combination of shards.

The computation follows REFERENCE.md section 2: STFT (n_fft 2048, periodic
Hann, hop 1024, centred with reflect padding) -> power -> 128 HTK mel bands
without filter normalisation -> ``log(mel + 1e-8)`` -> min-max over the whole
clip -> N = 2 regression deltas without padding, stacked as
``[static[4:-4], delta[2:-2], delta-delta]`` on the channel axis. It runs in
float32 with a banded mel projection; the tests check it against an
independent float64 computation.
"""
from __future__ import annotations

import contextlib
import logging
import math
import os
import sys
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np
import scipy.fft

from .audio import audio_info, read_audio
from .errors import ArtifactError, AsctoolError, AudioError, ConfigError, MismatchError

__all__ = [
    "PRESETS",
    "CONFIG_KEYS",
    "preset_config",
    "load_config",
    "validate_config",
    "resolve_config",
    "parse_shard",
    "shard_range",
    "frame_count",
    "window_function",
    "hz_to_mel",
    "mel_to_hz",
    "mel_filterbank",
    "frame_view",
    "frame_segments",
    "windowed_frames",
    "power_spectrogram",
    "filterbank_blocks",
    "apply_filterbank",
    "minmax_scale",
    "regression_delta",
    "stack_deltas",
    "match_channels",
    "fit_duration",
    "FrontEnd",
    "featurize",
]

log = logging.getLogger(__name__)

#: Names of the packaged front ends (``asctool/conf/preset_<name>.yaml``).
PRESETS = ("1a", "1b")

#: Every key of a front-end configuration, in the order they are documented.
CONFIG_KEYS = (
    "sr", "channels", "downmix", "duration", "pad_tolerance",
    "n_fft", "win_length", "hop_length", "window", "center", "pad_mode", "power",
    "n_mels", "fmin", "fmax", "htk", "norm",
    "log", "log_offset", "scaling", "deltas", "delta_width",
)
_WINDOWS = ("hann", "hamming", "blackman", "rectangular")
_PAD_MODES = ("reflect", "constant", "edge")
_SCALINGS = ("minmax", "none")
_NORMS = (None, "slaney")

# Environment variables that size the thread pools of BLAS/OpenMP libraries;
# worker processes start with all of them at 1 so that N workers use N cores.
_FLOAT16_MAX = 65504.0

_THREAD_ENV = (
    "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS",
)


# --------------------------------------------------------------------------
# configuration
# --------------------------------------------------------------------------
def _int(minimum: int) -> Callable[[Any], int]:
    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ValueError(f"must be an integer >= {minimum}")
        return int(value)

    return check


def _float(low: float, high: float | None = None, *, low_open: bool = True, high_open: bool = False,
           nullable: bool = False) -> Callable[[Any], float | None]:
    def check(value: Any) -> float | None:
        if value is None and nullable:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ValueError("must be a number" + (" or null" if nullable else ""))
        value = float(value)
        if (value <= low if low_open else value < low) or (
            high is not None and (value >= high if high_open else value > high)
        ):
            lo = f"{'>' if low_open else '>='} {low:g}"
            hi = "" if high is None else f" and {'<' if high_open else '<='} {high:g}"
            raise ValueError(f"must be {lo}{hi}")
        return value

    return check


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError("must be true or false")
    return value


def _choice(options: Sequence[Any]) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        if value not in options:
            shown = ", ".join("null" if o is None else str(o) for o in options)
            raise ValueError(f"must be one of {shown}")
        return value

    return check


_CHECKS: dict[str, Callable[[Any], Any]] = {
    "sr": _int(1000),
    "channels": _int(1),
    "downmix": _bool,
    "duration": _float(0.0),
    "pad_tolerance": _float(0.0, 1.0, low_open=False, high_open=True),
    "n_fft": _int(16),
    "win_length": _int(1),
    "hop_length": _int(1),
    "window": _choice(_WINDOWS),
    "center": _bool,
    "pad_mode": _choice(_PAD_MODES),
    "power": _float(0.0),
    "n_mels": _int(1),
    "fmin": _float(0.0, low_open=False),
    "fmax": _float(0.0, nullable=True),
    "htk": _bool,
    "norm": _choice(_NORMS),
    "log": _bool,
    "log_offset": _float(0.0),
    "scaling": _choice(_SCALINGS),
    "deltas": _bool,
    "delta_width": _int(1),
}


def validate_config(raw: Mapping[str, Any], source: str) -> dict[str, Any]:
    """Check a complete front-end configuration and return it resolved.

    Parameters
    ----------
    raw : mapping with exactly the keys of :data:`CONFIG_KEYS`
    source : where it came from (a file name), used in error messages

    Returns
    -------
    config : dict
        the same keys in :data:`CONFIG_KEYS` order, numbers normalised to
        int/float and ``fmax: null`` resolved to ``sr / 2``.

    Raises
    ------
    ConfigError
        unknown or missing keys, values of the wrong type or out of range,
        or settings that contradict each other; the message names ``source``
        and the key.
    """
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{source}: a front-end config must be a mapping of keys to values")
    unknown = [k for k in raw if k not in _CHECKS]
    if unknown:
        raise ConfigError(
            f"{source}: unknown key {unknown[0]!r} (known keys: {', '.join(CONFIG_KEYS)})"
        )
    missing = [k for k in CONFIG_KEYS if k not in raw]
    if missing:
        raise ConfigError(f"{source}: missing key {missing[0]!r}")
    config: dict[str, Any] = {}
    for key in CONFIG_KEYS:
        try:
            config[key] = _CHECKS[key](raw[key])
        except ValueError as exc:
            raise ConfigError(f"{source}: key {key!r} {exc}, got {raw[key]!r}") from None

    def bad(key: str, why: str) -> ConfigError:
        return ConfigError(f"{source}: key {key!r} {why}, got {config[key]!r}")

    nyquist = config["sr"] / 2
    if config["fmax"] is None:
        config["fmax"] = float(nyquist)
    if config["fmax"] > nyquist:
        raise bad("fmax", f"must be <= sr / 2 = {nyquist:g}")
    if config["fmin"] >= config["fmax"]:
        raise bad("fmin", f"must be below fmax ({config['fmax']:g})")
    if config["win_length"] > config["n_fft"]:
        raise bad("win_length", f"must be <= n_fft ({config['n_fft']})")
    n_samples = round(config["duration"] * config["sr"])
    if n_samples < config["n_fft"]:
        raise bad("duration", f"must give at least n_fft ({config['n_fft']}) samples")
    frames = frame_count(n_samples, n_fft=config["n_fft"], hop_length=config["hop_length"],
                         center=config["center"])
    if config["deltas"] and frames <= 4 * config["delta_width"]:
        raise bad("delta_width", f"leaves no frames of the {frames} (deltas lose 4 x delta_width)")
    return config


def _read_yaml(path: Path) -> Any:
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read ({exc})") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" at line {where.line + 1}" if where is not None else ""
        raise ConfigError(f"{path}: not valid YAML{line} ({getattr(exc, 'problem', exc)})") from None


def _preset_raw(name: str) -> dict[str, Any]:
    from importlib import resources

    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r} (presets: {', '.join(PRESETS)})")
    ref = resources.files("asctool") / "conf" / f"preset_{name}.yaml"
    with resources.as_file(ref) as path:
        raw = _read_yaml(Path(path))
    return dict(raw)


def preset_config(name: str) -> dict[str, Any]:
    """The resolved configuration of a packaged preset (``"1a"`` or ``"1b"``)."""
    return validate_config(_preset_raw(name), f"preset {name}")


def load_config(path: str | os.PathLike) -> dict[str, Any]:
    """Read and validate a YAML front-end configuration.

    The file holds any of the keys of :data:`CONFIG_KEYS` and optionally
    ``base: 1a`` or ``base: 1b``; keys it leaves out are taken from that preset
    (``1a`` when ``base`` is absent). Errors name the file and the key.
    """
    path = Path(path)
    raw = _read_yaml(path)
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{path}: a front-end config must be a mapping of keys to values")
    raw = dict(raw)
    base = raw.pop("base", "1a")
    if base not in PRESETS:
        raise ConfigError(f"{path}: key 'base' must be one of {', '.join(PRESETS)}, got {base!r}")
    unknown = [k for k in raw if k not in _CHECKS]
    if unknown:
        raise ConfigError(
            f"{path}: unknown key {unknown[0]!r} (known keys: base, {', '.join(CONFIG_KEYS)})"
        )
    merged = _preset_raw(str(base))
    merged.update(raw)
    return validate_config(merged, str(path))


def resolve_config(preset: str | None = None, config_path: str | os.PathLike | None = None) -> dict[str, Any]:
    """The configuration of ``--preset`` or ``--config`` (preset 1a when neither)."""
    if preset is not None and config_path is not None:
        raise ConfigError(f"{config_path}: give either a config file or a preset ({preset}), not both")
    if config_path is not None:
        return load_config(config_path)
    return preset_config(preset or "1a")


def parse_shard(text: str | Sequence[int]) -> tuple[int, int]:
    """Parse ``"K/N"`` (1-based shard K of N) into ``(K, N)``."""
    if isinstance(text, str):
        parts = text.split("/")
        try:
            k, n = (int(p) for p in parts)
        except ValueError:
            raise ConfigError(f"--shard must look like K/N (e.g. 2/4), got {text!r}") from None
    else:
        k, n = (int(v) for v in text)
    if not 1 <= k <= n:
        raise ConfigError(f"--shard K/N needs 1 <= K <= N, got {k}/{n}")
    return k, n


def shard_range(n_clips: int, k: int, n: int) -> range:
    """Rows of shard ``k`` of ``n`` (1-based): a contiguous block of the manifest.

    Blocks follow the manifest order and differ in size by at most one clip,
    so combining shards 1..N in order gives the manifest order back.
    """
    return range((k - 1) * n_clips // n, k * n_clips // n)


# --------------------------------------------------------------------------
# pure functions
# --------------------------------------------------------------------------
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


def windowed_frames(
    y: np.ndarray, window: np.ndarray, *, hop_length: int, center: bool = True, pad_mode: str = "reflect",
) -> np.ndarray:
    """Frames of ``y`` (see :func:`frame_view`) multiplied by ``window``.

    Returns
    -------
    frames : np.ndarray [shape=(channels, frames, n_fft)], dtype of ``y * window``
    """
    return frame_view(y, window.shape[0], hop_length=hop_length, center=center, pad_mode=pad_mode) * window


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


def minmax_scale(x: np.ndarray) -> np.ndarray:
    """Scale the whole array to [0, 1]: ``(x - min) / (max - min)``.

    A constant array (e.g. digital silence) becomes all zeros instead of NaN.
    Returns a new float32 array of the same shape.
    """
    x = np.asarray(x, dtype=np.float32)
    return _minmax_inplace(x.copy())


def _minmax_inplace(x: np.ndarray) -> np.ndarray:
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


def stack_deltas(x: np.ndarray, *, width: int = 2, dtype: Any = np.float32) -> np.ndarray:
    """The model input: static, delta and delta-delta stacked on the channel axis.

    Parameters
    ----------
    x : np.ndarray [shape=(channels, freq, frames)] scaled log-mel of each channel
    width : delta width N
    dtype : output dtype

    Returns
    -------
    features : np.ndarray [shape=(freq, frames - 4 N, 3 channels)]
        channels ordered ``[x_1..x_C, dx_1..dx_C, ddx_1..ddx_C]`` with the
        static part cut to ``x[..., 2N:-2N]`` and the delta to ``dx[..., N:-N]``.
    """
    x = np.asarray(x, dtype=np.float32)
    channels, n_freq, n_frames = x.shape
    out = np.empty((n_freq, n_frames - 4 * width, 3 * channels), dtype=dtype)
    _stack_time_major(x.transpose(0, 2, 1), width, out)
    return out


def _stack_time_major(x: np.ndarray, width: int, out: np.ndarray) -> None:
    """:func:`stack_deltas` on ``(channels, frames, freq)``, written into ``out``."""
    channels, n_frames, n_freq = x.shape
    keep = n_frames - 4 * width
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
    duration (0.1: up to 10 %); anything shorter is an error.

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
            f"(shorter clips are zero-padded only down to {minimum / sr:.3f} s, pad_tolerance {pad_tolerance:g})"
        )
    out = np.zeros((*y.shape[:-1], n_samples), dtype=y.dtype)
    out[..., :length] = y
    return out, n_samples - length


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
            _stack_time_major(mel, int(c["delta_width"]), out)
        else:
            out[...] = mel.transpose(2, 1, 0)
        return out


# --------------------------------------------------------------------------
# per-clip work, in the parent (--nj 1) or in worker processes
# --------------------------------------------------------------------------
class _ClipWorker:
    """Reads clips and computes their features; one per process."""

    def __init__(self, config: Mapping[str, Any], resample: bool, dtype: str) -> None:
        self.front = FrontEnd(config)
        self.resample = resample
        self.dtype = np.dtype(dtype)

    def __call__(self, paths: Sequence[str], out: np.ndarray) -> list[tuple[str, str, int]]:
        """Write the features of the clips ``paths`` into ``out[:len(paths)]``.

        Returns notes ``(kind, path, detail)`` for resampled, downmixed, padded
        and cut clips, reported once by the parent.
        """
        front, config = self.front, self.front.config
        notes: list[tuple[str, str, int]] = []
        for j, path in enumerate(paths):
            if self.resample:
                rate = audio_info(path).samplerate
                if rate != front.sr:
                    notes.append(("resampled", path, rate))
            y, _ = read_audio(path, sr=front.sr, resample_to=self.resample)
            y, downmixed = match_channels(y, front.channels, downmix=config["downmix"], path=path)
            if downmixed:
                notes.append(("downmixed", path, 0))
            y, change = fit_duration(y, front.n_samples, pad_tolerance=config["pad_tolerance"],
                                     sr=front.sr, path=path)
            if change:
                notes.append(("padded" if change > 0 else "cut", path, change))
            try:
                front(y, out=out[j])
            except ValueError as exc:
                hint = " (use --dtype float32)" if "float16" in str(exc) else ""
                raise AudioError(f"{path}: {exc}{hint}") from None
        return notes

    def block(self, paths: Sequence[str]) -> tuple[np.ndarray, list[tuple[str, str, int]]]:
        """Features of the clips ``paths`` in a new array, and their notes."""
        out = np.empty((len(paths), *self.front.feature_shape), dtype=self.dtype)
        return out, self(paths, out)


_WORKER: _ClipWorker | None = None
#: The anonymous shared mapping of a forked worker's parent (see :class:`_Runner`).
_SHARED: Any = None


def _keep_freed_memory() -> None:
    """Ask glibc to keep freed memory in the heap instead of returning it to the OS.

    Every clip allocates and frees the same few arrays of some MB; by default
    glibc unmaps them on free and the next clip page-faults them back in,
    which costs more than the FFT. With a fixed mmap threshold (32 MB) and a
    high trim threshold the heap is reused. The heap stays at its peak size
    (tens of MB). No-op where ``mallopt`` is missing (not glibc).
    """
    try:
        import ctypes

        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return
    m_trim_threshold, m_mmap_threshold = -1, -3
    mallopt(m_mmap_threshold, 32 << 20)
    mallopt(m_trim_threshold, 256 << 20)


def _init_worker(config: Mapping[str, Any], resample: bool, dtype: str, pin_blas: bool = False,
                 shared: Any = None) -> None:
    global _WORKER, _SHARED
    if pin_blas:  # forked from the parent: its BLAS is loaded already, env vars come too late
        os.environ.update({name: "1" for name in _THREAD_ENV})
        for set_threads in _blas_thread_setters() or ():
            set_threads(1)
    _keep_freed_memory()
    _WORKER = _ClipWorker(config, resample, dtype)
    _SHARED = shared


def _run_worker(task: tuple[int, Sequence[str], int | None]):
    """Compute one task ``(start, paths, offset)`` in a worker.

    With an ``offset``, the features go into the shared mapping at that byte
    offset and only ``(start, None, notes, cpu)`` travels back; without, the
    array is sent back pickled.
    """
    cpu_started = time.process_time()
    start, paths, offset = task
    if offset is None:
        block, notes = _WORKER.block(paths)
    else:
        block = np.ndarray((len(paths), *_WORKER.front.feature_shape), dtype=_WORKER.dtype, buffer=_SHARED,
                           offset=offset)
        notes, block = _WORKER(paths, block), None
    return start, block, notes, time.process_time() - cpu_started


# symbols that set the thread count of a loaded BLAS (OpenBLAS as bundled by numpy
# and scipy wheels, under its several names, and MKL); all take a C int
_BLAS_LIBRARIES = ("openblas", "mkl_rt")
_BLAS_SET_THREADS = (
    "openblas_set_num_threads", "openblas_set_num_threads64_", "scipy_openblas_set_num_threads",
    "scipy_openblas_set_num_threads64_", "MKL_Set_Num_Threads",
)


def _blas_thread_setters() -> list[Callable[[int], Any]] | None:
    """Functions that set the thread count of each BLAS library loaded in this process.

    Found through ``/proc/self/maps`` and ``ctypes`` (what threadpoolctl does,
    without the dependency). None when that is not possible: not Linux, or a
    loaded BLAS without a known setter.
    """
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:
        return None
    paths = set()
    for line in maps.splitlines():
        fields = line.split(maxsplit=5)
        if len(fields) == 6 and any(name in os.path.basename(fields[5]).lower() for name in _BLAS_LIBRARIES):
            paths.add(fields[5])
    setters = []
    for path in sorted(paths):
        try:
            library = ctypes.CDLL(path)  # already loaded: the same handle
        except OSError:
            return None
        for symbol in _BLAS_SET_THREADS:
            setter = getattr(library, symbol, None)
            if setter is not None:
                setters.append(setter)
                break
        else:
            return None
    return setters


@contextlib.contextmanager
def _single_threaded_children() -> Iterator[None]:
    """Set the BLAS/OpenMP thread variables to 1 while worker processes start."""
    saved = {name: os.environ.get(name) for name in _THREAD_ENV}
    os.environ.update({name: "1" for name in _THREAD_ENV})
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _worker_context() -> tuple[Any, bool]:
    """Where workers come from, and whether they must pin their BLAS threads themselves.

    On Linux, when the loaded BLAS libraries can be told their thread count
    (:func:`_blas_thread_setters`), workers are forked from this process:
    they start at once, with everything imported, and each sets its BLAS to
    one thread. Otherwise they are forked from a fork server, a fresh
    interpreter started with the BLAS/OpenMP thread variables at 1 that
    imports numpy, scipy.fft and this module once for all workers. Either way
    the workers start before the output file is opened, so no handle of it
    reaches them.
    """
    import multiprocessing

    methods = multiprocessing.get_all_start_methods()
    if "fork" in methods and _blas_thread_setters() is not None:
        return multiprocessing.get_context("fork"), True
    if "forkserver" not in methods:  # Windows: fresh interpreters, started with the variables at 1
        return multiprocessing.get_context("spawn"), False
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([__name__])
    return context, False


class _Runner:
    """Runs the tasks ``(start, paths)`` in this process or in ``nj`` workers.

    Enter it before opening the output (the workers start on entering); then
    iterate over the results, which come in no particular order. Each result
    is ``(start, features, notes, cpu_seconds)`` (see :class:`_ClipWorker`),
    the CPU time counting worker processes only (0 for tasks computed in this
    process). A result's array is valid until the next one is asked for.

    Workers run with one BLAS/OpenMP thread each (:func:`_worker_context`), so
    N workers keep to N cores; at most ``2 nj + 2`` tasks are in flight, so
    memory does not grow with the number of clips. Forked workers write their
    features straight into an anonymous shared mapping with one slot per task
    in flight, which the parent writes to disk from: no pickling, no pipe
    (otherwise, about a fifth of the CPU time of ``--nj 2``). While no worker
    has delivered yet (a fork server takes a good part of a second to import
    numpy and scipy) this process computes tasks from the end of the list
    itself; it stops as soon as a worker delivers.
    """

    def __init__(self, tasks: Sequence[tuple[int, list[str]]], worker_args: tuple, nj: int,
                 feature_shape: tuple[int, ...]) -> None:
        self.queue = deque(tasks)
        self.worker_args = worker_args
        self.nj = min(nj, max(1, len(self.queue)))
        self.max_pending = 2 * self.nj + 2
        self.pending: deque = deque()  # (future, slot or None, clips)
        self.executor = None
        self.shared: Any = None
        self.feature_shape = tuple(feature_shape)
        self.slot_bytes = 0
        self.free_slots: deque = deque()

    def __enter__(self) -> "_Runner":
        if self.nj > 1:
            import mmap
            import warnings
            from concurrent.futures import ProcessPoolExecutor

            context, pin_blas = _worker_context()
            if context.get_start_method() == "fork":  # the mapping is inherited by fork only
                clips = max(len(paths) for _, paths in self.queue)
                self.slot_bytes = clips * math.prod(self.feature_shape) * np.dtype(self.worker_args[2]).itemsize
                slots = self.max_pending + 1  # + the one the consumer is writing from
                self.shared = mmap.mmap(-1, slots * self.slot_bytes)
                self.free_slots = deque(range(slots))
            with _single_threaded_children(), warnings.catch_warnings():
                # Python >= 3.12 warns about fork() with threads running; ours are
                # OpenBLAS's idle pool threads, which OpenBLAS itself makes fork-safe
                warnings.filterwarnings("ignore", message=".*use of fork.*", category=DeprecationWarning)
                self.executor = ProcessPoolExecutor(self.nj, mp_context=context, initializer=_init_worker,
                                                    initargs=(*self.worker_args, pin_blas, self.shared))
                self._refill()  # starts the workers now
        return self

    def _refill(self) -> None:
        while self.queue and len(self.pending) < self.max_pending:
            start, paths = self.queue.popleft()
            slot = self.free_slots.popleft() if self.shared is not None else None
            offset = None if slot is None else slot * self.slot_bytes
            self.pending.append((self.executor.submit(_run_worker, (start, paths, offset)), slot, len(paths)))

    def _slot_view(self, slot: int, clips: int) -> np.ndarray:
        return np.ndarray((clips, *self.feature_shape), dtype=self.worker_args[2], buffer=self.shared,
                          offset=slot * self.slot_bytes)

    def __iter__(self) -> Iterator[tuple[int, np.ndarray, list[tuple[str, str, int]], float]]:
        local: _ClipWorker | None = None
        if self.executor is None:
            _keep_freed_memory()
            local = _ClipWorker(*self.worker_args)
            while self.queue:
                start, paths = self.queue.popleft()
                yield (start, *local.block(paths), 0.0)  # CPU of this process is counted by the caller
            return
        workers_ready = False
        while self.pending:
            if not workers_ready and not self.pending[0][0].done() and self.queue:
                if local is None:
                    _keep_freed_memory()
                    local = _ClipWorker(*self.worker_args)
                start, paths = self.queue.pop()
                yield (start, *local.block(paths), 0.0)
                continue
            future, slot, clips = self.pending.popleft()
            start, block, notes, cpu = future.result()
            workers_ready = True
            self._refill()
            if slot is None:
                yield start, block, notes, cpu
            else:
                yield start, self._slot_view(slot, clips), notes, cpu
                self.free_slots.append(slot)  # the consumer is done with it

    def __exit__(self, *exc) -> None:
        if self.executor is not None:
            self.executor.shutdown(wait=True, cancel_futures=True)


# --------------------------------------------------------------------------
# the stage
# --------------------------------------------------------------------------
def _check_output(out: Path, force: bool) -> None:
    if out.exists() and not force:
        raise ArtifactError(f"{out}: already exists (use --force to overwrite)")
    if out.exists() and out.is_dir():
        raise ArtifactError(f"{out}: is a folder")


def _combine(shards: Sequence[str | os.PathLike], out: Path, *, manifest_path, preset, config_path,
             force: bool) -> dict[str, Any]:
    from .artifacts import combine_features, open_features

    shards = [Path(s) for s in shards]
    _check_output(out, force)
    for shard in shards:
        if shard.resolve() == out.resolve():
            raise ArtifactError(f"{out}: the output is also one of the shards to combine")
    ids: list[str] = []
    configs = []
    for shard in shards:
        with open_features(shard) as f:
            ids.extend(str(i) for i in f.ids)
            configs.append((shard, f.config))
    if preset is not None or config_path is not None:
        from .artifacts import check_same_config

        wanted = resolve_config(preset, config_path)
        for shard, config in configs:
            check_same_config(config, wanted, shard, config_path or f"preset {preset}")
    if manifest_path is not None:
        from .manifest import read_manifest

        expected = read_manifest(manifest_path).ids
        if ids != expected:
            missing = len(set(expected) - set(ids))
            extra = len(set(ids) - set(expected))
            raise MismatchError(
                f"{manifest_path}: the shards do not hold exactly its clips in order "
                f"({len(ids)} clips in the shards, {len(expected)} in the manifest, "
                f"{missing} missing, {extra} not in the manifest)"
            )
    combine_features(shards, out)
    log.info("%s: combined %d shards, %d clips (virtual dataset)", out, len(shards), len(ids))
    return {"out": str(out), "clips": len(ids), "shards": [str(s) for s in shards]}


def featurize(
    manifest_path: str | os.PathLike | None,
    out: str | os.PathLike,
    *,
    preset: str | None = None,
    config_path: str | os.PathLike | None = None,
    dtype: str = "float16",
    resample: bool = False,
    nj: int = 1,
    shard: str | Sequence[int] | None = None,
    combine: Sequence[str | os.PathLike] = (),
    force: bool = False,
) -> dict[str, Any]:
    """Compute the model-input features of every clip of a manifest (``asctool featurize``).

    Parameters
    ----------
    manifest_path : manifest TSV (optional with ``combine``: then the combined
        ids are checked against it)
    out : features file to write (HDF5, atomic)
    preset : ``"1a"`` or ``"1b"`` (default ``"1a"``)
    config_path : YAML front-end config instead of a preset
    dtype : ``"float16"`` or ``"float32"`` storage
    resample : resample clips at another rate instead of failing
    nj : worker processes (1: compute in this process)
    shard : ``"K/N"``: only the K-th of N contiguous blocks of the manifest
    combine : shard files to combine into ``out`` (virtual dataset) instead
        of computing features
    force : overwrite an existing ``out``

    Returns
    -------
    summary : dict with the output path, clip count, feature shape, dtype,
        time taken (wall and CPU) and counts of resampled, downmixed, padded
        and cut clips.
    """
    out = Path(out)
    if combine:
        if shard is not None:
            raise ConfigError("--shard cannot be used with --combine")
        return _combine(combine, out, manifest_path=manifest_path, preset=preset, config_path=config_path,
                        force=force)
    if manifest_path is None:
        raise ConfigError("--manifest is required (unless combining shards with --combine)")
    if dtype not in ("float16", "float32"):
        raise ConfigError(f"--dtype must be float16 or float32, got {dtype!r}")
    if nj < 1:
        raise ConfigError(f"--nj must be at least 1, got {nj}")
    config = resolve_config(preset, config_path)
    _check_output(out, force)

    from .artifacts import FeaturesWriter
    from .console import progress
    from .manifest import read_manifest

    manifest = read_manifest(manifest_path)
    rows = range(len(manifest))
    extra_attrs: dict[str, Any] = {}
    if shard is not None:
        k, n = parse_shard(shard)
        rows = shard_range(len(manifest), k, n)
        extra_attrs["shard"] = f"{k}/{n}"
        if not rows:
            log.warning("%s: shard %d/%d of %d clips is empty", manifest_path, k, n, len(manifest))
    clips = [manifest.clips[i] for i in rows]
    paths = [str(manifest.audio_path(clip)) for clip in clips]
    front = FrontEnd(config)
    batch = 8 if nj == 1 else 4
    tasks = [(i, paths[i:i + batch]) for i in range(0, len(paths), batch)]
    inputs = [manifest_path] + ([config_path] if config_path is not None else [])
    counts = {"resampled": 0, "downmixed": 0, "padded": 0, "cut": 0}
    started, cpu_started, worker_cpu = time.perf_counter(), time.process_time(), 0.0
    runner = _Runner(tasks, (config, resample, dtype), nj, front.feature_shape)
    with _worker_failures(manifest_path), runner, FeaturesWriter(
        out, n=len(clips), feature_shape=front.feature_shape, config=config,
        ids=[c.id for c in clips], scenes=[c.scene for c in clips], devices=[c.device for c in clips],
        locations=[c.location for c in clips], dtype=dtype, inputs=inputs, extra_attrs=extra_attrs,
    ) as writer, progress(len(clips), "featurize") as advance:
        for start, block, notes, cpu in runner:
            writer.write_block(start, block)
            for kind, path, change in notes:
                counts[kind] += 1
                if counts[kind] == 1:
                    _first_note(kind, path, change, config)
            advance(block.shape[0])
            worker_cpu += cpu
    seconds = time.perf_counter() - started
    # CPU of this process plus the work done in worker processes (not their start-up)
    cpu_seconds = time.process_time() - cpu_started + worker_cpu
    for kind in counts:
        if counts[kind] > 1:
            log.info("%d clips %s in all", counts[kind], kind)
    rate = len(clips) / seconds if seconds > 0 else float("inf")
    log.info("%s: %d clips, features %s %s, %.1f s (%.1f clips/s, %s)", out, len(clips),
             "x".join(map(str, front.feature_shape)), dtype, seconds, rate,
             f"{nj} workers" if nj > 1 else "in this process")
    summary: dict[str, Any] = {
        "out": str(out), "clips": len(clips), "feature_shape": list(front.feature_shape), "dtype": dtype,
        "seconds": round(seconds, 3), "clips_per_second": round(rate, 1), "cpu_seconds": round(cpu_seconds, 3),
        **counts,
    }
    if shard is not None:
        summary["shard"] = extra_attrs["shard"]
    return summary


@contextlib.contextmanager
def _worker_failures(manifest_path) -> Iterator[None]:
    """Report a worker process that died (killed, out of memory) as a one-line error."""
    from concurrent.futures.process import BrokenProcessPool

    try:
        yield
    except BrokenProcessPool as exc:
        raise AsctoolError(
            f"{manifest_path}: a featurize worker process died ({exc}); run with --nj 1 to see why"
        ) from None


def _first_note(kind: str, path: str, change: int, config: Mapping[str, Any]) -> None:
    """Log the first clip of each kind of adjustment (one message per run, not per clip)."""
    if kind == "resampled":
        log.warning("%s: resampling %d Hz to %d Hz (shown once; the summary counts the resampled clips)",
                    path, change, config["sr"])
    elif kind == "downmixed":
        log.warning("%s: averaging the channels to mono (this front end is mono); "
                    "every multi-channel clip is downmixed, this warning is shown once", path)
    elif kind == "padded":
        log.warning("%s: %d samples short of %g s, zero-padded at the end (shown once; the summary counts them)",
                    path, change, config["duration"])
    else:
        log.info("%s: longer than %g s, cut to its first %g s (shown once)", path, config["duration"],
                 config["duration"])
