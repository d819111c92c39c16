"""fsFCNN-s: fsFCNN on two frequency halves (Hu et al. 2020 technical report).

The report describes it in one sentence and no code was published, so this is
asctool's own definition (documented in ``docs/models.md``):

- split the input at ``split`` (default: half the bins; 0-63 and 64-127 for 128
  mel bands) with :class:`~asctool.models.layers.FrequencySplit`;
- on each half an fsFCNN body (:func:`~asctool.models.fsfcnn.fsfcnn_body`, own
  weights, own input BN) at half the fsFCNN filters, 24/48/256/256/384, so the
  two halves together have the fsFCNN's 768 channels' worth of capacity;
- concatenate the two maps along frequency (each half is pooled 4x in
  frequency, so the result has freq/4 rows, low bands first, like the fsFCNN map);
- two more 3x3 convs (384 filters, no bias, BN, ReLU; dropout after the first)
  that mix the two halves;
- the common head.
"""
from __future__ import annotations

import keras
from keras import layers

from .blocks import common_head, conv_bn_relu, scaled
from .fsfcnn import fsfcnn_body
from .layers import FrequencySplit
from .registry import register

__all__ = ["build_fsfcnn_s"]


@register("fsfcnn_s", "fsFCNN on two frequency halves + 2 merge convs (asctool's design)")
def build_fsfcnn_s(
    num_classes: int,
    input_shape: tuple,
    *,
    width: float = 1.0,
    split: int = 0,
    filters: tuple = (24, 48, 256, 256, 384),
    merge_filters: tuple = (384, 384),
    dropout: float = 0.5,
    l2: float = 0.0,
) -> keras.Model:
    """Build the fsFCNN-s.

    Parameters
    ----------
    num_classes : int
        Output classes.
    input_shape : tuple
        ``(freq, time, channels)``, e.g. ``(128, 423, 3)``.
    width : float
        Multiplier on every filter count.
    split : int
        First frequency bin of the upper half (0: ``freq // 2``).
    filters : tuple of 5 int
        Filters of the five fsFCNN blocks of each branch at width 1.
    merge_filters : tuple of int
        Filters of the 3x3 convs after the concatenation.
    dropout : float
        Dropout after each conv of each branch's last block and after every
        merge conv but the last.
    l2 : float
        L2 weight on conv kernels (none, like fsFCNN).

    Returns
    -------
    keras.Model
        Uncompiled; output ``(batch, num_classes)`` softmax; ``features_out`` is
        the ReLU after the last merge conv.
    """
    if len(filters) != 5:
        raise ValueError(f"fsfcnn_s needs 5 filter counts, got {filters}")
    if not merge_filters:
        raise ValueError("fsfcnn_s needs at least one merge conv")
    freq = input_shape[0]
    split = split or freq // 2
    if not 0 < split < freq:
        raise ValueError(f"split={split} must lie inside the {freq} frequency bins")
    inputs = keras.Input(shape=input_shape, name="input")
    branch_filters = [scaled(f, width) for f in filters]
    maps = []
    for prefix, (start, stop) in (("low_", (0, split)), ("high_", (split, freq))):
        x = FrequencySplit(start, stop, name=f"{prefix}split")(inputs)
        maps.append(fsfcnn_body(x, branch_filters, dropout=dropout, l2=l2, prefix=prefix))
    x = layers.Concatenate(axis=1, name="merge_concat")(maps)
    for i, f in enumerate(merge_filters, start=1):
        last = i == len(merge_filters)
        x = conv_bn_relu(x, scaled(f, width), 3, name=f"merge_conv{i}", l2=l2,
                         relu_name="features_out" if last else None)
        if not last and dropout > 0:
            x = layers.Dropout(dropout, name=f"merge_dropout{i}")(x)
    outputs = common_head(x, num_classes, l2=l2)
    return keras.Model(inputs, outputs, name="fsfcnn_s")
