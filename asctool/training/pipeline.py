"""Input pipeline: stream batches from features files into ``tf.data``.

A Python generator does the I/O: each epoch it shuffles the (file, row) pairs
of all training files with a generator seeded by ``(seed, epoch)`` and cuts
the permutation into batches. For each batch it draws the augmentation
parameters from the batch's seed
(:func:`asctool.training.batch_augment.draw_batch`) and reads only the
cropped frames of each clip, one HDF5 read per clip (one clip per chunk). It yields raw features
(float16 as stored), class indices and the parameters;
:func:`asctool.training.batch_augment.apply_batch` (cast and the registered
batch augmentations in one XLA-compiled function) then runs as a parallel ``tf.data`` map,
outside the Python interpreter lock, and a small prefetch buffer overlaps all
of it with training. At most a handful of
batches are in memory at any time, whatever the number of clips.

HDF5 handles are opened by the generator itself, in the thread that reads
them, and closed when it ends.
"""
from __future__ import annotations

import logging
from typing import Iterator

import h5py
import numpy as np

from .batch_augment import AugmentConfig, apply_batch, draw_batch, param_signature
from .data import ClipSet

__all__ = ["BatchReader", "steps_per_epoch", "epoch_batches", "batch_draws", "train_batches", "eval_batches",
           "train_dataset", "eval_dataset"]

log = logging.getLogger(__name__)

#: Batches computed ahead of the training step (bounds memory).
PREFETCH = 2


class BatchReader:
    """Read rows of several features files into one array.

    Parameters
    ----------
    clips : ClipSet
        Gives the files, the feature shape and the output dtype.

    Notes
    -----
    Open it in the thread or process that reads (use it as a context
    manager); handles never cross processes.
    """

    def __init__(self, clips: ClipSet) -> None:
        self.clips = clips
        self._handles: list[h5py.File | None] = [None] * len(clips.paths)
        self._datasets: list[h5py.Dataset | None] = [None] * len(clips.paths)

    def __enter__(self) -> "BatchReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Close every open handle."""
        for i, handle in enumerate(self._handles):
            if handle is not None:
                handle.close()
                self._handles[i] = self._datasets[i] = None

    def _dataset(self, file_index: int) -> h5py.Dataset:
        dataset = self._datasets[file_index]
        if dataset is None:
            handle = self._handles[file_index] = h5py.File(self.clips.paths[file_index], "r")
            dataset = self._datasets[file_index] = handle["features"]
        return dataset

    def read(self, file_index: np.ndarray, rows: np.ndarray, offset: np.ndarray | None = None,
             length: int | None = None) -> np.ndarray:
        """Features of the clips ``(file_index[i], rows[i])``, in that order.

        One HDF5 read per clip (one clip per chunk). With ``offset`` and
        ``length``, only frames ``offset[i]:offset[i] + length`` of clip ``i``
        are read, so the random crop costs no copy.

        Returns
        -------
        np.ndarray [shape=(len(rows), freq, length or time, channels)], ``clips.dtype``
        """
        freq, time, channels = self.clips.feature_shape
        if offset is None:
            offset, length = np.zeros(len(rows), dtype=np.int64), time
        out = np.empty((len(rows), freq, length, channels), dtype=self.clips.dtype)
        # h5py's low-level calls: the high-level selection machinery would
        # take two thirds of the time of each read
        block = (1, freq, length, channels)
        memory = h5py.h5s.create_simple(out.shape)
        memory_type = h5py.h5t.py_create(out.dtype)
        for i, (f, row, first) in enumerate(zip(np.asarray(file_index).tolist(), np.asarray(rows).tolist(),
                                                np.asarray(offset).tolist())):
            dataset = self._dataset(f).id
            disk = dataset.get_space()
            disk.select_hyperslab((row, 0, first, 0), block)
            memory.select_hyperslab((i, 0, 0, 0), block)
            dataset.read(memory, disk, out, memory_type)
        return out


