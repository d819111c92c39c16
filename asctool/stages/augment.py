"""``asctool augment METHOD``: select sources, guard against leakage, process clips
in worker processes, write audio and the output manifest.

The methods, their parameters and the per-clip functions live in
:mod:`asctool.augment` (the registry); source selection and the leakage guard
in :mod:`asctool.augment.sources`; one clip's processing and the peak rule in
:mod:`asctool.augment.apply`. This module is the run around them.

Ids and rows
------------
An output clip's id is ``<source id>_<tag>`` (``_<tag>_<device>`` for
``spectrum-correction --per-device``), where ``tag`` is the method name
without dashes (``pitch``, ``speed``, ``noise``, ``mix``, ``speccorr``,
``reverb``, ``reverbdrc``). The suffix has no dash, so a TAU stem stays
parsable (5 dash fields: scene, city, location and segment unchanged; only the
last field grows). Scene, device, city and location are carried from the
source row (filled from the TAU id only when the row leaves them empty), never
re-parsed from the new id. ``source_id`` is the source row's id and
``augmentation`` the method (``spectrum-correction:<device>`` per device).

Determinism, streaming, resuming
--------------------------------
Every output clip draws its randomness from a generator seeded by SHA-256 of
(seed, method, output id), so results do not depend on ``nj`` or order. Clips
are read, processed and written one at a time per worker, each written
atomically; a restarted run keeps the clips already written (same method and
settings, recorded in ``.asctool-augment.json`` in the output folder) and
writes the manifest at the end.

Peaks
-----
A clip whose peak exceeds full scale (|y| > 1) is scaled down to a peak of
0.99; the number of such clips is logged and returned as ``peak_scaled``.
"""
from __future__ import annotations

import json
import logging
import os
import re
import shutil
import time
from pathlib import Path
from typing import Any, Sequence

from ..audio import read_audio, write_audio
from ..augment import get, parse_params
from ..augment.apply import PEAK_TARGET, augment_clip
from ..augment.registry import ClipContext, Plan
from ..augment.sources import SetupRequest, SourceRow, drop_excluded, parse_devices, read_exclusions, resolve_rows
from ..console import progress
from ..errors import AsctoolError, ConfigError, ManifestError
from ..io import atomic_path, check_name, claim_outputs, lock_path_for, locked_outputs, write_error
from ..labels import read_classes
from ..manifest import Clip, parse_stem, read_manifest, write_manifest
from ..parallel import WorkerPool

__all__ = ["run", "MARKER"]

log = logging.getLogger(__name__)

#: Name of the file recording a run's method and settings in its output folder.
MARKER = ".asctool-augment.json"
_TMP = re.compile(r"\.tmp-[A-Za-z0-9_]+(\.[A-Za-z0-9]+)?$")


def _marker_settings(method: str, params: dict, seed: int, per_device: bool, audio_format: str,
                     rir_dir: Path | None, simulate_rooms: int | None) -> dict[str, Any]:
    return {"method": method, "params": params, "seed": int(seed), "per_device": bool(per_device),
            "format": audio_format, "rir_dir": None if rir_dir is None else str(Path(rir_dir).resolve()),
            "simulate_rooms": simulate_rooms}


def _check_out_dir(out_dir: Path, settings: dict[str, Any], allowed: set[str], force: bool = False) -> list[Path]:
    """Refuse a folder holding other files (or, without ``force``, a run with other settings);
    return leftover temporary files."""
    if out_dir.exists() and not out_dir.is_dir():
        raise AsctoolError(f"{out_dir}: output folder is a file")
    if not out_dir.exists():
        return []
    entries = sorted(out_dir.iterdir())
    if not entries:
        return []
    marker = out_dir / MARKER
    if not marker.exists():
        raise AsctoolError(
            f"{out_dir}: output folder is not empty and holds no augment run ({MARKER} missing); use an empty folder"
        )
    try:
        previous = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise AsctoolError(f"{marker}: unreadable run record ({exc})") from None
    current = json.loads(json.dumps(settings))  # as it reads back from the file
    if previous != current and not force:
        differs = sorted(k for k in set(previous) | set(current) if previous.get(k) != current.get(k))
        raise AsctoolError(
            f"{out_dir}: output folder holds a run with other settings ({', '.join(differs)}); "
            "use another folder (or --force to overwrite it)"
        )
    leftovers, foreign = [], []
    for entry in entries:
        if entry.name == MARKER or entry.name in allowed:
            continue
        if entry.is_file() and _TMP.search(entry.stem + entry.suffix):
            leftovers.append(entry)
        else:
            foreign.append(entry.name)
    if foreign:
        shown = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
        raise AsctoolError(f"{out_dir}: output folder holds files not from this run: {shown}")
    return leftovers


