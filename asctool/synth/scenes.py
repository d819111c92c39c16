"""How the scenes of the demo data sound: recipes, locations, rooms and the dry mixture.

Each of the 10 scenes mixes its own families of synthetic sources at its own
levels (:data:`SCENE_RECIPES`); every recording location draws its own levels,
source parameters and room (:func:`location_params`, :func:`room_response`),
and every segment its own events (:func:`scene_mix`). Pure functions: arrays
and a ``numpy.random.Generator`` in, arrays out.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import scipy.fft as sfft

from ..labels import packaged_hierarchy

__all__ = ["SceneRecipe", "SCENE_RECIPES", "location_params", "room_response", "scene_mix"]

_EPS = 1e-12


# --------------------------------------------------------------------------
# scene recipes
# --------------------------------------------------------------------------
@dataclass(frozen=True)
class SceneRecipe:
    """How one scene sounds.

    Attributes
    ----------
    levels : source name -> mean level in dB (0 dB = unit RMS while active)
    rt60 : (low, high) reverberation time in seconds, drawn per location
    drr : (low, high) direct-to-reverberant ratio in dB, drawn per location
    loudness : mean clip RMS in dBFS (per-location spread added)
    voices : (low, high) number of babble voices
    """

    levels: Mapping[str, float]
    rt60: tuple[float, float]
    drr: tuple[float, float]
    loudness: float
    voices: tuple[int, int] = (2, 6)


# Indoor scenes share ventilation, babble, footsteps, chimes and long reverberation;
# outdoor scenes share wind, birds, distant traffic and almost no reverberation;
# transportation shares strong low rumble, engine/motor tones, door beeps and a
# small, damped cabin.
SCENE_RECIPES: dict[str, SceneRecipe] = {
    "airport": SceneRecipe(
        {"hvac": -8, "babble": -9, "footsteps": -16, "rolling": -11, "announcement": -15,
         "chime": -19, "jet": -15, "beeps": -28},
        rt60=(1.1, 2.0), drr=(-3, 3), loudness=-30, voices=(6, 16)),
    "metro_station": SceneRecipe(
        {"hvac": -11, "babble": -12, "footsteps": -13, "train_pass": -7, "brakes": -16,
         "announcement": -13, "chime": -20, "clatter": -17, "beeps": -22},
        rt60=(1.0, 1.9), drr=(-4, 2), loudness=-28, voices=(3, 10)),
    "shopping_mall": SceneRecipe(
        {"hvac": -9, "babble": -7, "footsteps": -13, "music": -11, "rolling": -19,
         "chime": -22, "announcement": -21},
        rt60=(0.9, 1.7), drr=(-2, 4), loudness=-29, voices=(8, 20)),
    "park": SceneRecipe(
        {"wind": -8, "birds": -9, "rumble": -19, "babble": -20, "footsteps": -21,
         "water": -17},
        rt60=(0.1, 0.3), drr=(6, 14), loudness=-36, voices=(1, 4)),
    "public_square": SceneRecipe(
        {"wind": -13, "babble": -10, "footsteps": -14, "rumble": -14, "vehicles": -18,
         "birds": -16, "water": -14, "music": -24},
        rt60=(0.3, 0.7), drr=(2, 8), loudness=-31, voices=(4, 12)),
    "street_pedestrian": SceneRecipe(
        {"babble": -8, "footsteps": -10, "rumble": -13, "vehicles": -15, "wind": -17,
         "birds": -22, "horn": -24, "music": -22},
        rt60=(0.3, 0.7), drr=(2, 8), loudness=-29, voices=(4, 14)),
    "street_traffic": SceneRecipe(
        {"vehicles": -5, "rumble": -7, "hum": -14, "horn": -16, "brakes": -21, "wind": -14,
         "babble": -23, "footsteps": -24},
        rt60=(0.2, 0.6), drr=(3, 10), loudness=-24, voices=(1, 4)),
    "bus": SceneRecipe(
        {"rumble": -5, "hum": -7, "babble": -14, "beeps": -17, "brakes": -22, "rattle": -15,
         "announcement": -24},
        rt60=(0.25, 0.5), drr=(0, 6), loudness=-25, voices=(2, 6)),
    "metro": SceneRecipe(
        {"rumble": -4, "clatter": -9, "whine": -10, "brakes": -14, "babble": -16,
         "announcement": -17, "beeps": -19, "rattle": -16},
        rt60=(0.25, 0.5), drr=(-1, 5), loudness=-22, voices=(2, 8)),
    "tram": SceneRecipe(
        {"rumble": -7, "clatter": -12, "whine": -12, "bell": -16, "babble": -13,
         "brakes": -17, "hum": -19, "beeps": -18, "announcement": -22},
        rt60=(0.25, 0.55), drr=(0, 6), loudness=-26, voices=(2, 8)),
}


# --------------------------------------------------------------------------
# small signal helpers (pure)
# --------------------------------------------------------------------------
def _smooth(rng: np.random.Generator, n: int, width: int) -> np.ndarray:
    """Smooth zero-mean, unit-std random process of length ``n`` (correlation ~``width``)."""
    width = max(1, int(width))
    x = rng.standard_normal(n + 2 * width)
    if width > 1:
        kernel = np.hanning(2 * width + 1)
        x = np.convolve(x, kernel / kernel.sum(), mode="same")
    x = x[width:width + n]
    return (x - x.mean()) / (x.std() + _EPS)


def _bump(f: np.ndarray, centre: float, octaves: float) -> np.ndarray:
    """Log-frequency Gaussian bump (power), 1 at ``centre``."""
    return np.exp(-0.5 * (np.log2(np.maximum(f, 1.0) / centre) / octaves) ** 2)


def _lowpass(f: np.ndarray, cutoff: float, order: float = 1.0) -> np.ndarray:
    return 1.0 / (1.0 + (f / cutoff) ** (2 * order))


def _highpass(f: np.ndarray, cutoff: float, order: float = 1.0) -> np.ndarray:
    return 1.0 / (1.0 + (cutoff / np.maximum(f, 1.0)) ** (2 * order))


def _line(f: np.ndarray, centre: float, width_hz: float) -> np.ndarray:
    """A narrow spectral line (power) at ``centre``; never narrower than ``width_hz``."""
    return np.exp(-0.5 * ((f - centre) / width_hz) ** 2)


def _normalise_power(shape: np.ndarray) -> np.ndarray:
    return shape / (shape.mean() + _EPS)


def _events(rng: np.random.Generator, rate: float, duration: float) -> np.ndarray:
    """Poisson event times (s) with ``rate`` per second over ``duration``."""
    count = rng.poisson(rate * duration)
    return np.sort(rng.uniform(0.0, duration, count))


def _add(buffer: np.ndarray, start: int, signal: np.ndarray) -> None:
    """Add ``signal`` into ``buffer`` at ``start``, wrapping around the end."""
    n = buffer.shape[0]
    start %= n
    length = min(signal.shape[0], n)
    first = min(length, n - start)
    buffer[start:start + first] += signal[:first]
    if first < length:
        buffer[:length - first] += signal[first:length]


def _tone(freq: np.ndarray | float, n: int, sr: int, partials: Sequence[float] = (1.0,),
          phase0: float = 0.0) -> np.ndarray:
    """Sum of harmonic partials following the instantaneous frequency ``freq`` (Hz)."""
    freq = np.broadcast_to(np.asarray(freq, dtype=np.float64), (n,))
    phase = 2.0 * np.pi * np.cumsum(freq) / sr + phase0
    out = np.zeros(n)
    nyquist = sr / 2.0
    for h, amp in enumerate(partials, start=1):
        if amp and h * freq.max() < nyquist:
            out += amp * np.sin(h * phase)
    return out


def _wavetable(f0_frames: np.ndarray, amps: np.ndarray, n: int, sr: int,
               rng: np.random.Generator, size: int = 4096) -> np.ndarray:
    """Periodic waveform with harmonic amplitudes ``amps`` at a slowly varying pitch.

    The pitch is given per frame and interpolated to samples; the waveform is
    read from a table (fast for many harmonics).
    """
    x = np.arange(size) / size
    table = np.zeros(size)
    phases = rng.uniform(0, 2 * np.pi, len(amps))
    for h, (amp, ph) in enumerate(zip(amps, phases), start=1):
        table += amp * np.cos(2 * np.pi * h * x + ph)
    table /= np.sqrt(0.5 * np.sum(np.square(amps))) + _EPS
    f0 = np.interp(np.arange(n), np.linspace(0, n - 1, len(f0_frames)), f0_frames)
    cycles = np.cumsum(f0 / sr) + rng.uniform()
    return table[((cycles % 1.0) * size).astype(np.int64) % size]


def _burst(rng: np.random.Generator, sr: int, length_s: float, decay_s: float,
           centre: float, octaves: float) -> np.ndarray:
    """Band-limited exponentially decaying noise burst with unit peak RMS."""
    n = max(8, int(length_s * sr))
    t = np.arange(n) / sr
    noise = rng.standard_normal(n) * np.exp(-t / decay_s)
    spec = np.fft.rfft(noise)
    f = np.fft.rfftfreq(n, 1.0 / sr)
    out = np.fft.irfft(spec * np.sqrt(_bump(f, centre, octaves)), n)
    return out / (np.sqrt(np.mean(out[: max(8, int(decay_s * sr))] ** 2)) + _EPS)


# --------------------------------------------------------------------------
# locations, scenes, rooms
# --------------------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def _hierarchy() -> dict[str, str]:
    return packaged_hierarchy()


def location_params(scene: str, rng: np.random.Generator) -> dict:
    """Draw the fixed properties of one recording location of ``scene``.

    Returns a dict with per-source levels in dB (absent sources dropped),
    room (``rt60``, ``drr``), overall ``loudness`` and source parameters.
    """
    recipe = SCENE_RECIPES[scene]
    levels = {}
    ranked = sorted(recipe.levels, key=lambda name: -recipe.levels[name])
    for rank, name in enumerate(ranked):
        level = recipe.levels[name]
        if rank >= 2 and rng.uniform() < 0.2:  # the two main sources are always there
            continue
        levels[name] = level + rng.normal(0.0, 3.0)
    coarse = _hierarchy()[scene]
    params = {
        "levels": levels,
        "main": ranked[:2],
        "rt60": float(rng.uniform(*recipe.rt60)),
        "drr": float(rng.uniform(*recipe.drr)),
        "loudness": recipe.loudness + float(rng.normal(0.0, 3.0)),
        "voices": int(rng.integers(recipe.voices[0], recipe.voices[1] + 1)),
        # spectral parameters, partly shared by a coarse class
        "hvac_cutoff": float(rng.uniform(250, 900)),
        "hvac_tone": float(rng.uniform(90, 260)),
        "wind_cutoff": float(rng.uniform(120, 400)),
        "rumble_centre": float(rng.uniform(55, 110) if coarse == "transportation" else rng.uniform(70, 180)),
        "rumble_octaves": float(rng.uniform(0.8, 1.6)),
        "engine_f0": float(rng.uniform(25, 45) if scene == "bus" else rng.uniform(60, 140)),
        "whine_f": float(rng.uniform(400, 1400)),
        "bird_band": (float(rng.uniform(2000, 4000)), float(rng.uniform(4500, 8000))),
        "birds": int(rng.integers(1, 5)),
        "brake_f": float(rng.uniform(2500, 7000)),
        "beep_f": float(rng.uniform(1200, 3000)),
        "bell_f": float(rng.uniform(600, 1200)),
        "chime": tuple(float(x) for x in rng.uniform(440, 900) * np.array([1.0, 1.26, 1.5])[rng.permutation(3)]),
        "horn_f": float(rng.uniform(350, 520)),
        "vowels": rng.uniform([280, 850], [850, 2400], size=(10, 2)).tolist(),
        "water_centre": float(rng.uniform(2500, 6000)),
        "rolling_centre": float(rng.uniform(700, 1600)),
        "music_root": float(rng.uniform(110, 220)),
        "clatter_period": float(rng.uniform(0.5, 1.4)),
        "step_centre": float(rng.uniform(300, 1500)),
    }
    return params


def room_response(rt60: float, drr: float, sr: int, rng: np.random.Generator,
                  channels: int = 1) -> np.ndarray:
    """Room impulse response: a direct path plus an exponentially decaying two-band noise tail.

    Parameters
    ----------
    rt60 : reverberation time in seconds (of the low band; the high band decays 1.7x faster)
    drr : direct-to-reverberant energy ratio in dB
    sr : sample rate in Hz
    channels : independent tails per channel (decorrelated stereo)

    Returns
    -------
    np.ndarray [shape=(channels, length)]
    """
    length = max(16, int(min(1.5 * rt60, 2.5) * sr))
    t = np.arange(length) / sr
    out = np.zeros((channels, length))
    for ch in range(channels):
        noise = rng.standard_normal((2, length))
        # one-pole split into a darker and a brighter band
        spec = np.fft.rfft(noise, axis=-1)
        f = np.fft.rfftfreq(length, 1.0 / sr)
        low = np.fft.irfft(spec[0] * np.sqrt(_lowpass(f, 2000.0)), length)
        high = np.fft.irfft(spec[1] * np.sqrt(_highpass(f, 2000.0)), length)
        tail = low * np.exp(-6.91 * t / rt60) + high * np.exp(-6.91 * 1.7 * t / rt60)
        predelay = int(0.004 * sr)
        tail[:predelay] = 0.0
        energy = np.sum(tail ** 2) + _EPS
        tail *= np.sqrt(10.0 ** (-drr / 10.0) / energy)
        tail[0] += 1.0
        out[ch] = tail
    return out


def scene_mix(scene: str, loc: Mapping, rng: np.random.Generator, *, n: int, sr: int) -> np.ndarray:
    """The dry (unreverberated) mixture of one segment of ``scene``.

    Parameters
    ----------
    scene : one of :data:`asctool.manifest.SCENES`
    loc : :func:`location_params` of the segment's location
    rng : generator for this segment
    n : length in samples
    sr : sample rate in Hz

    Returns
    -------
    np.ndarray [shape=(n,), dtype=float64], RMS 1
    """
    duration = n / sr
    levels = {k: v + rng.normal(0.0, 2.0) for k, v in loc["levels"].items()}
    gain = {k: 10.0 ** (v / 20.0) for k, v in levels.items()}

    # ---- STFT-domain noise sources: power = D (freq x atoms) @ A (atoms x frames)
    n_fft = 1 << max(8, int(round(math.log2(sr * 0.023))))
    hop = n_fft // 2
    n_frames = -(-n // hop) + 1
    f = np.fft.rfftfreq(n_fft, 1.0 / sr)
    df = sr / n_fft
    frame_rate = sr / hop
    atoms: list[np.ndarray] = []
    acts: list[np.ndarray] = []

    def add_atom(shape: np.ndarray, activation: np.ndarray, level: float) -> None:
        atoms.append(_normalise_power(shape))
        acts.append(level ** 2 * np.asarray(activation, dtype=np.float64))

    def slow(width_s: float, depth: float) -> np.ndarray:
        return np.exp(depth * _smooth(rng, n_frames, width_s * frame_rate))

    tilt = 1.0 / (1.0 + f / 500.0)
    if "hvac" in gain:
        shape = _lowpass(f, loc["hvac_cutoff"], 1.5) * tilt + 0.3 * _line(f, loc["hvac_tone"], 1.5 * df)
        add_atom(shape, slow(3.0, 0.1), gain["hvac"])
    if "wind" in gain:
        shape = _lowpass(f, loc["wind_cutoff"], 1.0) * (1.0 / (1.0 + f / 100.0)) + 0.02 * tilt
        add_atom(shape, slow(0.8, 0.7), gain["wind"])
    if "rumble" in gain:
        shape = _bump(f, loc["rumble_centre"], loc["rumble_octaves"]) + 0.05 * tilt
        add_atom(shape, slow(2.0, 0.25), gain["rumble"])
    if "water" in gain:
        shape = _bump(f, loc["water_centre"], 1.3) + 0.1 * _highpass(f, 1000.0)
        add_atom(shape, np.exp(0.15 * rng.standard_normal(n_frames)), gain["water"])
    if "jet" in gain:
        ramp = np.linspace(*rng.uniform(0.3, 1.7, 2), n_frames)
        add_atom(_lowpass(f, rng.uniform(400, 900), 2.0) + 0.05 * tilt, ramp, gain["jet"])
    if "rattle" in gain:  # cabin rattle: broadband mid noise, fast irregular
        act = np.exp(0.8 * _smooth(rng, n_frames, 0.05 * frame_rate))
        add_atom(_bump(f, rng.uniform(1500, 3500), 1.0), act, gain["rattle"])
    t_frames = np.arange(n_frames) / frame_rate
    if "vehicles" in gain:
        # Doppler passes: atoms are bumps on a log-frequency grid
        grid = np.geomspace(200, 4000, 24)
        step = np.log(grid[1] / grid[0])
        act = np.zeros((len(grid), n_frames))
        low = np.zeros(n_frames)
        for t0 in _events(rng, rng.uniform(0.3, 0.8), duration + 4.0) - 2.0:
            width = rng.uniform(0.6, 2.0)
            centre = rng.uniform(500, 1400)
            shift = rng.uniform(0.04, 0.12)
            env = 1.0 / (1.0 + ((t_frames - t0) / width) ** 2)
            fc = centre * (1.0 + shift * np.tanh(-(t_frames - t0) / (0.5 * width)))
            pos = np.clip(np.log(fc / grid[0]) / step, 0, len(grid) - 1.001)
            idx = pos.astype(int)
            frac = pos - idx
            amp = env * rng.uniform(0.3, 1.0)
            np.add.at(act, (idx, np.arange(n_frames)), amp * (1 - frac))
            np.add.at(act, (idx + 1, np.arange(n_frames)), amp * frac)
            low += amp
        for k, centre in enumerate(grid):
            add_atom(_bump(f, centre, 0.8), act[k], gain["vehicles"])
        add_atom(_lowpass(f, 200.0, 2.0), low, 0.7 * gain["vehicles"])
    if "rolling" in gain:
        act = np.zeros(n_frames)
        for t0 in _events(rng, 0.35, duration):
            length = rng.uniform(1.5, 4.0)
            inside = (t_frames >= t0) & (t_frames < t0 + length)
            act[inside] += (1.0 + 0.6 * np.sin(2 * np.pi * rng.uniform(6, 14) * t_frames[inside])) * rng.uniform(0.4, 1.0)
        add_atom(_bump(f, loc["rolling_centre"], 0.7), act, gain["rolling"])
    if "train_pass" in gain:
        act = np.zeros(n_frames)
        t0 = rng.uniform(-3.0, duration)
        length = rng.uniform(4.0, 9.0)
        act += np.exp(-0.5 * ((t_frames - t0 - length / 2) / (length / 3)) ** 2)
        add_atom(_bump(f, rng.uniform(120, 250), 1.8) + 0.1 * _bump(f, 3000, 0.5), act + 0.05, gain["train_pass"])
    if "music" in gain:
        root = loc["music_root"]
        notes = root * 2.0 ** (np.array([0, 2, 4, 5, 7, 9, 11, 12, 14, 16]) / 12.0)
        act = np.zeros((len(notes), n_frames))
        t = 0.0
        while t < duration:
            length = rng.uniform(0.4, 1.2)
            inside = (t_frames >= t) & (t_frames < t + length)
            for k in rng.choice(len(notes), 3, replace=False):
                act[k, inside] += 1.0
            t += length
        for k, note in enumerate(notes):
            shape = sum(_line(f, h * note, max(df, 3.0)) / h for h in range(1, 6) if h * note < sr / 2)
            add_atom(shape + 1e-3, act[k], gain["music"] / 2.0)
    speech_atoms = None
    if "babble" in gain or "announcement" in gain:
        speech_tilt = _bump(f, 450.0, 1.6) + 0.05 * _bump(f, 5000, 0.8)
        speech_atoms = [
            speech_tilt * (_bump(f, f1, 0.25) + 0.6 * _bump(f, f2, 0.2) + 0.25 * _bump(f, 2800, 0.2))
            for f1, f2 in loc["vowels"]
        ] + [_bump(f, rng.uniform(4000, 7000), 0.6)]  # fricative

    def voice_activity(n_voices: int, talk: float) -> np.ndarray:
        """Activation (atoms x frames) of ``n_voices`` talkers (syllables of random vowels)."""
        act = np.zeros((len(speech_atoms), n_frames))
        for _ in range(n_voices):
            level = (10.0 ** (rng.normal(0, 5) / 20.0)) ** 2
            frame = int(rng.integers(0, 20))
            while frame < n_frames:
                length = int(rng.uniform(0.1, 0.3) * frame_rate) + 1
                if rng.uniform() < talk:
                    atom = int(rng.integers(0, len(speech_atoms)))
                    env = np.sin(np.linspace(0, np.pi, length + 2)[1:-1]) ** 2
                    stop = min(n_frames, frame + length)
                    act[atom, frame:stop] += level * env[: stop - frame]
                frame += length + int(rng.exponential(0.05) * frame_rate)
        return act

    if "babble" in gain:
        act = voice_activity(loc["voices"], 0.65) / max(1.0, 0.5 * loc["voices"])
        for k, atom in enumerate(speech_atoms):
            add_atom(atom, act[k], gain["babble"])
    if "announcement" in gain and rng.uniform() < 0.7:
        pa = _bump(f, 1800, 0.9)
        act = voice_activity(1, 0.9)
        start = int(rng.uniform(0, 0.5) * n_frames)
        act[:, :start] = 0
        act[:, min(n_frames, start + int(rng.uniform(2.5, 5.0) * frame_rate)):] = 0
        for k, atom in enumerate(speech_atoms):
            add_atom(atom * pa, act[k], gain["announcement"] * 2.0)

    y = np.zeros(n)
    if atoms:
        D = np.stack(atoms, axis=1).astype(np.float32)        # (freq, atoms)
        A = np.stack(acts, axis=0).astype(np.float32)          # (atoms, frames)
        power = np.maximum(A.T @ D.T, 0.0)                      # (frames, freq)
        mag = np.sqrt(power * np.float32(n_fft / 2.0))
        spec = np.empty(mag.shape, dtype=np.complex64)
        spec.real = mag * rng.standard_normal(mag.shape, dtype=np.float32)
        spec.imag = mag * rng.standard_normal(mag.shape, dtype=np.float32)
        window = np.sin(np.pi * (np.arange(n_fft) + 0.5) / n_fft).astype(np.float32)
        frames = sfft.irfft(spec, n_fft, axis=-1) * window
        # overlap-add with 50 % hop (sine window: squared windows sum to 1)
        ola = np.zeros((n_frames + 1, hop), dtype=np.float32)
        ola[:-1] += frames[:, :hop]
        ola[1:] += frames[:, hop:]
        y += ola.reshape(-1)[hop // 2: hop // 2 + n]

    # ---- time-domain tonal and impulsive sources
    if "hum" in gain:
        f0 = loc["engine_f0"] * np.exp(0.04 * _smooth(rng, 64, 8))
        harmonics = min(40, int(sr / 2 / (f0.max() * 1.1)))
        amps = np.arange(1, harmonics + 1) ** -0.9 * 10.0 ** (rng.normal(0, 4, harmonics) / 20)
        y += gain["hum"] * _wavetable(f0, amps, n, sr, rng)
    if "whine" in gain:
        start, top = rng.uniform(0.2, 0.6), rng.uniform(0.8, 1.3)
        profile = np.clip(np.linspace(start, top * rng.uniform(1.0, 2.0), 32), None, top)
        if rng.uniform() < 0.5:
            profile = profile[::-1]
        y += gain["whine"] * _wavetable(loc["whine_f"] * profile, np.array([1.0, 0.5, 0.25]), n, sr, rng)
    if "footsteps" in gain:
        templates = [_burst(rng, sr, 0.06, rng.uniform(0.006, 0.02), loc["step_centre"] * rng.uniform(0.7, 1.4), 1.2)
                     for _ in range(4)]
        track = np.zeros(n)
        for _ in range(int(rng.integers(1, 6))):
            rate = rng.uniform(1.6, 2.2)
            t0, centre, width = rng.uniform(0, 1 / rate), rng.uniform(0, duration), rng.uniform(2, 8)
            for t in np.arange(t0, duration, 1 / rate) + rng.normal(0, 0.02, len(np.arange(t0, duration, 1 / rate))):
                amp = math.exp(-0.5 * ((t - centre) / width) ** 2) * rng.uniform(0.5, 1.0)
                _add(track, int(t * sr), amp * templates[int(rng.integers(0, 4))])
        y += gain["footsteps"] * track
    if "birds" in gain:
        track = np.zeros(n)
        lo, hi = loc["bird_band"]
        for _ in range(loc["birds"]):
            f_a, f_b = rng.uniform(lo, hi, 2)
            chirp_len = rng.uniform(0.03, 0.15)
            trill = rng.uniform(0, 40)
            for song in _events(rng, rng.uniform(0.15, 0.5), duration):
                for k in range(int(rng.integers(2, 9))):
                    m = int(chirp_len * sr)
                    tt = np.arange(m) / sr
                    freq = np.linspace(f_a, f_b, m) * (1 + 0.05 * np.sin(2 * np.pi * trill * tt))
                    chirp = np.sin(2 * np.pi * np.cumsum(freq) / sr) * np.sin(np.pi * tt / chirp_len) ** 2
                    _add(track, int((song + k * (chirp_len + 0.05)) * sr), rng.uniform(0.3, 1.0) * chirp)
        y += gain["birds"] * track * 2.0
    if "chime" in gain and rng.uniform() < 0.5:
        t0 = rng.uniform(0, max(0.0, duration - 2.0))
        for k, freq in enumerate(loc["chime"]):
            m = int(1.5 * sr)
            tt = np.arange(m) / sr
            _add(y, int((t0 + 0.5 * k) * sr), gain["chime"] * 2.0 * np.exp(-tt / 0.5) * _tone(freq, m, sr, (1.0, 0.4, 0.2)))
    if "brakes" in gain:
        for t0 in _events(rng, 0.12, duration):
            m = int(rng.uniform(0.4, 2.5) * sr)
            tt = np.arange(m) / sr
            freq = loc["brake_f"] * rng.uniform(0.9, 1.1) * (1 + 0.01 * np.sin(2 * np.pi * rng.uniform(4, 8) * tt))
            env = np.minimum(1.0, tt / 0.05) * np.minimum(1.0, (tt[-1] - tt) / 0.2)
            _add(y, int(t0 * sr), gain["brakes"] * 1.5 * env * _tone(freq, m, sr, (1.0, 0.3)))
    if "beeps" in gain and rng.uniform() < 0.6:
        t0 = rng.uniform(0, max(0.0, duration - 1.0))
        m = int(0.12 * sr)
        beep = _tone(loc["beep_f"], m, sr, (1.0, 0, 1 / 3, 0, 1 / 5)) * np.hanning(m) ** 0.2
        for k in range(int(rng.integers(3, 9))):
            _add(y, int((t0 + 0.24 * k) * sr), gain["beeps"] * 1.5 * beep)
    if "bell" in gain and rng.uniform() < 0.5:
        t0 = rng.uniform(0, max(0.0, duration - 1.0))
        m = int(1.2 * sr)
        tt = np.arange(m) / sr
        stroke = sum(a * np.exp(-tt / (0.6 / p)) * np.sin(2 * np.pi * p * loc["bell_f"] * tt)
                     for p, a in ((1.0, 1.0), (2.76, 0.5), (5.4, 0.25)) if p * loc["bell_f"] < sr / 2)
        for k in range(int(rng.integers(1, 4))):
            _add(y, int((t0 + 0.25 * k) * sr), gain["bell"] * 2.0 * stroke)
    if "clatter" in gain:
        click = _burst(rng, sr, 0.03, 0.006, rng.uniform(300, 1200), 1.5)
        period = loc["clatter_period"] * rng.uniform(0.8, 1.25)
        gap = rng.uniform(0.08, 0.16)
        for t in np.arange(rng.uniform(0, period), duration, period):
            for k in range(2):
                _add(y, int((t + k * gap) * sr), gain["clatter"] * rng.uniform(0.5, 1.0) * click)
    if "horn" in gain:
        for t0 in _events(rng, 0.1, duration):
            m = int(rng.uniform(0.2, 0.8) * sr)
            env = np.minimum(1.0, np.arange(m) / (0.01 * sr)) * np.minimum(1.0, np.arange(m)[::-1] / (0.02 * sr))
            partials = tuple(1.0 / h for h in range(1, 7))
            honk = _tone(loc["horn_f"], m, sr, partials) + _tone(loc["horn_f"] * 1.25, m, sr, partials)
            _add(y, int(t0 * sr), gain["horn"] * env * honk)
    rms = np.sqrt(np.mean(y ** 2)) + _EPS
    return y / rms