def steps_per_epoch(n: int, batch_size: int) -> int:
    """Batches per epoch: ``n // batch_size`` (the remainder is dropped), at least 1."""
    return max(1, n // batch_size)


def epoch_batches(n: int, batch_size: int, seed: int, epoch: int) -> tuple[np.ndarray, np.ndarray]:
    """The clip indices of each batch of one epoch and a seed per batch.

    Parameters
    ----------
    n : int
        Number of training clips.
    batch_size : int
        Clips per batch (capped at ``n``).
    seed : int
        Run seed.
    epoch : int
        Epoch number (0-based); with ``seed`` it fully determines the result.

    Returns
    -------
    batches : np.ndarray [shape=(steps, batch)], int64
        Indices into the clip set; every clip appears at most once.
    seeds : np.ndarray [shape=(steps, 2)], int64
        Stateless seeds for the batch augmentation.
    """
    rng = np.random.default_rng([int(seed), int(epoch), 0xBA7C])
    batch = min(batch_size, n)
    steps = steps_per_epoch(n, batch)
    perm = rng.permutation(n)[: steps * batch].reshape(steps, batch)
    seeds = rng.integers(0, 2**31 - 1, size=(steps, 2), dtype=np.int64)
    return perm, seeds


def batch_draws(clips: ClipSet, *, batch_size: int, seed: int, first_epoch: int, epochs: int,
                augment: AugmentConfig) -> Iterator[tuple[np.ndarray, np.ndarray | None, dict]]:
    """Yield ``(index, offset, params)`` for every step of epochs ``first_epoch..epochs-1``.

    ``index`` are the batch's clips (positions in ``clips``) in file order
    (order within a batch does not matter: it is read in file order),
    ``offset`` and ``params`` its crop offsets and augmentation parameters
    (:func:`draw_batch`). One worker (:func:`train_batches`) and several
    (``training.distributed``) draw the same batches from this.
    """
    for epoch in range(first_epoch, epochs):
        batches, seeds = epoch_batches(len(clips), batch_size, seed, epoch)
        for index, batch_seed in zip(batches, seeds):
            index = index[np.lexsort((clips.row[index], clips.file_index[index]))]
            offset, params = draw_batch(batch_seed, (len(index), *clips.feature_shape), augment)
            yield index, offset, params


def train_batches(clips: ClipSet, *, batch_size: int, seed: int, first_epoch: int, epochs: int,
                  augment: AugmentConfig) -> Iterator[tuple[np.ndarray, np.ndarray, dict]]:
    """Yield ``(features, labels, params)`` for every step of epochs ``first_epoch..epochs-1``.

    ``params`` are the batch's augmentation parameters (:func:`draw_batch`);
    the features are already cropped to its crop offsets.
    """
    with BatchReader(clips) as reader:
        for index, offset, params in batch_draws(clips, batch_size=batch_size, seed=seed, first_epoch=first_epoch,
                                                 epochs=epochs, augment=augment):
            x = reader.read(clips.file_index[index], clips.row[index], offset, augment.crop)
            if clips.tags is None:
                yield x, clips.labels[index], params
            else:   # tag vectors ride along (train --tags)
                yield x, clips.labels[index], params, clips.tags[index]


def eval_batches(clips: ClipSet, *, batch_size: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield ``(features, labels)`` over all clips in file order, full length."""
    order = np.lexsort((clips.row, clips.file_index))
    with BatchReader(clips) as reader:
        for start in range(0, len(order), batch_size):
            index = order[start:start + batch_size]
            x = reader.read(clips.file_index[index], clips.row[index])
            yield (x, clips.labels[index]) if clips.tags is None else (x, clips.labels[index], clips.tags[index])


def train_dataset(clips: ClipSet, *, batch_size: int, seed: int, first_epoch: int, epochs: int,
                  augment: AugmentConfig, num_classes: int):
    """A ``tf.data.Dataset`` of augmented training batches for epochs ``first_epoch..epochs-1``.

    Elements are ``(x, y)``: float32 inputs ``(batch, freq, time', channels)``
    and soft targets ``(batch, num_classes)``; ``steps_per_epoch(len(clips),
    batch_size)`` elements per epoch, epochs back to back (give
    ``steps_per_epoch`` to ``model.fit``).
    """
    import tensorflow as tf

    batch = min(batch_size, len(clips))
    freq, _, channels = clips.feature_shape
    time = augment.output_time(clips.feature_shape[1])
    signature = (
        tf.TensorSpec((batch, freq, time, channels), tf.as_dtype(clips.dtype)),
        tf.TensorSpec((batch,), tf.int32),
        param_signature(augment, (batch, *clips.feature_shape)),
    ) + (() if clips.tags is None else (tf.TensorSpec((batch, clips.tags.shape[1]), tf.float32),))
    dataset = tf.data.Dataset.from_generator(
        lambda: train_batches(clips, batch_size=batch, seed=seed, first_epoch=first_epoch, epochs=epochs,
                              augment=augment),
        output_signature=signature,
    )

    def _augment(x, labels, params, tags=None):
        x, y = apply_batch(x, labels, params, config=augment, num_classes=num_classes)
        if tags is None:
            return x, y
        if "mixup" in params:   # the tag vectors are mixed like the inputs and targets
            lam = params["mixup"]["lam"][:, None]
            tags = lam * tags + (1.0 - lam) * tf.gather(tags, params["mixup"]["perm"])
        return (x, tags), y

    return dataset.map(_augment, num_parallel_calls=PREFETCH, deterministic=True).prefetch(PREFETCH)


def eval_dataset(clips: ClipSet, *, batch_size: int, num_classes: int):
    """A finite ``tf.data.Dataset`` of full-length ``(x, one-hot y)`` batches (validation)."""
    import tensorflow as tf

    freq, time, channels = clips.feature_shape
    signature = (
        tf.TensorSpec((None, freq, time, channels), tf.as_dtype(clips.dtype)),
        tf.TensorSpec((None,), tf.int32),
    ) + (() if clips.tags is None else (tf.TensorSpec((None, clips.tags.shape[1]), tf.float32),))
    dataset = tf.data.Dataset.from_generator(lambda: eval_batches(clips, batch_size=batch_size),
                                             output_signature=signature)
    n_batches = -(-len(clips) // batch_size)
    dataset = dataset.apply(tf.data.experimental.assert_cardinality(n_batches))

    def _prepare(x, labels, tags=None):
        x = tf.cast(x, tf.float32)
        return (x if tags is None else (x, tags)), tf.one_hot(labels, num_classes, dtype=tf.float32)

    return dataset.map(_prepare, num_parallel_calls=PREFETCH, deterministic=True).prefetch(PREFETCH)
