"""asctool: composable stages for acoustic scene classification.

Importing :mod:`asctool` is cheap (no TensorFlow). Keras custom layers are
registered when :mod:`asctool.models` is imported; ``keras.saving.load_model``
on an asctool model therefore needs ``import asctool.models`` (done for you by
:func:`asctool.models.load_model` and by the ``predict`` stage).
"""
from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
