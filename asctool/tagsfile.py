"""Tags files: a tag vector per clip (the probability of each of C sound events).

The artifact ``asctool tag`` writes and tag-conditioned scene classifiers read
(Jung et al., "Acoustic scene classification using audio tagging", Interspeech
2020, section 2: the tag vector of a clip). Kept beside
:mod:`asctool.artifacts` (whose checks and helpers it uses); the format is
documented in ``docs/artifacts.md``.

Layout (schema version 1)
-------------------------
tags file (``asctool_kind = "tags"``)
    ``tags``  (N, C) float32, every value in [0, 1]
    ``id``, ``scene``, ``device``, ``location``  UTF-8 strings, length N
    attribute ``tag_names``: JSON list of the C tag (sound event) names, in column order
    attribute ``tagger``: JSON object ``{"name", "options", "sha256", "pooling"}``:
    the tagger's registry name, its options, the SHA-256 of its weights file and
    how a clip's windows were pooled (``"mean"`` or ``"max"``)

plus the provenance attributes of every artifact.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from .artifacts import (
    _META_FIELDS, _dataset, _open_checked, _read_strings, _write_strings, align_ids,
    check_unique_ids, first_nonfinite,
)
from .errors import ArtifactError, MismatchError
from .h5write import new_h5
from .provenance import provenance_attrs

__all__ = ["KIND_TAGS", "POOLINGS", "TagsFile", "write_tags", "read_tags", "check_same_tagger"]

KIND_TAGS = "tags"
#: How the window-level outputs of a tagger become one tag vector per clip.
POOLINGS = ("mean", "max")
_TAGGER_KEYS = ("name", "options", "sha256", "pooling")


@dataclass
class TagsFile:
    """The tag vectors of N clips, read whole (a tags file is small: N x C floats).

    Attributes
    ----------
    ids : (N,) object array of clip ids
    tags : (N, C) float32 array, values in [0, 1]
    tag_names : the C tag names, in column order
    tagger : ``{"name", "options", "sha256", "pooling"}`` of the tagger that wrote them
    scenes, devices, locations : (N,) object arrays ("" where unknown)
    """

    ids: np.ndarray
    tags: np.ndarray
    tag_names: list[str]
    tagger: dict[str, Any]
    scenes: np.ndarray
    devices: np.ndarray
    locations: np.ndarray
    attrs: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def identity(self) -> dict[str, Any]:
        """What a model trained on these tags must see again: the tagger (name, options, weights, pooling) and the tag names."""
        return {"tagger": dict(self.tagger), "tag_names": list(self.tag_names)}

    def reindex(self, ids: Sequence[str], ids_name: str | os.PathLike = "requested ids") -> "TagsFile":
        """These tags in the order of ``ids``; joined by id, never by row order.

        Raises
        ------
        MismatchError
            ``ids`` and this file hold different clips (naming how many are only
            on one side, and the first few); a clip without tags is an error.
        """
        order = align_ids(ids, self.ids, ids_name, self.path or "tags")
        return TagsFile(np.asarray(list(ids), dtype=object), self.tags[order], list(self.tag_names),
                        dict(self.tagger), self.scenes[order], self.devices[order], self.locations[order],
                        dict(self.attrs), self.path)


def _tag_names(value: Any, path) -> list[str]:
    """The ``tag_names`` attribute: a JSON list of strings (as asctool writes it)."""
    try:
        names = json.loads(value)
    except (TypeError, ValueError):
        names = None
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ArtifactError(f"{path}: attribute 'tag_names' is not a JSON list of tag names")
    return names


def _check_tagger(tagger: Any, path) -> dict[str, Any]:
    if not isinstance(tagger, Mapping) or set(tagger) != set(_TAGGER_KEYS):
        raise ArtifactError(f"{path}: attribute 'tagger' must be a JSON object with exactly the keys "
                            f"{', '.join(_TAGGER_KEYS)}")
    if tagger["pooling"] not in POOLINGS:
        raise ArtifactError(f"{path}: tagger pooling {tagger['pooling']!r} is not one of {', '.join(POOLINGS)}")
    if not isinstance(tagger["options"], Mapping):
        raise ArtifactError(f"{path}: tagger options must be a JSON object")
    return {key: tagger[key] for key in _TAGGER_KEYS}


def _check_tags(tags: np.ndarray, ids: Sequence[str], names: Sequence[str], path) -> None:
    """Shape, finiteness and range of a tag matrix; one line naming the file and the first bad clip."""
    if tags.ndim != 2 or tags.shape != (len(ids), len(names)):
        raise ArtifactError(f"{path}: tags of shape {tags.shape} do not match {len(ids)} ids x {len(names)} tag names")
    if not len(ids):
        raise ArtifactError(f"{path}: no clips (a tags file holds at least one)")
    if not len(names):
        raise ArtifactError(f"{path}: no tag names (a tags file holds at least one tag)")
    if len(set(names)) != len(names):
        dups = sorted({n for n in names if list(names).count(n) > 1})
        raise ArtifactError(f"{path}: duplicate tag names: {', '.join(dups[:3])}")
    check_unique_ids(ids, path)
    bad = first_nonfinite(tags)
    if bad is not None:
        raise ArtifactError(f"{path}: tags of clip {ids[bad]} (row {bad}) are NaN or Inf")
    outside = np.flatnonzero(((tags < 0) | (tags > 1)).any(axis=1))
    if outside.size:
        row = int(outside[0])
        col = int(np.flatnonzero((tags[row] < 0) | (tags[row] > 1))[0])
        raise ArtifactError(f"{path}: tag {names[col]!r} of clip {ids[row]} (row {row}) is {float(tags[row, col]):g}, "
                            "outside [0, 1]")


def write_tags(
    path: str | os.PathLike,
    *,
    ids: Sequence[str],
    tags: np.ndarray,
    tag_names: Sequence[str],
    tagger: Mapping[str, Any],
    scenes: Sequence[str] | None = None,
    devices: Sequence[str] | None = None,
    locations: Sequence[str] | None = None,
    inputs: Sequence[str | os.PathLike] = (),
    extra_attrs: Mapping[str, Any] | None = None,
) -> Path:
    """Write a tags file atomically, after the checks :func:`read_tags` makes.

    Parameters
    ----------
    tags : (N, C) array of probabilities in [0, 1] (stored as float32)
    tag_names : the C tag names
    tagger : ``{"name", "options", "sha256", "pooling"}`` (pooling ``"mean"`` or ``"max"``)
    scenes, devices, locations : length N, or None (stored as "")

    Raises
    ------
    ArtifactError
        Shapes that disagree, no clip or no tag, duplicate ids or tag names, NaN or
        Inf, a value outside [0, 1], a malformed ``tagger``; nothing is written.
    """
    path = Path(path)
    ids = [str(i) for i in ids]
    names = [str(n) for n in tag_names]
    tags = np.asarray(tags, dtype=np.float32)
    _check_tags(tags, ids, names, path)
    tagger = _check_tagger(tagger, path)
    meta = {}
    for name, values in zip(_META_FIELDS, (scenes, devices, locations)):
        values = [""] * len(ids) if values is None else [str(v) for v in values]
        if len(values) != len(ids):
            raise ArtifactError(f"{path}: {name} has {len(values)} entries, expected {len(ids)}")
        meta[name] = values
    attrs = provenance_attrs(KIND_TAGS, inputs)
    attrs["tag_names"] = json.dumps(names)
    attrs["tagger"] = json.dumps(tagger, sort_keys=True)
    attrs.update(extra_attrs or {})
    with new_h5(path) as handle:
        for key, value in attrs.items():
            handle.attrs[key] = value
        handle.create_dataset("tags", data=tags)
        _write_strings(handle, "id", ids)
        for name, values in meta.items():
            _write_strings(handle, name, values)
    return path


def read_tags(path: str | os.PathLike) -> TagsFile:
    """Read a tags file, checking kind, schema, shapes, ids, values and the tagger record.

    Raises
    ------
    ArtifactError
        One line naming the file: not a tags file, missing datasets or attributes,
        shapes that disagree, no clip, duplicate ids or tag names, NaN or Inf (naming
        the clip), a value outside [0, 1] (naming the tag and the clip).
    """
    path = Path(path)
    with _open_checked(path, KIND_TAGS) as handle:
        if "tags" not in handle or "id" not in handle:
            raise ArtifactError(f"{path}: tags file lacks the 'tags' or 'id' dataset")
        tags = np.asarray(_dataset(handle, "tags", path, 2, False)[()], dtype=np.float32)
        ids = _read_strings(handle, "id", path)
        meta = {}
        for name in _META_FIELDS:
            values = _read_strings(handle, name, path)
            meta[name] = np.array([""] * len(ids), dtype=object) if values is None else values
        for name in ("tag_names", "tagger"):
            if name not in handle.attrs:
                raise ArtifactError(f"{path}: tags file has no {name!r} attribute")
        names = _tag_names(handle.attrs["tag_names"], path)
        try:
            tagger = json.loads(handle.attrs["tagger"])
        except (TypeError, ValueError):
            raise ArtifactError(f"{path}: attribute 'tagger' is not JSON") from None
        attrs = dict(handle.attrs)
    for name, values in meta.items():
        if len(values) != len(ids):
            raise ArtifactError(f"{path}: {name} has {len(values)} entries, expected {len(ids)}")
    _check_tags(tags, ids, names, path)
    tagger = _check_tagger(tagger, path)
    return TagsFile(ids, tags, names, tagger, meta["scene"], meta["device"], meta["location"], attrs, path)


def check_same_tagger(expected: Mapping[str, Any], found: Mapping[str, Any], expected_name, found_name) -> None:
    """Raise unless two :attr:`TagsFile.identity` records agree (tagger and tag names).

    Raises
    ------
    MismatchError
        Naming the first differing field, e.g. the weights' SHA-256 or the tag names.
    """
    a, b = dict(expected.get("tagger", {})), dict(found.get("tagger", {}))
    for key in _TAGGER_KEYS:
        if a.get(key) != b.get(key):
            raise MismatchError(f"{found_name}: tags from another tagger than {expected_name}: "
                                f"{key} {b.get(key)!r} vs {a.get(key)!r}")
    if list(expected.get("tag_names", [])) != list(found.get("tag_names", [])):
        raise MismatchError(f"{found_name}: tag names differ from those of {expected_name}")
