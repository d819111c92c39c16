"""Pitch shift, speed change, additive noise and same-scene mixing (docs/reference.md 5).

Pure functions take ``(channels, samples)`` float arrays and return arrays of
the same shape; the registered wrappers draw their random values from the
per-clip ``rng``.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ..audio import read_audio, resample
from .registry import ClipContext, Plan, register

__all__ = [
    "pitch_shift",
    "time_stretch_to_length",
    "add_noise",
    "mix_clips",
    "fit_length",
    "pitch",
    "speed",
    "noise",
    "mix",
]

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------
# pure functions
# --------------------------------------------------------------------------
def fit_length(y: np.ndarray, n: int) -> np.ndarray:
    """Repeat ``y`` along its last axis until it has ``n`` samples, or cut it.

    Parameters
    ----------
    y : np.ndarray [shape=(..., samples)], samples >= 1
    n : target number of samples

    Returns
    -------
    np.ndarray [shape=(..., n)]
    """
    length = y.shape[-1]
    if length >= n:
        return y[..., :n]
    reps = -(-n // length)
    return np.concatenate([y] * reps, axis=-1)[..., :n]


def pitch_shift(y: np.ndarray, sr: int, n_steps: float, *, bins_per_octave: int = 12) -> np.ndarray:
    """Shift the pitch by ``n_steps`` (fractional) semitones, length preserved.

    Parameters
    ----------
    y : np.ndarray [shape=(channels, samples)]
    sr : sample rate in Hz
    n_steps : shift in steps of 1/``bins_per_octave`` octave (semitones by default)

    Returns
    -------
    np.ndarray [shape=(channels, samples)], same dtype as ``y``
    """
    import librosa

    out = librosa.effects.pitch_shift(y, sr=sr, n_steps=float(n_steps), bins_per_octave=bins_per_octave)
    return fit_length(out, y.shape[-1]).astype(y.dtype, copy=False)


def time_stretch_to_length(y: np.ndarray, rate: float) -> np.ndarray:
    """Change the tempo by ``rate`` (pitch kept), then restore the length.

    A faster clip (``rate > 1``, shorter) is repeated to the original length;
    a slower one is cut.

    Parameters
    ----------
    y : np.ndarray [shape=(channels, samples)]
    rate : tempo factor, > 0

    Returns
    -------
    np.ndarray [shape=(channels, samples)]
    """
    import librosa

    out = librosa.effects.time_stretch(y, rate=float(rate))
    return fit_length(out, y.shape[-1]).astype(y.dtype, copy=False)


def add_noise(y: np.ndarray, noise: np.ndarray) -> np.ndarray:
    """``y + noise`` (kept as a function so the noise draw stays in one place)."""
    return (y + noise).astype(y.dtype, copy=False)


def mix_clips(y: np.ndarray, y2: np.ndarray, f1: float, f2: float) -> np.ndarray:
    """``f1 * y + f2 * y2`` with ``y2`` fitted to ``y``'s shape.

    Parameters
    ----------
    y : np.ndarray [shape=(channels, samples)]
    y2 : np.ndarray [shape=(channels2, samples2)]; repeated or cut to
        ``samples``; a mono ``y2`` is broadcast, other channel counts are
        averaged to mono first
    f1, f2 : gains

    Returns
    -------
    np.ndarray [shape=(channels, samples)]
    """
    if y2.shape[0] != y.shape[0]:
        y2 = y2.mean(axis=0, keepdims=True)
    y2 = fit_length(y2, y.shape[-1])
    return (f1 * y + f2 * y2).astype(y.dtype, copy=False)


# --------------------------------------------------------------------------
# registered methods
# --------------------------------------------------------------------------
@register("pitch", params={"n_steps_min": -4.0, "n_steps_max": 4.0, "bins_per_octave": 12},
          positive=("bins_per_octave",))
def pitch(y: np.ndarray, sr: int, *, rng: np.random.Generator, ctx: ClipContext,
          n_steps_min: float, n_steps_max: float, bins_per_octave: int) -> np.ndarray:
    """Pitch shift by n_steps ~ U(n_steps_min, n_steps_max) semitones."""
    return pitch_shift(y, sr, rng.uniform(n_steps_min, n_steps_max), bins_per_octave=bins_per_octave)


@register("speed", params={"rate_min": 0.5, "rate_max": 2.0}, positive=("rate_min", "rate_max"))
def speed(y: np.ndarray, sr: int, *, rng: np.random.Generator, ctx: ClipContext,
          rate_min: float, rate_max: float) -> np.ndarray:
    """Tempo change by rate ~ U(rate_min, rate_max); repeat or cut to the length."""
    return time_stretch_to_length(y, rng.uniform(rate_min, rate_max))


@register("noise", params={"noise_std": 0.01}, positive=("noise_std",))
def noise(y: np.ndarray, sr: int, *, rng: np.random.Generator, ctx: ClipContext,
          noise_std: float) -> np.ndarray:
    """Add white Gaussian noise of standard deviation noise_std (full scale 1.0)."""
    return add_noise(y, rng.normal(0.0, noise_std, size=y.shape))


def _mix_setup(request) -> Plan:
    """Group the source clips by scene; clips without a partner are skipped."""
    pools: dict[str, list[tuple[str, str, str]]] = {}
    for row in request.sources:
        if row.scene:
            pools.setdefault(row.scene, []).append((row.id, str(row.audio_path), row.segment))
    variants: dict[str, list[str]] = {}
    skipped = {"no_scene": 0, "no_partner": 0}
    for row in request.sources:
        if not row.scene:
            skipped["no_scene"] += 1
        elif not _candidates(pools[row.scene], row.id, row.segment):
            skipped["no_partner"] += 1
        else:
            variants[row.id] = [""]
    for reason, count in skipped.items():
        if count:
            log.warning("mix: skipping %d source clip(s): %s", count, reason.replace("_", " "))
    return Plan(resources={"pools": pools}, variants=variants, skipped={k: v for k, v in skipped.items() if v})


def _candidates(pool: list[tuple[str, str, str]], clip_id: str, segment: str) -> list[tuple[str, str, str]]:
    """Other clips of the scene, excluding parallel recordings of the same segment."""
    return [c for c in pool if c[0] != clip_id and not (segment and c[2] == segment)]


@register("mix", params={"f_min": 0.5, "f_max": 1.0}, setup=_mix_setup)
def mix(y: np.ndarray, sr: int, *, rng: np.random.Generator, ctx: ClipContext,
        f_min: float, f_max: float) -> np.ndarray:
    """y = f1*y + f2*y2, y2 another source clip of the same scene, f1, f2 ~ U(f_min, f_max).

    The partner is drawn uniformly among the source clips of the same scene,
    other than the clip itself and its parallel recordings (same segment).
    """
    candidates = _candidates(ctx.resources["pools"][ctx.scene], ctx.clip_id, ctx.segment)
    _, path, _ = candidates[int(rng.integers(len(candidates)))]
    f1, f2 = rng.uniform(f_min, f_max, size=2)
    y2, sr2 = read_audio(Path(path))
    if sr2 != sr:
        y2 = resample(y2, sr2, sr)
    return mix_clips(y, y2, f1, f2)
