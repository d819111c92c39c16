"""fsFCNN: the FCNN variant that pools frequency only 4x (Hu et al. 2020, Task 1a).

All convs 3x3 'same' (the first 5x5 stride (1, 2)), no bias, affine BN, ReLU.
Input BN; block 1 = 2 convs, 3x3 max-pool stride 2; block 2 = 2 convs, 3x3
max-pool stride 2; block 3 = 2 convs, 3x3 max-pool stride (1, 2); block 4 = 2
convs, 3x3 max-pool stride (1, 2); block 5 = 2 convs with dropout after each.
Filters 48, 96, 512, 512, 768. Then the common head.
"""
from __future__ import annotations

from typing import Sequence

import keras
from keras import layers

from .blocks import common_head, conv_bn_relu, scaled
from .registry import register

__all__ = ["build_fsfcnn", "fsfcnn_body"]

_POOL_STRIDES = ((2, 2), (2, 2), (1, 2), (1, 2))


def fsfcnn_body(
    x, filters: Sequence[int], *, dropout: float, l2: float = 0.0, prefix: str = "", last_relu_name: str | None = None,
):
    """The fsFCNN body, from input BN to block 5's last dropout.

    Parameters
    ----------
    x : KerasTensor [shape=(batch, freq, time, channels)]
    filters : sequence of 5 int
        Filters of blocks 1-5 (already width-scaled).
    dropout : float
        Dropout rate after each conv of block 5.
    l2 : float
        L2 weight on every conv kernel.
    prefix : str
        Prefix of every layer name (for two-branch models).
    last_relu_name : str, optional
        Name of the ReLU after the last conv (default ``{prefix}block5_conv2_relu``).

    Returns
    -------
    KerasTensor [shape=(batch, freq/4, time/16, filters[4])]
    """
    x = layers.BatchNormalization(name=f"{prefix}input_bn")(x)
    for block in range(1, 6):
        for conv in (1, 2):
            first = block == 1 and conv == 1
            last = block == 5 and conv == 2
            x = conv_bn_relu(
                x, filters[block - 1], 5 if first else 3, strides=(1, 2) if first else 1,
                name=f"{prefix}block{block}_conv{conv}", l2=l2,
                relu_name=last_relu_name if last else None,
            )
            if block == 5 and dropout > 0:
                x = layers.Dropout(dropout, name=f"{prefix}block5_dropout{conv}")(x)
        if block <= 4:
            x = layers.MaxPooling2D(3, strides=_POOL_STRIDES[block - 1], padding="same",
                                    name=f"{prefix}block{block}_pool")(x)
    return x


@register("fsfcnn", "fsFCNN: FCNN pooling frequency only 4x (1a)")
def build_fsfcnn(
    num_classes: int,
    input_shape: tuple,
    *,
    width: float = 1.0,
    filters: tuple = (48, 96, 512, 512, 768),
    dropout: float = 0.5,
    l2: float = 0.0,
) -> keras.Model:
    """Build the fsFCNN.

    Parameters
    ----------
    num_classes : int
        Output classes.
    input_shape : tuple
        ``(freq, time, channels)``, e.g. ``(128, 423, 3)``.
    width : float
        Multiplier on every filter count.
    filters : tuple of 5 int
        Filters of the five blocks at width 1.
    dropout : float
        Dropout after each conv of the last block.
    l2 : float
        L2 weight on conv kernels (none in the reference system).

    Returns
    -------
    keras.Model
        Uncompiled; output ``(batch, num_classes)`` softmax; ``features_out`` is
        the ReLU after the last conv.
    """
    if len(filters) != 5:
        raise ValueError(f"fsfcnn needs 5 filter counts, got {filters}")
    inputs = keras.Input(shape=input_shape, name="input")
    x = fsfcnn_body(inputs, [scaled(f, width) for f in filters], dropout=dropout, l2=l2,
                    last_relu_name="features_out")
    outputs = common_head(x, num_classes, l2=l2)
    return keras.Model(inputs, outputs, name="fsfcnn")
