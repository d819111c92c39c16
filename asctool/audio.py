"""Reading, checking, resampling and writing audio.

Arrays are float32 of shape ``(channels, samples)`` with full scale 1.0.
Every user-caused problem raises :class:`asctool.errors.AudioError` with a
one-line message naming the file.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import soundfile as sf

from .artifacts import atomic_path
from .errors import AudioError

__all__ = ["AudioInfo", "audio_info", "read_audio", "write_audio", "resample", "check_finite"]

log = logging.getLogger(__name__)

AudioInfo = sf._SoundFileInfo  # noqa: SLF001  (soundfile's public info record)


def audio_info(path: str | os.PathLike):
    """Header information (samplerate, channels, frames, subtype) of an audio file."""
    path = Path(path)
    if not path.exists():
        raise AudioError(f"{path}: audio file not found")
    try:
        return sf.info(str(path))
    except (RuntimeError, sf.LibsndfileError) as exc:
        raise AudioError(f"{path}: unreadable audio ({exc})") from None


def check_finite(y: np.ndarray, path: str | os.PathLike) -> None:
    """Raise if an audio array holds NaN or Inf."""
    if not np.isfinite(y).all():
        raise AudioError(f"{path}: audio contains NaN or Inf samples")


def _wav_declared_frames(path: Path, info) -> int | None:
    """Frames a RIFF/WAVE header declares in its data chunk (None if not plain WAV).

    libsndfile sizes a WAV file by its length on disk, so a file cut short
    reads without error; comparing with the header's data size catches it.
    """
    if info.format != "WAV":
        return None
    import struct

    with open(path, "rb") as handle:
        head = handle.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None
        block_align = None
        while True:
            chunk = handle.read(8)
            if len(chunk) < 8:
                return None
            cid, size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
            if cid == b"fmt ":
                fmt = handle.read(size + (size & 1))
                block_align = struct.unpack("<H", fmt[12:14])[0] if len(fmt) >= 14 else None
            elif cid == b"data":
                if not block_align or size == 0xFFFFFFFF:
                    return None
                return size // block_align
            else:
                handle.seek(size + (size & 1), 1)


def read_audio(
    path: str | os.PathLike,
    *,
    sr: int | None = None,
    resample_to: bool = False,
    dtype: str = "float32",
) -> tuple[np.ndarray, int]:
    """Read an audio file as ``(channels, samples)`` and check it.

    Parameters
    ----------
    path : audio file (any format libsndfile reads: WAV, FLAC, ...)
    sr : expected sample rate in Hz, or None to accept any
    resample_to : when the rate differs from ``sr``, resample instead of failing
    dtype : float32 or float64

    Returns
    -------
    y : np.ndarray [shape=(channels, samples)]
    sr : int, the sample rate of ``y``

    Raises
    ------
    AudioError
        missing, unreadable or truncated file (fewer frames than its header
        announces), NaN/Inf samples, or a sample rate other than ``sr``
        without ``resample_to``.
    """
    path = Path(path)
    info = audio_info(path)
    if sr is not None and info.samplerate != sr and not resample_to:
        raise AudioError(
            f"{path}: sample rate {info.samplerate} Hz, expected {sr} Hz (use --resample to convert)"
        )
    try:
        data, file_sr = sf.read(str(path), dtype=dtype, always_2d=True)
    except (RuntimeError, sf.LibsndfileError) as exc:
        raise AudioError(f"{path}: unreadable audio ({exc})") from None
    announced = max(info.frames, _wav_declared_frames(path, info) or 0)
    if data.shape[0] < announced:
        raise AudioError(
            f"{path}: truncated file ({data.shape[0]} of {announced} frames announced in its header)"
        )
    if data.shape[0] == 0:
        raise AudioError(f"{path}: audio file holds no samples")
    y = np.ascontiguousarray(data.T)
    check_finite(y, path)
    if sr is not None and file_sr != sr:
        log.debug("%s: resampling %d -> %d Hz", path, file_sr, sr)
        y = resample(y, file_sr, sr)
        file_sr = sr
    return y, int(file_sr)


def resample(y: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    """Resample ``(channels, samples)`` audio (polyphase, scipy)."""
    if orig_sr == target_sr:
        return y
    from math import gcd

    from scipy.signal import resample_poly

    g = gcd(int(orig_sr), int(target_sr))
    return resample_poly(y, target_sr // g, orig_sr // g, axis=-1).astype(y.dtype, copy=False)


_FORMATS = {".wav": ("WAV", "PCM_24"), ".flac": ("FLAC", "PCM_24")}


def write_audio(path: str | os.PathLike, y: np.ndarray, sr: int, *, subtype: str | None = None) -> Path:
    """Write ``(channels, samples)`` or ``(samples,)`` audio atomically.

    The format follows the suffix (``.wav`` or ``.flac``), 24-bit PCM unless
    ``subtype`` says otherwise. Values outside [-1, 1] are the caller's
    business (integer formats clip them).
    """
    path = Path(path)
    fmt = _FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise AudioError(f"{path}: unsupported audio suffix (use .wav or .flac)")
    y = np.asarray(y)
    data = y.T if y.ndim == 2 else y
    with atomic_path(path) as tmp:
        sf.write(str(tmp), data, int(sr), format=fmt[0], subtype=subtype or fmt[1])
    return path
