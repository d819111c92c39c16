"""A TensorFlow Lite model with intermediate tensors made readable.

An embedding is an intermediate tensor of a model (BirdNET's global average
pool, a user model's layer). TensorFlow Lite reuses intermediate buffers, and
its XNNPACK delegate (the default since TensorFlow 2.16) never writes them back,
so such a tensor cannot be read after ``invoke``. :func:`load_interpreter`
therefore adds the wanted tensors to the model's outputs before building the
interpreter (the FlatBuffer edited with TensorFlow's own
``tensorflow.lite.tools.flatbuffer_utils``; the computation is unchanged), which
costs less than ``experimental_preserve_all_tensors=True`` (about 15 % less CPU
for BirdNET, the same values). ``ai_edge_litert`` is used when installed, else
``tf.lite``.
"""
from __future__ import annotations

import os
from typing import Sequence

import numpy as np

from ..errors import ArtifactError, ConfigError

__all__ = ["load_interpreter", "TensorRunner"]


def _interpreter_class():
    try:
        from ai_edge_litert.interpreter import Interpreter  # type: ignore[import-not-found]
    except ImportError:
        import tensorflow as tf

        Interpreter = tf.lite.Interpreter
    return Interpreter


def load_interpreter(path: str | os.PathLike, *, expose: Sequence[str] = (), threads: int | None = None):
    """An interpreter of ``path`` whose outputs are ``expose`` (tensor names), in that order, then its own.

    Returns
    -------
    (interpreter, indices) : the interpreter and the tensor index of each name
        of ``expose`` followed by the model's own outputs.

    Raises
    ------
    ArtifactError
        not a loadable TensorFlow Lite model (one line naming the file).
    ConfigError
        a name of ``expose`` is no tensor of the model (the message lists its last ones).
    """
    import warnings

    from tensorflow.lite.tools import flatbuffer_utils

    try:
        model = flatbuffer_utils.read_model(str(path))
        graph = model.subgraphs[0]
    except Exception as exc:  # the FlatBuffer reader raises anything on garbage
        raise ArtifactError(f"{path}: not a readable TensorFlow Lite model ({str(exc).splitlines()[0]})") from None
    names = [t.name.decode() if isinstance(t.name, bytes) else str(t.name) for t in graph.tensors]
    wanted = []
    for name in expose:
        if name not in names:
            shown = ", ".join(n for n in names[-8:])
            raise ConfigError(f"{path}: no tensor named {name!r} (the last of its {len(names)} tensors: {shown})")
        wanted.append(names.index(name))
    own = [int(i) for i in graph.outputs]
    graph.outputs = np.asarray(wanted + [i for i in own if i not in wanted], dtype=np.int32)
    content = bytes(flatbuffer_utils.convert_object_to_bytearray(model))
    try:
        with warnings.catch_warnings():  # tf.lite's deprecation notice
            warnings.simplefilter("ignore")
            interpreter = _interpreter_class()(model_content=content, num_threads=threads)
    except (ValueError, RuntimeError) as exc:
        raise ArtifactError(f"{path}: cannot load the TensorFlow Lite model ({str(exc).splitlines()[0]})") from None
    by_name = {d["name"]: int(d["index"]) for d in interpreter.get_tensor_details()}
    return interpreter, [by_name[names[i]] for i in wanted + [i for i in own if i not in wanted]]


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
