"""HDF5 artifacts: features and scores files, provenance, atomic writes, checks.

Every stage reads and writes its HDF5 artifacts through this module. The
format is documented in ``docs/artifacts.md``; change both together.

Layout (schema version 1)
-------------------------
features file (``asctool_kind = "features"``)
    ``features``  (N, freq, time, channels) float16 or float32, one clip per chunk
    ``id``, ``scene``, ``device``, ``location``  UTF-8 strings, length N
    attribute ``config``: the front-end configuration as JSON
    attribute ``classes`` (optional): JSON list of the declared label set
    (``featurize --classes FILE``); absent: the DCASE scenes or coarse classes
embeddings file (``asctool_kind = "embeddings"``, written by ``asctool embed``)
    ``embeddings`` (N, T, D) float32: T windows of D dimensions per clip
    ``window_times`` (T,) seconds; ``id``, ``scene``, ``device``, ``location`` as above
    attribute ``extractor``: the extractor's settings as JSON
scores file (``asctool_kind = "scores"``)
    ``scores`` (N, K) float32 probabilities, rows sum to 1
    ``id`` and, where known, ``scene`` and ``device``
    attribute ``classes``: JSON list of the K class names, in column order

Both carry ``asctool_kind``, ``schema_version``, ``asctool_version``,
``created``, ``command`` and ``inputs`` (JSON).
"""
from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import h5py
import numpy as np

from .errors import ArtifactError, MismatchError
from .h5write import AtomicH5, new_h5
from .io import atomic_path
from .provenance import SCHEMA_VERSION, provenance_attrs

__all__ = [
    "SCHEMA_VERSION", "KIND_FEATURES", "KIND_SCORES", "KIND_EMBEDDINGS", "EmbeddingsFile",
    "open_embeddings", "atomic_path", "provenance_attrs", "FeaturesWriter", "FeaturesFile", "open_features",
    "Scores", "write_scores", "read_scores", "check_same_ids", "align_ids",
    "check_same_classes", "check_same_config", "config_diff", "check_probabilities", "read_kind",
    "check_unique_ids", "first_nonfinite", "check_finite_features", "nonfinite_message",
]

log = logging.getLogger(__name__)

KIND_FEATURES = "features"
KIND_SCORES = "scores"
KIND_EMBEDDINGS = "embeddings"  # written by asctool.embeddings.artifact.EmbeddingsWriter (docs/embed.md)
STR_DTYPE = h5py.string_dtype("utf-8")
_META_FIELDS = ("scene", "device", "location")


def _write_strings(group: h5py.Group, name: str, values: Sequence[str]) -> None:
    group.create_dataset(name, data=np.array([str(v) for v in values], dtype=object), dtype=STR_DTYPE)


def _dataset(group: h5py.Group, name: str, path, ndim: int, strings: bool) -> h5py.Dataset:
    """``group[name]`` if it is a ``ndim``-D dataset of strings or of numbers, else one line naming the file."""
    found = group[name]
    if not (isinstance(found, h5py.Dataset) and found.ndim == ndim  # else .asstr() raises a TypeError
            and ((h5py.check_string_dtype(found.dtype) is not None) if strings else found.dtype.kind in "fiu")):
        what = f"a {found.ndim}-D dataset of {found.dtype}" if isinstance(found, h5py.Dataset) else "a group"
        raise ArtifactError(f"{path}: '{name}' is {what}, not {ndim}-D {'strings' if strings else 'numbers'}")
    return found


def _read_strings(group: h5py.Group, name: str, path=None) -> np.ndarray | None:
    if name not in group:
        return None
    return np.asarray(_dataset(group, name, path or group.file.filename, 1, True).asstr()[()], dtype=object)


def _clip_meta(handle: h5py.File, path: Path) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """``id`` and the metadata columns of a features or embeddings file ("" where a column is absent)."""
    ids = _read_strings(handle, "id", path)
    empty = np.array([""] * len(ids), dtype=object)
    return ids, {name: _read_strings(handle, name, path) if name in handle else empty for name in _META_FIELDS}


