"""How the scenes of the demo data sound: recipes, locations, rooms and the dry mixture.

Each of the 10 scenes is the background of its coarse class (indoor:
ventilation and babble in a reverberant hall; outdoor: wind and distant
traffic, almost dry; transportation: strong low rumble and cabin noise in a
small damped room) plus one or two *signature* event families of its own
(:data:`SCENE_RECIPES`). A scene's identity lives in the shape and rhythm of
its signature events (amplitude-modulated noise bands, steady or sweeping
tones, click trains at a given rate, chirp trills, arpeggios), while their
frequency is drawn per location and per event from a range shared by every
scene of the coarse class: the long-term spectra of the scenes of one coarse
class overlap, so clip mean/std statistics of the log-mel separate the coarse
classes far better than the scenes, whereas a convolutional network, which
sees the local spectro-temporal shapes wherever they lie in frequency, can
tell the scenes apart. Every recording location draws its own levels,
frequencies and room (:func:`location_params`, :func:`room_response`), and
every segment its own events (:func:`scene_mix`). Pure functions: arrays and a
``numpy.random.Generator`` in, arrays out.
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


_INDOOR = {"hvac": -10, "babble": -6}
_OUTDOOR = {"wind": -7, "distant": -11}
_TRANSPORT = {"rumble": -5, "cabin": -8}
_ROOM = {"indoor": ((1.0, 2.0), (-4, 2)), "outdoor": ((0.1, 0.4), (6, 14)),
         "transportation": ((0.2, 0.45), (0, 6))}


def _recipe(coarse: str, background: Mapping[str, float], signature: Mapping[str, float],
            voices: tuple[int, int] = (4, 12)) -> SceneRecipe:
    rt60, drr = _ROOM[coarse]
    return SceneRecipe({**background, **signature}, rt60=rt60, drr=drr, loudness=-27.0, voices=voices)


# The background (and room, loudness) is the coarse class's; the signature events are the
# scene's own. Signature frequencies come from the coarse class's shared range
# (location_params), so scenes of one coarse class differ in shape and rhythm, not in
# long-term spectrum.
SCENE_RECIPES: dict[str, SceneRecipe] = {
    # indoor: AM-modulated rolling wheels and chime arpeggios / steady squeals and rail
    # clatter / music (chords changing a few times a second)
    "airport": _recipe("indoor", _INDOOR, {"rolling": -3, "chime": -7}),
    "metro_station": _recipe("indoor", _INDOOR, {"squeal": -5, "clatter": -5}),
    "shopping_mall": _recipe("indoor", _INDOOR, {"music": -2}),
    # outdoor: bird trills / flutter (fast click bursts) / footsteps (slow click trains) /
    # passing vehicles (Doppler swells) and horns
    "park": _recipe("outdoor", _OUTDOOR, {"birds": -2}, voices=(1, 3)),
    "public_square": _recipe("outdoor", _OUTDOOR, {"flutter": -2}),
    "street_pedestrian": _recipe("outdoor", _OUTDOOR, {"footsteps": -1}),
    "street_traffic": _recipe("outdoor", _OUTDOOR, {"vehicles": -2, "horn": -8}),
    # transportation: engine harmonics that speed up and slow down and door beeps /
    # motor whine sweeps / bell strokes and rail clatter
    "bus": _recipe("transportation", _TRANSPORT, {"engine": -4, "beeps": -9}),
    "metro": _recipe("transportation", _TRANSPORT, {"whine": -3}),
    "tram": _recipe("transportation", _TRANSPORT, {"bell": -3, "clatter": -2}),
}

#: Shared range (Hz) of the signature-event frequencies of each coarse class.
_SIGNATURE_BAND = {"indoor": (500.0, 2500.0), "outdoor": (700.0, 5000.0), "transportation": (350.0, 2200.0)}


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

    Returns a dict with per-source levels in dB, room (``rt60``, ``drr``),
    overall ``loudness``, ``coarse`` class and source parameters; the centre
    frequency ``sig_f`` of the signature events is drawn (log-uniformly) from
    the range shared by the coarse class.
    """
    recipe = SCENE_RECIPES[scene]
    coarse = _hierarchy()[scene]
    lo, hi = _SIGNATURE_BAND[coarse]
    sig_f = float(np.exp(rng.uniform(np.log(lo), np.log(hi))))   # first draw: one law per coarse class
    levels = {name: level + rng.normal(0.0, 2.5) for name, level in recipe.levels.items()}
    return {
        "sig_f": sig_f,
        "levels": levels,
        "coarse": coarse,
        "rt60": float(rng.uniform(*recipe.rt60)),
        "drr": float(rng.uniform(*recipe.drr)),
        "loudness": recipe.loudness + float(rng.normal(0.0, 3.0)),
        "voices": int(rng.integers(recipe.voices[0], recipe.voices[1] + 1)),
        "hvac_cutoff": float(rng.uniform(250, 900)),
        "hvac_tone": float(rng.uniform(90, 260)),
        "wind_cutoff": float(rng.uniform(120, 400)),
        "leaves_centre": float(rng.uniform(3000, 7000)),
        "distant_centre": float(rng.uniform(90, 250)),
        "rumble_centre": float(rng.uniform(45, 110)),
        "cabin_centre": float(rng.uniform(500, 1800)),
        "engine_f0": float(rng.uniform(28, 55)),
        "vowels": rng.uniform([280, 850], [850, 2400], size=(10, 2)).tolist(),
        "step_rate": float(rng.uniform(1.6, 2.3)),
        "flutter_rate": float(rng.uniform(10.0, 16.0)),
        "roll_rate": float(rng.uniform(7.0, 13.0)),
        "clatter_period": float(rng.uniform(0.5, 1.1)),
        "music_tempo": float(rng.uniform(0.22, 0.45)),
    }


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


