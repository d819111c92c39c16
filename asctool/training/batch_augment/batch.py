"""Draw a batch's augmentation parameters (NumPy) and apply them (one XLA function).

The training pipeline (:mod:`asctool.training.pipeline`) calls
:func:`draw_batch` in its reader thread, reads only the cropped frames of each
clip, and maps :func:`apply_batch` over the batches in ``tf.data``, so that
cast, masks, mixup and swap fuse into one pass over the batch.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .config import AugmentConfig
from .registry import CROP_STREAM, stream_rng

__all__ = ["draw_crop", "draw_batch", "param_signature", "apply_batch"]


def draw_crop(seed, shape, *, length: int) -> np.ndarray:
    """First frame of a random crop of ``length`` frames per example.

    Parameters
    ----------
    seed : array-like of two int
        Per-batch seed.
    shape : (batch, freq, time, channels)
        Full-length batch shape.
    length : int
        Frames kept (< time).

    Returns
    -------
    np.ndarray [shape=(batch,)], int64, uniform in ``0..time - length``.
    """
    batch, time = int(shape[0]), int(shape[2])
    return stream_rng(seed, CROP_STREAM).integers(0, time - length + 1, batch)


def draw_batch(seed, shape, config: AugmentConfig) -> tuple[np.ndarray | None, dict[str, dict[str, np.ndarray]]]:
    """Every random parameter of one batch.

    Parameters
    ----------
    seed : array-like of two int
        Per-batch seed.
    shape : (batch, freq, time, channels)
        Shape of the full-length batch.
    config : AugmentConfig

    Returns
    -------
    offset : np.ndarray [shape=(batch,)] or None
        Crop starts (None without a crop): read frames
        ``offset[b]:offset[b] + config.crop`` of example ``b``.
    params : dict
        Augmentation name -> the arrays its ``draw`` made (e.g.
        ``specaugment``: ``fkeep`` (B, F, C) and ``tkeep`` (B, T', C) keep
        masks, the time mask cropped like the input; ``mixup``: ``lam`` and
        ``perm`` (B,); ``swap``: ``swap`` (B,)), for the enabled ones.
    """
    offset = draw_crop(seed, shape, length=config.crop) if config.crop else None
    window = None if offset is None else (offset, int(config.crop))
    params = {
        entry.name: entry.draw(stream_rng(seed, entry.stream), tuple(int(s) for s in shape), window=window,
                               **config.params(entry))
        for entry in config.enabled()
    }
    return offset, params


def param_signature(config: AugmentConfig, shape) -> dict[str, dict[str, Any]]:
    """``tf.TensorSpec`` of every array :func:`draw_batch` gives for batches of ``shape``.

    Parameters
    ----------
    config : AugmentConfig
    shape : (batch, freq, time, channels)
        Full-length batch shape (draws depend only on it, so one draw with
        any seed gives the shapes and dtypes).
    """
    import tensorflow as tf

    _, params = draw_batch((0, 0), shape, config)
    return {name: {key: tf.TensorSpec(np.shape(value), tf.as_dtype(np.asarray(value).dtype))
                   for key, value in arrays.items()}
            for name, arrays in params.items()}


def _apply_all(x, labels, params, *, config: AugmentConfig, num_classes: int):
    """Apply drawn parameters to an already cropped batch, in registration order."""
    import tensorflow as tf

    y = tf.one_hot(labels, num_classes, dtype=tf.float32)
    x = tf.cast(x, tf.float32)
    for entry in config.enabled():
        x, y = entry.apply(x, y, **params[entry.name])
    return x, y


_FUSED: dict = {}


def apply_batch(x, labels, params, *, config: AugmentConfig, num_classes: int):
    """Apply a batch's drawn parameters (:func:`draw_batch`) to the cropped batch, in one XLA function.

    Parameters
    ----------
    x : tf.Tensor [shape=(batch, freq, crop or time, channels)], float16 or float32
    labels : tf.Tensor [shape=(batch,)], int class indices
    params : dict
        The ``params`` of :func:`draw_batch`.
    config : AugmentConfig
    num_classes : int

    Returns
    -------
    (x, y) : float32 inputs and soft targets ``(batch, num_classes)``.
    """
    import tensorflow as tf

    key = (config, num_classes)
    if key not in _FUSED:
        def fused(x, labels, params):
            return _apply_all(x, labels, params, config=config, num_classes=num_classes)

        _FUSED[key] = tf.function(fused, jit_compile=True)
    return _FUSED[key](x, labels, params)