def _class_list(value: Any, path: Path) -> list[str]:
    """The ``classes`` attribute: a JSON string (as asctool writes it) or an HDF5 string array."""
    try:
        value = json.loads(value) if isinstance(value, (str, bytes, np.bytes_)) else value
        value = [v.decode() if isinstance(v, bytes) else str(v) for v in np.asarray(value, dtype=object).ravel()]
    except (ValueError, TypeError):
        value = []
    if not value:
        raise ArtifactError(f"{path}: attribute 'classes' is not a JSON list or a string array of class names")
    return value


def _check_virtual_sources(path: Path, dataset: h5py.Dataset) -> None:
    """Raise unless every shard a combined file's virtual dataset reads from is there, whole.

    HDF5 reads a missing source as the fill value (NaN), without an error.
    Relative shard names are resolved against the combined file's folder, as HDF5 does.
    """
    if not dataset.is_virtual:
        return
    shape = "x".join(str(s) for s in dataset.shape[1:])
    for source in dataset.virtual_sources():
        shard = path.parent / source.file_name  # an absolute name replaces the folder
        try:
            with h5py.File(shard, "r") as handle:
                data = handle.get(source.dset_name)
                low, high = source.vspace.get_select_bounds()  # the rows mapped from this shard
                ok = (isinstance(data, h5py.Dataset) and data.shape[0] == high[0] - low[0] + 1
                      and data.shape[1:] == dataset.shape[1:])
        except OSError:
            ok = False
        if not ok:
            why = "is unreadable or holds other features" if shard.exists() else "is missing"
            raise ArtifactError(
                f"{path}: its features are a virtual dataset over shard {shard}, which {why}; keep the shard "
                f"files beside it as when it was combined, or make a self-contained copy with "
                f"`h5repack -l {dataset.name.lstrip('/')}:CHUNK=1x{shape} {path} OUT.h5`"
            )


def _open_checked(path: str | os.PathLike, kind: str) -> h5py.File:
    path = Path(path)
    if not path.exists():
        raise ArtifactError(f"{path}: file not found")
    try:
        handle = h5py.File(path, "r")
    except OSError as exc:
        raise ArtifactError(f"{path}: not a readable HDF5 file ({exc})") from None
    found = handle.attrs.get("asctool_kind")
    if found != kind:
        handle.close()
        what = f"a {found!r} artifact" if found else "an HDF5 file that is no asctool artifact (no asctool_kind)"
        raise ArtifactError(f"{path}: expected a {kind} file, found {what}")
    version = int(handle.attrs.get("schema_version", -1))
    if version != SCHEMA_VERSION:
        handle.close()
        raise ArtifactError(
            f"{path}: schema_version {version} is not supported (this asctool reads {SCHEMA_VERSION})"
        )
    return handle


def read_kind(path: str | os.PathLike) -> str | None:
    """Return the ``asctool_kind`` of an HDF5 file, or None if it has none."""
    try:
        with h5py.File(path, "r") as handle:
            kind = handle.attrs.get("asctool_kind")
    except OSError as exc:
        raise ArtifactError(f"{path}: not a readable HDF5 file ({exc})") from None
    return None if kind is None else str(kind)


