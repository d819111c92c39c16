"""Model runners: a function from a features batch to class probabilities.

:func:`load_runner` hides whether a model is a Keras ``.keras`` file (run
through Keras) or a TensorFlow Lite ``.tflite`` file (run through the
TensorFlow Lite interpreter: ``ai_edge_litert`` when installed, else
``tf.lite``). ``asctool predict`` (:mod:`asctool.stages.predict`) uses it.

A ``.tflite`` file is checked against the SHA-256 that ``asctool quantize``
recorded in ``size.json`` beside it (:func:`check_tflite_checksum`) before it
runs: a few corrupted bytes still load and give plausible, wrong scores.
"""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Callable

import numpy as np

from .errors import ArtifactError

__all__ = ["load_runner", "check_tflite_checksum"]

log = logging.getLogger(__name__)


def check_tflite_checksum(path: str | os.PathLike) -> None:
    """Raise unless a ``.tflite`` file has the SHA-256 its ``size.json`` records.

    Only ``.tflite`` files are checked, and only when a ``size.json`` beside
    them describes them (its ``file`` is their name): a file from elsewhere,
    without one, is used as it is.

    Raises
    ------
    ArtifactError
        ``size.json`` is unreadable, or the file's SHA-256 differs (the
        message names both files).
    """
    path = Path(path)
    record = path.with_name("size.json")
    if path.suffix != ".tflite" or not record.is_file():
        return
    try:
        info = json.loads(record.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"{record}: not a readable size.json ({exc}); it should describe {path}") from None
    if not isinstance(info, dict) or info.get("file") != path.name or not info.get("sha256"):
        log.debug("%s does not describe %s; its checksum is not checked", record, path)
        return
    from .provenance import file_sha256

    digest = file_sha256(path)
    if digest != info["sha256"]:
        raise ArtifactError(
            f"{path}: SHA-256 {digest[:16]}... differs from {str(info['sha256'])[:16]}... recorded in "
            f"{record}; the file was corrupted or changed after asctool quantize (quantise it again)"
        )


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
    ``tf.lite``), its input resized to each batch, after
    :func:`check_tflite_checksum`.
    """
    path = Path(model_path)
    if path.suffix == ".keras":
        return _keras_runner(path)
    if path.suffix == ".tflite":
        check_tflite_checksum(path)
        return _tflite_runner(path)
    raise ArtifactError(f"{path}: expected a .keras or .tflite model file")
