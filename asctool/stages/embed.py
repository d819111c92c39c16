"""``asctool embed``: manifest in, embeddings file out (see ``docs/embed.md``).

Reads the clips of a manifest a few at a time, resamples them (soxr) to the
extractor's rate, fits them to the length of the first clip, cuts them into
the extractor's windows (:mod:`asctool.embeddings.windows`) and embeds the
windows ``--batch-size`` at a time, in this process or in ``nj`` workers
(:class:`asctool.parallel.WorkerPool`); the embeddings are written with
:class:`asctool.embeddings.artifact.EmbeddingsWriter` (atomic: an interrupted
run leaves nothing, and running it again starts over).

The work is split into the same tasks (consecutive clips, their windows
batched the same way) whatever ``nj`` is, so the embeddings do not depend on it.
"""
from __future__ import annotations

import logging
import os
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from ..errors import ArtifactError, ConfigError
from ..io import claim_outputs, locked_outputs
from ..parallel import WorkerPool

__all__ = ["run"]

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------
# per-task work, in this process or in the workers
# --------------------------------------------------------------------------
class _EmbedWorker:
    """Reads clips and embeds their windows; one per process."""

    def __init__(self, extractor, n_samples: int, starts: np.ndarray, batch_size: int) -> None:
        self.extractor = extractor
        self.n_samples = n_samples
        self.starts = starts
        self.batch_size = batch_size

    def clip_audio(self, path: str, notes: list) -> np.ndarray:
        """The clip at the extractor's rate and length: ``(samples,)``, or ``(channels, samples)``."""
        from ..embeddings.windows import fit_clip

        return fit_clip(path, sample_rate=self.extractor.sample_rate, channels=self.extractor.channels,
                        n_samples=self.n_samples, notes=notes)

    def clip_windows(self, path: str, notes: list) -> np.ndarray:
        """The windows ``(T, [channels,] W)`` of one clip."""
        from ..embeddings.windows import cut_windows

        ex = self.extractor
        return cut_windows(self.clip_audio(path, notes), self.starts, sr=ex.sample_rate, window=ex.window,
                           center=ex.center)

    def __call__(self, paths: Sequence[str]) -> tuple[np.ndarray, list]:
        """Embeddings ``(len(paths), T, D)`` and notes; the windows of all clips run ``batch_size`` at a time.

        A reader thread decodes and resamples the next clips while the model
        runs (both release the GIL), so the model is what sets the pace; the
        batches are the same as without it (consecutive windows of the task).
        """
        from concurrent.futures import ThreadPoolExecutor

        ex = self.extractor
        ex.load()
        notes: list = []
        parts, pending = [], []
        with ThreadPoolExecutor(1, thread_name_prefix="embed-reader") as reader:
            clips = [reader.submit(self.clip_windows, p, notes) for p in paths]
            try:
                for k, clip in enumerate(clips):
                    pending.append(clip.result())
                    last = k == len(clips) - 1
                    while pending and (last or sum(len(w) for w in pending) >= self.batch_size):
                        windows = np.concatenate(pending)
                        take = len(windows) if last and len(windows) <= self.batch_size else self.batch_size
                        parts.append(ex.embed(windows[:take]))
                        pending = [windows[take:]] if take < len(windows) else []
            finally:
                for clip in clips:
                    clip.cancel()
        out = np.concatenate(parts).astype(np.float32, copy=False)
        bad = np.flatnonzero(~np.isfinite(out).reshape(len(out), -1).all(axis=1))
        if bad.size:
            clip = paths[int(bad[0]) // len(self.starts)]
            raise ArtifactError(f"{clip}: extractor {ex.name} gave NaN or Inf embeddings")
        return out.reshape(len(paths), len(self.starts), -1), notes


_WORKER: _EmbedWorker | None = None


def _init_worker(extractor, n_samples: int, starts: np.ndarray, batch_size: int) -> None:
    global _WORKER
    _WORKER = _EmbedWorker(extractor, n_samples, starts, batch_size)


def _embed_task(task: tuple[int, Sequence[str]]):
    """Embeddings ``(k, T, D)`` of the clips of one task ``(start, paths)``, with notes, CPU time and pid."""
    cpu_started = time.process_time()
    start, paths = task
    block, notes = _WORKER(paths)
    return start, block, notes, time.process_time() - cpu_started, os.getpid()


# --------------------------------------------------------------------------
# the stage
# --------------------------------------------------------------------------
def _clip_samples(path: str, rate: int) -> int:
    """Length of ``path`` in samples at ``rate`` (from its header)."""
    from ..audio import audio_info

    info = audio_info(path)
    if info.frames <= 0:
        raise ArtifactError(f"{path}: audio file holds no samples")
    return int(round(info.frames * rate / info.samplerate))


@locked_outputs("out")  # one writer per output (docs/reliability.md)
def run(
    manifest_path: str | os.PathLike,
    out: str | os.PathLike,
    *,
    extractor: str,
    options: Mapping[str, Any] | None = None,
    nj: int = 1,
    batch_size: int = 32,
    force: bool = False,
) -> dict[str, Any]:
    """Embed every clip of a manifest with a registered extractor (``asctool embed``).

    Parameters
    ----------
    manifest_path : manifest TSV
    out : embeddings file to write (HDF5, atomic; layout in
        :mod:`asctool.embeddings.artifact`)
    extractor : registry name (``openl3``, ``birdnet``, ``keras``, ``tflite``)
    options : the extractor's options (``hop``, ``weights``, ``model``,
        ``layer``, ...; None values take the defaults)
    nj : worker processes (1: compute in this process); the result does not
        depend on it
    batch_size : windows per model call
    force : overwrite an existing ``out``

    Returns
    -------
    summary : dict with the output path, clip count, windows per clip,
        dimensions, time taken and counts of resampled, downmixed, padded and
        cut clips.

    Raises
    ------
    ConfigError
        an unknown extractor, an option it does not take, a bad option value
        (a sample rate it cannot take, missing weights).
    ArtifactError, AudioError, ManifestError
        unreadable inputs, naming the file.
    """
    from ..embeddings import make_extractor
    from ..embeddings.windows import window_starts, window_times

    out = Path(out)
    if nj < 1:
        raise ConfigError(f"--nj must be at least 1, got {nj}")
    if batch_size < 1:
        raise ConfigError(f"--batch-size must be at least 1, got {batch_size}")
    ex = make_extractor(extractor, dict(options or {}))
    weights = list(ex.input_files)
    claim_outputs([out], force=force, inputs=[manifest_path, *weights], error=ArtifactError)

    from ..console import progress
    from ..embeddings.artifact import EmbeddingsWriter
    from ..manifest import read_manifest

    manifest = read_manifest(manifest_path)
    clips = manifest.clips
    paths = [str(manifest.audio_path(clip)) for clip in clips]
    n_samples = _clip_samples(paths[0], ex.sample_rate)
    try:
        starts = window_starts(n_samples, sr=ex.sample_rate, window=ex.window, hop=ex.hop, center=ex.center,
                               min_tail=ex.min_tail)
    except ValueError as exc:
        raise ConfigError(f"extractor {ex.name}: {exc}") from None
    times = window_times(starts, sr=ex.sample_rate, window=ex.window, center=ex.center)
    per_task = max(1, batch_size // len(starts))
    tasks = [(i, paths[i:i + per_task]) for i in range(0, len(paths), per_task)]
    nj = min(nj, len(tasks))
    description = ex.describe()
    counts = {"resampled": 0, "downmixed": 0, "padded": 0, "cut": 0}
    log.info("%s: %d clips of %.3f s, %d windows of %g s each (hop %g s), extractor %s", manifest_path, len(clips),
             n_samples / ex.sample_rate, len(starts), ex.window, ex.hop, ex.name)
    started, cpu_started, worker_cpu = time.perf_counter(), time.process_time(), 0.0
    this_process = os.getpid()
    # workers from a fork server: a process forked after TensorFlow started its thread
    # pools (here, or in a notebook that called this) deadlocks in TensorFlow
    pool = WorkerPool(nj, initializer=_init_worker, initargs=(ex, n_samples, starts, batch_size), name="embed",
                      where=manifest_path, method="forkserver")
    dim = 0
    # the workers start (on entering the pool) before this process loads a model; the
    # output is opened when the first embeddings give its size D
    with pool, ExitStack() as stack, progress(len(clips), "embed") as advance:
        writer = None
        for start, block, notes, cpu, pid in pool.imap(_embed_task, tasks, parent_helps=True):
            if writer is None:
                dim = block.shape[2]
                writer = stack.enter_context(EmbeddingsWriter(
                    out, n=len(clips), window_times=times, dim=dim, extractor=description,
                    ids=[c.id for c in clips], scenes=[c.scene for c in clips], devices=[c.device for c in clips],
                    locations=[c.location for c in clips], inputs=[manifest_path, *weights]))
            writer.write_block(start, block)
            for kind, path, change in notes:
                counts[kind] += 1
                if counts[kind] == 1:
                    _first_note(kind, path, change, ex.sample_rate)
            advance(block.shape[0])
            if pid != this_process:
                worker_cpu += cpu
    seconds = time.perf_counter() - started
    cpu_seconds = time.process_time() - cpu_started + worker_cpu
    rate = len(clips) / seconds if seconds > 0 else float("inf")
    log.info("%s: %d clips x %d windows x %d dimensions, %.1f s (%.2f clips/s, %s)", out, len(clips), len(starts),
             dim, seconds, rate, f"{nj} workers" if nj > 1 else "in this process")
    return {"out": str(out), "extractor": ex.name, "clips": len(clips), "windows": len(starts), "dim": dim,
            "seconds": round(seconds, 3), "clips_per_second": round(rate, 2), "cpu_seconds": round(cpu_seconds, 3),
            **counts}


def _first_note(kind: str, path: str, change: int, rate: int) -> None:
    """Log the first clip of each kind of adjustment (one message per run, not per clip)."""
    if kind == "resampled":
        log.info("%s: resampling %d Hz to %d Hz with soxr (shown once; the summary counts them)", path, change, rate)
    elif kind == "downmixed":
        log.info("%s: averaging the channels to mono (shown once)", path)
    elif kind == "padded":
        log.warning("%s: %d samples shorter than the first clip, zero-padded at the end (shown once; "
                    "the summary counts them)", path, change)
    else:
        log.warning("%s: longer than the first clip, cut to its length (shown once; the summary counts them)", path)
