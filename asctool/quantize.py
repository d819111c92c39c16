"""TensorFlow Lite post-training quantisation of a Keras model (the library).

:func:`convert` turns a Keras model into a ``.tflite`` FlatBuffer in one of
:data:`MODES`:

``dynamic`` (default, as in Hu et al. for Task 1b)
    dynamic-range quantisation: weights stored as 8-bit integers, activations
    in float; no calibration data.
``float16``
    weights stored as float16.
``int8``
    full integer quantisation of weights and activations, calibrated on a
    representative dataset; the model's input and output stay float32.

The stage ``asctool quantize`` (:mod:`asctool.stages.quantize`) reads the model
and calibration features and writes the file with its metadata and ``size.json``.
"""
from __future__ import annotations

import contextlib
import io
import tempfile

from .errors import ConfigError

__all__ = ["MODES", "BITS_PER_PARAMETER", "CALIBRATION_CLIPS", "convert"]

MODES = ("dynamic", "float16", "int8")
#: Nominal bits per parameter of each mode, for the DCASE model-size rule
#: (parameters x bits; the file itself also holds the graph and keeps small
#: tensors such as batch-norm statistics in float32).
BITS_PER_PARAMETER = {"dynamic": 8, "float16": 16, "int8": 8}
CALIBRATION_CLIPS = 200  # at most this many clips of --calibration are used


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
