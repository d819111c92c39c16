"""The TensorFlow Lite interpreter with every intermediate tensor readable.

An embedding is an intermediate tensor of a model (BirdNET's global average
pool, a user model's layer), so the interpreter is built with
``experimental_preserve_all_tensors=True`` (otherwise TensorFlow Lite reuses
intermediate buffers and a read returns garbage). ``ai_edge_litert`` is used
when installed, else ``tf.lite``.
"""
from __future__ import annotations

import os

from typing import Sequence

import numpy as np

from ..errors import ArtifactError, ConfigError

__all__ = ["load_interpreter", "find_tensor", "TensorRunner"]


def load_interpreter(path: str | os.PathLike, *, threads: int | None = None):
    """A TensorFlow Lite interpreter of ``path`` that keeps every tensor (one line on failure)."""
    try:
        from ai_edge_litert.interpreter import Interpreter  # type: ignore[import-not-found]
    except ImportError:
        import tensorflow as tf

        Interpreter = tf.lite.Interpreter
    import warnings

    try:
        with warnings.catch_warnings():  # "intended for debugging": it is what reads an intermediate tensor
            warnings.filterwarnings("ignore", message=".*experimental_preserve_all_tensors.*")
            return Interpreter(model_path=str(path), num_threads=threads, experimental_preserve_all_tensors=True)
    except (ValueError, RuntimeError) as exc:
        raise ArtifactError(f"{path}: cannot load the TensorFlow Lite model ({str(exc).splitlines()[0]})") from None


def find_tensor(interpreter, name: str, path: str | os.PathLike) -> int:
    """Index of the tensor called ``name`` (one line listing a few names when there is none)."""
    details = interpreter.get_tensor_details()
    for detail in details:
        if detail["name"] == name:
            return int(detail["index"])
    names = [d["name"] for d in details if d["name"]]
    shown = ", ".join(names[-8:])
    raise ConfigError(f"{path}: no tensor named {name!r} (the last of its {len(names)} tensors: {shown})")


class TensorRunner:
    """Run a batch through an interpreter and read tensors ``indices`` (float32 copies).

    The input is resized to each new batch shape (``resize_tensor_input``).
    """

    def __init__(self, interpreter, indices: Sequence[int]) -> None:
        self.interpreter = interpreter
        self.indices = list(indices)
        self.input = interpreter.get_input_details()[0]
        self._shape: tuple[int, ...] | None = None

    def __call__(self, x: np.ndarray) -> list[np.ndarray]:
        if self._shape != x.shape:
            self.interpreter.resize_tensor_input(self.input["index"], list(x.shape), strict=False)
            self.interpreter.allocate_tensors()
            self._shape = x.shape
        self.interpreter.set_tensor(self.input["index"], x.astype(self.input["dtype"], copy=False))
        self.interpreter.invoke()
        return [np.array(self.interpreter.get_tensor(i), dtype=np.float32) for i in self.indices]


