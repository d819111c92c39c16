"""The ``asctool predict`` stage: class probabilities of every clip of a features file.

Reads a model (``RUN/model.keras``, or a ``.tflite`` file written by
``asctool quantize``) and the ``config.json`` beside it (classes, front-end
configuration, input shape), streams the features in batches at full length
(the models are fully convolutional) and writes a scores file.

``read_model_config`` is the one place that finds a model's metadata; the
quantize stage uses it too. Keys guaranteed in the returned dict:
``model``, ``classes``, ``labels``, ``frontend_config``, ``input_shape``.
"""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .artifacts import check_same_config, open_features, write_scores
from .errors import ArtifactError, MismatchError

__all__ = ["read_model_config", "predict", "MODEL_CONFIG_KEYS", "load_runner"]

log = logging.getLogger(__name__)

#: Keys every model's config.json holds (written by ``asctool train``).
MODEL_CONFIG_KEYS = ("model", "classes", "labels", "frontend_config", "input_shape")


def read_model_config(model_path: str | os.PathLike, *, required: bool = True) -> dict[str, Any] | None:
    """Metadata of a model file: the ``config.json`` in the same folder.

    Parameters
    ----------
    model_path : path
        A ``.keras`` or ``.tflite`` model file.
    required : bool
        Whether a missing config.json is an error; if not, None is returned.

    Returns
    -------
    dict or None
        The run configuration, with at least :data:`MODEL_CONFIG_KEYS`.

    Raises
    ------
    ArtifactError
        The model file or its config.json is missing, unreadable or lacks a key.
    """
    path = Path(model_path)
    if not path.is_file():
        raise ArtifactError(f"{path}: model file not found")
    config_path = path.parent / "config.json"
    if not config_path.is_file():
        if not required:
            return None
        raise ArtifactError(
            f"{path}: no config.json beside the model (it gives the classes and the front-end config)"
        )
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"{config_path}: not a readable JSON file ({exc})") from None
    if not isinstance(config, dict):
        raise ArtifactError(f"{config_path}: expected a JSON object")
    missing = [key for key in MODEL_CONFIG_KEYS if key not in config]
    if missing:
        raise ArtifactError(f"{config_path}: lacks {', '.join(missing)}")
    return config


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


def predict(
    model_path: str | os.PathLike,
    features_path: str | os.PathLike,
    out: str | os.PathLike,
    *,
    batch_size: int = 64,
) -> dict[str, Any]:
    """Score every clip of a features file and write a scores file.

    Parameters
    ----------
    model_path : path
        ``RUN/model.keras`` (or any ``.keras`` file of a run folder) or a
        ``.tflite`` file with a ``config.json`` beside it.
    features_path : path
        Features file made with the front-end config the model was trained on.
    out : path
        Scores file to write (``id``, ``scene`` and ``device`` where known,
        ``classes`` from the model's config).
    batch_size : int
        Clips per forward pass; features are read one batch at a time.

    Returns
    -------
    dict
        ``out``, ``clips``, ``classes`` and, when the features are labelled
        with classes of the model, ``accuracy`` (micro, over those clips).

    Raises
    ------
    ArtifactError
        Missing or unreadable model, config.json or features; an empty features file.
    MismatchError
        The features' front-end config or shape differs from the model's.
    """
    model_path, features_path, out = Path(model_path), Path(features_path), Path(out)
    if batch_size < 1:
        raise ArtifactError(f"--batch-size {batch_size}: must be positive")
    config = read_model_config(model_path)
    classes = [str(c) for c in config["classes"]]
    with open_features(features_path) as f:
        check_same_config(config["frontend_config"], f.config,
                          f"{model_path} (its config.json)", features_path)
        freq, _, channels = config["input_shape"]
        shape = f.feature_shape
        if len(shape) != 3 or shape[0] != freq or shape[2] != channels:
            raise MismatchError(
                f"{features_path}: features of shape {shape} do not fit {model_path}, "
                f"trained on {tuple(config['input_shape'])}"
            )
        n = len(f)
        if n == 0:
            raise ArtifactError(f"{features_path}: features file holds no clips")
        run = load_runner(model_path)
        from .console import progress

        scores = np.empty((n, len(classes)), dtype=np.float32)
        buffer = np.empty((min(batch_size, n), *shape), dtype=f.dtype)
        log.info("predict %d clips of %s with %s", n, features_path, model_path)
        with progress(n, "predicting") as advance:
            for start in range(0, n, batch_size):
                stop = min(start + batch_size, n)
                view = buffer[: stop - start]
                f.features.read_direct(view, np.s_[start:stop], np.s_[0:stop - start])
                probs = run(view.astype(np.float32))
                if probs.shape != (stop - start, len(classes)):
                    raise MismatchError(
                        f"{model_path}: outputs {probs.shape[1:]} classes, its config.json lists {len(classes)}"
                    )
                scores[start:stop] = probs
                advance(stop - start)
        ids = list(f.ids)
        scenes = list(f.scenes) if any(f.scenes) else None
        devices = list(f.devices) if any(f.devices) else None
    scores = np.clip(scores, 0.0, None)
    scores /= np.maximum(scores.sum(axis=1, keepdims=True), 1e-12)
    write_scores(out, ids=ids, scores=scores, classes=classes, scenes=scenes, devices=devices,
                 inputs=[model_path, features_path],
                 extra_attrs={"model": str(model_path), "model_name": str(config["model"])})
    summary: dict[str, Any] = {"out": str(out), "clips": n, "classes": classes}
    if scenes is not None:
        mapping = config.get("label_map") or {}
        truth = np.array([mapping.get(s, s) for s in scenes], dtype=object)
        known = np.isin(truth, classes)
        if known.any():
            predicted = np.asarray(classes, dtype=object)[scores.argmax(axis=1)]
            summary["accuracy"] = float(np.mean(predicted[known] == truth[known]))
            summary["labelled_clips"] = int(known.sum())
    log.info("wrote %s", out)
    return summary
