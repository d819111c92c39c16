"""RawNet-style raw-waveform ResNet: the baseline of Jung et al., "Acoustic scene
classification using audio tagging", Interspeech 2020 (Table 1).

Layers (the paper's Table 1)::

    strided conv (length 12, stride 12, 128 filters) -> BN -> LeakyReLU
    7 residual blocks: [conv 3 -> BN -> LeakyReLU] x 2 (+ skip), max-pool 3
    global average pooling (+) global max pooling (concatenated)
    dense 64 (the code) -> dense softmax output

The waveform is given as features of shape ``(1, samples, channels)`` (a
frequency axis of size 1), so that it streams through the same features files,
crops and batches as spectrograms; every convolution and pooling acts along
time only (kernels ``(1, k)``; any other first axis is carried along, so the
model also builds on spectrogram shapes). Max-pooling pads the end ("same"): a
length ``n`` becomes ``ceil(n / 3)``. The block widths are an option; the default
(two blocks of 64, then five of 128 filters) is that of the same authors'
raw-waveform scene classifier for DCASE 2019 Task 1a (Jung et al., DCASE 2019
workshop, "Knowledge distillation with specialist models"; their published
configuration lists the filters ``[128, [128, 64, 64], [64, 128, 128], [128, 128,
128], 128]`` for the stem and the 2 + 4 + 1 blocks). The 2020 paper's Table 1 was not at hand to
compare widths; docs/tag_fusion.md lists what differs from that 2019 code (its
skip projection is a 3-tap convolution, here 1x1; it adds a 1x1 convolution of
128 filters before the pooling and a 128-unit code). A block whose width changes
has a 1x1 convolution on its skip path. LeakyReLU slope 0.3 as in RawNet. The last residual block's output is the layer ``features_out`` (the
feature map that tag fusion and domain heads attach to).
"""
from __future__ import annotations

import keras

from .blocks import scaled
from .registry import register

__all__ = ["build_rawnet"]


def _conv_bn_act(x, filters: int, name: str):
    x = keras.layers.Conv2D(filters, (1, 3), padding="same", name=f"{name}_conv")(x)
    x = keras.layers.BatchNormalization(name=f"{name}_bn")(x)
    return keras.layers.LeakyReLU(negative_slope=0.3, name=f"{name}_act")(x)


@register("rawnet", "raw-waveform ResNet of Jung et al. 2020 (input 1 x samples x channels)")
def build_rawnet(
    num_classes: int,
    input_shape: tuple,
    *,
    width: float = 1.0,
    first_filters: int = 128,
    block_filters: tuple = (64, 64, 128, 128, 128, 128, 128),
    code: int = 64,
    pool_bn: bool = False,
) -> keras.Model:
    """Build the raw-waveform ResNet of the paper's Table 1.

    Parameters
    ----------
    num_classes : int
    input_shape : tuple
        ``(1, samples or None, channels)``: a waveform (``(1, 479999, 2)`` for
        48 kHz stereo 10 s clips in the paper); time must be at least 12.
    width : float
        Multiplier on every filter count.
    first_filters : int
        Filters of the strided convolution (128).
    block_filters : tuple of int
        Filters of each residual block (7 blocks in the paper; the default
        widths are those of the authors' DCASE 2019 raw-waveform model).
    code : int
        Size of the dense code layer (64).
    pool_bn : bool
        Batch normalisation of the pooled vector before the code (not in the
        paper). asctool's trainer uses SGD at a peak rate of 0.1 (the reference
        system's); there the paper's two linear layers on the unnormalised
        pooled vector diverge within a few steps on raw waveforms (the authors
        trained with Adam at 1e-4). With it, 1,024 more parameters (4 per pooled value).

    Returns
    -------
    keras.Model
        Uncompiled; output ``(batch, num_classes)`` softmax; the code is the layer ``code``.
    """
    inputs = keras.Input(shape=input_shape, name="input")
    x = keras.layers.Conv2D(scaled(first_filters, width), (1, 12), strides=(1, 12), name="stem_conv")(inputs)
    x = keras.layers.BatchNormalization(name="stem_bn")(x)
    x = keras.layers.LeakyReLU(negative_slope=0.3, name="stem_act")(x)
    for i, filters in enumerate(block_filters, start=1):
        filters = scaled(filters, width)
        skip = x
        if int(x.shape[-1]) != filters:
            skip = keras.layers.Conv2D(filters, (1, 1), name=f"block{i}_skip")(x)
        y = _conv_bn_act(x, filters, f"block{i}a")
        y = _conv_bn_act(y, filters, f"block{i}b")
        x = keras.layers.Add(name=f"block{i}_add")([y, skip])
        name = "features_out" if i == len(block_filters) else f"block{i}_pool"
        x = keras.layers.MaxPooling2D((1, 3), padding="same", name=name)(x)
    pooled = keras.layers.Concatenate(name="pool")([keras.layers.GlobalAveragePooling2D(name="avg")(x),
                                                    keras.layers.GlobalMaxPooling2D(name="max")(x)])
    if pool_bn:
        pooled = keras.layers.BatchNormalization(name="pool_bn")(pooled)
    z = keras.layers.Dense(code, name="code")(pooled)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="softmax")(z)
    return keras.Model(inputs, outputs, name="rawnet")
