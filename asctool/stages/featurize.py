"""``asctool featurize``: manifest in, features file out (see ``docs/featurize.md``).

Reads the clips of a manifest (or one shard of it), maps each through the
front end (:class:`asctool.frontend.FrontEnd`) in this process or in ``nj``
workers (:class:`asctool.parallel.WorkerPool`, with the features handed over
in shared memory), and writes them with
:class:`asctool.artifacts.FeaturesWriter`; ``--combine`` joins shard files
into one virtual dataset instead.
"""
from __future__ import annotations

import json
import logging
import math
import os
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from ..audio import audio_info, read_audio
from ..errors import ArtifactError, AudioError, ConfigError, MismatchError
from ..frontend import FrontEnd, fit_duration, match_channels, resolve_config
from ..io import claim_outputs, locked_outputs
from ..parallel import WorkerPool

__all__ = ["run", "parse_shard", "shard_range", "parse_duration", "parse_resample", "parse_pad_tolerance",
           "uniform_duration", "adjustment_line"]

log = logging.getLogger(__name__)


def parse_shard(text: str | Sequence[int]) -> tuple[int, int]:
    """Parse ``"K/N"`` (1-based shard K of N) into ``(K, N)``."""
    if isinstance(text, str):
        parts = text.split("/")
        try:
            k, n = (int(p) for p in parts)
        except ValueError:
            raise ConfigError(f"--shard must look like K/N (e.g. 2/4), got {text!r}") from None
    else:
        k, n = (int(v) for v in text)
    if not 1 <= k <= n:
        raise ConfigError(f"--shard K/N needs 1 <= K <= N, got {k}/{n}")
    return k, n