# --------------------------------------------------------------------------
# features files
# --------------------------------------------------------------------------
class FeaturesWriter:
    """Write a features file clip by clip, atomically.

    Parameters
    ----------
    path : path of the final file; written as a temporary file until closed
    n : number of clips
    feature_shape : (freq, time, channels) of one clip
    config : front-end configuration (JSON-serialisable)
    ids, scenes, devices, locations : per-clip metadata, length ``n``
        (use "" for unknown scene/device/location)
    dtype : "float16" or "float32"
    inputs : files recorded in provenance
    extra_attrs : further root attributes (e.g. ``shard``)
    columns : further per-clip numeric datasets, name -> array of length ``n``
        (e.g. ``pseudo-label``'s ``confidence1``)
    tags : per-clip event labels (``;``-separated names, a manifest's ``tags``
        column), stored as the string dataset ``tags``; None: no such dataset

    Use as a context manager; ``write(i, array)`` stores clip ``i``. If the
    block raises, or not every clip was written, nothing appears at ``path``.
    Subclasses writing another kind of per-clip array set the class attributes
    ``kind``, ``dataset`` and ``config_attr`` (and may add datasets in ``_write_extra``).
    """

    kind = KIND_FEATURES
    dataset = "features"
    config_attr = "config"

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        n: int,
        feature_shape: Sequence[int],
        config: Mapping[str, Any],
        ids: Sequence[str],
        scenes: Sequence[str] | None = None,
        devices: Sequence[str] | None = None,
        locations: Sequence[str] | None = None,
        dtype: str = "float16",
        inputs: Sequence[str | os.PathLike] = (),
        extra_attrs: Mapping[str, Any] | None = None,
        columns: Mapping[str, Any] | None = None,
        tags: Sequence[str] | None = None,
    ) -> None:
        if dtype not in ("float16", "float32"):
            raise ArtifactError(f"{path}: dtype must be float16 or float32, got {dtype!r}")
        self.path = Path(path)
        self.n = int(n)
        self.feature_shape = tuple(int(s) for s in feature_shape)
        self.dtype = np.dtype(dtype)
        self._meta = {"id": list(ids)}
        for name, values in zip(_META_FIELDS, (scenes, devices, locations)):
            self._meta[name] = [""] * self.n if values is None else list(values)
        if tags is not None:
            self._meta["tags"] = list(tags)
        for name, values in self._meta.items():
            if len(values) != self.n:
                raise ArtifactError(f"{path}: {name} has {len(values)} entries, expected {self.n}")
        check_unique_ids(self._meta["id"], self.path)
        self._columns = {str(k): np.asarray(v) for k, v in (columns or {}).items()}
        for name, values in self._columns.items():
            if name in (self.dataset, "id", *_META_FIELDS) or values.shape[:1] != (self.n,):
                raise ArtifactError(f"{path}: column {name!r} is reserved or has not {self.n} entries")
        self._attrs = provenance_attrs(self.kind, inputs)
        self._attrs[self.config_attr] = json.dumps(dict(config), sort_keys=True)
        self._attrs.update(extra_attrs or {})
        self._out: AtomicH5 | None = None
        self._handle: h5py.File | None = None
        self._written = np.zeros(self.n, dtype=bool)

    def __enter__(self) -> "FeaturesWriter":
        self._out = AtomicH5(self.path)  # a failed write or an interrupt never breaks HDF5 (h5write)
        self._handle = self._out.open()
        with self._out.writing():  # (each such block removes the file on an exception)
            for key, value in self._attrs.items():
                self._handle.attrs[key] = value
            self._handle.create_dataset(
                self.dataset,
                shape=(self.n, *self.feature_shape),
                dtype=self.dtype,
                chunks=(1, *self.feature_shape) if self.n else None,
            )
            for name, values in self._meta.items():
                _write_strings(self._handle, name, values)
            for name, values in self._columns.items():
                self._handle.create_dataset(name, data=values)
            self._write_extra(self._handle)
        return self

    def _write_extra(self, handle: h5py.File) -> None:
        """Further datasets of a subclass, written on opening (none for features files)."""

    def write(self, index: int, array: np.ndarray) -> None:
        """Store the features of clip ``index`` (shape ``feature_shape``)."""
        array = np.asarray(array)
        if array.shape != self.feature_shape:
            raise ArtifactError(
                f"{self.path}: clip {self._meta['id'][index]} has features of shape "
                f"{array.shape}, expected {self.feature_shape}"
            )
        with self._out.writing():
            self._handle[self.dataset][index] = array.astype(self.dtype, copy=False)
        self._written[index] = True

    def write_block(self, start: int, block: np.ndarray) -> None:
        """Store consecutive clips ``start, start + 1, ...`` in one call.

        ``block`` has shape ``(k, *feature_shape)``; one HDF5 write instead
        of ``k`` (about half the cost per clip).
        """
        block = np.asarray(block)
        if block.shape[1:] != self.feature_shape or not 0 <= start <= self.n - block.shape[0]:
            raise ArtifactError(
                f"{self.path}: a block of shape {block.shape} at clip {start} does not fit "
                f"{self.n} clips of shape {self.feature_shape}"
            )
        with self._out.writing():
            self._handle[self.dataset][start:start + block.shape[0]] = block.astype(self.dtype, copy=False)
        self._written[start:start + block.shape[0]] = True

    def __exit__(self, exc_type, exc, tb) -> None:
        out, self._out, self._handle = self._out, None, None
        error = exc
        if error is None and not self._written.all():
            error = ArtifactError(f"{self.path}: {int((~self._written).sum())} of {self.n} clips were never written")
        out.finish(error)  # renamed, or removed when there is an error; raises a failure of its own
        if error is not exc:
            raise error


