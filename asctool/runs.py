"""Run folders and model metadata.

A *run folder* is what ``asctool train`` writes (see ``docs/train.md``)::

    RUN/config.json   everything train was given, plus model, classes, front end
    RUN/model.keras   the model to use (best validation epoch, snapshot average or last)
    RUN/last.keras    the last epoch
    RUN/history.tsv   one row per epoch
    RUN/train.log     the log
    RUN/state.json, RUN/checkpoint/, RUN/snapshots/   resume state

*Model metadata* is the part of ``config.json`` that using a model needs:
:data:`MODEL_METADATA_KEYS` (the classes in output order, the label map, the
front-end configuration, the input shape). It travels inside the model file,
so a model copied anywhere still knows its classes and front end:

- ``.keras`` (a zip archive): the entry ``asctool.json`` (Keras ignores it);
- ``.tflite`` (a FlatBuffer): a ``metadata`` entry named ``asctool`` whose
  buffer holds the same JSON (the TensorFlow Lite interpreter ignores it).

Files written before metadata was embedded are still read: then the
``config.json`` in the model's folder is used.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import zipfile
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

from .errors import ArtifactError, ConfigError
from .io import atomic_path

__all__ = [
    "MODEL_METADATA_KEYS",
    "RUN_FILES",
    "HISTORY_COLUMNS",
    "model_metadata",
    "embed_keras_metadata",
    "embed_tflite_metadata",
    "read_model_metadata",
    "check_run_dir",
    "write_json",
    "write_history",
    "log_to",
]

log = logging.getLogger(__name__)

#: Keys every model's metadata holds (written by ``asctool train``).
MODEL_METADATA_KEYS = ("model", "classes", "labels", "label_map", "frontend_config", "input_shape")
#: Files and folders train writes into a run folder (removed by ``--force``).
RUN_FILES = ("config.json", "model.keras", "last.keras", "history.tsv", "train.log", "state.json",
             "checkpoint", "snapshots", "labellers.keras", "labellers-last.keras")
#: Columns of ``history.tsv``.
HISTORY_COLUMNS = ("epoch", "lr", "loss", "accuracy", "val_loss", "val_accuracy")

_KERAS_ENTRY = "asctool.json"
_TFLITE_NAME = "asctool"


def model_metadata(config: Mapping[str, Any]) -> dict[str, Any]:
    """The model metadata (:data:`MODEL_METADATA_KEYS`) of a run's ``config.json``
    (plus ``tag_fusion``, the tagger's identity and tag names, for a tag-conditioned model)."""
    metadata = {key: config.get(key) for key in MODEL_METADATA_KEYS}
    if config.get("tag_fusion"):
        metadata["tag_fusion"] = config["tag_fusion"]
    return metadata


def _encode(metadata: Mapping[str, Any]) -> bytes:
    return json.dumps(dict(metadata), sort_keys=True).encode("utf-8")


def embed_keras_metadata(path: str | os.PathLike, metadata: Mapping[str, Any]) -> None:
    """Add the entry ``asctool.json`` to a ``.keras`` archive (in place: call it on a temporary file)."""
    with zipfile.ZipFile(path, "a") as archive:
        if _KERAS_ENTRY in archive.namelist():
            raise ArtifactError(f"{path}: already holds {_KERAS_ENTRY}")
        archive.writestr(_KERAS_ENTRY, _encode(metadata))


def embed_tflite_metadata(content: bytes, metadata: Mapping[str, Any]) -> bytes:
    """Return the ``.tflite`` FlatBuffer ``content`` with a metadata entry ``asctool`` added.

    Uses TensorFlow's own FlatBuffer object API (``tensorflow.lite.tools.flatbuffer_utils``).
    """
    import numpy as np
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(content))
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(_encode(metadata), dtype=np.uint8)
    model.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name = _TFLITE_NAME
    entry.buffer = len(model.buffers) - 1
    model.metadata = [m for m in (model.metadata or []) if m.name not in (_TFLITE_NAME, _TFLITE_NAME.encode())]
    model.metadata.append(entry)
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def _tflite_metadata(path: Path) -> bytes | None:
    from tensorflow.lite.python import schema_py_generated as schema

    data = path.read_bytes()
    try:
        model = schema.Model.GetRootAsModel(data, 0)
        for i in range(model.MetadataLength()):
            entry = model.Metadata(i)
            if entry.Name() in (_TFLITE_NAME.encode(), _TFLITE_NAME):
                return model.Buffers(entry.Buffer()).DataAsNumpy().tobytes()
    except Exception as exc:  # a broken FlatBuffer raises many types
        detail = next(iter(str(exc).splitlines()), "") or type(exc).__name__
        raise ArtifactError(f"{path}: not a readable TensorFlow Lite model (not a FlatBuffer: {detail})") from None
    return None


def _keras_metadata(path: Path) -> bytes | None:
    try:
        with zipfile.ZipFile(path) as archive:
            if _KERAS_ENTRY not in archive.namelist():
                return None
            return archive.read(_KERAS_ENTRY)
    except zipfile.BadZipFile:
        raise ArtifactError(f"{path}: not a Keras archive (a .keras model is a zip file; this one is not)") from None
    except OSError as exc:
        raise ArtifactError(f"{path}: cannot read ({exc})") from None


