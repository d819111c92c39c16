"""Resnet: the McDonnell & Gao two-branch pre-activation ResNet (1a; "Resnet-d").

Frequency is split into two halves with separate weights. Each branch: input BN
(affine), 3x3 conv stride (1, 2) with F filters; 4 stacks x 2 pre-activation
residual blocks (BN without affine, ReLU, 3x3 conv, twice) with F, 2F, 4F, 8F
filters; the first block of stacks 2-4 strides (1, 2) in time and its shortcut
is a 3x3 average pool stride (1, 2) with zero channels appended
(:class:`~asctool.models.layers.ChannelPad`). The branches are concatenated along
frequency (``features_out``). Head: BN, ReLU, 1x1 conv 32F, BN, 1x1 conv
n_classes, BN (all BN without affine), global average pooling, softmax; no
attention. L2 1e-3 on every conv kernel.
"""
from __future__ import annotations

import keras
from keras import layers

from .blocks import regularizer, scaled, softmax_output
from .layers import ChannelPad, FrequencySplit
from .registry import register

__all__ = ["build_resnet"]


def _preact_conv(x, filters: int, kernel: int, *, strides, name: str, l2: float, affine: bool = False, relu: bool = True):
    """BN (affine or not) -> optional ReLU -> conv (no bias, 'same')."""
    x = layers.BatchNormalization(center=affine, scale=affine, name=f"{name}_bn")(x)
    if relu:
        x = layers.Activation("relu", name=f"{name}_relu")(x)
    return layers.Conv2D(
        filters, kernel, strides=strides, padding="same", use_bias=False,
        kernel_initializer="he_normal", kernel_regularizer=regularizer(l2), name=f"{name}_conv",
    )(x)


def _branch(x, base: int, *, prefix: str, l2: float):
    x = _preact_conv(x, base, 3, strides=(1, 2), name=f"{prefix}stem", l2=l2, affine=True, relu=False)
    filters = base
    for stack in range(1, 5):
        for block in (1, 2):
            name = f"{prefix}stack{stack}_block{block}"
            downsample = stack > 1 and block == 1
            strides = (1, 2) if downsample else 1
            y = _preact_conv(x, filters, 3, strides=strides, name=f"{name}_1", l2=l2)
            y = _preact_conv(y, filters, 3, strides=1, name=f"{name}_2", l2=l2)
            if downsample:
                x = layers.AveragePooling2D(3, strides=(1, 2), padding="same", name=f"{name}_shortcut_pool")(x)
                x = ChannelPad(filters, name=f"{name}_shortcut_pad")(x)
            x = layers.Add(name=f"{name}_add")([y, x])
        filters *= 2
    return x


# The reference system trains Resnet for 126 epochs (six restart cycles) and
# without SpecAugment; training reads both from this entry.
@register("resnet", "two-branch pre-activation ResNet (McDonnell & Gao), no attention (1a)",
          training_defaults={"paper": {"epochs": 126}}, augment_auto_off=("specaugment",))
def build_resnet(
    num_classes: int,
    input_shape: tuple,
    *,
    width: float = 1.0,
    base_filters: int = 48,
    split: int = 0,
    l2: float = 1e-3,
) -> keras.Model:
    """Build the two-branch ResNet.

    Parameters
    ----------
    num_classes : int
        Output classes.
    input_shape : tuple
        ``(freq, time, channels)``, e.g. ``(128, 423, 3)``.
    width : float
        Multiplier on the filter counts (applied to ``base_filters``).
    base_filters : int
        F, the filters of the first stack (48: the 10-class "Resnet-d"; 24 for
        the 3-class model).
    split : int
        First frequency bin of the upper branch (0: ``freq // 2``).
    l2 : float
        L2 weight on every conv kernel (1e-3 in the reference system).

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
    if base_filters < 1:
        raise ValueError(f"base_filters={base_filters} must be positive")
    base = scaled(base_filters, width)
    inputs = keras.Input(shape=input_shape, name="input")
    maps = []
    for prefix, (start, stop) in (("low_", (0, split)), ("high_", (split, freq))):
        x = FrequencySplit(start, stop, name=f"{prefix}split")(inputs)
        maps.append(_branch(x, base, prefix=prefix, l2=l2))
    x = layers.Concatenate(axis=1, name="features_out")(maps)
    x = _preact_conv(x, 2 * 16 * base, 1, strides=1, name="head_1", l2=l2)
    x = _preact_conv(x, num_classes, 1, strides=1, name="head_2", l2=l2, relu=False)
    x = layers.BatchNormalization(center=False, scale=False, name="head_bn")(x)
    outputs = softmax_output(x)
    return keras.Model(inputs, outputs, name="resnet")