@dataclass
class FeaturesFile:
    """A features file opened read-only. ``features`` is the h5py dataset:
    slice it (``f.features[i:j]``) rather than reading it whole."""

    path: Path
    handle: h5py.File
    ids: np.ndarray
    scenes: np.ndarray
    devices: np.ndarray
    locations: np.ndarray
    config: dict[str, Any]
    classes: list[str] | None = None  # the declared label set (featurize --classes), if any
    _remake = ("features", "featurize")  # what the values are, and the stage that makes them again

    @property
    def features(self) -> h5py.Dataset:
        return self.handle["features"]

    @property
    def tags(self) -> np.ndarray | None:
        """Per-clip event labels (``;``-separated names; ``featurize`` of a manifest with a ``tags`` column), or None."""
        values = _read_strings(self.handle, "tags", self.path)
        if values is not None and len(values) != len(self.ids):
            raise ArtifactError(f"{self.path}: {len(values)} event labels ('tags') but {len(self.ids)} ids")
        return values

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.features.shape)

    @property
    def feature_shape(self) -> tuple[int, ...]:
        return tuple(self.features.shape[1:])

    @property
    def dtype(self) -> np.dtype:
        return self.features.dtype

    def __len__(self) -> int:
        return int(self.features.shape[0])

    def batches(self, size: int) -> Iterator[tuple[int, np.ndarray]]:
        """Yield ``(start, clips[start:start + size])`` in order, each batch checked finite.

        One buffer of ``(size, *feature_shape)`` in the stored dtype is reused, so a
        batch is valid until the next one is read.

        Raises
        ------
        ArtifactError
            A NaN or Inf value, naming the file and the first such clip.
        """
        n = len(self)
        buffer = np.empty((min(size, n), *self.feature_shape), dtype=self.dtype)
        for start in range(0, n, size):
            stop = min(start + size, n)
            view = buffer[: stop - start]
            self.features.read_direct(view, np.s_[start:stop], np.s_[0:stop - start])
            bad = first_nonfinite(view)
            if bad is not None:
                raise ArtifactError(nonfinite_message(self.path, self.ids[start + bad], start + bad, self._remake))
            yield start, view

    @property
    def attrs(self) -> dict[str, Any]:
        return dict(self.handle.attrs)

    def close(self) -> None:
        self.handle.close()

    def __enter__(self) -> "FeaturesFile":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_features(path: str | os.PathLike) -> FeaturesFile:
    """Open a features file read-only, after checking kind and schema.

    Also refuses duplicate ids and, for a combined file (a virtual dataset),
    missing or changed shard files: HDF5 would read their clips as NaN.
    The feature values are not read here (see :func:`check_finite_features`).
    """
    path = Path(path)
    handle = _open_checked(path, KIND_FEATURES)
    try:
        if "features" not in handle or "id" not in handle:
            raise ArtifactError(f"{path}: features file lacks the 'features' or 'id' dataset")
        ids, meta = _clip_meta(handle, path)
        try:
            config = json.loads(handle.attrs["config"])
        except (KeyError, ValueError):
            raise ArtifactError(f"{path}: features file has no valid 'config' attribute") from None
        if _dataset(handle, "features", path, 4, False).shape[0] != len(ids):  # (N, freq, time, channels)
            raise ArtifactError(
                f"{path}: {handle['features'].shape[0]} feature rows but {len(ids)} ids"
            )
        check_unique_ids(ids, path)
        _check_virtual_sources(path, handle["features"])
        classes = _class_list(handle.attrs["classes"], path) if "classes" in handle.attrs else None
    except BaseException:
        handle.close()
        raise
    return FeaturesFile(path, handle, ids, meta["scene"], meta["device"], meta["location"], config, classes)


