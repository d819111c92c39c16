"""Building blocks shared by the architectures: conv/BN units and the common head.

These are plain functions that add named Keras layers to a functional graph;
they hold no state. Conventions (docs/reference.md section 3): convolutions without
bias, ``he_normal`` initialisation, batch normalisation after each convolution,
channels last, maps of shape ``(batch, freq, time, channels)``.
"""
from __future__ import annotations

from typing import Sequence

import keras
from keras import layers

from .layers import ChannelAttention

__all__ = ["scaled", "regularizer", "conv_bn_relu", "common_head", "softmax_output"]


def scaled(filters: int, width: float) -> int:
    """Scale a filter count by the width multiplier (at least 1 filter).

    Parameters
    ----------
    filters : int
        Filter count at width 1.
    width : float
        Width multiplier (> 0).

    Returns
    -------
    int
        ``max(1, round(filters * width))``.
    """
    return max(1, int(round(filters * width)))


def regularizer(l2: float) -> keras.regularizers.Regularizer | None:
    """An L2 kernel regulariser, or None when ``l2`` is 0."""
    return keras.regularizers.L2(l2) if l2 > 0 else None


def conv_bn_relu(
    x,
    filters: int,
    kernel_size: int | Sequence[int],
    *,
    name: str,
    strides: int | Sequence[int] = 1,
    padding: str = "same",
    l2: float = 0.0,
    relu: bool = True,
    relu_name: str | None = None,
):
    """Convolution (no bias) -> affine batch normalisation -> ReLU.

    Layers are named ``{name}_conv``, ``{name}_bn`` and ``{name}_relu`` (or
    ``relu_name``).

    Parameters
    ----------
    x : KerasTensor [shape=(batch, freq, time, channels)]
    filters, kernel_size, strides, padding
        As for ``keras.layers.Conv2D``.
    name : str
        Block prefix of the layer names.
    l2 : float
        L2 weight on the kernel (0: none).
    relu : bool
        Whether to end with a ReLU.
    relu_name : str, optional
        Name of the ReLU layer (e.g. ``"features_out"``).

    Returns
    -------
    KerasTensor [shape=(batch, freq', time', filters)]
    """
    x = layers.Conv2D(
        filters, kernel_size, strides=strides, padding=padding, use_bias=False,
        kernel_initializer="he_normal", kernel_regularizer=regularizer(l2), name=f"{name}_conv",
    )(x)
    x = layers.BatchNormalization(name=f"{name}_bn")(x)
    if relu:
        x = layers.Activation("relu", name=relu_name or f"{name}_relu")(x)
    return x


def softmax_output(x):
    """Global average pooling over (freq, time) then softmax (float32).

    Parameters
    ----------
    x : KerasTensor [shape=(batch, freq, time, n_classes)]

    Returns
    -------
    KerasTensor [shape=(batch, n_classes)]
        Class probabilities.
    """
    x = layers.GlobalAveragePooling2D(name="head_gap")(x)
    return layers.Activation("softmax", dtype="float32", name="softmax")(x)


def common_head(x, num_classes: int, *, l2: float = 0.0, attention_ratio: int = 2):
    """The fully convolutional head shared by FCNN, fsFCNN and the small models.

    1x1 conv to ``num_classes`` (no bias) -> BN -> ReLU -> BN -> channel attention
    -> global average pooling -> softmax. Both batch normalisations are without
    affine parameters (``center=False, scale=False``), as in the reference code.

    Parameters
    ----------
    x : KerasTensor [shape=(batch, freq, time, channels)]
        The body's last feature map.
    num_classes : int
        Number of output classes.
    l2 : float
        L2 weight on the 1x1 convolution's kernel.
    attention_ratio : int
        Reduction ratio of :class:`~asctool.models.layers.ChannelAttention`.

    Returns
    -------
    KerasTensor [shape=(batch, num_classes)]
        Class probabilities.
    """
    x = layers.Conv2D(
        num_classes, 1, padding="valid", use_bias=False, kernel_initializer="he_normal",
        kernel_regularizer=regularizer(l2), name="head_conv",
    )(x)
    x = layers.BatchNormalization(center=False, scale=False, name="head_bn1")(x)
    x = layers.Activation("relu", name="head_relu")(x)
    x = layers.BatchNormalization(center=False, scale=False, name="head_bn2")(x)
    x = ChannelAttention(attention_ratio, name="head_attention")(x)
    return softmax_output(x)
