"""Reverberation with measured or simulated room impulse responses, and DRC.

Impulse responses (IRs) come from ``--rir-dir`` (WAV/FLAC files found
recursively; any rate, channel count and bit depth) or are simulated with
pyroomacoustics (``--simulate-rooms N``). Each IR is reduced to its first
channel, resampled to the clip's rate, the measurement-noise tail of a measured IR trimmed
(``trim_tail``), and normalised to unit energy (so broadband clips keep about
their level). The clip is convolved with it and the output is aligned to the
IR's direct-path peak (``argmax |h|``) and cut to the clip's length.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
from scipy.signal import fftconvolve

from ..audio import audio_info, read_audio, resample
from ..errors import AudioError, ConfigError
from ..io import atomic_path
from . import drc
from .registry import ClipContext, Plan, clip_rng, register

__all__ = [
    "AUDIO_SUFFIXES",
    "ROOM_DEFAULTS",
    "trim_tail",
    "normalize_rir",
    "prepare_rir",
    "convolve_aligned",
    "measure_rt60",
    "simulate_room",
    "load_rirs",
    "reverb",
    "reverb_drc",
]

log = logging.getLogger(__name__)

AUDIO_SUFFIXES = (".wav", ".flac")

#: Ranges of the simulated shoebox rooms (``--param`` overridable).
ROOM_DEFAULTS: dict[str, float] = {
    "room_x_min": 3.0, "room_x_max": 10.0,   # length in m
    "room_y_min": 3.0, "room_y_max": 10.0,   # width in m
    "room_z_min": 2.5, "room_z_max": 4.0,    # height in m
    "rt60_min": 0.2, "rt60_max": 0.8,        # target reverberation time in s
    "wall_margin": 0.5,                      # source and mic at least this far from walls, m
    "min_distance": 1.0,                     # source-mic distance at least this, m
}
RIR_DEFAULTS: dict[str, float] = {"trim_tail": 1, "trim_margin_db": 3.0}
DRC_DEFAULTS: dict[str, float] = {
    "attack": 0.2, "release": 0.3, "knee_db": 6.0, "makeup_db_min": 1.0, "makeup_db_max": 5.0,
}


# --------------------------------------------------------------------------
# pure functions
# --------------------------------------------------------------------------
def trim_tail(h: np.ndarray, sr: int, *, margin_db: float = 3.0, window: float = 0.01) -> np.ndarray:
    """Cut a measured IR where its decay reaches the noise floor.

    A trailing run of (near-)zeros (below -180 dB re peak) is dropped; the
    noise floor is the median 10 ms power envelope over the second half of
    what follows the direct-path peak; the IR is cut at the first point after
    the peak where the envelope comes within ``margin_db`` of that floor,
    with a 5 ms half-Hann fade-out. Meant for measured IRs, whose tail is
    mostly measurement noise (the SMARD files: 12 s for an RT60 of about
    0.2 s); simulated IRs have no noise floor and are not trimmed.

    Parameters
    ----------
    h : np.ndarray [shape=(samples,)]
    sr : sample rate in Hz

    Returns
    -------
    np.ndarray [shape=(samples_kept,)]
    """
    n_win = max(1, int(window * sr))
    nonzero = np.flatnonzero(np.abs(h) > 1e-9 * np.abs(h).max())
    if len(nonzero) == 0:
        return h
    h = h[: nonzero[-1] + 1]  # a trailing (near-)zero run is padding, not noise floor
    power = np.convolve(h.astype(np.float64) ** 2, np.ones(n_win) / n_win, mode="same")
    env_db = 10.0 * np.log10(power + 1e-30)
    peak = int(np.argmax(np.abs(h)))
    floor_db = float(np.median(env_db[peak + (len(h) - peak) // 2:]))
    threshold = max(floor_db + margin_db, env_db[peak] - 150.0)
    below = np.nonzero(env_db[peak:] < threshold)[0]
    if len(below) == 0:
        return h
    cut = min(len(h), peak + int(below[0]) + n_win)
    out = h[:cut].copy()
    n_fade = min(int(0.005 * sr), max(0, cut - peak - 1))
    if n_fade > 0:
        out[-n_fade:] *= np.cos(np.linspace(0.0, np.pi / 2, n_fade)) ** 2
    return out


def normalize_rir(h: np.ndarray, *, source: str = "impulse response") -> np.ndarray:
    """Scale an IR to unit energy (sum of squares 1); AudioError if all zero."""
    energy = float(np.sum(np.asarray(h, dtype=np.float64) ** 2))
    if not np.isfinite(energy) or energy <= 0.0:
        raise AudioError(f"{source}: impulse response is all zero")
    return (h / np.sqrt(energy)).astype(np.float32)


def prepare_rir(h: np.ndarray, sr_h: int, sr: int, *, trim: bool = True, margin_db: float = 3.0,
                source: str = "impulse response") -> np.ndarray:
    """First channel, resampled to ``sr``, tail trimmed, unit energy.

    Parameters
    ----------
    h : np.ndarray [shape=(samples,) or (channels, samples)]
    sr_h : rate of ``h`` in Hz; sr : the clip's rate in Hz

    Returns
    -------
    np.ndarray [shape=(samples_out,)], float32
    """
    h = np.atleast_2d(np.asarray(h, dtype=np.float64))[0]
    if not np.any(h):
        raise AudioError(f"{source}: impulse response is all zero")
    h = resample(h[None], int(sr_h), int(sr))[0]
    if trim:
        h = trim_tail(h, sr, margin_db=margin_db)
    return normalize_rir(h, source=source)


def convolve_aligned(y: np.ndarray, h: np.ndarray) -> np.ndarray:
    """Convolve each channel with ``h``, align to ``argmax |h|``, keep the length.

    Parameters
    ----------
    y : np.ndarray [shape=(channels, samples)]
    h : np.ndarray [shape=(taps,)]

    Returns
    -------
    np.ndarray [shape=(channels, samples)], same dtype as ``y``
    """
    peak = int(np.argmax(np.abs(h)))
    n = y.shape[-1]
    full = fftconvolve(np.asarray(y, dtype=np.float64), np.asarray(h, dtype=np.float64)[None], axes=-1)
    out = full[:, peak:peak + n]
    if out.shape[-1] < n:
        out = np.pad(out, ((0, 0), (0, n - out.shape[-1])))
    return out.astype(y.dtype, copy=False)


def measure_rt60(h: np.ndarray, sr: int) -> float:
    """Reverberation time from an IR by Schroeder backward integration.

    The energy decay curve is fitted (least squares) between -5 and -35 dB
    (T30, extrapolated to 60 dB), or between -5 and -25 dB (T20) when the
    decay does not reach -35 dB; NaN when it does not reach -25 dB.

    Returns
    -------
    float, seconds
    """
    h = np.asarray(h, dtype=np.float64)
    h = h[int(np.argmax(np.abs(h))):]
    edc = np.cumsum(h[::-1] ** 2)[::-1]
    if edc[0] <= 0:
        return float("nan")
    edc_db = 10.0 * np.log10(edc / edc[0] + 1e-300)
    for low in (-35.0, -25.0):
        if edc_db[-1] <= low:
            i0 = int(np.argmax(edc_db <= -5.0))
            i1 = int(np.argmax(edc_db <= low))
            t = np.arange(i0, i1 + 1) / sr
            slope = np.polyfit(t, edc_db[i0:i1 + 1], 1)[0]
            return float(-60.0 / slope) if slope < 0 else float("nan")
    return float("nan")


def _sabine(dim: np.ndarray, absorption: float) -> tuple[float, float]:
    volume = float(np.prod(dim))
    surface = 2.0 * float(dim[0] * dim[1] + dim[0] * dim[2] + dim[1] * dim[2])
    sabine = 0.161 * volume / (surface * absorption)
    eyring = 0.161 * volume / (-surface * np.log(1.0 - absorption))
    return sabine, float(eyring)


def simulate_room(rng: np.random.Generator, sr: int, ranges: Mapping[str, float] | None = None,
                  *, calibrate: int = 4) -> tuple[np.ndarray, dict[str, Any]]:
    """Simulate one random shoebox room (image-source method, pyroomacoustics).

    Draws the room size, a target RT60 and the source and microphone
    positions from ``ranges`` (:data:`ROOM_DEFAULTS`). The uniform wall
    energy absorption comes from Sabine's formula for the target; since a
    non-diffuse shoebox decays more slowly than Sabine predicts, the
    absorption is then re-adjusted (up to ``calibrate`` times) by the ratio of
    the measured to the target RT60 until the measured value is within 5 %.

    Returns
    -------
    h : np.ndarray [shape=(taps,)], float64, not normalised
    info : room parameters: size, positions, target / Sabine / Eyring /
        measured RT60 in s, absorption, max_order, sr
    """
    import pyroomacoustics as pra

    r = dict(ROOM_DEFAULTS)
    r.update(ranges or {})
    dim = np.array([rng.uniform(r["room_x_min"], r["room_x_max"]),
                    rng.uniform(r["room_y_min"], r["room_y_max"]),
                    rng.uniform(r["room_z_min"], r["room_z_max"])])
    target = float(rng.uniform(r["rt60_min"], r["rt60_max"]))
    margin = float(r["wall_margin"])
    if np.any(dim <= 2 * margin):
        raise ConfigError(f"simulated room {dim.round(2).tolist()} m is too small for wall_margin={margin}")
    for _ in range(1000):
        src = rng.uniform(margin, dim - margin)
        mic = rng.uniform(margin, dim - margin)
        if np.linalg.norm(src - mic) >= r["min_distance"]:
            break
    else:
        raise ConfigError(f"min_distance={r['min_distance']} m cannot be met in a room of {dim.round(2).tolist()} m")
    try:
        absorption, max_order = pra.inverse_sabine(target, dim)
    except ValueError:
        raise ConfigError(f"RT60 {target:.2f} s is not reachable in a room of {dim.round(2).tolist()} m "
                          "(adjust rt60_min/rt60_max or the room size ranges)") from None
    best: tuple[float, np.ndarray, float] | None = None
    for _ in range(max(1, calibrate)):
        room = pra.ShoeBox(dim, fs=int(sr), materials=pra.Material(float(absorption)), max_order=int(max_order))
        room.add_source(src)
        room.add_microphone(mic)
        room.compute_rir()
        h = np.asarray(room.rir[0][0], dtype=np.float64)
        measured = measure_rt60(h, sr)
        if best is None or abs(measured - target) < abs(best[0] - target):
            best = (measured, h, float(absorption))
        if not np.isfinite(measured) or abs(measured / target - 1.0) <= 0.05:
            break
        absorption = float(np.clip(absorption * measured / target, 0.01, 0.99))
    measured, h, absorption = best
    sabine, eyring = _sabine(dim, absorption)
    info = {
        "length_m": dim[0], "width_m": dim[1], "height_m": dim[2],
        "source_x": src[0], "source_y": src[1], "source_z": src[2],
        "mic_x": mic[0], "mic_y": mic[1], "mic_z": mic[2],
        "distance_m": float(np.linalg.norm(src - mic)),
        "absorption": absorption, "max_order": int(max_order),
        "rt60_target_s": target, "rt60_sabine_s": sabine, "rt60_eyring_s": eyring,
        "rt60_measured_s": measured, "sr": int(sr),
    }
    return h, {k: (round(float(v), 4) if isinstance(v, (float, np.floating)) else v) for k, v in info.items()}


# --------------------------------------------------------------------------
# IR sources
# --------------------------------------------------------------------------
def load_rirs(rir_dir: str | Path) -> list[tuple[str, np.ndarray, int, dict[str, Any]]]:
    """Read every WAV/FLAC file under ``rir_dir`` (recursively, sorted).

    Returns
    -------
    list of (name, first channel float32 [shape=(samples,)], sr, info)

    Raises
    ------
    AudioError
        no audio file in the folder, an unreadable file, an all-zero IR.
    """
    rir_dir = Path(rir_dir)
    if not rir_dir.is_dir():
        raise AudioError(f"{rir_dir}: impulse response folder not found")
    files = sorted(p for p in rir_dir.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)
    if not files:
        raise AudioError(f"{rir_dir}: no impulse responses (no .wav or .flac files)")
    rirs = []
    for path in files:
        y, sr = read_audio(path)
        h = y[0]
        if not np.any(h):
            raise AudioError(f"{path}: impulse response is all zero")
        name = path.relative_to(rir_dir).as_posix()
        info = {"name": name, "sr": sr, "channels": y.shape[0], "duration_s": round(y.shape[1] / sr, 4),
                "peak_s": round(int(np.argmax(np.abs(h))) / sr, 4),
                "peak_level": round(float(np.abs(h).max()), 6),
                "trimmed_s": round(len(trim_tail(h.astype(np.float64), sr)) / sr, 4),
                "rt60_measured_s": round(measure_rt60(trim_tail(h.astype(np.float64), sr), sr), 4)}
        rirs.append((name, h.astype(np.float32), sr, info))
    log.info("reverb: %d impulse response(s) from %s", len(rirs), rir_dir)
    return rirs


def _room_job(job: tuple[int, int, int, dict]) -> tuple[np.ndarray, dict]:
    seed, index, sr, ranges = job
    return simulate_room(clip_rng(seed, "simulate-rooms", f"room{index}"), sr, ranges)


def _write_tsv(path: Path, records: Sequence[Mapping[str, Any]]) -> None:

    columns = list(records[0])
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8", newline="") as handle:
            handle.write("\t".join(columns) + "\n")
            for rec in records:
                handle.write("\t".join(str(rec[c]) for c in columns) + "\n")


def _setup(request) -> Plan:
    p = request.params
    if (request.rir_dir is None) == (request.simulate_rooms is None):
        raise ConfigError(f"augment {request.method}: give exactly one of --rir-dir and --simulate-rooms")
    if request.rir_dir is not None:
        loaded = load_rirs(request.rir_dir)
        rirs = [(name, h, sr) for name, h, sr, _ in loaded]
        trim = True
        records = [dict(index=i, **info) for i, (*_, info) in enumerate(loaded)]
        suffix = ".rirs.tsv"
    else:
        from ..parallel import WorkerPool

        sr = audio_info(request.sources[0].audio_path).samplerate
        ranges = {k: p[k] for k in ROOM_DEFAULTS}
        jobs = [(request.seed, i, sr, ranges) for i in range(request.simulate_rooms)]
        with WorkerPool(min(request.nj, max(1, len(jobs))), preload=[__name__], name="room simulation") as pool:
            rooms = list(pool.imap(_room_job, jobs))
        rirs = [(f"room{i}", h.astype(np.float32), sr) for i, (h, _) in enumerate(rooms)]
        trim = False  # no measurement noise to cut
        records = [dict(index=i, name=f"room{i}", **info) for i, (_, info) in enumerate(rooms)]
        for rec in records:
            log.info("reverb: %s %.1fx%.1fx%.1f m, RT60 target %.2f s, measured %.2f s", rec["name"],
                     rec["length_m"], rec["width_m"], rec["height_m"], rec["rt60_target_s"], rec["rt60_measured_s"])
        suffix = ".rooms.tsv"
    return Plan(resources={"rirs": rirs, "trim": trim, "cache": {}}, artifacts={suffix: lambda path: _write_tsv(path, records)},
                summary={"impulse_responses": len(rirs)})


def _rir_for(ctx: ClipContext, rng: np.random.Generator, sr: int, trim_tail: float, trim_margin_db: float
             ) -> np.ndarray:
    """Draw an IR index and return that IR prepared for ``sr`` (cached per worker)."""
    rirs = ctx.resources["rirs"]
    index = int(rng.integers(len(rirs)))
    cache = ctx.resources["cache"]
    trim = bool(trim_tail) and ctx.resources.get("trim", True)
    key = (index, int(sr), trim, float(trim_margin_db))
    if key not in cache:
        name, h, sr_h = rirs[index]
        cache[key] = prepare_rir(h, sr_h, sr, trim=trim, margin_db=trim_margin_db, source=name)
    return cache[key]


_REVERB_PARAMS = {**RIR_DEFAULTS, **ROOM_DEFAULTS}
_POSITIVE = ("room_x_min", "room_y_min", "room_z_min", "rt60_min", "min_distance")


@register("reverb", params=_REVERB_PARAMS, positive=_POSITIVE, source_devices=("a",), setup=_setup)
def reverb(y: np.ndarray, sr: int, *, rng: np.random.Generator, ctx: ClipContext, trim_tail: float,
           trim_margin_db: float, **_rooms: float) -> np.ndarray:
    """Convolve with an IR drawn uniformly from the run's IRs, aligned, same length."""
    return convolve_aligned(y, _rir_for(ctx, rng, sr, trim_tail, trim_margin_db))


@register("reverb-drc", params={**_REVERB_PARAMS, **DRC_DEFAULTS},
          positive=_POSITIVE + ("attack", "release"), source_devices=("a",), setup=_setup)
def reverb_drc(y: np.ndarray, sr: int, *, rng: np.random.Generator, ctx: ClipContext, trim_tail: float,
               trim_margin_db: float, attack: float, release: float, knee_db: float,
               makeup_db_min: float, makeup_db_max: float, **_rooms: float) -> np.ndarray:
    """Reverberation, then compression with a transfer curve drawn from
    :data:`asctool.augment.drc.CURVES` and make-up gain ~ U(makeup_db_min, makeup_db_max) dB."""
    wet = convolve_aligned(y, _rir_for(ctx, rng, sr, trim_tail, trim_margin_db))
    names = list(drc.CURVES)
    curve = drc.CURVES[names[int(rng.integers(len(names)))]]
    makeup = rng.uniform(makeup_db_min, makeup_db_max)
    return drc.compress(wet, sr, points=curve, knee_db=knee_db, attack=attack, release=release, makeup_db=makeup)