@dataclass
class EmbeddingsFile(FeaturesFile):
    """An embeddings file opened read-only: a :class:`FeaturesFile` whose clips are (T, D) and whose
    ``config`` is the ``extractor`` attribute; ``features`` (alias ``embeddings``) is the dataset (N, T, D),
    ``window_times`` (T,) the windows' times in seconds; ``batches`` reads and checks them as for features."""

    window_times: np.ndarray | None = None
    _remake = ("embeddings", "embed")

    @property
    def features(self) -> h5py.Dataset:
        return self.handle["embeddings"]

    embeddings = features


def open_embeddings(path: str | os.PathLike, *, allow_empty: bool = False) -> EmbeddingsFile:
    """Open an embeddings file (``asctool embed``) read-only; :class:`ArtifactError` (one line) when it is
    not one, ``embeddings`` is not (N, T, D) numbers, ``id``/``window_times``/``extractor`` are missing or do
    not match, an id repeats or (unless ``allow_empty``) it holds no clips. NaN/Inf: see ``batches``."""
    path = Path(path)
    handle = _open_checked(path, KIND_EMBEDDINGS)
    try:
        for name in (n for n in ("embeddings", "id", "window_times") if n not in handle):
            raise ArtifactError(f"{path}: embeddings file lacks the '{name}' dataset")
        data = _dataset(handle, "embeddings", path, 3, False)  # (N, T, D)
        ids, meta = _clip_meta(handle, path)
        times = np.asarray(_dataset(handle, "window_times", path, 1, False)[()], dtype=np.float64)
        try:
            extractor = json.loads(handle.attrs["extractor"])
        except (KeyError, ValueError, TypeError):
            extractor = None
        if not isinstance(extractor, dict):
            raise ArtifactError(f"{path}: embeddings file has no 'extractor' attribute holding a JSON object")
        if data.shape[0] != len(ids) or data.shape[1] != len(times):
            raise ArtifactError(f"{path}: embeddings of shape {data.shape} do not match {len(ids)} ids "
                                f"and {len(times)} window times")
        if not len(ids) and not allow_empty:
            raise ArtifactError(f"{path}: embeddings file holds no clips")
        check_unique_ids(ids, path)
        classes = _class_list(handle.attrs["classes"], path) if "classes" in handle.attrs else None
    except BaseException:
        handle.close()
        raise
    return EmbeddingsFile(path, handle, ids, meta["scene"], meta["device"], meta["location"], extractor,
                          classes, times)


# --------------------------------------------------------------------------
# scores files
# --------------------------------------------------------------------------
@dataclass
class Scores:
    """Class probabilities of N clips, with their ids and class list."""

    ids: np.ndarray
    scores: np.ndarray
    classes: list[str]
    scenes: np.ndarray | None = None
    devices: np.ndarray | None = None
    attrs: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None

    def __len__(self) -> int:
        return len(self.ids)

    def reindex(self, ids: Sequence[str]) -> "Scores":
        """Return these scores in the order of ``ids`` (same id set required)."""
        order = align_ids(ids, self.ids, "requested ids", self.path or "scores")
        pick = lambda a: None if a is None else a[order]  # noqa: E731
        return Scores(np.asarray(ids, dtype=object), self.scores[order], list(self.classes),
                      pick(self.scenes), pick(self.devices), dict(self.attrs), self.path)


