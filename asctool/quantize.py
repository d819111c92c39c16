"""TensorFlow Lite post-training quantisation of a trained model.

``asctool quantize --model RUN/model.keras --out FILE.tflite [--mode ...]``
converts a Keras model to TensorFlow Lite:

``dynamic`` (default, as in Hu et al. for Task 1b)
    dynamic-range quantisation: weights stored as 8-bit integers, activations
    in float; no calibration data.
``float16``
    weights stored as float16.
``int8``
    full integer quantisation of weights and activations, calibrated on a
    features file (``--calibration FEATS.h5``, streamed clip by clip); the
    model's input and output stay float32 so ``predict`` needs no change.

Beside ``FILE.tflite`` it writes ``size.json`` (bytes, parameters, mode, source
model) and makes sure the folder holds the model's ``config.json`` (classes,
front-end configuration, input shape), which ``predict`` reads.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from .artifacts import check_same_config, open_features
from .io import atomic_path
from .errors import ArtifactError, AsctoolError, ConfigError, MismatchError
from .inference import read_model_config

__all__ = ["MODES", "quantize", "convert", "tflite_predict"]

log = logging.getLogger(__name__)

MODES = ("dynamic", "float16", "int8")
#: Nominal bits per parameter of each mode, for the DCASE model-size rule
#: (parameters x bits; the file itself also holds the graph and keeps small
#: tensors such as batch-norm statistics in float32).
BITS_PER_PARAMETER = {"dynamic": 8, "float16": 16, "int8": 8}
CALIBRATION_CLIPS = 200  # at most this many clips of --calibration are used


def _input_shape(model, config: dict[str, Any] | None, model_path: Path) -> tuple[int, int, int]:
    """The (freq, time, channels) the model is converted for.

    Fully convolutional models accept any time length; TensorFlow Lite needs
    one, taken from the run's ``config.json`` (``input_shape``) when the
    model's own input leaves it open.
    """
    shape = list(model.input_shape[1:])
    if config and config.get("input_shape"):
        configured = [int(s) for s in config["input_shape"]]
        if len(configured) == len(shape):
            shape = [c if s is None else s for s, c in zip(shape, configured)]
    if len(shape) != 3 or any(s is None for s in shape):
        raise ConfigError(
            f"{model_path}: input shape {tuple(model.input_shape[1:])} is not fully known; "
            "config.json beside the model must give input_shape"
        )
    return tuple(int(s) for s in shape)  # type: ignore[return-value]


def _calibration_batches(path: Path, input_shape: tuple[int, ...], frontend: dict | None, *,
                         max_clips: int = CALIBRATION_CLIPS) -> Iterator[list[np.ndarray]]:
    """Representative dataset for int8: clips of a features file, one at a time."""
    with open_features(path) as feats:
        if frontend is not None:
            check_same_config(frontend, feats.config, "the model's front end", path)
        if feats.feature_shape != tuple(input_shape):
            raise MismatchError(
                f"{path}: features of shape {feats.feature_shape} do not fit the model input {tuple(input_shape)}"
            )
        n = min(len(feats), max_clips)
        if n == 0:
            raise ArtifactError(f"{path}: no clips to calibrate on")
        # spread the clips over the file (it may be sorted by scene or device)
        for index in np.unique(np.linspace(0, len(feats) - 1, n).round().astype(int)):
            yield [np.asarray(feats.features[int(index)], dtype=np.float32)[None]]


def _check_calibration_file(path: Path, input_shape: tuple[int, ...], frontend: dict | None) -> None:
    """Fail early (before TensorFlow's converter) on a calibration file that cannot work."""
    first = next(_calibration_batches(path, input_shape, frontend, max_clips=1))
    if not np.isfinite(first[0]).all():
        raise ArtifactError(f"{path}: calibration features contain NaN or Inf")


def convert(model, input_shape: tuple[int, ...], *, mode: str = "dynamic", representative=None) -> bytes:
    """Convert a Keras model to a TensorFlow Lite flatbuffer.

    Parameters
    ----------
    model : keras.Model
        Maps ``(batch, freq, time, channels)`` to ``(batch, classes)``.
    input_shape : tuple of int
        ``(freq, time, channels)``; the batch dimension stays dynamic.
    mode : {"dynamic", "float16", "int8"}
    representative : callable, optional
        Generator function of ``[array (1, freq, time, channels)]`` (int8 only).

    Returns
    -------
    bytes
        The ``.tflite`` file content.
    """
    import tensorflow as tf

    if mode not in MODES:
        raise ConfigError(f"quantisation mode must be one of {', '.join(MODES)}, not {mode!r}")

    # Through a SavedModel: converting a tf.function that calls the Keras 3 model
    # directly (from_concrete_functions) gives NaN outputs with TF 2.21.
    with tempfile.TemporaryDirectory(prefix="asctool-tflite-") as folder:
        signature = [tf.TensorSpec([None, *input_shape], tf.float32, name="features")]
        with contextlib.redirect_stdout(io.StringIO()):  # export prints a summary on stdout
            model.export(folder, format="tf_saved_model", verbose=False, input_signature=signature)
        converter = tf.lite.TFLiteConverter.from_saved_model(folder)
        _configure(converter, tf, mode, representative)
        return bytes(converter.convert())


def _configure(converter, tf, mode: str, representative) -> None:
    """Set the converter's optimisation options for ``mode``."""
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if mode == "float16":
        converter.target_spec.supported_types = [tf.float16]
    elif mode == "int8":
        if representative is None:
            raise ConfigError("int8 quantisation needs calibration features (--calibration FEATS.h5)")
        converter.representative_dataset = representative
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]


