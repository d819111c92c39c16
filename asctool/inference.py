"""Model runners: a function from a features batch to class probabilities.

:func:`load_runner` hides whether a model is a Keras ``.keras`` file (run
through Keras) or a TensorFlow Lite ``.tflite`` file (run through the
TensorFlow Lite interpreter: ``ai_edge_litert`` when installed, else
``tf.lite``). ``asctool predict`` (:mod:`asctool.stages.predict`) uses it.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import numpy as np

from .errors import ArtifactError

__all__ = ["load_runner"]


# --------------------------------------------------------------------------
# model runners: batch (n, freq, time, channels) float32 -> (n, classes)
# --------------------------------------------------------------------------
def _keras_runner(path: Path) -> Callable[[np.ndarray], np.ndarray]:
    from .models import load_model

    model = load_model(path)

    def run(x: np.ndarray) -> np.ndarray:
        return np.asarray(model.predict_on_batch(x), dtype=np.float32)

    return run


def _tflite_interpreter(path: Path):
    try:
        from ai_edge_litert.interpreter import Interpreter  # type: ignore[import-not-found]
    except ImportError:
        import tensorflow as tf

        Interpreter = tf.lite.Interpreter
    try:
        return Interpreter(model_path=str(path))
    except (ValueError, RuntimeError) as exc:
        raise ArtifactError(f"{path}: cannot load the TensorFlow Lite model ({exc})") from None


def _tflite_runner(path: Path) -> Callable[[np.ndarray], np.ndarray]:
    interpreter = _tflite_interpreter(path)
    input_detail = interpreter.get_input_details()[0]
    output_index = interpreter.get_output_details()[0]["index"]
    current: list[tuple[int, ...] | None] = [None]

    def run(x: np.ndarray) -> np.ndarray:
        if current[0] != x.shape:
            interpreter.resize_tensor_input(input_detail["index"], list(x.shape), strict=False)
            interpreter.allocate_tensors()
            current[0] = x.shape
        detail = interpreter.get_input_details()[0]
        dtype = detail["dtype"]
        if np.issubdtype(dtype, np.integer):  # fully integer model: quantise the input
            scale, zero = detail["quantization"]
            info = np.iinfo(dtype)
            x = np.clip(np.round(x / scale + zero), info.min, info.max).astype(dtype)
        else:
            x = x.astype(dtype, copy=False)
        interpreter.set_tensor(detail["index"], x)
        interpreter.invoke()
        out_detail = [d for d in interpreter.get_output_details() if d["index"] == output_index][0]
        y = interpreter.get_tensor(output_index)
        if np.issubdtype(y.dtype, np.integer):
            scale, zero = out_detail["quantization"]
            y = (y.astype(np.float32) - zero) * scale
        return np.asarray(y, dtype=np.float32)

    return run


def load_runner(model_path: str | os.PathLike) -> Callable[[np.ndarray], np.ndarray]:
    """A function mapping a float32 batch ``(n, freq, time, channels)`` to probabilities ``(n, K)``.

    ``.keras`` models run through Keras; ``.tflite`` models through the
    TensorFlow Lite interpreter (``ai_edge_litert`` when installed, else
    ``tf.lite``), its input resized to each batch.
    """
    path = Path(model_path)
    if path.suffix == ".keras":
        return _keras_runner(path)
    if path.suffix == ".tflite":
        return _tflite_runner(path)
    raise ArtifactError(f"{path}: expected a .keras or .tflite model file")
