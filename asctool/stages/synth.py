"""``asctool synth``: write the demo dataset in the TAU Urban Acoustic Scenes 2020 Mobile layout.

The audio comes from :mod:`asctool.synth` (see ``docs/synth.md``); this stage
plans the dataset, renders one location per task in this process or in
``nj`` workers (:class:`asctool.parallel.WorkerPool`), writes the WAV files,
``meta.csv``, ``evaluation_setup/fold1_{train,evaluate,test}.csv`` and the
marker ``asctool_synth.json`` that ``asctool prepare`` recognises.
"""
from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Sequence

from .. import __version__
from ..audio import write_audio
from ..console import progress
from ..errors import AsctoolError
from ..io import atomic_path, claim_outputs, locked_outputs
from ..manifest import SYNTH_MARKER
from ..parallel import WorkerPool
from ..synth import DEVICES, PlannedSegment, plan_dataset, render_location
from ..synth.plan import location_events

__all__ = ["run"]

log = logging.getLogger(__name__)


def _write_csv(path: Path, header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8", newline="") as handle:
            handle.write("\t".join(header) + "\n")
            for row in rows:
                handle.write("\t".join(row) + "\n")


def _synth_location(job: tuple) -> list[tuple[str, tuple[str, ...]]]:
    """Render and write every clip of one location (a unit of work for ``nj`` workers)."""
    segments, out_dir, seed, n, sr, channels = job
    written = []
    events = ";".join(location_events(segments, seed=seed))  # the sources mixed in: event labels (docs/tag.md)
    for seg, device, y in render_location(segments, seed=seed, n=n, sr=sr, channels=channels):
        filename = f"audio/{seg.stem(device)}.wav"
        write_audio(Path(out_dir) / filename, y, sr)
        written.append((seg.split, (filename, seg.scene, seg.identifier, device, events)))
    return written


@locked_outputs("out_dir")  # one writer per output (docs/reliability.md)
def run(
    out_dir: str | os.PathLike,
    *,
    clips_per_class: int = 12,
    duration: float = 10.0,
    sr: int = 44100,
    seed: int = 0,
    force: bool = False,
    channels: int = 1,
    devices: Sequence[str] | str = DEVICES,
    parallel_per_class: int | None = None,
    evaluate_per_class: int | None = None,
    segments_per_location: int = 2,
    nj: int = 1,
) -> dict:
    """Write the demo dataset in the TAU Urban Acoustic Scenes 2020 Mobile layout.

    Parameters
    ----------
    out_dir : dataset root to create (audio/, meta.csv, evaluation_setup/)
    clips_per_class : device-a training segments per scene
    duration : clip length in seconds
    sr : sample rate in Hz (44100 like TAU 2020 Mobile; 48000 with ``channels=2``
        like the task 1b data)
    seed : random seed; the same seed and options give byte-identical files
    force : write into a non-empty folder (files of the same name are replaced)
    channels : 1 (mono) or 2 (stereo: decorrelated room responses per channel)
    devices : devices to write (names or a comma-separated string)
    parallel_per_class, evaluate_per_class, segments_per_location : see
        :func:`asctool.synth.plan_dataset`
    nj : worker processes (one location at a time each); the files do not
        depend on ``nj``

    Returns
    -------
    dict : summary (root, counts per split and device, options, seconds taken)
    """
    start = time.perf_counter()
    out_dir = Path(out_dir)
    given = devices if isinstance(devices, str) else ",".join(devices)
    if isinstance(devices, str):
        devices = tuple(d.strip() for d in devices.split(",") if d.strip())
    if not devices:
        raise AsctoolError(f"--devices {given!r}: no device given (e.g. a,b,c); nothing to write")
    if nj < 1:
        raise AsctoolError(f"nj must be at least 1, got {nj}")
    if channels not in (1, 2):
        raise AsctoolError(f"channels must be 1 or 2, got {channels}")
    if duration <= 0 or sr < 8000:
        raise AsctoolError(f"duration must be positive and sr at least 8000 Hz (got {duration} s, {sr} Hz)")
    if int(seed) < 0:
        raise AsctoolError(f"--seed {seed}: must be >= 0")
    if out_dir.exists() and not out_dir.is_dir():
        raise AsctoolError(f"{out_dir}: exists and is not a folder")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not force:
        raise AsctoolError(f"{out_dir}: folder is not empty (use --force to write into it)")
    claim_outputs(folders=[out_dir])
    segments = plan_dataset(
        clips_per_class, parallel_per_class=parallel_per_class, evaluate_per_class=evaluate_per_class,
        segments_per_location=segments_per_location, devices=devices,
    )
    n = int(round(duration * sr))
    audio_dir = out_dir / "audio"
    audio_dir.mkdir(parents=True, exist_ok=True)
    rows: dict[str, list[tuple[str, ...]]] = {"train": [], "evaluate": []}
    total = sum(len(s.devices) for s in segments)
    by_location: dict[int, list[PlannedSegment]] = {}
    for seg in segments:
        by_location.setdefault(seg.location_id, []).append(seg)
    jobs = [(group, out_dir, seed, n, sr, channels) for group in by_location.values()]
    log.info("synthesizing %d clips (%d segments, %d locations) into %s", total, len(segments), len(jobs), out_dir)
    # pin_blas=False: the float32 products of scene_mix round differently with another
    # BLAS thread count, so workers keep this process's BLAS and the files stay
    # independent of nj (they do depend on the thread count OpenBLAS picks here)
    pool = WorkerPool(min(nj, max(1, len(jobs))), preload=[__name__], pin_blas=False, name="synth",
                      where=out_dir)
    with pool, progress(total, "synth") as advance:
        for written in pool.imap(_synth_location, jobs):
            for split, row in written:
                rows[split].append(row)
            advance(len(written))
    for split in rows:
        rows[split].sort()
    meta = sorted(rows["train"] + rows["evaluate"])
    _write_csv(out_dir / "meta.csv", ("filename", "scene_label", "identifier", "source_label", "tags"), meta)
    setup = out_dir / "evaluation_setup"
    setup.mkdir(exist_ok=True)
    _write_csv(setup / "fold1_train.csv", ("filename", "scene_label"), [r[:2] for r in rows["train"]])
    _write_csv(setup / "fold1_evaluate.csv", ("filename", "scene_label"), [r[:2] for r in rows["evaluate"]])
    _write_csv(setup / "fold1_test.csv", ("filename",), [r[:1] for r in rows["evaluate"]])
    counts = {
        split: {d: sum(1 for r in rows[split] if r[3] == d) for d in DEVICES if any(r[3] == d for r in rows[split])}
        for split in rows
    }
    options = {
        "clips_per_class": clips_per_class, "duration": duration, "sr": sr, "seed": seed,
        "channels": channels, "devices": list(devices), "parallel_per_class": parallel_per_class,
        "evaluate_per_class": evaluate_per_class, "segments_per_location": segments_per_location,
    }
    marker = {"asctool_version": __version__, "generator": "asctool synth", "options": options,
              "counts": counts}
    with atomic_path(out_dir / SYNTH_MARKER) as tmp:
        tmp.write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")
    seconds = time.perf_counter() - start
    log.info("wrote %d clips in %.1f s", total, seconds)
    return {"dataset_root": str(out_dir), "clips": total, "counts": counts, **options,
            "seconds": round(seconds, 2)}