def check_probabilities(scores: np.ndarray, where: str | os.PathLike, atol: float = 1e-3) -> None:
    """Raise unless every row is finite, non-negative and sums to 1 (within ``atol``)."""
    scores = np.asarray(scores)
    if scores.ndim != 2:
        raise ArtifactError(f"{where}: scores must be 2-D (N, K), got shape {scores.shape}")
    bad = first_nonfinite(scores)
    if bad is not None:
        raise ArtifactError(f"{where}: scores contain NaN or Inf (row {bad})")
    if (scores < -atol).any():
        raise ArtifactError(f"{where}: scores contain negative values")
    sums = scores.sum(axis=1)
    bad = np.flatnonzero(np.abs(sums - 1.0) > atol)
    if bad.size:
        raise ArtifactError(
            f"{where}: {bad.size} score rows do not sum to 1 (row {bad[0]} sums to {sums[bad[0]]:.4f})"
        )


def write_scores(
    path: str | os.PathLike,
    *,
    ids: Sequence[str],
    scores: np.ndarray,
    classes: Sequence[str],
    scenes: Sequence[str] | None = None,
    devices: Sequence[str] | None = None,
    inputs: Sequence[str | os.PathLike] = (),
    extra_attrs: Mapping[str, Any] | None = None,
) -> Path:
    """Write a scores file atomically after checking shapes and probabilities."""
    path = Path(path)
    scores = np.asarray(scores, dtype=np.float32)
    ids = list(ids)
    classes = [str(c) for c in classes]
    if scores.ndim != 2 or scores.shape != (len(ids), len(classes)):
        raise ArtifactError(
            f"{path}: scores of shape {scores.shape} do not match {len(ids)} ids x {len(classes)} classes"
        )
    if len(set(classes)) != len(classes):
        raise ArtifactError(f"{path}: duplicate class names in {classes}")
    if not ids:
        raise ArtifactError(f"{path}: no clips to write (a scores file holds at least one)")
    check_unique_ids(ids, path)
    check_probabilities(scores, path)
    attrs = provenance_attrs(KIND_SCORES, inputs)
    attrs["classes"] = json.dumps(classes)
    attrs.update(extra_attrs or {})
    with new_h5(path) as handle:
        for key, value in attrs.items():
            handle.attrs[key] = value
        handle.create_dataset("scores", data=scores)
        _write_strings(handle, "id", ids)
        for name, values in (("scene", scenes), ("device", devices)):
            if values is not None:
                values = list(values)
                if len(values) != len(ids):
                    raise ArtifactError(f"{path}: {name} has {len(values)} entries, expected {len(ids)}")
                _write_strings(handle, name, values)
    return path


def read_scores(path: str | os.PathLike, *, allow_empty: bool = False) -> Scores:
    """Read a scores file, checking kind, schema, shapes and probabilities.

    Refuses duplicate ids, NaN or Inf scores (naming the first such clip) and,
    unless ``allow_empty``, a file with no clips. ``classes`` may be the JSON
    string asctool writes or an HDF5 string array.
    """
    path = Path(path)
    with _open_checked(path, KIND_SCORES) as handle:
        if "scores" not in handle or "id" not in handle:
            raise ArtifactError(f"{path}: scores file lacks the 'scores' or 'id' dataset")
        scores = np.asarray(_dataset(handle, "scores", path, 2, False)[()], dtype=np.float32)
        ids = _read_strings(handle, "id", path)
        scenes, devices = (_read_strings(handle, name, path) for name in ("scene", "device"))
        if "classes" not in handle.attrs:
            raise ArtifactError(f"{path}: scores file has no 'classes' attribute")
        classes = _class_list(handle.attrs["classes"], path)
        attrs = dict(handle.attrs)
    if scores.ndim != 2 or scores.shape != (len(ids), len(classes)):
        raise ArtifactError(
            f"{path}: scores of shape {scores.shape} do not match {len(ids)} ids x {len(classes)} classes"
        )
    if not len(ids) and not allow_empty:
        raise ArtifactError(f"{path}: scores file holds no clips")
    check_unique_ids(ids, path)
    bad = first_nonfinite(scores)
    if bad is not None:
        raise ArtifactError(f"{path}: scores of clip {ids[bad]} (row {bad}) are NaN or Inf")
    check_probabilities(scores, path)
    return Scores(ids, scores, classes, scenes, devices, attrs, path)


