"""Mixup within the batch: ``x = lam * x + (1 - lam) * x[perm]``, the same on the targets.

``lam ~ Beta(mixup_alpha, mixup_alpha)`` per example and ``perm`` a random
permutation of the batch. The reference system draws the partners from a
second batch; mixing within the batch has the same distribution and reads
half as much data.
"""
from __future__ import annotations

import numpy as np

from .registry import register

__all__ = ["draw_mixup", "apply_mixup"]


def draw_mixup(rng: np.random.Generator, shape, *, window, mixup_alpha: float) -> dict[str, np.ndarray]:
    """Mixing weights ``lam`` (B,) float32 and partner permutation ``perm`` (B,) int32."""
    batch = int(shape[0])
    lam = rng.beta(mixup_alpha, mixup_alpha, batch).astype(np.float32)
    return {"lam": lam, "perm": rng.permutation(batch).astype(np.int32)}


@register("mixup", draw=draw_mixup, params={"mixup_alpha": 0.4}, stream=2, auto=True)
def apply_mixup(x, y, *, lam, perm):
    """Mix inputs (B, F, T, C) and soft targets (B, K) with the same weights and partners."""
    import tensorflow as tf

    lx = tf.reshape(lam, [-1, 1, 1, 1])
    x = lx * x + (1.0 - lx) * tf.gather(x, perm)
    y = lam[:, None] * y + (1.0 - lam[:, None]) * tf.gather(y, perm)
    return x, y
