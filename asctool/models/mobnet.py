"""Mobnet: two-branch MobileNetV2-style network for Task 1b (3 classes, < 500 KB).

Frequency is split into two halves with separate weights. Each branch: 3x3 conv
stride 2 (32 filters); three groups of 3 inverted-residual blocks (expansion 2;
32, 40, 48 channels; the first block of each group strides 2 and has no
shortcut, the others add their input); a 1x1 conv to 56 channels. Unlike the
other models, the body's convolutions have biases (as in the reference code,
whose parameter count this reproduces), with affine BN and a plain ReLU. The
branches are concatenated along frequency (``features_out``). Head: BN, ReLU,
1x1 conv 48, dropout, BN, 1x1 conv n_classes, BN (BN without affine), global
average pooling, softmax. L2 only on the two head convolutions.
"""
from __future__ import annotations

import keras
from keras import layers

from .blocks import regularizer, scaled, softmax_output
from .layers import FrequencySplit
from .registry import register

__all__ = ["build_mobnet"]


def _conv_block(x, filters: int, kernel: int, *, strides, name: str):
    """Conv (with bias) -> affine BN -> ReLU."""
    x = layers.Conv2D(filters, kernel, strides=strides, padding="same", kernel_initializer="he_normal",
                      name=f"{name}_conv")(x)
    x = layers.BatchNormalization(name=f"{name}_bn")(x)
    return layers.Activation("relu", name=f"{name}_relu")(x)


def _inverted_residual(x, filters: int, *, expansion: int, strides: int, residual: bool, name: str):
    """1x1 expand -> 3x3 depthwise -> 1x1 linear projection (+ input when ``residual``)."""
    shortcut = x
    x = _conv_block(x, expansion * x.shape[-1], 1, strides=1, name=f"{name}_expand")
    x = layers.DepthwiseConv2D(3, strides=strides, padding="same", depthwise_initializer="he_normal",
                               name=f"{name}_depthwise_conv")(x)
    x = layers.BatchNormalization(name=f"{name}_depthwise_bn")(x)
    x = layers.Activation("relu", name=f"{name}_depthwise_relu")(x)
    x = layers.Conv2D(filters, 1, padding="same", kernel_initializer="he_normal", name=f"{name}_project_conv")(x)
    x = layers.BatchNormalization(name=f"{name}_project_bn")(x)
    if residual:
        x = layers.Add(name=f"{name}_add")([x, shortcut])
    return x


def _branch(x, *, width: float, stem: int, groups: tuple, last: int, expansion: int, prefix: str):
    x = _conv_block(x, scaled(stem, width), 3, strides=2, name=f"{prefix}stem")
    for g, filters in enumerate(groups, start=1):
        for b in range(1, 4):
            x = _inverted_residual(
                x, scaled(filters, width), expansion=expansion, strides=2 if b == 1 else 1,
                residual=b > 1, name=f"{prefix}group{g}_block{b}",
            )
    return _conv_block(x, scaled(last, width), 1, strides=1, name=f"{prefix}last")


def _head_conv(x, filters: int, *, name: str, l2: float, relu: bool):
    """Non-affine BN -> optional ReLU -> 1x1 conv (no bias, L2)."""
    x = layers.BatchNormalization(center=False, scale=False, name=f"{name}_bn")(x)
    if relu:
        x = layers.Activation("relu", name=f"{name}_relu")(x)
    return layers.Conv2D(filters, 1, use_bias=False, kernel_initializer="he_normal",
                         kernel_regularizer=regularizer(l2), name=f"{name}_conv")(x)


@register("mobnet", "two-branch MobileNetV2-style network (1b, 3 classes)")
def build_mobnet(
    num_classes: int,
    input_shape: tuple,
    *,
    width: float = 1.0,
    split: int = 0,
    stem_filters: int = 32,
    group_filters: tuple = (32, 40, 48),
    last_filters: int = 56,
    head_filters: int = 48,
    expansion: int = 2,
    dropout: float = 0.3,
    l2: float = 1e-3,
) -> keras.Model:
    """Build the Mobnet.

    Parameters
    ----------
    num_classes : int
        Output classes.
    input_shape : tuple
        ``(freq, time, channels)``, e.g. ``(128, 461, 6)``.
    width : float
        Multiplier on every filter count (the expansion factor is kept).
    split : int
        First frequency bin of the upper branch (0: ``freq // 2``).
    stem_filters, group_filters, last_filters, head_filters : int
        Filter counts at width 1 (32; 32, 40, 48; 56; 48).
    expansion : int
        Expansion factor of the inverted-residual blocks.
    dropout : float
        Dropout after the first head conv.
    l2 : float
        L2 weight on the two head conv kernels only.

    Returns
    -------
    keras.Model
        Uncompiled; output ``(batch, num_classes)`` softmax; ``features_out`` is
        the frequency concatenation of the two branches.
    """
    freq = input_shape[0]
    split = split or freq // 2
    if not 0 < split < freq:
        raise ValueError(f"split={split} must lie inside the {freq} frequency bins")
    if expansion < 1:
        raise ValueError(f"expansion={expansion} must be at least 1")
    inputs = keras.Input(shape=input_shape, name="input")
    maps = []
    for prefix, (start, stop) in (("low_", (0, split)), ("high_", (split, freq))):
        x = FrequencySplit(start, stop, name=f"{prefix}split")(inputs)
        maps.append(_branch(x, width=width, stem=stem_filters, groups=tuple(group_filters), last=last_filters,
                            expansion=expansion, prefix=prefix))
    x = layers.Concatenate(axis=1, name="features_out")(maps)
    x = _head_conv(x, scaled(head_filters, width), name="head_1", l2=l2, relu=True)
    if dropout > 0:
        x = layers.Dropout(dropout, name="head_dropout")(x)
    x = _head_conv(x, num_classes, name="head_2", l2=l2, relu=False)
    x = layers.BatchNormalization(center=False, scale=False, name="head_bn")(x)
    outputs = softmax_output(x)
    return keras.Model(inputs, outputs, name="mobnet")
