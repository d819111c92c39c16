"""Embedding frames read from their HDF5 files block by block, for the mlp (:mod:`asctool.training.frames`).

The mlp trains on every frame of every training clip; holding them all in memory
takes ``N x T x D x 4`` bytes (TAU 2020 fold 1, OpenL3 512-d every 0.1 s: about 2.7 GiB).
Here they stay in the embeddings files and are read one block of clips at a time
(:data:`BLOCK_BYTES` of float32 frames), so memory no longer grows with the data set:

- an epoch (:func:`epoch_batches`): the clips in a random order drawn from
  ``(seed, epoch)``; the clips of each block read together, their frames shuffled
  within the block and cut into batches (a batch that straddles two blocks takes
  its last frames from the next block), so every frame is one example of the
  epoch, once, whatever the block size, and the order depends only on the seed;
- the standardisation statistics (:func:`frame_moments`): the mean and variance
  over all training frames accumulated block by block in float64 with the pairwise
  update of Chan, Golub & LeVeque (1979, "Updating formulae and a pairwise
  algorithm for computing sample variances", eq. 2.1);
- validation and prediction read the clips in file order (:meth:`FrameClips.blocks`).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

__all__ = ["BLOCK_BYTES", "FrameClips", "frame_moments", "epoch_batches", "steps_per_epoch"]

#: Float32 frames read per block (training, statistics, validation).
BLOCK_BYTES = 64 * 2**20


@dataclass(frozen=True)
class FrameClips:
    """Clips of one or more embeddings files (all ``(T, D)``), their frames read when needed.

    Attributes
    ----------
    paths : the files
    file_of, row_of : np.ndarray [shape=(n,)], int
        Each clip's file (index into ``paths``) and row in its ``embeddings`` dataset.
    frames, dim : int
        T and D.
    """

    paths: tuple[Path, ...]
    file_of: np.ndarray
    row_of: np.ndarray
    frames: int
    dim: int

    @classmethod
    def of_files(cls, paths: Sequence[Path], counts: Sequence[int], frames: int, dim: int) -> "FrameClips":
        """Every clip of ``paths`` (``counts[i]`` clips in file i), in file order."""
        file_of = np.concatenate([np.full(c, i, dtype=np.int64) for i, c in enumerate(counts)])
        row_of = np.concatenate([np.arange(c, dtype=np.int64) for c in counts])
        return cls(tuple(Path(p) for p in paths), file_of, row_of, int(frames), int(dim))

    def __len__(self) -> int:
        return len(self.row_of)

    def subset(self, mask: np.ndarray) -> "FrameClips":
        """The clips where ``mask`` (n,) is true (or at the given positions), in the same order."""
        return FrameClips(self.paths, self.file_of[mask], self.row_of[mask], self.frames, self.dim)

    @property
    def block_clips(self) -> int:
        """Clips per block: :data:`BLOCK_BYTES` of float32 frames, at least one clip."""
        return max(1, BLOCK_BYTES // (self.frames * self.dim * 4))

    def blocks(self, order: np.ndarray | None = None, block_clips: int | None = None
               ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield ``(positions, frames (b, T, D) float32)``: the clips at ``positions`` (default: all, in
        order), ``block_clips`` at a time; each file's rows of a block are read in one increasing selection."""
        import h5py

        order = np.arange(len(self)) if order is None else np.asarray(order)
        size = block_clips or self.block_clips
        handles = [h5py.File(p, "r") for p in self.paths]
        try:
            for start in range(0, len(order), size):
                positions = order[start:start + size]
                block = np.empty((len(positions), self.frames, self.dim), dtype=np.float32)
                for index, handle in enumerate(handles):
                    here = np.flatnonzero(self.file_of[positions] == index)
                    if not len(here):
                        continue
                    rows = self.row_of[positions[here]]
                    sort = np.argsort(rows)
                    block[here[sort]] = handle["embeddings"][rows[sort]]
                yield positions, block
        finally:
            for handle in handles:
                handle.close()


def frame_moments(clips: FrameClips) -> tuple[np.ndarray, np.ndarray, int]:
    """Mean and (population) variance ``(D,)`` float64 over every frame of ``clips``, and the frame count.

    Blocks are combined with Chan, Golub & LeVeque (1979), eq. 2.1:
    ``M2 = M2_a + M2_b + delta^2 n_a n_b / n`` with ``delta = mean_b - mean_a``.
    """
    count, mean, m2 = 0, np.zeros(clips.dim), np.zeros(clips.dim)
    for _, block in clips.blocks(block_clips=max(1, clips.block_clips // 8)):   # float64 copies: 16 MiB
        x = block.reshape(-1, clips.dim).astype(np.float64)
        n_b, mean_b = len(x), x.mean(axis=0)
        x -= mean_b
        m2_b = np.square(x, out=x).sum(axis=0)
        total = count + n_b
        delta = mean_b - mean
        mean = mean + delta * (n_b / total)
        m2 = m2 + m2_b + delta ** 2 * (count * n_b / total)
        count = total
    return mean, m2 / max(count, 1), count


def steps_per_epoch(clips: FrameClips, batch: int) -> int:
    """Batches of one epoch: ``ceil(n T / batch)`` (the last one may be short)."""
    return -(-len(clips) * clips.frames // batch)


def epoch_batches(clips: FrameClips, labels: np.ndarray, *, batch: int, seed: int, epoch: int,
                  block_clips: int | None = None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """The training batches of one epoch: ``(frames (b, D) float32, labels (b,) int64)``.

    The clip order is a permutation drawn from ``numpy.random.default_rng([seed, epoch, 0xF8A])``;
    then, block by block, the block's frames in a permutation from the same generator
    (see the module docstring). Every frame appears once; all batches hold ``batch``
    frames but the last.
    """
    rng = np.random.default_rng([seed, epoch, 0xF8A])
    labels = np.asarray(labels, dtype=np.int64)
    carry_x, carry_y = np.zeros((0, clips.dim), np.float32), np.zeros(0, np.int64)
    for positions, block in clips.blocks(rng.permutation(len(clips)), block_clips):
        x = block.reshape(-1, clips.dim)
        y = np.repeat(labels[positions], clips.frames)
        shuffle = rng.permutation(len(x))   # batches are gathered from the block: no shuffled copy of it
        need = batch - len(carry_y)
        carry_x = np.concatenate([carry_x, x[shuffle[:need]]])
        carry_y = np.concatenate([carry_y, y[shuffle[:need]]])
        if len(carry_y) < batch:   # the block ended inside the batch
            continue
        yield carry_x, carry_y
        position = need
        while position + batch <= len(x):
            take = shuffle[position:position + batch]
            yield x[take], y[take]
            position += batch
        carry_x, carry_y = x[shuffle[position:]], y[shuffle[position:]]
    if len(carry_y):
        yield carry_x, carry_y