def shard_range(n_clips: int, k: int, n: int) -> range:
    """Rows of shard ``k`` of ``n`` (1-based): a contiguous block of the manifest.

    Blocks follow the manifest order and differ in size by at most one clip,
    so combining shards 1..N in order gives the manifest order back.
    """
    return range((k - 1) * n_clips // n, k * n_clips // n)


def parse_duration(value: float | str | None) -> float | str | None:
    """``--duration``: seconds (a positive number) or ``"auto"``; None keeps the front end's.

    Raises
    ------
    ConfigError
        anything else (``--duration must be a number of seconds or auto, got 'x'``).
    """
    if value is None or value == "auto":
        return value
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = math.nan
    if not (math.isfinite(seconds) and seconds > 0):
        raise ConfigError(f"--duration must be a positive number of seconds or auto, got {value!r}")
    return seconds


def parse_resample(value: bool | int | str | None) -> bool | int:
    """``--resample``: False (off), True or ``"preset"`` (to the front end's rate) or a rate in Hz.

    A rate in Hz also sets the front end's ``sr`` (its ``fmax: null`` follows).

    Raises
    ------
    ConfigError
        a rate that is not an integer of at least 1000 Hz.
    """
    if value is None or value is False:
        return False
    if value is True or value == "preset":
        return True
    try:
        rate = int(str(value))
    except ValueError:
        rate = 0
    if rate < 1000:
        raise ConfigError(f"--resample takes no value (the front end's rate) or a rate in Hz >= 1000, got {value!r}")
    return rate


def parse_pad_tolerance(value: float | str | None) -> float | None:
    """``--pad-tolerance FRACTION``: None (the preset's or config's) or a number in [0, 1].

    The most a clip may lack of the front end's ``duration`` and still be
    zero-padded to it (0.1: down to 90 %; 1: any shorter clip, as data sets of
    clips of several lengths such as UrbanSound8K need).

    Raises
    ------
    ConfigError
        anything else (``--pad-tolerance must be a number from 0 to 1, got 'x'``).
    """
    if value is None:
        return None
    try:
        fraction = float(value)
    except (TypeError, ValueError):
        fraction = math.nan
    if not 0.0 <= fraction <= 1.0:
        raise ConfigError(f"--pad-tolerance must be a number from 0 to 1, got {value!r}")
    return fraction


#: Clips whose lengths differ by at most this (s) count as one length for ``--duration auto``.
AUTO_TOLERANCE = 1e-3


def uniform_duration(paths: Sequence[str], where: str | os.PathLike) -> float:
    """The one length of the clips ``paths`` in seconds (``featurize --duration auto``).

    Reads only the headers (frames / sample rate of each file).

    Raises
    ------
    AudioError
        a clip differs from the first by more than :data:`AUTO_TOLERANCE`:
        one line naming the shortest and the longest clip, their lengths and
        the options that take them (``--duration``, ``--pad-tolerance``); a
        missing or unreadable file.
    """
    if not paths:
        raise AudioError(f"{where}: no clips to take --duration auto from")
    lengths = []
    for path in paths:
        info = audio_info(path)
        lengths.append(info.frames / info.samplerate)
    first = lengths[0]
    if max(abs(seconds - first) for seconds in lengths) > AUTO_TOLERANCE:
        shortest, longest = int(np.argmin(lengths)), int(np.argmax(lengths))
        raise AudioError(
            f"{where}: --duration auto needs clips of one length, but they last from {lengths[shortest]:.3f} s "
            f"({os.path.normpath(paths[shortest])}) to {lengths[longest]:.3f} s ({os.path.normpath(paths[longest])}) (give --duration SECONDS: "
            "longer clips are cut, shorter ones zero-padded when they lack at most --pad-tolerance of it; "
            f"e.g. --duration {_whole_seconds(lengths[longest])} --pad-tolerance 1 pads every clip; give every "
            "manifest of the data set the same)"
        )
    return round(first, 6)


def _whole_seconds(seconds: float) -> int:
    """``seconds`` rounded up to whole seconds (within :data:`AUTO_TOLERANCE`): a length to suggest."""
    return max(1, math.ceil(seconds - AUTO_TOLERANCE))


def adjustment_line(counts: Mapping[str, int], n_clips: int, config: Mapping[str, Any],
                    source_rates: Sequence[int] = ()) -> str | None:
    """The one line that says how many clips were resampled, downmixed, padded and cut (None: none was)."""
    parts = []
    if counts.get("resampled"):
        rates = "/".join(str(r) for r in sorted(set(source_rates)))
        parts.append(f"{counts['resampled']} resampled{f' from {rates} Hz' if rates else ''} to {config['sr']} Hz")
    if counts.get("downmixed"):
        parts.append(f"{counts['downmixed']} downmixed to mono")
    if counts.get("padded"):
        parts.append(f"{counts['padded']} zero-padded to {config['duration']:g} s")
    if counts.get("cut"):
        parts.append(f"{counts['cut']} cut to {config['duration']:g} s")
    if not parts:
        return None
    return f"of {n_clips} clips: " + ", ".join(parts)


# --------------------------------------------------------------------------
# per-clip work, in this process or in the workers
# --------------------------------------------------------------------------
class _ClipWorker:
    """Reads clips and computes their features; one per process."""

    def __init__(self, config: Mapping[str, Any], resample: bool, dtype: str) -> None:
        self.front = FrontEnd(config)
        self.resample = resample
        self.dtype = np.dtype(dtype)

    def __call__(self, paths: Sequence[str], out: np.ndarray) -> list[tuple[str, str, int]]:
        """Write the features of the clips ``paths`` into ``out[:len(paths)]``.

        Returns notes ``(kind, path, detail)`` for resampled, downmixed, padded
        and cut clips, reported once by the parent.
        """
        front, config = self.front, self.front.config
        notes: list[tuple[str, str, int]] = []
        for j, path in enumerate(paths):
            if self.resample:
                rate = audio_info(path).samplerate
                if rate != front.sr:
                    notes.append(("resampled", path, rate))
            y, _ = read_audio(path, sr=front.sr, resample_to=self.resample)
            y, downmixed = match_channels(y, front.channels, downmix=config["downmix"], path=path)
            if downmixed:
                notes.append(("downmixed", path, 0))
            y, change = fit_duration(y, front.n_samples, pad_tolerance=config["pad_tolerance"],
                                     sr=front.sr, path=path)
            if change:
                notes.append(("padded" if change > 0 else "cut", path, change))
            try:
                front(y, out=out[j])
            except ValueError as exc:
                hint = " (use --dtype float32)" if "float16" in str(exc) else ""
                raise AudioError(f"{path}: {exc}{hint}") from None
        return notes

    def block(self, paths: Sequence[str]) -> tuple[np.ndarray, list[tuple[str, str, int]]]:
        """Features of the clips ``paths`` in a new array, and their notes."""
        out = np.empty((len(paths), *self.front.feature_shape), dtype=self.dtype)
        return out, self(paths, out)


_WORKER: _ClipWorker | None = None


def _init_worker(config: Mapping[str, Any], resample: bool, dtype: str) -> None:
    global _WORKER
    _WORKER = _ClipWorker(config, resample, dtype)


def _featurize_task(task: tuple[int, Sequence[str]], slot: memoryview | None):
    """Features of the clips ``paths`` of one task ``(start, paths)``.

    With a shared-memory ``slot`` the features are written into it and only
    ``(start, None, notes, cpu, pid)`` travels back; without, the array comes
    back in place of the None.
    """
    cpu_started = time.process_time()
    start, paths = task
    if slot is None:
        block, notes = _WORKER.block(paths)
    else:
        block = np.ndarray((len(paths), *_WORKER.front.feature_shape), dtype=_WORKER.dtype, buffer=slot)
        notes, block = _WORKER(paths, block), None
    return start, block, notes, time.process_time() - cpu_started, os.getpid()


# --------------------------------------------------------------------------
# the stage
# --------------------------------------------------------------------------
def _check_output(out: Path, force: bool, inputs: Sequence[str | os.PathLike | None] = ()) -> None:
    claim_outputs([out], force=force, inputs=inputs, error=ArtifactError)


def _combine(shards: Sequence[str | os.PathLike], out: Path, *, manifest_path, preset, config_path,
             force: bool) -> dict[str, Any]:
    from ..artifacts import open_features
    from ..shards import combine_features

    shards = [Path(s) for s in shards]
    for shard in shards:
        if shard.resolve() == out.resolve():
            raise ArtifactError(f"{out}: the output is also one of the shards to combine")
    _check_output(out, force, [manifest_path, config_path])
    ids: list[str] = []
    configs = []
    for shard in shards:
        with open_features(shard) as f:
            ids.extend(str(i) for i in f.ids)
            configs.append((shard, f.config))
    if preset is not None or config_path is not None:
        from ..artifacts import check_same_config

        wanted = resolve_config(preset, config_path)
        for shard, config in configs:
            check_same_config(config, wanted, shard, config_path or f"preset {preset}")
    if manifest_path is not None:
        from ..manifest import read_manifest

        expected = read_manifest(manifest_path).ids
        if ids != expected:
            missing = len(set(expected) - set(ids))
            extra = len(set(ids) - set(expected))
            raise MismatchError(
                f"{manifest_path}: the shards do not hold exactly its clips in order "
                f"({len(ids)} clips in the shards, {len(expected)} in the manifest, "
                f"{missing} missing, {extra} not in the manifest)"
            )
    combine_features(shards, out)
    log.info("%s: combined %d shards, %d clips (virtual dataset)", out, len(shards), len(ids))
    return {"out": str(out), "clips": len(ids), "shards": [str(s) for s in shards]}


@locked_outputs("out")  # one writer per output (docs/reliability.md)
def run(
    manifest_path: str | os.PathLike | None,
    out: str | os.PathLike,
    *,
    preset: str | None = None,
    config_path: str | os.PathLike | None = None,
    dtype: str = "float16",
    resample: bool | int | str = False,
    duration: float | str | None = None,
    pad_tolerance: float | str | None = None,
    nj: int = 1,
    shard: str | Sequence[int] | None = None,
    combine: Sequence[str | os.PathLike] = (),
    force: bool = False,
    classes_path: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """Compute the model-input features of every clip of a manifest (``asctool featurize``).

    Parameters
    ----------
    manifest_path : manifest TSV (optional with ``combine``: then the combined
        ids are checked against it)
    out : features file to write (HDF5, atomic)
    preset : ``"1a"`` or ``"1b"`` (default ``"1a"``)
    config_path : YAML front-end config instead of a preset
    dtype : ``"float16"`` or ``"float32"`` storage
    resample : resample clips at another rate instead of failing: True
        (``--resample``) to the front end's ``sr``, or a rate in Hz
        (``--resample 16000``), which also becomes the front end's ``sr``
    duration : clip length in seconds for the front end (``--duration 5``;
        longer clips are cut, shorter ones zero-padded within
        ``pad_tolerance``), ``"auto"`` for the one length of every clip of
        the manifest (read from the headers; clips of different lengths are
        an error naming the shortest and the longest), or None for the
        preset's or config's
    pad_tolerance : the most a clip may lack of ``duration`` (a fraction, 0 to
        1) and still be zero-padded to it (``--pad-tolerance``; 1: any shorter
        clip); None for the preset's or config's (0.1)
    nj : worker processes (1: compute in this process)
    shard : ``"K/N"``: only the K-th of N contiguous blocks of the manifest
    combine : shard files to combine into ``out`` (virtual dataset) instead
        of computing features
    force : overwrite an existing ``out``
    classes_path : the data set's own classes, one per line (``--classes FILE``);
        every manifest label must be one of them (default: the DCASE scenes or
        coarse classes); recorded in ``out`` (attribute ``classes``) for ``train``

    Returns
    -------
    summary : dict with the output path, clip count, feature shape, dtype,
        time taken (wall and CPU), the front end's ``duration`` (s) and ``sr``
        (Hz), and counts of resampled, downmixed, padded and cut clips (also
        logged as one line, :func:`adjustment_line`).
    """
    out = Path(out)
    if combine:
        if shard is not None:
            raise ConfigError("--shard cannot be used with --combine")
        if classes_path is not None:
            raise ConfigError("--classes is given when featurizing the shards; --combine keeps their classes")
        if duration is not None or pad_tolerance is not None or parse_resample(resample) not in (False, True):
            raise ConfigError("--duration, --pad-tolerance and --resample HZ are given when featurizing the shards; "
                              "--combine keeps their front end")
        return _combine(combine, out, manifest_path=manifest_path, preset=preset, config_path=config_path,
                        force=force)
    if manifest_path is None:
        raise ConfigError("--manifest is required (unless combining shards with --combine)")
    if dtype not in ("float16", "float32"):
        raise ConfigError(f"--dtype must be float16 or float32, got {dtype!r}")
    if nj < 1:
        raise ConfigError(f"--nj must be at least 1, got {nj}")
    duration = parse_duration(duration)
    resample = parse_resample(resample)
    overrides: dict[str, Any] = {}
    if resample not in (False, True):
        overrides["sr"] = resample
    if isinstance(duration, float):
        overrides["duration"] = duration
    pad_tolerance = parse_pad_tolerance(pad_tolerance)
    if pad_tolerance is not None:
        overrides["pad_tolerance"] = pad_tolerance
    config = resolve_config(preset, config_path, overrides=overrides)
    _check_output(out, force, [manifest_path, config_path])

    from ..artifacts import FeaturesWriter
    from ..console import progress
    from ..labels import read_classes
    from ..manifest import read_manifest

    known = read_classes(classes_path)
    manifest = read_manifest(manifest_path, check_labels=True, classes=known)
    rows = range(len(manifest))
    extra_attrs: dict[str, Any] = {} if known is None else {"classes": json.dumps(known)}
    if shard is not None:
        k, n = parse_shard(shard)
        rows = shard_range(len(manifest), k, n)
        extra_attrs["shard"] = f"{k}/{n}"
        if not rows:
            log.warning("%s: shard %d/%d of %d clips is empty", manifest_path, k, n, len(manifest))
    if duration == "auto":  # over the whole manifest, so that every shard gets the same length
        overrides["duration"] = uniform_duration([str(manifest.audio_path(c)) for c in manifest.clips],
                                                 manifest_path)
        config = resolve_config(preset, config_path, overrides=overrides)
        log.info("%s: --duration auto: every clip lasts %g s", manifest_path, overrides["duration"])
    clips = [manifest.clips[i] for i in rows]
    paths = [str(manifest.audio_path(clip)) for clip in clips]
    front = FrontEnd(config)
    batch = 8 if nj == 1 else 4
    tasks = [(i, paths[i:i + batch]) for i in range(0, len(paths), batch)]
    nj = min(nj, max(1, len(tasks)))
    inputs = [manifest_path] + [p for p in (config_path, classes_path) if p is not None]
    counts = {"resampled": 0, "downmixed": 0, "padded": 0, "cut": 0}
    source_rates: set[int] = set()
    started, cpu_started, worker_cpu = time.perf_counter(), time.process_time(), 0.0
    dtype_size = np.dtype(dtype).itemsize
    # forked workers write each task's features into a shared-memory slot of this size
    slot_bytes = batch * math.prod(front.feature_shape) * dtype_size
    pool = WorkerPool(nj, initializer=_init_worker, initargs=(config, resample, dtype), slot_bytes=slot_bytes,
                      reuse_heap=True, name="featurize", where=manifest_path)
    this_process = os.getpid()
    # the workers start (on entering the pool) before the output file is opened
    with pool, FeaturesWriter(
        out, n=len(clips), feature_shape=front.feature_shape, config=config,
        ids=[c.id for c in clips], scenes=[c.scene for c in clips], devices=[c.device for c in clips],
        locations=[c.location for c in clips], dtype=dtype, inputs=inputs, extra_attrs=extra_attrs,
        tags=[c.get("tags") for c in clips] if "tags" in manifest.columns else None,  # event labels (docs/tag.md)
    ) as writer, progress(len(clips), "featurize") as advance:
        for (start, block, notes, cpu, pid), slot in pool.imap(_featurize_task, tasks, parent_helps=True):
            if block is None:  # written by a forked worker into its shared-memory slot
                n_clips = len(tasks[start // batch][1])
                block = np.ndarray((n_clips, *front.feature_shape), dtype=dtype, buffer=slot)
            writer.write_block(start, block)
            for kind, path, change in notes:
                counts[kind] += 1
                if kind == "resampled":
                    source_rates.add(change)
                if counts[kind] == 1:
                    _first_note(kind, path, change, config)
            advance(block.shape[0])
            if pid != this_process:  # this process's CPU is counted below
                worker_cpu += cpu
    seconds = time.perf_counter() - started
    # CPU of this process plus the work done in worker processes (not their start-up)
    cpu_seconds = time.process_time() - cpu_started + worker_cpu
    adjusted = adjustment_line(counts, len(clips), config, sorted(source_rates))
    if adjusted is not None:  # one line for the whole run (the first clip of each kind is named at -v)
        log.warning("%s: %s", manifest_path, adjusted)
    rate = len(clips) / seconds if seconds > 0 else float("inf")
    log.info("%s: %d clips, features %s %s, %.1f s (%.1f clips/s, %s)", out, len(clips),
             "x".join(map(str, front.feature_shape)), dtype, seconds, rate,
             f"{nj} workers" if nj > 1 else "in this process")
    summary: dict[str, Any] = {
        "out": str(out), "clips": len(clips), "feature_shape": list(front.feature_shape), "dtype": dtype,
        "seconds": round(seconds, 3), "clips_per_second": round(rate, 1), "cpu_seconds": round(cpu_seconds, 3),
        "duration": config["duration"], "sr": config["sr"], **counts,
    }
    if shard is not None:
        summary["shard"] = extra_attrs["shard"]
    return summary


def _first_note(kind: str, path: str, change: int, config: Mapping[str, Any]) -> None:
    """Name the first clip of each kind of adjustment (debug: the run's one line counts them all)."""
    if kind == "resampled":
        log.debug("%s: resampled %d Hz to %d Hz (the first one)", path, change, config["sr"])
    elif kind == "downmixed":
        log.debug("%s: channels averaged to mono, this front end is mono (the first one)", path)
    elif kind == "padded":
        log.debug("%s: %d samples short of %g s, zero-padded at the end (the first one)", path, change,
                  config["duration"])
    else:
        log.debug("%s: longer than %g s, cut to its first %g s (the first one)", path, config["duration"],
                  config["duration"])
