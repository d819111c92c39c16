"""Reading, checking, resampling and writing audio.

Arrays are float32 of shape ``(channels, samples)`` with full scale 1.0.
Every user-caused problem raises :class:`asctool.errors.AudioError` with a
one-line message naming the file.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

import struct
from typing import NamedTuple

import numpy as np
import soundfile as sf

from .errors import AudioError
from .io import atomic_path

__all__ = ["audio_info", "read_audio", "write_audio", "resample", "check_finite"]

log = logging.getLogger(__name__)


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


class _WavLayout(NamedTuple):
    """Where the samples of a RIFF/WAVE file are and how they are coded."""

    format_tag: int  # 1 integer PCM, 3 IEEE float (WAVE_FORMAT_EXTENSIBLE resolved)
    channels: int
    samplerate: int
    bits: int
    block_align: int
    data_offset: int  # byte offset of the first sample
    data_bytes: int  # size the header declares for the data chunk
    file_bytes: int


_WAVE_FORMAT_EXTENSIBLE = 0xFFFE


def _wav_layout(path: Path) -> _WavLayout | None:
    """Parse a RIFF/WAVE header up to its data chunk (None if not plain WAV).

    Only reads the header; anything unusual (RF64, no fmt chunk before data,
    streaming size 0xFFFFFFFF) returns None and is left to libsndfile.
    """
    try:
        with open(path, "rb") as handle:
            head = handle.read(12)
            if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
                return None
            fmt: bytes | None = None
            while True:
                chunk = handle.read(8)
                if len(chunk) < 8:
                    return None
                cid, size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
                if cid == b"fmt ":
                    fmt = handle.read(size + (size & 1))
                elif cid == b"data":
                    if fmt is None or len(fmt) < 16 or size == 0xFFFFFFFF:
                        return None
                    data_offset = handle.tell()
                    file_bytes = os.fstat(handle.fileno()).st_size
                    break
                else:
                    handle.seek(size + (size & 1), 1)
    except OSError:
        return None
    tag, channels, rate, _, block_align, bits = struct.unpack("<HHIIHH", fmt[:16])
    if tag == _WAVE_FORMAT_EXTENSIBLE:
        if len(fmt) < 26:
            return None
        tag = struct.unpack("<H", fmt[24:26])[0]  # first two bytes of the SubFormat GUID
    if not block_align:
        return None
    return _WavLayout(tag, channels, rate, bits, block_align, data_offset, size, file_bytes)


def _wav_declared_frames(path: Path, info) -> int | None:
    """Frames a RIFF/WAVE header declares in its data chunk (None if not plain WAV).

    libsndfile sizes a WAV file by its length on disk, so a file cut short
    reads without error; comparing with the header's data size catches it.
    """
    if info.format != "WAV":
        return None
    layout = _wav_layout(path)
    return None if layout is None else layout.data_bytes // layout.block_align


# (format tag, bits per sample) -> (numpy dtype of a sample, scale to full scale 1.0)
_FAST_CODINGS = {
    (1, 16): ("<i2", 2.0**-15),
    (1, 24): (None, 2.0**-23),  # decoded by _decode_pcm24
    (1, 32): ("<i4", 2.0**-31),
    (3, 32): ("<f4", 1.0),
}


def _fast_readable(layout: _WavLayout | None) -> bool:
    return (
        layout is not None
        and (layout.format_tag, layout.bits) in _FAST_CODINGS
        and layout.channels >= 1
        and layout.block_align == layout.channels * layout.bits // 8
    )


def _decode_wav(path: Path, layout: _WavLayout, frames: int, dtype: str) -> np.ndarray:
    """Decode ``frames`` frames of a plain PCM/float WAV as ``(channels, frames)``.

    Gives bit-for-bit the values libsndfile gives (integers scaled by
    2**-(bits-1), floats as stored), without libsndfile's per-sample loop.
    """
    channels = layout.channels
    count = frames * channels
    sample_dtype, scale = _FAST_CODINGS[(layout.format_tag, layout.bits)]
    with open(path, "rb") as handle:
        handle.seek(layout.data_offset)
        if sample_dtype is None:
            # 24-bit: one zero byte in front, then read each sample as a little-endian
            # int32 at a stride of 3 bytes whose low byte belongs to the previous
            # sample; an arithmetic shift by 8 drops it and sign-extends.
            buffer = bytearray(1 + 3 * count)
            got = handle.readinto(memoryview(buffer)[1:])
            ints = np.ndarray((count,), dtype="<i4", buffer=buffer, offset=0, strides=(3,))
            samples = np.right_shift(ints, 8)
        else:
            buffer = bytearray(count * layout.bits // 8)
            got = handle.readinto(buffer)
            samples = np.frombuffer(buffer, dtype=sample_dtype)
    if got != count * layout.bits // 8:
        raise AudioError(f"{path}: truncated file (data ends early)")
    interleaved = samples.reshape(frames, channels)
    y = np.empty((channels, frames), dtype=dtype)
    for c in range(channels):
        if scale == 1.0:
            y[c] = interleaved[:, c]
        else:
            np.multiply(interleaved[:, c], scale, out=y[c], dtype=dtype, casting="unsafe")
    return y


def read_audio(
    path: str | os.PathLike,
    *,
    sr: int | None = None,
    resample_to: bool = False,
    dtype: str = "float32",
) -> tuple[np.ndarray, int]:
    """Read an audio file as ``(channels, samples)`` and check it.

    Plain PCM (16, 24, 32-bit) and 32-bit float WAV files are decoded
    directly with numpy (same values as libsndfile, about twice as fast);
    everything else goes through libsndfile.

    Parameters
    ----------
    path : audio file (any format libsndfile reads: WAV, FLAC, ...)
    sr : expected sample rate in Hz, or None to accept any
    resample_to : when the rate differs from ``sr``, resample instead of failing
    dtype : float32 or float64

    Returns
    -------
    y : np.ndarray [shape=(channels, samples)], C-contiguous
    sr : int, the sample rate of ``y``

    Raises
    ------
    AudioError
        missing, unreadable or truncated file (fewer frames than its header
        announces), NaN/Inf samples, or a sample rate other than ``sr``
        without ``resample_to``.
    """
    path = Path(path)
    if not path.exists():
        raise AudioError(f"{path}: audio file not found")
    layout = _wav_layout(path)
    if _fast_readable(layout):
        file_sr = layout.samplerate
        _check_rate(path, file_sr, sr, resample_to)
        announced = layout.data_bytes // layout.block_align
        on_disk = max(0, layout.file_bytes - layout.data_offset) // layout.block_align
        if on_disk < announced:
            raise AudioError(
                f"{path}: truncated file ({on_disk} of {announced} frames announced in its header)"
            )
        if announced == 0:
            raise AudioError(f"{path}: audio file holds no samples")
        y = _decode_wav(path, layout, announced, dtype)
        if layout.format_tag == 3:
            check_finite(y, path)
    else:
        info = audio_info(path)
        _check_rate(path, info.samplerate, sr, resample_to)
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


def _check_rate(path: Path, file_sr: int, sr: int | None, resample_to: bool) -> None:
    if sr is not None and file_sr != sr and not resample_to:
        raise AudioError(
            f"{path}: sample rate {file_sr} Hz, expected {sr} Hz (use --resample to convert)"
        )


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
