"""Model registry and architectures (Keras 3, channels last).

``build(name, num_classes, input_shape, **options)`` returns an uncompiled
``keras.Model`` mapping ``(batch, freq, time, channels)`` to softmax
probabilities ``(batch, num_classes)``; ``available()`` lists the names.
Importing this package registers the custom layers, so a saved ``.keras`` model
loads with :func:`load_model` (or ``keras.saving.load_model`` after
``import asctool.models``).
"""
from __future__ import annotations

import zipfile
from pathlib import Path

from ..errors import ArtifactError
from . import grl, layers  # noqa: F401  (register the custom layers)
from . import fcnn, fsfcnn, fsfcnn_s, mlp, mobnet, rawnet, resnet, small_fcnn  # noqa: F401  (each registers one architecture)
from .complexity import complexity, summary_table
from .registry import available, build, check_options, feature_map_output, parse_input_shape, register, spec

__all__ = [
    "build",
    "check_options",
    "available",
    "register",
    "spec",
    "load_model",
    "complexity",
    "summary_table",
    "parse_input_shape",
    "feature_map_output",
]


def load_model(path: str | Path, *, compile: bool = False):
    """Load a saved ``.keras`` model with asctool's custom layers registered.

    Parameters
    ----------
    path : str or Path
        A ``.keras`` file written by ``model.save``.
    compile : bool
        Restore the training configuration too (default False: inference).

    Returns
    -------
    keras.Model

    Raises
    ------
    ArtifactError
        When the file is missing, not a Keras archive (zip) or not a loadable Keras model.
    """
    import keras

    path = Path(path)
    if not path.is_file():
        raise ArtifactError(f"{path}: model file not found")
    if path.suffix != ".keras":
        raise ArtifactError(f"{path}: expected a .keras model file")
    if not zipfile.is_zipfile(path):
        raise ArtifactError(f"{path}: not a Keras archive (a .keras model is a zip file; this one is not)")
    try:
        return keras.saving.load_model(path, compile=compile)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ArtifactError(f"{path}: cannot load the model ({exc})") from None
