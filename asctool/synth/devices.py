"""The devices of the demo data: recorded (a, b, c) and simulated from device a (s1-s6).

Each device is a :class:`DeviceSpec` (frequency response, gain, noise floor,
early reflections, compression); :func:`record` is a real device's recording
of a sound field, :func:`simulate_device` derives a simulated one from the
device-a audio. Pure functions.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import scipy.fft as sfft

from .scenes import _EPS

__all__ = ["DEVICES", "TRAIN_DEVICES", "DeviceSpec", "DEVICE_SPECS", "device_response", "record",
           "simulate_device"]

DEVICES = ("a", "b", "c", "s1", "s2", "s3", "s4", "s5", "s6")
#: Devices of the training split; s4-s6 are unseen (evaluate/test only).
TRAIN_DEVICES = ("a", "b", "c", "s1", "s2", "s3")


# --------------------------------------------------------------------------
# devices
# --------------------------------------------------------------------------
@dataclass(frozen=True)
class DeviceSpec:
    """A recording device or a simulated one.

    Attributes
    ----------
    highpass, lowpass : (cutoff Hz, order) Butterworth-like magnitude slopes
    peaks : (centre Hz, width in octaves, gain dB) bell-shaped EQ terms
    gain_db : overall gain
    noise_db : noise floor RMS in dBFS
    noise_tilt : spectral slope of the noise floor (0 white, -1 pink)
    taps : (delay s, gain) early reflections (simulated devices)
    compression : (threshold dBFS, ratio) or None
    simulated : derived from device-a audio (True) or a parallel recording (False)
    """

    highpass: tuple[float, int]
    lowpass: tuple[float, int]
    peaks: tuple[tuple[float, float, float], ...] = ()
    gain_db: float = 0.0
    noise_db: float = -85.0
    noise_tilt: float = 0.0
    taps: tuple[tuple[float, float], ...] = ()
    compression: tuple[float, float] | None = None
    simulated: bool = False


DEVICE_SPECS: dict[str, DeviceSpec] = {
    "a": DeviceSpec((20, 2), (18000, 2), noise_db=-90),
    "b": DeviceSpec((180, 2), (8500, 4), ((2800, 1.0, 6.0), (500, 1.0, -3.0)), gain_db=-4,
                    noise_db=-72),
    "c": DeviceSpec((250, 2), (12000, 3), ((1200, 0.7, 4.0), (6000, 0.5, -7.0)), gain_db=3,
                    noise_db=-67, noise_tilt=-1.0),
    "s1": DeviceSpec((100, 2), (11000, 2), ((800, 1.5, -4.0), (3500, 0.8, 5.0)),
                     taps=((0.0013, 0.4),), compression=(-30, 3), noise_db=-82, simulated=True),
    "s2": DeviceSpec((250, 2), (15000, 2), ((300, 0.7, 5.0), (5000, 1.0, -6.0)), gain_db=-2,
                     taps=((0.0024, -0.3),), compression=(-34, 2), noise_db=-78, simulated=True),
    "s3": DeviceSpec((60, 1), (7000, 3), ((1800, 0.6, 7.0),), gain_db=1,
                     taps=((0.0021, -0.3), (0.0037, 0.2)), compression=(-26, 4), noise_db=-76,
                     simulated=True),
    "s4": DeviceSpec((300, 2), (6000, 4), ((1000, 0.5, 8.0), (3000, 0.5, -8.0)), gain_db=-3,
                     taps=((0.0016, 0.5), (0.0043, 0.3)), compression=(-36, 6), noise_db=-66,
                     simulated=True),
    "s5": DeviceSpec((30, 2), (16000, 1), ((150, 1.0, 8.0), (4500, 1.2, 7.0)), gain_db=2,
                     taps=((0.0008, 0.6),), compression=(-22, 2), noise_db=-74, simulated=True),
    "s6": DeviceSpec((200, 2), (9500, 2), ((2200, 0.4, -10.0), (600, 0.8, 6.0)), gain_db=-1,
                     taps=((0.0030, 0.5), (0.0051, -0.35)), compression=(-30, 8), noise_db=-70,
                     noise_tilt=-1.0, simulated=True),
}


@functools.lru_cache(maxsize=32)
def _response_on_grid(device: str, n: int, sr: int) -> np.ndarray:
    """:func:`device_response` on the rfft grid of length ``n`` (cached, read-only)."""
    response = device_response(device, np.fft.rfftfreq(n, 1.0 / sr))
    response.setflags(write=False)
    return response


def device_response(device: str, freqs: np.ndarray) -> np.ndarray:
    """Complex frequency response of ``device`` at ``freqs`` (Hz), gain included.

    Parameters
    ----------
    device : a key of :data:`DEVICE_SPECS`
    freqs : np.ndarray [shape=(n_bins,)] frequencies in Hz

    Returns
    -------
    np.ndarray [shape=(n_bins,), dtype=complex64]
    """
    spec = DEVICE_SPECS[device]
    f = np.maximum(np.asarray(freqs, dtype=np.float64), 1.0)
    fc, order = spec.highpass
    mag = 1.0 / np.sqrt(1.0 + (fc / f) ** (2 * order))
    fc, order = spec.lowpass
    mag = mag / np.sqrt(1.0 + (f / fc) ** (2 * order))
    db = np.full_like(f, spec.gain_db)
    for centre, width, gain in spec.peaks:
        db += gain * np.exp(-0.5 * (np.log2(f / centre) / width) ** 2)
    response = (mag * 10.0 ** (db / 20.0)).astype(np.complex128)
    if spec.taps:
        comb = np.ones_like(response)
        for delay, gain in spec.taps:
            comb += gain * np.exp(-2j * np.pi * f * delay)
        response *= comb / (1.0 + sum(abs(g) for _, g in spec.taps) / 2.0)
    return response.astype(np.complex64)


# --------------------------------------------------------------------------
# recording: room + device
# --------------------------------------------------------------------------
@functools.lru_cache(maxsize=32)
def _noise_shape(device: str, n: int, sr: int) -> np.ndarray:
    """Per-bin noise-floor amplitude of ``device`` for an rfft of length ``n`` (cached)."""
    spec = DEVICE_SPECS[device]
    freqs = np.fft.rfftfreq(n, 1.0 / sr)
    shape = np.maximum(freqs, 20.0) ** (spec.noise_tilt / 2.0)
    shape = shape / np.sqrt(np.mean(shape ** 2))
    # E|Z|^2 = 2 below: the irfft then has RMS 10 ** (noise_db / 20)
    out = (10.0 ** (spec.noise_db / 20.0) * math.sqrt(n / 2.0) * shape).astype(np.float32)
    out.setflags(write=False)
    return out


def record(
    wet_spectrum: np.ndarray, device: str, rng: np.random.Generator, *, n: int, sr: int, level: float
) -> np.ndarray:
    """A (non-simulated) device's recording of a sound field, as an rfft spectrum.

    Parameters
    ----------
    wet_spectrum : np.ndarray [shape=(channels, n // 2 + 1)] rfft of the reverberant field
    device : a non-simulated key of :data:`DEVICE_SPECS` (a, b, c)
    rng : generator for the device noise
    n : length in samples
    sr : sample rate in Hz
    level : linear gain that brings the field to the location's loudness

    Returns
    -------
    np.ndarray [shape=(channels, n // 2 + 1), dtype=complex64]: the rfft of the
        recording (``scipy.fft.irfft(X, n)`` gives the audio)
    """
    X = wet_spectrum * (np.float32(level) * _response_on_grid(device, n, sr))
    noise = rng.standard_normal((2, *X.shape), dtype=np.float32)
    X += _noise_shape(device, n, sr) * (noise[0] + 1j * noise[1])
    return X


def _compress(y: np.ndarray, threshold_db: float, ratio: float, sr: int) -> np.ndarray:
    """Feed-forward compressor on frame RMS (smoothed gain, make-up to keep the RMS)."""
    frame = max(64, int(0.01 * sr))
    n = y.shape[-1]
    pad = (-n) % frame
    power = np.pad(np.mean(y ** 2, axis=0), (0, pad)).reshape(-1, frame).mean(axis=1)
    level = 10.0 * np.log10(power + 1e-10)
    reduction = np.where(level > threshold_db, (level - threshold_db) * (1.0 - 1.0 / ratio), 0.0)
    k = np.hanning(9)
    reduction = np.convolve(reduction, k / k.sum(), mode="same")
    gain = 10.0 ** (-reduction / 20.0)
    centres = (np.arange(len(gain)) + 0.5) * frame
    g = np.interp(np.arange(n), centres, gain)
    out = y * g
    makeup = np.sqrt(np.mean(y ** 2) / (np.mean(out ** 2) + _EPS))
    return out * makeup


def simulate_device(spectrum_a: np.ndarray, device: str, rng: np.random.Generator, *, n: int,
                    sr: int) -> np.ndarray:
    """Simulate ``device`` (s1-s6) from device-a audio: response, reflections, compression, noise.

    Parameters
    ----------
    spectrum_a : np.ndarray [shape=(channels, n // 2 + 1)] rfft of the device-a audio
        (``scipy.fft.rfft(y_a, axis=-1)``)
    device : a simulated key of :data:`DEVICE_SPECS`
    rng : generator for the device noise
    n : length in samples
    sr : sample rate in Hz

    Returns
    -------
    np.ndarray [shape=(channels, n), dtype=float32]
    """
    spec = DEVICE_SPECS[device]
    y = sfft.irfft(spectrum_a * _response_on_grid(device, n, sr), n, axis=-1)
    if spec.compression is not None:
        y = _compress(y, *spec.compression, sr)
    y += np.float32(10.0 ** (spec.noise_db / 20.0)) * rng.standard_normal(y.shape, dtype=np.float32)
    return y.astype(np.float32, copy=False)