def _decaying_tone(freq: float, length_s: float, decay_s: float, sr: int,
                   partials: Sequence[float] = (1.0, 0.4, 0.2)) -> np.ndarray:
    """A struck harmonic tone: partials of ``freq`` under an exponential decay (10 ms attack)."""
    m = max(8, int(length_s * sr))
    t = np.arange(m) / sr
    return _tone(freq, m, sr, partials) * np.exp(-t / decay_s) * np.minimum(1.0, t / 0.01)


def scene_mix(scene: str, loc: Mapping, rng: np.random.Generator, *, n: int, sr: int) -> np.ndarray:
    """The dry (unreverberated) mixture of one segment of ``scene``.

    Parameters
    ----------
    scene : one of :data:`asctool.labels.SCENES`
    loc : :func:`location_params` of the segment's location
    rng : generator for this segment
    n : length in samples
    sr : sample rate in Hz

    Returns
    -------
    np.ndarray [shape=(n,), dtype=float64], RMS 1
    """
    duration = n / sr
    levels = {k: v + rng.normal(0.0, 1.5) for k, v in loc["levels"].items()}
    gain = {k: 10.0 ** (v / 20.0) for k, v in levels.items()}
    sig_f = loc["sig_f"]

    def jitter(spread: float = 0.15) -> float:
        """The signature frequency of one event: the location's, +-``spread`` octave-ish."""
        return sig_f * float(np.exp(rng.normal(0.0, spread)))

    # ---- STFT-domain noise sources: power = D (freq x atoms) @ A (atoms x frames)
    n_fft = 1 << max(8, int(round(math.log2(sr * 0.023))))
    hop = n_fft // 2
    n_frames = -(-n // hop) + 1
    f = np.fft.rfftfreq(n_fft, 1.0 / sr)
    df = sr / n_fft
    frame_rate = sr / hop
    t_frames = np.arange(n_frames) / frame_rate
    atoms: list[np.ndarray] = []
    acts: list[np.ndarray] = []

    def add_atom(shape: np.ndarray, activation: np.ndarray, level: float) -> None:
        atoms.append(_normalise_power(shape))
        acts.append(level ** 2 * np.asarray(activation, dtype=np.float64))

    def slow(width_s: float, depth: float) -> np.ndarray:
        return np.exp(depth * _smooth(rng, n_frames, width_s * frame_rate))

    tilt = 1.0 / (1.0 + f / 500.0)
    # backgrounds (one per coarse class)
    if "hvac" in gain:
        shape = _lowpass(f, loc["hvac_cutoff"], 1.5) * tilt + 0.3 * _line(f, loc["hvac_tone"], 1.5 * df)
        add_atom(shape + 0.02 * tilt, slow(3.0, 0.1), gain["hvac"])
    if "wind" in gain:  # gusts, with the rustle of leaves (2-8 kHz) following them
        gusts = slow(0.8, 0.7)
        shape = _lowpass(f, loc["wind_cutoff"], 1.0) * (1.0 / (1.0 + f / 100.0)) + 0.02 * tilt
        add_atom(shape, gusts, gain["wind"])
        add_atom(_bump(f, loc["leaves_centre"], 0.8), gusts ** 2, gain["wind"] * 0.5)
    if "distant" in gain:
        add_atom(_bump(f, loc["distant_centre"], 1.2) + 0.05 * tilt, slow(2.5, 0.3), gain["distant"])
    if "rumble" in gain:
        add_atom(_bump(f, loc["rumble_centre"], 1.0) + 0.03 * tilt, slow(2.0, 0.25), gain["rumble"])
    if "cabin" in gain:
        add_atom(_bump(f, loc["cabin_centre"], 1.3), slow(0.3, 0.3), gain["cabin"])
    if "babble" in gain:
        speech_tilt = _bump(f, 450.0, 1.6) + 0.05 * _bump(f, 5000, 0.8)
        speech_atoms = [speech_tilt * (_bump(f, f1, 0.25) + 0.6 * _bump(f, f2, 0.2) + 0.25 * _bump(f, 2800, 0.2))
                        for f1, f2 in loc["vowels"]]
        act = np.zeros((len(speech_atoms), n_frames))
        for _ in range(loc["voices"]):
            level = (10.0 ** (rng.normal(0, 5) / 20.0)) ** 2
            frame = int(rng.integers(0, 20))
            while frame < n_frames:
                length = int(rng.uniform(0.1, 0.3) * frame_rate) + 1
                if rng.uniform() < 0.65:
                    env = np.sin(np.linspace(0, np.pi, length + 2)[1:-1]) ** 2
                    stop = min(n_frames, frame + length)
                    act[int(rng.integers(0, len(speech_atoms))), frame:stop] += level * env[: stop - frame]
                frame += length + int(rng.exponential(0.05) * frame_rate)
        act /= max(1.0, 0.5 * loc["voices"])
        for k, atom in enumerate(speech_atoms):
            add_atom(atom, act[k], gain["babble"])
    # signatures drawn as noise: rolling wheels (AM band), Doppler swells of vehicles
    if "rolling" in gain:
        rate = loc["roll_rate"]
        for t0 in _events(rng, 0.45, duration + 2.0) - 1.0:
            length = rng.uniform(1.0, 3.0)
            inside = (t_frames >= t0) & (t_frames < t0 + length)
            act = np.zeros(n_frames)
            act[inside] = (1.0 + 0.95 * np.sin(2 * np.pi * rate * rng.uniform(0.9, 1.1) * t_frames[inside])) ** 2
            add_atom(_bump(f, jitter(), 0.35), act * rng.uniform(0.5, 1.0), gain["rolling"])
    if "vehicles" in gain:
        for t0 in _events(rng, 0.45, duration + 4.0) - 2.0:
            width = rng.uniform(0.5, 1.5)
            env = 1.0 / (1.0 + ((t_frames - t0) / width) ** 2) ** 2
            fc = jitter() * (1.0 + 0.25 * np.tanh(-(t_frames - t0) / (0.4 * width)))
            # a gliding band: a few atoms on a log grid around the pass
            grid = np.geomspace(fc.min(), fc.max(), 8)
            step = np.log(grid[1] / grid[0]) + _EPS
            pos = np.clip(np.log(fc / grid[0]) / step, 0, len(grid) - 1.001)
            idx = pos.astype(int)
            frac = pos - idx
            amp = env * rng.uniform(0.5, 1.0)
            for k, centre in enumerate(grid):
                act = amp * np.where(idx == k, 1 - frac, 0.0) + amp * np.where(idx + 1 == k, frac, 0.0)
                add_atom(_bump(f, centre, 0.3), act, gain["vehicles"])
    if "music" in gain:
        root = jitter(0.05) / 4.0
        notes = root * 2.0 ** (np.array([0, 2, 4, 5, 7, 9, 11, 12, 14, 16, 17, 19]) / 12.0)
        act = np.zeros((len(notes), n_frames))
        t = 0.0
        while t < duration:
            length = loc["music_tempo"] * rng.choice([1.0, 1.0, 2.0])
            inside = (t_frames >= t) & (t_frames < t + length)
            decay = np.exp(-(t_frames[inside] - t) / (0.6 * length))
            for k in rng.choice(len(notes), 3, replace=False):
                act[k, inside] += decay
            t += length
        for k, note in enumerate(notes):
            shape = sum(_line(f, h * note, max(df, 3.0)) / h for h in range(1, 7) if h * note < sr / 2)
            add_atom(shape + 1e-3, act[k], gain["music"] / 2.0)

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

    # ---- time-domain signatures: tones, sweeps, clicks
    if "engine" in gain:  # diesel harmonics that speed up and slow down
        points = np.cumsum(rng.uniform(1.0, 3.0, 16))
        f0_points = loc["engine_f0"] * np.exp(rng.uniform(-0.35, 0.35, 16))
        f0 = np.interp(np.linspace(0, duration, 256), points - points[0], f0_points)
        harmonics = min(40, int(sr / 2 / (f0.max() * 1.1)))
        amps = np.arange(1, harmonics + 1) ** -0.7 * 10.0 ** (rng.normal(0, 4, harmonics) / 20)
        y += gain["engine"] * _wavetable(f0, amps, n, sr, rng)
    if "whine" in gain:  # motor whine: tonal sweeps up (accelerating) or down (braking)
        for t0 in _events(rng, 0.5, duration + 3.0) - 1.5:
            m = int(rng.uniform(1.5, 3.5) * sr)
            ramp = np.linspace(0.5, 1.0, m) if rng.uniform() < 0.5 else np.linspace(1.0, 0.5, m)
            env = np.sin(np.pi * np.arange(m) / m) ** 0.5
            sweep = _tone(jitter() * ramp, m, sr, (1.0, 0.5, 0.25)) * env
            _add(y, int(t0 * sr), gain["whine"] * 1.4 * sweep)
    if "squeal" in gain:  # brake squeal: steady tone with vibrato
        for t0 in _events(rng, 0.55, duration + 1.0) - 0.5:
            m = int(rng.uniform(0.5, 1.8) * sr)
            tt = np.arange(m) / sr
            freq = jitter() * (1 + 0.012 * np.sin(2 * np.pi * rng.uniform(5, 8) * tt))
            env = np.minimum(1.0, tt / 0.05) * np.minimum(1.0, (tt[-1] - tt) / 0.15)
            _add(y, int(t0 * sr), gain["squeal"] * 1.4 * env * _tone(freq, m, sr, (1.0, 0.3)))
    if "chime" in gain:  # three-note rising arpeggio
        for t0 in _events(rng, 0.5, duration + 1.0) - 0.5:
            base = jitter()
            for k, ratio in enumerate((1.0, 1.26, 1.5)):
                _add(y, int((t0 + 0.22 * k) * sr), gain["chime"] * 2.0 * _decaying_tone(base * ratio, 1.2, 0.4, sr))
    if "bell" in gain:  # tram bell: inharmonic strokes
        for t0 in _events(rng, 0.5, duration + 1.0) - 0.5:
            base = jitter()
            m = int(1.0 * sr)
            tt = np.arange(m) / sr
            stroke = sum(a * np.exp(-tt / (0.5 / p)) * np.sin(2 * np.pi * p * base * tt)
                         for p, a in ((1.0, 1.0), (2.76, 0.5), (5.4, 0.25)) if p * base < sr / 2)
            for k in range(int(rng.integers(2, 4))):
                _add(y, int((t0 + 0.2 * k) * sr), gain["bell"] * 2.0 * stroke)
    if "beeps" in gain:  # door beeps: square-ish tone pulses at 4 per second
        for t0 in _events(rng, 0.4, duration + 1.0) - 0.5:
            m = int(0.12 * sr)
            beep = _tone(jitter(0.05), m, sr, (1.0, 0, 1 / 3, 0, 1 / 5)) * np.hanning(m) ** 0.2
            for k in range(int(rng.integers(3, 7))):
                _add(y, int((t0 + 0.25 * k) * sr), gain["beeps"] * 1.5 * beep)
    if "horn" in gain:
        for t0 in _events(rng, 0.3, duration):
            m = int(rng.uniform(0.2, 0.7) * sr)
            env = np.minimum(1.0, np.arange(m) / (0.01 * sr)) * np.minimum(1.0, np.arange(m)[::-1] / (0.02 * sr))
            partials = tuple(1.0 / h for h in range(1, 7))
            base = jitter() / 2.0
            _add(y, int(t0 * sr), gain["horn"] * env * (_tone(base, m, sr, partials) + _tone(base * 1.25, m, sr, partials)))
    if "birds" in gain:  # trills of short frequency sweeps
        track = np.zeros(n)
        for song in _events(rng, 0.8, duration + 1.0) - 0.5:
            f_a = jitter(0.2) * 1.3
            f_b = f_a * rng.uniform(0.6, 0.8)
            chirp_len = rng.uniform(0.04, 0.1)
            m = int(chirp_len * sr)
            tt = np.arange(m) / sr
            chirp = np.sin(2 * np.pi * np.cumsum(np.linspace(f_a, f_b, m)) / sr) * np.sin(np.pi * tt / chirp_len) ** 2
            for k in range(int(rng.integers(3, 9))):
                _add(track, int((song + k * (chirp_len + 0.04)) * sr), rng.uniform(0.5, 1.0) * chirp)
        y += gain["birds"] * track * 2.5
    if "flutter" in gain:  # wing flaps / applause: bursts of clicks at 10-16 per second
        templates = [_burst(rng, sr, 0.03, 0.004, jitter(), 0.5) for _ in range(4)]
        for t0 in _events(rng, 0.8, duration + 1.0) - 0.5:
            rate = loc["flutter_rate"] * rng.uniform(0.9, 1.1)
            for k in range(int(rng.integers(6, 14))):
                _add(y, int((t0 + k / rate) * sr), gain["flutter"] * rng.uniform(0.5, 1.0) * templates[k % 4])
    if "footsteps" in gain:  # slow click trains of two to four walkers
        templates = [_burst(rng, sr, 0.06, rng.uniform(0.008, 0.02), jitter(), 1.0) for _ in range(4)]
        for _ in range(int(rng.integers(2, 5))):
            rate = loc["step_rate"] * rng.uniform(0.9, 1.1)
            start, stop = sorted(rng.uniform(-2.0, duration + 2.0, 2))
            amp = rng.uniform(0.5, 1.0)
            for t in np.arange(max(0.0, start), min(duration, max(stop, start + 4.0)), 1 / rate):
                _add(y, int((t + rng.normal(0, 0.01)) * sr), gain["footsteps"] * amp * templates[int(rng.integers(0, 4))])
    if "clatter" in gain:  # rail joints: regular double clicks
        click = _burst(rng, sr, 0.03, 0.006, jitter(), 1.0)
        period = loc["clatter_period"] * rng.uniform(0.9, 1.1)
        gap = rng.uniform(0.08, 0.14)
        for t in np.arange(rng.uniform(0, period), duration, period):
            for k in range(2):
                _add(y, int((t + k * gap) * sr), gain["clatter"] * rng.uniform(0.6, 1.0) * click)
    rms = np.sqrt(np.mean(y ** 2)) + _EPS
    return y / rms