def read_model_metadata(model_path: str | os.PathLike, *, required: bool = True) -> dict[str, Any] | None:
    """The metadata of a model file: embedded, else the ``config.json`` in its folder.

    Parameters
    ----------
    model_path : path
        A ``.keras`` or ``.tflite`` model file.
    required : bool
        Whether missing metadata is an error; if not, None is returned.

    Returns
    -------
    dict or None
        At least :data:`MODEL_METADATA_KEYS` (``label_map`` may be None).

    Raises
    ------
    ArtifactError
        The model file is missing or unreadable, or its metadata is missing
        (when required), not JSON, or lacks a key.
    """
    path = Path(model_path)
    if not path.is_file():
        raise ArtifactError(f"{path}: model file not found")
    if path.suffix == ".keras":
        raw, where = _keras_metadata(path), f"{path} ({_KERAS_ENTRY})"
    elif path.suffix == ".tflite":
        raw, where = _tflite_metadata(path), f"{path} (metadata {_TFLITE_NAME!r})"
    else:
        raise ArtifactError(f"{path}: expected a .keras or .tflite model file")
    if raw is None:
        config_path = path.parent / "config.json"
        if not config_path.is_file():
            if not required:
                return None
            raise ArtifactError(
                f"{path}: the model carries no asctool metadata and there is no config.json beside it "
                "(they give the classes and the front-end config)"
            )
        try:
            raw = config_path.read_bytes()
        except OSError as exc:
            raise ArtifactError(f"{config_path}: cannot read ({exc})") from None
        where = str(config_path)
    try:
        config = json.loads(raw)
    except ValueError as exc:
        raise ArtifactError(f"{where}: not a readable JSON object ({exc})") from None
    if not isinstance(config, dict):
        raise ArtifactError(f"{where}: expected a JSON object")
    missing = [key for key in MODEL_METADATA_KEYS if key not in config and key != "label_map"]
    if missing:
        raise ArtifactError(f"{where}: lacks {', '.join(missing)}")
    config.setdefault("label_map", None)
    problem = _metadata_problem(config)
    if problem is not None:  # every user of the metadata indexes into it: one line, not a TypeError
        raise ArtifactError(f"{where}: {problem}")
    return config


def _metadata_problem(config: Mapping[str, Any]) -> str | None:
    """What is wrong with the types of a model's metadata, or None."""
    classes, shape, label_map = config["classes"], config["input_shape"], config["label_map"]
    if not isinstance(config["model"], str):
        return f"'model' must be a model name, not {config['model']!r}"
    if not isinstance(classes, list) or len(classes) < 2 or not all(isinstance(c, str) and c for c in classes):
        return f"'classes' must be a list of at least 2 class names, not {classes!r}"
    if not isinstance(config["frontend_config"], dict):
        return f"'frontend_config' must be an object, not {config['frontend_config']!r}"
    if config.get("inputs") == "embeddings":  # a model of embedding frames (asctool.training.frames): [dims]
        if not (isinstance(shape, list) and len(shape) == 1 and isinstance(shape[0], int) and shape[0] > 0):
            return f"'input_shape' of a model of embedding frames must be [dims], not {shape!r}"
    elif (not isinstance(shape, list) or len(shape) != 3
            or not all(d is None or (isinstance(d, int) and not isinstance(d, bool) and d > 0) for d in shape)
            or shape[0] is None or shape[2] is None):
        return f"'input_shape' must be [freq, time, channels] (positive integers; time may be null), not {shape!r}"
    if label_map is not None and not (isinstance(label_map, dict)
                                      and all(isinstance(v, str) for v in label_map.values())):
        return f"'label_map' must be null or an object of scene -> class, not {label_map!r}"
    return None


# --------------------------------------------------------------------------
# run folders
# --------------------------------------------------------------------------
def check_run_dir(out_dir: Path, *, resume: bool, force: bool) -> None:
    """Refuse to start over in a folder that holds a run, unless ``force``; check ``resume``.

    Raises
    ------
    ConfigError
        ``resume`` with ``force``; ``resume`` without a ``config.json``; run
        files present without ``resume`` or ``force``.
    """
    present = [name for name in RUN_FILES if (out_dir / name).exists()]
    if resume and force:
        raise ConfigError("--resume and --force exclude each other")
    if resume:
        if not (out_dir / "config.json").is_file():
            raise ConfigError(f"{out_dir}: nothing to resume (no config.json)")
        return
    if present and not force:
        raise ConfigError(
            f"{out_dir}: already holds a run ({', '.join(present)}); "
            "use --resume to continue it or --force to start over"
        )


def write_json(path: Path, data: Any) -> None:
    """Write ``data`` as indented, key-sorted JSON, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8")


def write_history(path: Path, rows: Sequence[Mapping[str, Any]]) -> None:
    """Write ``history.tsv`` (:data:`HISTORY_COLUMNS`; floats with 6 significant digits), atomically."""
    def fmt(value: Any) -> str:
        if value is None:
            return ""
        if isinstance(value, float):
            return f"{value:.6g}"
        return str(value)

    with atomic_path(path) as tmp:
        lines = ["\t".join(HISTORY_COLUMNS)]
        lines += ["\t".join(fmt(row.get(c)) for c in HISTORY_COLUMNS) for row in rows]
        tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")


@contextlib.contextmanager
def log_to(path: Path) -> Iterator[None]:
    """Append the ``asctool`` loggers' INFO and above to ``path`` (a run's ``train.log``) meanwhile."""
    handler = logging.FileHandler(path, mode="a", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("asctool")
    previous = root.level
    if root.level == logging.NOTSET or root.level > logging.INFO:
        root.setLevel(logging.INFO)
    root.addHandler(handler)
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)
        handler.close()
