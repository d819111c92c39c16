"""small-FCNN: the FCNN shape for Task 1b (3 classes, under 500 KB once quantised).

Same body as :mod:`asctool.models.fcnn` with two convs in the last block (dropout
after the first) and filters 48/84/120 (the reference's 8/14/20 times its 6
input channels), then the common head.
"""
from __future__ import annotations

import keras

from .blocks import common_head, scaled
from .fcnn import fcnn_body
from .registry import register

__all__ = ["build_small_fcnn"]


@register("small_fcnn", "small FCNN with channel attention (1b, 3 classes)")
def build_small_fcnn(
    num_classes: int,
    input_shape: tuple,
    *,
    width: float = 1.0,
    filters: tuple = (48, 84, 120),
    dropout: float = 0.3,
    l2: float = 0.0,
) -> keras.Model:
    """Build the small-FCNN.

    Parameters
    ----------
    num_classes : int
        Output classes.
    input_shape : tuple
        ``(freq, time, channels)``, e.g. ``(128, 461, 6)``.
    width : float
        Multiplier on every filter count.
    filters : tuple of 3 int
        Filters of the three blocks at width 1.
    dropout : float
        Dropout after the first conv of block 3.
    l2 : float
        L2 weight on conv kernels (none in the reference system).

    Returns
    -------
    keras.Model
        Uncompiled; output ``(batch, num_classes)`` softmax.
    """
    if len(filters) != 3:
        raise ValueError(f"small_fcnn needs 3 filter counts, got {filters}")
    inputs = keras.Input(shape=input_shape, name="input")
    x = fcnn_body(inputs, [scaled(f, width) for f in filters], last_convs=2, dropout=dropout, l2=l2)
    outputs = common_head(x, num_classes, l2=l2)
    return keras.Model(inputs, outputs, name="small_fcnn")
