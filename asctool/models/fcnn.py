"""FCNN: the fully convolutional network with channel attention (Hu et al. 2020, Task 1a).

Body (channels last, maps ``(freq, time, channels)``): input BN;
block 1 = [5x5 stride 2, 3x3] convs + 2x2 max-pool; block 2 = [3x3, 3x3] + 2x2
max-pool; block 3 = four 3x3 convs with dropout after the first three + 2x2
max-pool. Every conv is zero-padded explicitly then 'valid' (as in the reference
code), has no bias and is followed by affine BN and ReLU. Then the common head
(:func:`asctool.models.blocks.common_head`).
"""
from __future__ import annotations

from typing import Sequence

import keras
from keras import layers

from .blocks import common_head, conv_bn_relu, scaled
from .registry import register

__all__ = ["build_fcnn", "fcnn_body"]


def _padded_conv(x, filters: int, kernel: int, *, strides: int, name: str, l2: float, relu_name: str | None = None):
    pad = kernel // 2
    x = layers.ZeroPadding2D(pad, name=f"{name}_pad")(x)
    return conv_bn_relu(x, filters, kernel, strides=strides, padding="valid", name=name, l2=l2, relu_name=relu_name)


def fcnn_body(x, filters: Sequence[int], *, last_convs: int, dropout: float, l2: float = 0.0):
    """The FCNN body, from input BN to the last max-pool.

    Parameters
    ----------
    x : KerasTensor [shape=(batch, freq, time, channels)]
        Model input.
    filters : sequence of 3 int
        Filters of blocks 1, 2, 3 (already width-scaled).
    last_convs : int
        Number of 3x3 convs in block 3 (4 for FCNN, 2 for small-FCNN); all
        but the last are followed by dropout.
    dropout : float
        Dropout rate in block 3.
    l2 : float
        L2 weight on every conv kernel.

    Returns
    -------
    KerasTensor [shape=(batch, freq/8, time/8, filters[2])]
        The ReLU after block 3's last conv is named ``features_out``; the
        returned tensor is after the final 2x2 max-pool.
    """
    x = layers.BatchNormalization(name="input_bn")(x)
    x = _padded_conv(x, filters[0], 5, strides=2, name="block1_conv1", l2=l2)
    x = _padded_conv(x, filters[0], 3, strides=1, name="block1_conv2", l2=l2)
    x = layers.MaxPooling2D(2, name="block1_pool")(x)
    x = _padded_conv(x, filters[1], 3, strides=1, name="block2_conv1", l2=l2)
    x = _padded_conv(x, filters[1], 3, strides=1, name="block2_conv2", l2=l2)
    x = layers.MaxPooling2D(2, name="block2_pool")(x)
    for i in range(1, last_convs + 1):
        last = i == last_convs
        x = _padded_conv(
            x, filters[2], 3, strides=1, name=f"block3_conv{i}", l2=l2,
            relu_name="features_out" if last else None,
        )
        if not last and dropout > 0:
            x = layers.Dropout(dropout, name=f"block3_dropout{i}")(x)
    return layers.MaxPooling2D(2, name="block3_pool")(x)


@register("fcnn", "FCNN with channel attention (1a; 10- and 3-class)")
def build_fcnn(
    num_classes: int,
    input_shape: tuple,
    *,
    width: float = 1.0,
    filters: tuple = (144, 288, 576),
    dropout: float = 0.3,
    l2: float = 0.0,
) -> keras.Model:
    """Build the FCNN.

    Parameters
    ----------
    num_classes : int
        Output classes.
    input_shape : tuple
        ``(freq, time, channels)``, e.g. ``(128, 423, 3)``.
    width : float
        Multiplier on every filter count.
    filters : tuple of 3 int
        Filters of the three blocks at width 1 (the reference's 48/96/192 times
        its 3 input channels).
    dropout : float
        Dropout after the first three convs of block 3.
    l2 : float
        L2 weight on conv kernels (none in the reference system).

    Returns
    -------
    keras.Model
        Uncompiled; output ``(batch, num_classes)`` softmax.
    """
    if len(filters) != 3:
        raise ValueError(f"fcnn needs 3 filter counts, got {filters}")
    inputs = keras.Input(shape=input_shape, name="input")
    x = fcnn_body(inputs, [scaled(f, width) for f in filters], last_convs=4, dropout=dropout, l2=l2)
    outputs = common_head(x, num_classes, l2=l2)
    return keras.Model(inputs, outputs, name="fcnn")
