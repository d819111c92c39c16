"""Custom Keras layers shared by the asctool architectures.

Every layer here is registered with
``keras.saving.register_keras_serializable(package="asctool")`` and has a full
``get_config``, so a saved ``.keras`` model loads with nothing more than
``import asctool.models`` (no ``Lambda`` layers, no Python bytecode in the file).

All tensors are channels-last spectrogram maps of shape
``(batch, freq, time, channels)``.
"""
from __future__ import annotations

from typing import Any

import keras
from keras import ops

__all__ = ["FrequencySplit", "ChannelAttention", "ChannelPad"]


@keras.saving.register_keras_serializable(package="asctool")
class FrequencySplit(keras.layers.Layer):
    """Keep the frequency bins ``start <= f < stop`` of a spectrogram map.

    Parameters
    ----------
    start : int
        First frequency bin kept (>= 0).
    stop : int
        One past the last frequency bin kept (> start).

    Notes
    -----
    Input ``(batch, freq, time, channels)``, output
    ``(batch, stop - start, time, channels)``. Replaces the reference system's
    ``Lambda(lambda x: x[:, 0:64])`` layers, which do not load across Python
    versions.
    """

    def __init__(self, start: int, stop: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        start, stop = int(start), int(stop)
        if start < 0 or stop <= start:
            raise ValueError(f"FrequencySplit: need 0 <= start < stop, got start={start}, stop={stop}")
        self.start = start
        self.stop = stop

    def build(self, input_shape: tuple) -> None:
        freq = input_shape[1]
        if freq is not None and self.stop > freq:
            raise ValueError(
                f"FrequencySplit: stop={self.stop} is beyond the input's {freq} frequency bins"
            )
        self.built = True

    def call(self, inputs):  # noqa: D102
        return inputs[:, self.start:self.stop]

    def compute_output_shape(self, input_shape: tuple) -> tuple:  # noqa: D102
        return (input_shape[0], self.stop - self.start, *input_shape[2:])

    def get_config(self) -> dict:  # noqa: D102
        config = super().get_config()
        config.update({"start": self.start, "stop": self.stop})
        return config


@keras.saving.register_keras_serializable(package="asctool")
class ChannelAttention(keras.layers.Layer):
    """CBAM channel attention (Woo et al. 2018), the channel branch only.

    ``a = GAP(x)``, ``m = GMP(x)``, a shared two-layer perceptron
    ``f(v) = W2 relu(W1 v + b1) + b2`` with ``C -> max(1, C // ratio) -> C`` units,
    ``s = sigmoid(f(a) + f(m))``, output ``x * s`` (broadcast over freq and time).

    Parameters
    ----------
    ratio : int
        Reduction ratio of the hidden layer (2 in the reference system).

    Notes
    -----
    Input and output ``(batch, freq, time, C)``. Weights: ``C*h + h + h*C + C``
    with ``h = max(1, C // ratio)`` (115 for C = 10, ratio 2).
    """

    def __init__(self, ratio: int = 2, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        ratio = int(ratio)
        if ratio < 1:
            raise ValueError(f"ChannelAttention: ratio must be >= 1, got {ratio}")
        self.ratio = ratio

    def build(self, input_shape: tuple) -> None:
        channels = input_shape[-1]
        if channels is None:
            raise ValueError("ChannelAttention: the channel dimension must be known")
        hidden = max(1, int(channels) // self.ratio)
        self.hidden_kernel = self.add_weight(
            name="hidden_kernel", shape=(channels, hidden), initializer="he_normal"
        )
        self.hidden_bias = self.add_weight(name="hidden_bias", shape=(hidden,), initializer="zeros")
        self.output_kernel = self.add_weight(
            name="output_kernel", shape=(hidden, channels), initializer="he_normal"
        )
        self.output_bias = self.add_weight(name="output_bias", shape=(channels,), initializer="zeros")
        self.built = True

    def _mlp(self, v):
        h = ops.relu(ops.matmul(v, self.hidden_kernel) + self.hidden_bias)
        return ops.matmul(h, self.output_kernel) + self.output_bias

    def call(self, inputs):  # noqa: D102
        avg = ops.mean(inputs, axis=(1, 2))
        peak = ops.max(inputs, axis=(1, 2))
        scale = ops.sigmoid(self._mlp(avg) + self._mlp(peak))
        return inputs * scale[:, None, None, :]

    def compute_output_shape(self, input_shape: tuple) -> tuple:  # noqa: D102
        return tuple(input_shape)

    def get_config(self) -> dict:  # noqa: D102
        config = super().get_config()
        config.update({"ratio": self.ratio})
        return config


@keras.saving.register_keras_serializable(package="asctool")
class ChannelPad(keras.layers.Layer):
    """Append zero-valued channels up to ``channels`` (the ResNet shortcut).

    Parameters
    ----------
    channels : int
        Number of output channels (>= the input's).

    Notes
    -----
    Input ``(batch, freq, time, C)``, output ``(batch, freq, time, channels)``
    whose first ``C`` channels are the input and the rest zeros. Replaces the
    reference system's ``Lambda(pad_depth)``.
    """

    def __init__(self, channels: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.channels = int(channels)

    def build(self, input_shape: tuple) -> None:
        if input_shape[-1] is not None and input_shape[-1] > self.channels:
            raise ValueError(
                f"ChannelPad: input has {input_shape[-1]} channels, more than channels={self.channels}"
            )
        self.built = True

    def call(self, inputs):  # noqa: D102
        extra = self.channels - inputs.shape[-1]
        if extra == 0:
            return inputs
        pad = [[0, 0]] * (len(inputs.shape) - 1) + [[0, extra]]
        return ops.pad(inputs, pad)

    def compute_output_shape(self, input_shape: tuple) -> tuple:  # noqa: D102
        return (*input_shape[:-1], self.channels)

    def get_config(self) -> dict:  # noqa: D102
        config = super().get_config()
        config.update({"channels": self.channels})
        return config
