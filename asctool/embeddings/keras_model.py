"""Extractors ``keras`` and ``tflite``: any model's layer as the embedding (``--model FILE --layer NAME``).

TensorFlow Lite tensors are read by adding them to the model's outputs
(:mod:`asctool.embeddings.tflite`). A model that carries asctool metadata (an asctool-trained CNN, its
``.keras`` or quantised ``.tflite``) gets its own front end: each window is
one clip's worth of audio (the front end's ``duration``) turned into the
features the model was trained on, so ``--layer`` can be its penultimate
layer (``features_out``, or the pooled layer before the classifier). Any
other model takes raw waveform windows: ``--sample-rate`` and ``--window``
say what it expects; its input is ``(batch, samples)`` or
``(batch, samples, 1)``. A layer output of more than one dimension per
window is flattened (channels last).
"""
from __future__ import annotations

import os

from typing import Any

import numpy as np

from ..errors import ConfigError
from .registry import Extractor, check_file, file_sha256, register

__all__ = ["ModelLayerExtractor"]


class ModelLayerExtractor(Extractor):
    """One layer (Keras) or tensor (TensorFlow Lite) of a user model, per window.

    With ``output_default`` a missing ``layer`` means the model's own output
    (the taggers of :mod:`asctool.tagging.models`); an embedding needs a layer.
    """

    def __init__(self, kind: str, model: str | os.PathLike | None, layer: str | None, sample_rate: int | None,
                 window: float | None, hop: float | None, *, output_default: bool = False) -> None:
        from ..runs import read_model_metadata

        self.name = kind
        self.path = check_file(model, f"extractor {kind}", "--model")
        suffix = ".keras" if kind == "keras" else ".tflite"
        if self.path.suffix != suffix:
            raise ConfigError(f"{self.path}: extractor {kind} takes a {suffix} model")
        if not layer and not output_default:
            raise ConfigError(f"extractor {kind} needs --layer NAME (the {'layer' if kind == 'keras' else 'tensor'} "
                              "whose output is the embedding)")
        self.layer = layer or None   # None: the model's output
        metadata = read_model_metadata(self.path, required=False)
        self.frontend_config = None
        if metadata is not None:
            from ..frontend import validate_config

            config = metadata["frontend_config"]
            if not isinstance(config, dict):
                raise ConfigError(f"{self.path}: the front end in its asctool metadata is not a mapping")
            self.frontend_config = validate_config(config, f"{self.path} (the front end in its asctool metadata)")
        if self.frontend_config is not None:
            own_rate, own_window = int(self.frontend_config["sr"]), float(self.frontend_config["duration"])
            if sample_rate is not None and int(sample_rate) != own_rate:
                raise ConfigError(f"{self.path}: the model's front end takes {own_rate} Hz audio; "
                                  f"--sample-rate {sample_rate} differs (leave it out)")
            if window is not None and float(window) != own_window:
                raise ConfigError(f"{self.path}: the model's front end takes {own_window:g} s windows; "
                                  f"--window {window:g} differs (leave it out)")
            sample_rate, window = own_rate, own_window
            self.channels = int(self.frontend_config.get("channels", 1))
        elif sample_rate is None or window is None:
            raise ConfigError(f"{self.path}: a model without asctool metadata takes raw audio; give its "
                              "--sample-rate and --window")
        if int(sample_rate) < 1000:
            raise ConfigError(f"--sample-rate must be at least 1000 Hz, got {sample_rate}")
        if float(window) <= 0 or (hop is not None and float(hop) <= 0):
            raise ConfigError("--window and --hop must be positive seconds")
        self.sample_rate, self.window = int(sample_rate), float(window)
        self.hop = self.window if hop is None else float(hop)
        self.min_tail = self.window / 2  # a window needs at least half of it inside the clip
        self.input_files = (self.path,)
        self.sha256 = file_sha256(self.path)
        self._run = None
        self._front = None

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "model": str(self.path), "model_sha256": self.sha256, "layer": self.layer or "(output)",
                "frontend": "asctool" if self.frontend_config is not None else "waveform"}

    def load(self) -> None:
        if self._run is not None:
            return
        if self.frontend_config is not None:
            from ..frontend import FrontEnd

            self._front = FrontEnd(self.frontend_config)
        if self.name == "keras":
            self._run = self._load_keras()
        else:
            self._run = self._load_tflite()

    def _load_keras(self):
        import keras

        from ..models import load_model

        model = load_model(self.path)
        names = [lay.name for lay in model.layers]
        if self.layer is None:
            sub = model
        elif self.layer not in names:
            raise ConfigError(f"{self.path}: no layer named {self.layer!r} (its last layers: {', '.join(names[-6:])})")
        else:
            sub = keras.Model(model.inputs, model.get_layer(self.layer).output)
        rank = len(model.inputs[0].shape)

        def run(x: np.ndarray) -> np.ndarray:
            if self._front is None and rank == 3 and x.ndim == 2:
                x = x[..., None]
            return np.asarray(sub.predict_on_batch(x), dtype=np.float32)

        return run

    def _load_tflite(self):
        from .tflite import TensorRunner, load_interpreter

        # no tensor exposed: the model's own outputs
        interpreter, indices = load_interpreter(self.path, expose=[self.layer] if self.layer else [])
        runner = TensorRunner(interpreter, indices[:1])
        rank = len(runner.input["shape"])

        def run(x: np.ndarray) -> np.ndarray:
            if self._front is None and rank == 3 and x.ndim == 2:
                x = x[..., None]
            return runner(np.ascontiguousarray(x, dtype=np.float32))[0]

        return run

    def frontend(self, windows: np.ndarray) -> np.ndarray:
        if self._front is None:
            return windows
        if windows.ndim == 2:
            windows = windows[:, None, :]
        out = np.empty((len(windows), *self._front.feature_shape), dtype=np.float32)
        for i, w in enumerate(windows):
            self._front(w, out=out[i])
        return out

    def embed(self, windows: np.ndarray) -> np.ndarray:
        self.load()
        y = self._run(self.frontend(windows))
        return y.reshape(len(windows), -1)


@register("keras", "a layer of any Keras model (--model FILE.keras --layer NAME)")
def keras_extractor(*, model: str | None = None, layer: str | None = None, sample_rate: int | None = None,
                    window: float | None = None, hop: float | None = None) -> ModelLayerExtractor:
    """A Keras model's layer ``layer``; see the module docstring for the input rules."""
    return ModelLayerExtractor("keras", model, layer, sample_rate, window, hop)


@register("tflite", "a tensor of any TensorFlow Lite model (--model FILE.tflite --layer TENSOR)")
def tflite_extractor(*, model: str | None = None, layer: str | None = None, sample_rate: int | None = None,
                     window: float | None = None, hop: float | None = None) -> ModelLayerExtractor:
    """A TensorFlow Lite model's tensor ``layer`` (added to the model's outputs to be read)."""
    return ModelLayerExtractor("tflite", model, layer, sample_rate, window, hop)


