"""``asctool tag``: manifest in, tags file out (see ``docs/tag.md``).

Reads the clips of a manifest a few at a time, resamples them (soxr) to the
tagger's rate, fits them to the length of the first clip, cuts them into the
tagger's windows (:mod:`asctool.embeddings.windows`, the extractors' rules),
gives every window a tag vector (:class:`asctool.tagging.Tagger`) and pools
each clip's windows (mean or max), in this process or in ``nj`` workers
(:class:`asctool.parallel.WorkerPool`, from a fork server as ``embed``: a
process forked after TensorFlow started deadlocks). The tags are written
with :func:`asctool.tagsfile.write_tags` (atomic).

The work is split into the same tasks (consecutive clips, their windows
batched the same way) whatever ``nj`` is, so the tags do not depend on it.
"""
from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from ..errors import ArtifactError, ConfigError
from ..io import claim_outputs, locked_outputs
from ..parallel import WorkerPool

__all__ = ["run"]

log = logging.getLogger(__name__)


class _TagWorker:
    """Reads clips and tags their windows; one per process."""

    def __init__(self, tagger, n_samples: int, starts: np.ndarray, batch_size: int) -> None:
        self.tagger = tagger
        self.n_samples = n_samples
        self.starts = starts
        self.batch_size = batch_size

    def clip_audio(self, path: str, notes: list) -> np.ndarray:
        """The clip at the tagger's rate and length: ``(samples,)``, or ``(channels, samples)``."""
        from ..embeddings.windows import fit_clip

        return fit_clip(path, sample_rate=self.tagger.sample_rate, channels=self.tagger.channels,
                        n_samples=self.n_samples, notes=notes)

    def __call__(self, paths: Sequence[str]) -> tuple[np.ndarray, list]:
        from ..embeddings.windows import cut_windows

        tg = self.tagger
        tg.load()
        notes: list = []
        windows = np.concatenate([
            cut_windows(self.clip_audio(p, notes), self.starts, sr=tg.sample_rate, window=tg.window,
                        center=tg.center) for p in paths])
        parts = [tg.tag(windows[i:i + self.batch_size], where=paths[i // len(self.starts)])
                 for i in range(0, len(windows), self.batch_size)]
        per_window = np.concatenate(parts).reshape(len(paths), len(self.starts), -1)
        return np.stack([tg.pool(clip) for clip in per_window]), notes


_WORKER: _TagWorker | None = None


def _init_worker(tagger, n_samples: int, starts: np.ndarray, batch_size: int) -> None:
    global _WORKER
    _WORKER = _TagWorker(tagger, n_samples, starts, batch_size)


def _tag_task(task: tuple[int, Sequence[str]]):
    """Tag vectors ``(k, C)`` of the clips of one task ``(start, paths)``, with the notes."""
    start, paths = task
    block, notes = _WORKER(paths)
    return start, block, notes


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
    tagger: str,
    options: Mapping[str, Any] | None = None,
    nj: int = 1,
    batch_size: int = 32,
    force: bool = False,
) -> dict[str, Any]:
    """Tag every clip of a manifest with a registered tagger (``asctool tag``).

    Parameters
    ----------
    manifest_path : manifest TSV
    out : tags file to write (HDF5, atomic; layout in :mod:`asctool.tagsfile`)
    tagger : registry name (``keras``, ``tflite``, ``asctool``, ``birdnet``)
    options : the tagger's options (``model``, ``labels``, ``run``, ``pooling``,
        ``tag_subset``, ...; None values take the defaults)
    nj : worker processes (1: this process); the tags do not depend on it
    batch_size : windows per model call
    force : overwrite an existing ``out``

    Returns
    -------
    summary : dict with the output path, tagger, clip count, windows per clip,
        tag count, time taken and counts of resampled, downmixed, padded and cut clips.

    Raises
    ------
    ConfigError
        An unknown tagger, an option it does not take, a bad option value or file.
    ArtifactError, AudioError, ManifestError
        Unreadable inputs or a model whose outputs are not probabilities, naming the file.
    """
    from ..tagging import make_tagger

    out = Path(out)
    if nj < 1:
        raise ConfigError(f"--nj must be at least 1, got {nj}")
    if batch_size < 1:
        raise ConfigError(f"--batch-size must be at least 1, got {batch_size}")
    tg = make_tagger(tagger, dict(options or {}))
    inputs = [manifest_path, *tg.input_files]
    claim_outputs([out], force=force, inputs=inputs, error=ArtifactError)

    from ..console import progress
    from ..embeddings.windows import window_starts
    from ..manifest import read_manifest
    from ..tagsfile import write_tags

    manifest = read_manifest(manifest_path)
    clips = manifest.clips
    paths = [str(manifest.audio_path(clip)) for clip in clips]
    n_samples = _clip_samples(paths[0], tg.sample_rate)
    try:
        starts = window_starts(n_samples, sr=tg.sample_rate, window=tg.window, hop=tg.hop, center=tg.center,
                               min_tail=tg.min_tail)
    except ValueError as exc:
        raise ConfigError(f"tagger {tg.name}: {exc}") from None
    per_task = max(1, batch_size // len(starts))
    tasks = [(i, paths[i:i + per_task]) for i in range(0, len(paths), per_task)]
    nj = min(nj, len(tasks))
    counts = {"resampled": 0, "downmixed": 0, "padded": 0, "cut": 0}
    log.info("%s: %d clips of %.3f s, %d windows of %g s each (hop %g s), tagger %s, %d tags, %s pooling",
             manifest_path, len(clips), n_samples / tg.sample_rate, len(starts), tg.window, tg.hop, tg.name,
             len(tg.tag_names), tg.pooling)
    started = time.perf_counter()
    tags = np.zeros((len(clips), len(tg.tag_names)), dtype=np.float32)
    pool = WorkerPool(nj, initializer=_init_worker, initargs=(tg, n_samples, starts, batch_size), name="tag",
                      where=manifest_path, method="forkserver")
    with pool, progress(len(clips), "tag") as advance:
        for start, block, notes in pool.imap(_tag_task, tasks, parent_helps=True):
            tags[start:start + len(block)] = block
            for kind, path, change in notes:
                counts[kind] += 1
                if counts[kind] == 1:
                    log.info("%s: %s (shown once; the summary counts them)", path, kind)
            advance(len(block))
    write_tags(out, ids=[c.id for c in clips], tags=tags, tag_names=tg.tag_names, tagger=tg.describe(),
               scenes=[c.scene for c in clips], devices=[c.device for c in clips],
               locations=[c.location for c in clips], inputs=inputs)
    seconds = time.perf_counter() - started
    log.info("%s: %d clips x %d tags, %.1f s", out, len(clips), len(tg.tag_names), seconds)
    return {"out": str(out), "tagger": tg.name, "clips": len(clips), "windows": len(starts),
            "tags": len(tg.tag_names), "pooling": tg.pooling, "seconds": round(seconds, 3), **counts}
