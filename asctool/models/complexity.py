"""Model complexity from the real input shape: parameters, MACs, bytes.

In the spirit of the DCASE baselines' size calculators: parameters are
``model.count_params()`` (trainable and non-trainable, so batch-norm moving
statistics count, as in the reference figures); MACs count the multiply-adds of
convolutions, depthwise convolutions, dense layers and the channel-attention
perceptron for one example (batch normalisation, pooling and activations are
not counted: they fold into neighbours or are negligible); bytes is the float32
size of all parameters.
"""
from __future__ import annotations

import math
from typing import Any

from .layers import ChannelAttention
from .registry import available, build, parse_input_shape, spec

__all__ = ["complexity", "summary_table"]


def _layer_macs(layer: Any) -> int | None:
    """Multiply-adds of one layer for one example; None when a shape is unknown."""
    from keras import layers

    if isinstance(layer, layers.DepthwiseConv2D):
        out = layer.output.shape
        if any(d is None for d in out[1:]):
            return None
        kh, kw = layer.kernel_size
        return math.prod(out[1:]) * kh * kw
    if isinstance(layer, layers.Conv2D):
        out = layer.output.shape
        if any(d is None for d in out[1:]):
            return None
        kh, kw = layer.kernel_size
        in_ch = layer.input.shape[-1] // layer.groups
        return math.prod(out[1:]) * kh * kw * in_ch
    if isinstance(layer, layers.Dense):
        out = layer.output.shape
        if any(d is None for d in out[1:]):
            return None
        return math.prod(out[1:]) * layer.input.shape[-1]
    if isinstance(layer, ChannelAttention):
        channels = layer.input.shape[-1]
        hidden = layer.hidden_kernel.shape[-1]
        return 2 * 2 * channels * hidden  # two branches (avg, max), two matmuls
    return 0


def complexity(model: Any) -> dict:
    """Parameters, MACs and float32 bytes of a built functional model.

    Parameters
    ----------
    model : keras.Model
        A functional model (as returned by :func:`asctool.models.build`).

    Returns
    -------
    dict
        ``params`` (int, all weights), ``trainable_params`` (int), ``macs``
        (int, per example; None when the input's time axis is unknown) and
        ``float32_bytes`` (int).
    """
    macs: int | None = 0
    for layer in model.layers:
        value = _layer_macs(layer)
        if value is None:
            macs = None
        elif macs is not None:
            macs += value
    params = int(model.count_params())
    trainable = int(sum(math.prod(w.shape) for w in model.trainable_weights))
    return {"params": params, "trainable_params": trainable, "macs": macs, "float32_bytes": 4 * params}


def _human(value: float | None, unit: str = "") -> str:
    if value is None:
        return "-"
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if value >= scale:
            return f"{value / scale:.2f} {suffix}{unit}"
    return f"{value:.0f} {unit}".rstrip()


#: The embedding size the table builds models of ``inputs="embeddings"`` for (OpenL3's 512-d).
EMBEDDING_DIMS = 512


def summary_table(*, num_classes: int = 10, input_shape: Any = (128, 423, 3)) -> str:
    """The registry as a text table: name, parameters, MACs, float32 size.

    Every registered model is built with its default options for
    ``num_classes`` classes and ``input_shape`` (models of embedding frames:
    for :data:`EMBEDDING_DIMS`-d frames).

    Parameters
    ----------
    num_classes : int
        Number of classes.
    input_shape : sequence of int or str
        ``(freq, time, channels)`` or ``"128x423x3"``.

    Returns
    -------
    str
        A header line and one row per model (tab-free, aligned columns).
    """
    import keras

    shape = parse_input_shape(input_shape)
    rows = []
    for name in available():
        model = build(name, num_classes, shape if spec(name).inputs == "features" else (EMBEDDING_DIMS,))
        info = complexity(model)
        rows.append((
            name, f"{info['params']:,}", _human(info["macs"]), _human(info["float32_bytes"], "B"),
            spec(name).description,
        ))
        del model
        keras.backend.clear_session()
    header = ("model", "params", "MACs", "float32", "description")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    title = f"# {num_classes} classes, input {'x'.join('?' if d is None else str(d) for d in shape)}"
    lines = [title, "  ".join(h.ljust(w) for h, w in zip(header, widths)).rstrip()]
    for row in rows:
        cells = [row[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(row[1:4], widths[1:4])] + [row[4]]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)