# --------------------------------------------------------------------------
# checks shared by the stages
# --------------------------------------------------------------------------
def _few(items, k: int = 3) -> str:
    items = sorted(items)
    shown = ", ".join(str(i) for i in items[:k])
    return shown + (f", ... ({len(items)} in all)" if len(items) > k else "")


def first_nonfinite(array: np.ndarray) -> int | None:
    """Index (along the first axis) of the first row holding NaN or Inf, or None."""
    array = np.asarray(array)
    # a float64 sum of float16/32 data is finite exactly when every term is (it cannot overflow)
    if array.size == 0 or np.isfinite(np.sum(array, dtype=np.float64)):
        return None
    finite = np.isfinite(array).reshape(array.shape[0], -1).all(axis=1)
    bad = np.flatnonzero(~finite)
    return int(bad[0]) if bad.size else None


def check_finite_features(f: "FeaturesFile", *, batch: int = 64) -> None:
    """Raise, naming the first such clip, unless every value of ``f`` is finite; reads ``batch`` clips at a time."""
    for _ in f.batches(batch):
        pass


def nonfinite_message(path: str | os.PathLike, clip: str, row: int,
                      remake: tuple[str, str] = ("features", "featurize")) -> str:
    """The one-line refusal of features (or, with ``remake``, embeddings) holding NaN or Inf."""
    return (f"{path}: {remake[0]} of clip {clip} (row {row}) contain NaN or Inf; "
            f"refusing to use them ({remake[1]} the clip again)")


def check_unique_ids(ids: Sequence[str], where: str | os.PathLike) -> None:
    """Raise if an id occurs twice."""
    seen: set[str] = set()
    dups = {i for i in ids if i in seen or seen.add(i)}
    if dups:
        raise ArtifactError(f"{where}: duplicate ids: {_few(dups)}")


def check_same_ids(a: Sequence[str], b: Sequence[str], a_name, b_name) -> None:
    """Raise :class:`MismatchError` unless ``a`` and ``b`` hold the same id set."""
    sa, sb = set(a), set(b)
    if sa == sb:
        return
    parts = []
    if sa - sb:
        parts.append(f"{len(sa - sb)} ids only in {a_name} ({_few(sa - sb)})")
    if sb - sa:
        parts.append(f"{len(sb - sa)} ids only in {b_name} ({_few(sb - sa)})")
    raise MismatchError(f"{a_name} and {b_name} hold different clips: " + "; ".join(parts))


def align_ids(reference: Sequence[str], other: Sequence[str], reference_name, other_name) -> np.ndarray:
    """Indices ``idx`` such that ``other[idx]`` lists the ids of ``reference`` in order.

    This is how artifacts are joined: by id, never by row order.
    """
    check_same_ids(reference, other, reference_name, other_name)
    position = {clip: i for i, clip in enumerate(other)}
    return np.fromiter((position[clip] for clip in reference), dtype=np.int64, count=len(reference))


def check_same_classes(a: Sequence[str], b: Sequence[str], a_name, b_name) -> None:
    """Raise unless two class lists are identical, order included."""
    if list(a) != list(b):
        if set(a) == set(b):
            detail = "same classes in a different order"
        else:
            detail = f"{a_name} has {list(a)}, {b_name} has {list(b)}"
        raise MismatchError(f"class lists of {a_name} and {b_name} differ: {detail}")


def config_diff(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[str]:
    """Human-readable differences between two flat-ish configurations."""
    diffs = []
    for key in sorted(set(a) | set(b)):
        if a.get(key, "<absent>") != b.get(key, "<absent>"):
            diffs.append(f"{key}: {a.get(key, '<absent>')!r} vs {b.get(key, '<absent>')!r}")
    return diffs


def check_same_config(a: Mapping[str, Any], b: Mapping[str, Any], a_name, b_name) -> None:
    """Raise unless two front-end configurations are identical."""
    diffs = config_diff(a, b)
    if diffs:
        raise MismatchError(
            f"front-end configs of {a_name} and {b_name} differ: " + "; ".join(diffs[:4])
        )