# --------------------------------------------------------------------------
# the worker
# --------------------------------------------------------------------------
_STATE: dict[str, Any] = {}


def _init_worker(method: str, params: dict, resources: dict, seed: int) -> None:
    _STATE.clear()
    _STATE.update(aug=get(method), params=params, resources=resources, seed=seed)


def _process(task: tuple[str, str, str, str, str, str, str]) -> tuple[str, bool]:
    src_id, src_path, scene, segment, variant, out_id, out_path = task
    y, sr = read_audio(Path(src_path))
    ctx = ClipContext(clip_id=src_id, scene=scene, segment=segment, variant=variant,
                      resources=_STATE["resources"])
    out, scaled = augment_clip(_STATE["aug"], y, sr, seed=_STATE["seed"], out_id=out_id, ctx=ctx,
                               params=_STATE["params"], source=src_path)
    try:
        write_audio(Path(out_path), out, sr)
    except (OSError, RuntimeError) as exc:  # a full disk (libsndfile says "System error."): one line
        raise write_error(out_path, exc) from None
    return out_id, scaled


# --------------------------------------------------------------------------
# the stage
# --------------------------------------------------------------------------
@locked_outputs("out_dir", "out_manifest")  # one writer per output (docs/reliability.md)
def run(
    method: str,
    manifest_path: str | os.PathLike,
    *,
    out_dir: str | os.PathLike,
    out_manifest: str | os.PathLike,
    rir_dir: str | os.PathLike | None = None,
    simulate_rooms: int | None = None,
    exclude_locations: str | os.PathLike | None = None,
    devices: str | Sequence[str] | None = None,
    per_device: bool = False,
    audio_format: str = "flac",
    params: Sequence[str] | dict[str, Any] = (),
    nj: int = 1,
    seed: int = 0,
    force: bool = False,
    classes_path: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """Write one augmented copy of the selected clips of a manifest.

    Parameters
    ----------
    method : registered augmentation (see :func:`asctool.augment.available`)
    manifest_path : input manifest (TSV)
    out_dir : folder for the audio files (created; must be empty or hold an
        interrupted run of the same method and settings)
    out_manifest : output manifest (TSV); sidecar artifacts (device response
        NPZ, IR/room tables) are written beside it as ``<stem>.<kind>``
    rir_dir, simulate_rooms : IR source for reverb and reverb-drc (exactly one)
    exclude_locations : evaluation manifest; sources recorded at its
        locations (or segments) are dropped (docs/reference.md 7.4)
    devices : source devices (comma-separated); default ``a`` for
        spectrum-correction (the reference device), reverb and reverb-drc,
        every row for pitch, speed, noise and mix
    per_device : spectrum-correction only: one response and copy per target device
    audio_format : "flac" or "wav" (24-bit PCM)
    params : ``KEY=VALUE`` overrides of the method's parameters
    nj : worker processes
    seed : random seed
    force : overwrite an existing ``out_manifest`` and rewrite every clip
        (also over a run of other settings in ``out_dir``); without it an
        interrupted run of the same settings is resumed
    classes_path : the data set's own classes, one per line (``--classes FILE``);
        every manifest label must be one of them (default: the DCASE scenes or
        coarse classes)

    Returns
    -------
    dict : summary (counts, paths, timing)
    """
    started = time.perf_counter()
    aug = get(method)
    resolved = parse_params(aug, params)
    if audio_format not in ("flac", "wav"):
        raise ConfigError(f"--format {audio_format!r}: use flac or wav")
    if aug.name not in ("reverb", "reverb-drc") and (rir_dir is not None or simulate_rooms is not None):
        raise ConfigError(f"augment {method}: --rir-dir and --simulate-rooms are only for reverb and reverb-drc")
    if per_device and method != "spectrum-correction":
        raise ConfigError(f"augment {method}: --per-device is only for spectrum-correction")
    manifest_path = Path(manifest_path)
    out_dir, out_manifest = Path(out_dir), Path(out_manifest)
    claim_outputs([out_manifest], force=force, folders=[out_dir], inputs=[manifest_path, exclude_locations])
    known = read_classes(classes_path)
    manifest = read_manifest(manifest_path, check_labels=True, classes=known)
    rows = resolve_rows(manifest)

    # leakage guard (docs/reference.md 7.4)
    n_excluded = 0
    if exclude_locations is not None:
        locations, segments = read_exclusions(exclude_locations)
        rows, n_excluded, unchecked = drop_excluded(rows, locations, segments)
        log.info("augment %s: leakage guard dropped %d clip(s) recorded at locations of %s",
                 method, n_excluded, exclude_locations)
        if unchecked:
            log.warning("augment %s: %d clip(s) have no location or TAU id and could not be checked", method, unchecked)

    # source devices
    source_devices = parse_devices(devices) or aug.source_devices
    if method == "spectrum-correction" and (source_devices is None or len(source_devices) != 1):
        raise ConfigError("augment spectrum-correction: --devices names the one reference device (default a)")
    sources = rows if source_devices is None else [r for r in rows if r.device in source_devices]
    if not sources:
        which = "any device" if source_devices is None else f"device(s) {', '.join(source_devices)}"
        raise ManifestError(f"{manifest_path}: no source clips of {which} left to augment"
                            + (f" after excluding {n_excluded} by location" if n_excluded else ""))
    absent = next((r for r in sources if not r.audio_path.is_file()), None)
    if absent is not None:  # the commonest bad input (a wrong root), found before anything is written
        raise ManifestError(f"{absent.audio_path}: audio file not found (clip {absent.id} of {manifest_path})")

    request = SetupRequest(method=method, manifest_path=manifest_path, rows=rows, sources=sources,
                           source_devices=source_devices, params=resolved, per_device=per_device,
                           rir_dir=None if rir_dir is None else Path(rir_dir), simulate_rooms=simulate_rooms,
                           nj=nj, seed=seed)
    settings = _marker_settings(method, resolved, seed, per_device, audio_format, request.rir_dir, simulate_rooms)
    setup_started = time.perf_counter()
    plan = aug.setup(request) if aug.setup is not None else Plan()
    setup_s = time.perf_counter() - setup_started

    # tasks and output rows
    tasks, out_rows = [], []
    for row in sources:
        variants = [""] if plan.variants is None else plan.variants.get(row.id)
        for variant in variants or ():
            out_id = check_name(f"{row.id}_{aug.tag}" + (f"_{variant}" if variant else ""),
                                what="output clip id", where=manifest_path, error=ManifestError)
            out_path = out_dir / f"{out_id}.{audio_format}"
            tasks.append((row.id, str(row.audio_path), row.scene, row.segment, variant, out_id, str(out_path)))
            parsed_city = _city(row)
            out_rows.append(Clip(
                id=out_id, path=_relative(out_path, out_manifest), scene=row.scene, device=row.device,
                city=row.clip.city or parsed_city, location=row.location, source_id=row.id,
                augmentation=method + (f":{variant}" if variant else ""), extra=dict(row.clip.extra),
            ))
    if not tasks:
        why = ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in plan.skipped.items()) or "none selected"
        raise ManifestError(f"{manifest_path}: augment {method} has no clip to write from its {len(sources)} "
                            f"source clip(s) ({why}); nothing written")
    artifact_paths = {suffix: out_manifest.with_name(out_manifest.stem + suffix) for suffix in plan.artifacts}
    allowed = {Path(t[6]).name for t in tasks} | {out_manifest.name} | {p.name for p in artifact_paths.values()}
    allowed.add(lock_path_for(out_manifest).name)  # (when the manifest is written inside --out-dir)
    claim_outputs(rewritable=artifact_paths.values())  # side files of a resumed run are rewritten
    leftovers = _check_out_dir(out_dir, settings, allowed, force)

    if exclude_locations is None:  # said once everything is checked: a bad input gets its one line alone
        log.warning("augment %s: no leakage guard set (--exclude-locations EVAL.tsv); augmented copies of "
                    "evaluation locations would leak into training (docs/reference.md 7.4)", method)

    # from here on, files are written; a failure before the first clip leaves nothing behind
    fresh = next((p for p in (*reversed(out_dir.parents), out_dir) if not p.exists()), None)
    empty_before = fresh is None and not any(out_dir.iterdir())
    new_artifacts = [p for p in artifact_paths.values() if not p.exists()]
    todo = [t for t in tasks if force or not Path(t[6]).exists()]
    n_existing = len(tasks) - len(todo)
    n_done = n_scaled = 0
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        for path in leftovers:
            path.unlink(missing_ok=True)
        with atomic_path(out_dir / MARKER) as tmp:
            tmp.write_text(json.dumps(settings, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        for suffix, writer in plan.artifacts.items():
            writer(artifact_paths[suffix])
        if n_existing:
            log.info("augment %s: %d clip(s) already written in %s are kept", method, n_existing, out_dir)
        processing_started = time.perf_counter()
        pool = WorkerPool(min(nj, max(1, len(todo))), initializer=_init_worker,
                          initargs=(method, resolved, plan.resources, seed), name=f"augment {method}",
                          where=manifest_path)
        with pool, progress(len(todo), f"augment {method}") as advance:
            for _, scaled in pool.imap(_process, todo):
                n_scaled += scaled
                n_done += 1
                advance()
    except BaseException:
        if not n_done and not n_existing:  # nothing to resume: remove what this run made
            for path in new_artifacts:
                path.unlink(missing_ok=True)
            if fresh is not None:
                shutil.rmtree(fresh, ignore_errors=True)
            elif empty_before:
                for path in out_dir.iterdir():
                    path.unlink(missing_ok=True)
        raise
    processing_s = time.perf_counter() - processing_started
    if n_scaled:
        log.info("augment %s: %d clip(s) peaked above full scale and were scaled to a peak of %.2f",
                 method, n_scaled, PEAK_TARGET)
    write_manifest(out_manifest, out_rows)
    elapsed = time.perf_counter() - started
    summary: dict[str, Any] = {
        "method": method,
        "input_clips": len(manifest),
        "excluded_by_location": n_excluded if exclude_locations is not None else None,
        "sources": len(sources),
        "skipped": plan.skipped,
        "output_clips": len(out_rows),
        "written": len(todo),
        "kept_existing": n_existing,
        "peak_scaled": n_scaled,
        "out_manifest": str(out_manifest),
        "artifacts": {k.strip(".").split(".")[0]: str(v) for k, v in artifact_paths.items()},
        "params": resolved,
        "seed": seed,
        "nj": nj,
        "elapsed_s": round(elapsed, 2),
        "setup_s": round(setup_s, 2),
        "processing_s": round(processing_s, 2),
        **plan.summary,
    }
    log.info("augment %s: wrote %d clip(s) (%d kept) to %s in %.1f s", method, len(todo), n_existing, out_dir, elapsed)
    return summary


def _city(row: SourceRow) -> str:
    try:
        return parse_stem(row.clip.id)["city"]
    except ManifestError:
        return ""


def _relative(path: Path, manifest: Path) -> str:
    try:
        return os.path.relpath(path.resolve(), manifest.resolve().parent)
    except ValueError:  # other drive (Windows)
        return str(path.resolve())
