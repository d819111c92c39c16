"""The demo dataset's plan (which segments, where, on which devices) and its rendering.

:func:`plan_dataset` lays out segments, locations and splits;
:func:`render_location` renders every device recording of one location's
segments (the unit of work of ``asctool synth``'s workers). All randomness
comes from generators seeded by ``seed`` and the indices of the location,
segment and device, so the audio does not depend on the order or the
process it is rendered in.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Mapping, Sequence

import numpy as np
import scipy.fft as sfft

from ..errors import AsctoolError
from ..labels import SCENES
from .devices import DEVICE_SPECS, DEVICES, TRAIN_DEVICES, record, simulate_device
from .scenes import _EPS, location_params, room_response, scene_mix

__all__ = ["CITIES", "PlannedSegment", "plan_dataset", "render_location"]

CITIES = (
    "barcelona", "helsinki", "lisbon", "london", "lyon",
    "milan", "paris", "prague", "stockholm", "vienna",
)


@dataclass
class PlannedSegment:
    """One recorded segment: where, which split, on which devices (file stems via :meth:`stem`)."""

    scene: str
    city: str
    location_id: int
    segment_id: int
    split: str
    devices: tuple[str, ...]

    def stem(self, device: str) -> str:
        return f"{self.scene}-{self.city}-{self.location_id}-{self.segment_id}-{device}"

    @property
    def identifier(self) -> str:
        return f"{self.city}-{self.location_id}"


def plan_dataset(
    clips_per_class: int,
    *,
    parallel_per_class: int | None = None,
    evaluate_per_class: int | None = None,
    segments_per_location: int = 2,
    devices: Sequence[str] = DEVICES,
) -> list[PlannedSegment]:
    """Which segments exist, where they were recorded and on which devices.

    Per scene: ``clips_per_class`` training segments recorded on device a, of
    which ``parallel_per_class`` (default ``max(1, round(clips_per_class / 8))``)
    were also recorded on b, c and simulated as s1-s3 (so that device a
    dominates the training set, about 60 % of it and more, as in TAU 2020
    Mobile); ``evaluate_per_class`` (default ``max(1, round(0.4 *
    clips_per_class))``) evaluation segments on every device a, b, c, s1-s6.
    Segments are grouped ``segments_per_location`` to a location; train and
    evaluate locations are disjoint. Only ``devices`` are kept.
    """
    if clips_per_class < 1:
        raise AsctoolError(f"clips_per_class must be at least 1, got {clips_per_class}")
    unknown = [d for d in devices if d not in DEVICES]
    if unknown:
        raise AsctoolError(f"unknown device(s) {', '.join(unknown)}; known: {', '.join(DEVICES)}")
    if "a" not in devices and any(DEVICE_SPECS[d].simulated for d in devices):
        raise AsctoolError("simulated devices s1-s6 are made from device a: include device a")
    n_par = max(1, round(clips_per_class / 8)) if parallel_per_class is None else int(parallel_per_class)
    n_eval = max(1, round(0.4 * clips_per_class)) if evaluate_per_class is None else int(evaluate_per_class)
    if not 0 <= n_par <= clips_per_class:
        raise AsctoolError(f"parallel_per_class must be between 0 and {clips_per_class}, got {n_par}")
    if n_eval < 1:
        raise AsctoolError(f"evaluate_per_class must be at least 1, got {n_eval}")
    per_loc = max(1, int(segments_per_location))
    keep = set(devices)
    train_devices = tuple(d for d in TRAIN_DEVICES if d in keep)
    eval_devices = tuple(d for d in DEVICES if d in keep)
    segments: list[PlannedSegment] = []
    location_id, segment_id = 0, 0
    for s_index, scene in enumerate(SCENES):
        for split, count in (("train", clips_per_class), ("evaluate", n_eval)):
            n_locs = -(-count // per_loc)
            first_location = location_id + 1
            location_id += n_locs
            # parallel recordings spread over locations: the first segment of each location first
            order = sorted(range(count), key=lambda i: (i // n_locs, i % n_locs))
            parallel = set(order[:n_par]) if split == "train" else set(range(count))
            for i in range(count):
                loc = i % n_locs
                segment_id += 1
                city = CITIES[(3 * s_index + loc + (5 if split == "evaluate" else 0)) % len(CITIES)]
                devs = (train_devices if split == "train" else eval_devices) if i in parallel else ("a",)
                devs = tuple(d for d in devs if d in keep)
                if devs:
                    segments.append(PlannedSegment(scene, city, first_location + loc, segment_id, split, devs))
    return segments


def _render_segment(seg: PlannedSegment, loc: Mapping, seed: int, *, n: int, sr: int,
                    room_spectrum: np.ndarray) -> dict[str, np.ndarray]:
    """All device recordings of one segment, ``{device: (channels, n) float32}``.

    ``room_spectrum`` is ``scipy.fft.rfft(room, n)`` of the location's impulse
    responses, shape (channels, n // 2 + 1).
    """
    rng = np.random.default_rng([seed, 1, seg.segment_id])
    dry = scene_mix(seg.scene, loc, rng, n=n, sr=sr).astype(np.float32)
    # room: circular convolution (the tail of the clip wraps to its start)
    wet = sfft.rfft(dry) * room_spectrum   # (channels, bins)
    level = 10.0 ** (loc["loudness"] / 20.0) / (np.sqrt(np.mean(np.abs(wet) ** 2) / n) + _EPS)
    spectra: dict[str, np.ndarray] = {}
    for device in ("a", "b", "c"):
        if device == "a" or device in seg.devices:
            dev_rng = np.random.default_rng([seed, 2, seg.segment_id, DEVICES.index(device)])
            spectra[device] = record(wet, device, dev_rng, n=n, sr=sr, level=level)
    out: dict[str, np.ndarray] = {}
    for device in seg.devices:
        if DEVICE_SPECS[device].simulated:
            dev_rng = np.random.default_rng([seed, 2, seg.segment_id, DEVICES.index(device)])
            y = simulate_device(spectra["a"], device, dev_rng, n=n, sr=sr)
        else:
            y = sfft.irfft(spectra[device], n, axis=-1)
        out[device] = np.clip(y, -1.0, 1.0).astype(np.float32, copy=False)
    return out


def render_location(segments: Sequence[PlannedSegment], *, seed: int, n: int, sr: int, channels: int = 1
                    ) -> Iterator[tuple[PlannedSegment, str, np.ndarray]]:
    """Render every device recording of the segments of one location.

    Parameters
    ----------
    segments : segments of one location (from :func:`plan_dataset`)
    seed : the dataset's random seed
    n : clip length in samples
    sr : sample rate in Hz
    channels : 1 or 2 (decorrelated room responses per channel)

    Yields
    ------
    (segment, device, audio) : audio as np.ndarray [shape=(channels, n), dtype=float32]
        within [-1, 1], segment by segment in the order given
    """
    loc_rng = np.random.default_rng([seed, 0, segments[0].location_id])
    loc = location_params(segments[0].scene, loc_rng)
    room = room_response(loc["rt60"], loc["drr"], sr, loc_rng, channels)
    room_spectrum = sfft.rfft(room.astype(np.float32), n, axis=-1)
    for seg in segments:
        for device, y in _render_segment(seg, loc, seed, n=n, sr=sr, room_spectrum=room_spectrum).items():
            yield seg, device, y


def location_events(segments: Sequence[PlannedSegment], *, seed: int) -> list[str]:
    """Event labels of every clip of one location: the sources its mix keeps, sorted.

    The same draw as :func:`render_location` (``location_params`` of the
    location's random stream), so the labels name exactly the sources mixed
    into the clips (``synth`` writes them as ``meta.csv``'s ``tags`` column).
    """
    loc = location_params(segments[0].scene, np.random.default_rng([seed, 0, segments[0].location_id]))
    return sorted(loc["levels"])
