"""asctool.training.framestream: embedding frames read block by block for the mlp, and training on them."""
from __future__ import annotations

import h5py
import numpy as np
import pytest
from helpers import make_embeddings

from asctool.training import framestream
from asctool.training.framestream import FrameClips, epoch_batches, frame_moments, steps_per_epoch


def _two_files(tmp_path):
    a = make_embeddings(tmp_path / "a.h5", 9, frames=3, dim=5, seed=0)
    b = make_embeddings(tmp_path / "b.h5", 7, frames=3, dim=5, seed=1, city="paris")
    arrays = [h5py.File(p, "r")["embeddings"][()] for p in (a, b)]
    return FrameClips.of_files([a, b], [9, 7], 3, 5), np.concatenate(arrays)


def test_blocks_read_the_clips_in_the_order_asked_across_files(tmp_path):
    clips, every = _two_files(tmp_path)
    order = np.random.default_rng(0).permutation(16)
    got = list(clips.blocks(order, block_clips=4))
    assert [len(p) for p, _ in got] == [4, 4, 4, 4]
    np.testing.assert_array_equal(np.concatenate([b for _, b in got]), every[order])
    held = clips.subset(np.arange(16) % 3 == 0)
    np.testing.assert_array_equal(np.concatenate([b for _, b in held.blocks(block_clips=2)]), every[::3])


def test_moments_equal_numpy_over_every_frame(tmp_path, monkeypatch):
    clips, every = _two_files(tmp_path)
    monkeypatch.setattr(framestream, "BLOCK_BYTES", 3 * 5 * 4 * 3)   # 3 clips a block: 6 blocks
    mask = np.arange(16) != 4
    mean, var, count = frame_moments(clips.subset(mask))
    x = every[mask].reshape(-1, 5).astype(np.float64)
    assert count == 45
    np.testing.assert_allclose(mean, x.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(var, x.var(axis=0), rtol=1e-10)


@pytest.mark.parametrize("block_clips", [1, 5, 16])
def test_an_epoch_holds_every_frame_once_in_batches(tmp_path, block_clips):
    clips, every = _two_files(tmp_path)
    labels = np.arange(16) % 4
    batches = list(epoch_batches(clips, labels, batch=10, seed=3, epoch=1, block_clips=block_clips))
    assert [len(y) for _, y in batches] == [10] * 4 + [8] and len(batches) == steps_per_epoch(clips, 10)
    x, y = np.concatenate([b[0] for b in batches]), np.concatenate([b[1] for b in batches])
    frames, frame_labels = every.reshape(-1, 5), np.repeat(labels, 3)
    key = lambda v: np.lexsort(v.T[::-1])   # noqa: E731  (rows sorted by their values)
    np.testing.assert_array_equal(x[key(x)], frames[key(frames)])
    np.testing.assert_array_equal(y[key(x)], frame_labels[key(frames)])
    again = list(epoch_batches(clips, labels, batch=10, seed=3, epoch=1, block_clips=block_clips))
    np.testing.assert_array_equal(np.concatenate([b[0] for b in again]), x)
    other = np.concatenate([b[0] for b in epoch_batches(clips, labels, batch=10, seed=3, epoch=2,
                                                        block_clips=block_clips)])
    assert not np.array_equal(other, x)


def test_streamed_training_equals_in_memory_training_on_the_same_order(tmp_path):
    """The tf.data stream changes nothing but where the frames come from: Keras fitted on the
    frames of the same order, in memory, ends at the same weights (float tolerance)."""
    import keras

    from asctool.models import build
    from asctool.training.frames import _fit_mlp

    path = make_embeddings(tmp_path / "e.h5", 12, frames=4, dim=6, seed=2)
    every = h5py.File(path, "r")["embeddings"][()]
    clips, labels = FrameClips.of_files([path], [12], 4, 6), np.arange(12) % 4
    mean, var, count = frame_moments(clips)
    kw = dict(n_classes=4, mean=mean, var=var, count=count, lr=1e-3, l2=0.0, epochs=2, batch=8, patience=None,
              seed=5, options={}, tag="t")
    streamed, rows, _, _ = _fit_mlp((clips, labels), None, **kw)
    assert len(rows) == 2

    # the reference: the order of the module docstring, computed here for one block holding every clip
    keras.utils.set_random_seed(5)
    model = build("mlp", 4, (6,))
    norm = model.get_layer("standardise")
    norm.set_weights([mean.astype(np.float32), var.astype(np.float32), np.asarray(count, dtype=norm.weights[2].dtype)])
    norm.finalize_state()
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=1e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(), metrics=["accuracy"])
    for epoch in range(2):
        rng = np.random.default_rng([5, epoch, 0xF8A])
        order = rng.permutation(12)
        x, y = every[order].reshape(-1, 6), np.repeat(labels[order], 4)
        shuffle = rng.permutation(len(x))
        model.fit(x[shuffle], y[shuffle], batch_size=8, epochs=1, shuffle=False, verbose=0)
    for a, b in zip(model.get_weights(), streamed):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    keras.backend.clear_session()
