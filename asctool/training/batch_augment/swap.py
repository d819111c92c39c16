"""Channel swap (task 1b stereo input): exchange left and right with probability ``swap_p``.

Each (left, right) channel pair is exchanged, i.e. ``[L, R, dL, dR, ddL, ddR]``
becomes ``[R, L, dR, dL, ddR, ddL]``, for the examples drawn.
"""
from __future__ import annotations

import numpy as np

from ...errors import ConfigError
from .registry import register

__all__ = ["draw_swap", "apply_swap"]


def draw_swap(rng: np.random.Generator, shape, *, window, swap_p: float) -> dict[str, np.ndarray]:
    """Boolean ``swap`` (B,): which examples get their channel pairs exchanged."""
    return {"swap": rng.random(int(shape[0])) < swap_p}


def _check(input_shape) -> None:
    channels = input_shape[2]
    if channels % 2:
        raise ConfigError(f"--augment swap: needs (left, right) channel pairs, the input has {channels} channels")


@register("swap", draw=draw_swap, params={"swap_p": 0.5}, key="channel_swap", stream=3,
          auto=lambda shape: shape[2] == 6, check=_check)
def apply_swap(x, y, *, swap):
    """Exchange the channels of each pair in the examples where ``swap`` is True."""
    import tensorflow as tf

    channels = x.shape[-1]
    if channels is None or channels % 2:
        raise ConfigError(f"channel swap needs an even, known channel count, got {channels}")
    order = [c ^ 1 for c in range(channels)]                  # 1, 0, 3, 2, 5, 4
    return tf.where(swap[:, None, None, None], tf.gather(x, order, axis=3), x), y