def tflite_predict(content: bytes | str | Path, features: np.ndarray) -> np.ndarray:
    """Run a TensorFlow Lite model on a batch of features.

    Parameters
    ----------
    content : bytes or path
        The ``.tflite`` model.
    features : np.ndarray [shape=(n, freq, time, channels)]

    Returns
    -------
    np.ndarray [shape=(n, classes)]
        The model's outputs (probabilities).
    """
    import tensorflow as tf

    if isinstance(content, (str, Path)):
        interpreter = tf.lite.Interpreter(model_path=str(content))
    else:
        interpreter = tf.lite.Interpreter(model_content=content)
    features = np.asarray(features, dtype=np.float32)
    detail = interpreter.get_input_details()[0]
    interpreter.resize_tensor_input(detail["index"], list(features.shape))
    interpreter.allocate_tensors()
    interpreter.set_tensor(detail["index"], features)
    interpreter.invoke()
    return np.array(interpreter.get_tensor(interpreter.get_output_details()[0]["index"]))


def _same_json(path: Path, config: dict[str, Any]) -> bool:
    try:
        return json.loads(path.read_text()) == config
    except ValueError:
        return False


def quantize(
    model_path: str | Path,
    out: str | Path,
    *,
    mode: str = "dynamic",
    calibration: str | Path | None = None,
    max_bytes: int | None = None,
    force: bool = False,
) -> dict[str, Any]:
    """Post-training quantisation of ``RUN/model.keras`` to ``out`` (.tflite).

    Parameters
    ----------
    model_path : path
        A ``.keras`` model written by ``asctool train`` (its ``config.json``
        beside it gives the input shape, classes and front end).
    out : path
        The ``.tflite`` file to write; ``size.json`` is written beside it, and
        the run's ``config.json`` is copied there when the folder differs.
    mode : {"dynamic", "float16", "int8"}
    calibration : path, optional
        Features file for ``int8`` calibration (same front end as the model).
    max_bytes : int, optional
        Budget: when the ``.tflite`` is larger, fail and write nothing.
    force : bool
        Overwrite an existing ``out``.

    Returns
    -------
    dict
        ``out``, ``bytes`` (the file), ``parameters`` (Keras ``count_params``),
        ``bits_per_parameter`` and ``parameter_bytes`` (parameters x nominal bits
        of the mode / 8: the DCASE 2020 Task 1b size rule), ``mode``,
        ``source_model``, ``source_bytes`` and ``max_bytes`` (what ``size.json``
        holds).

    Raises
    ------
    AsctoolError
        Bad options, a missing or unloadable model, a calibration file that
        does not fit, a model TensorFlow Lite cannot convert, or a file over
        ``max_bytes``.
    """
    model_path, out = Path(model_path), Path(out)
    calibration = Path(calibration) if calibration is not None else None
    if mode not in MODES:
        raise ConfigError(f"--mode must be one of {', '.join(MODES)}, not {mode!r}")
    if out.suffix != ".tflite":
        raise ConfigError(f"{out}: the output must be a .tflite file")
    if mode == "int8" and calibration is None:
        raise ConfigError("--mode int8 needs --calibration FEATS.h5 (features to calibrate the activations)")
    if mode != "int8" and calibration is not None:
        raise ConfigError(f"--calibration is only used with --mode int8, not {mode}")
    if max_bytes is not None and max_bytes < 1:
        raise ConfigError(f"--max-bytes must be positive, not {max_bytes}")
    if not model_path.is_file():
        raise ArtifactError(f"{model_path}: model file not found")
    if out.exists() and not force:
        raise AsctoolError(f"{out}: already exists (use --force to overwrite)")

    config = read_model_config(model_path, required=False)
    if config is None:
        log.warning("%s: no config.json beside the model; predict will not know its classes", model_path)
    out_config = out.parent / "config.json"
    copy_config = config is not None and out.parent.resolve() != model_path.parent.resolve()
    if copy_config and out_config.exists() and not _same_json(out_config, config):
        raise MismatchError(
            f"{out_config}: holds another model's config; write {out.name} into its own folder"
        )
    size_path = out.parent / "size.json"
    if size_path.exists():
        try:
            described = json.loads(size_path.read_text()).get("file")
        except (ValueError, AttributeError):
            described = None
        if described not in (None, out.name):
            raise MismatchError(
                f"{size_path}: already describes {described}; write {out.name} into its own folder"
            )

    from .models import load_model

    model = load_model(model_path)
    input_shape = _input_shape(model, config, model_path)
    frontend = (config or {}).get("frontend_config")
    representative = None
    if mode == "int8":
        if not calibration.is_file():
            raise ArtifactError(f"{calibration}: calibration features file not found")
        _check_calibration_file(calibration, input_shape, frontend)

        def representative():
            return _calibration_batches(calibration, input_shape, frontend)

    log.info("converting %s to TensorFlow Lite (%s, input %s)", model_path, mode, "x".join(map(str, input_shape)))
    try:
        content = convert(model, input_shape, mode=mode, representative=representative)
    except AsctoolError:
        raise
    except Exception as exc:  # TensorFlow raises many types; report one line
        first = next((line.strip() for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
        raise AsctoolError(f"{model_path}: cannot be quantised to TensorFlow Lite ({mode}): {first}") from None

    summary: dict[str, Any] = {
        "file": out.name,
        "bytes": len(content),
        "parameters": int(model.count_params()),
        "bits_per_parameter": BITS_PER_PARAMETER[mode],
        "parameter_bytes": int(model.count_params()) * BITS_PER_PARAMETER[mode] // 8,
        "mode": mode,
        "source_model": str(model_path),
        "source_bytes": model_path.stat().st_size,
        "sha256": hashlib.sha256(content).hexdigest(),
        "input_shape": list(input_shape),
    }
    if max_bytes is not None:
        summary["max_bytes"] = int(max_bytes)
        if len(content) > max_bytes:
            if out.exists():  # only with --force: a stale file must not pass for this result
                out.unlink()
            raise AsctoolError(
                f"{out}: quantised model is {len(content)} bytes, over --max-bytes {max_bytes}; nothing written"
            )

    with atomic_path(out) as tmp:
        tmp.write_bytes(content)
    with atomic_path(size_path) as tmp:
        tmp.write_text(json.dumps(summary, indent=2) + "\n")
    if copy_config and not out_config.exists():
        with atomic_path(out_config) as tmp:
            shutil.copyfile(model_path.parent / "config.json", tmp)
    log.info("wrote %s (%d bytes, %s; Keras model %d bytes)", out, len(content), mode, summary["source_bytes"])
    return {"out": str(out), **summary}
