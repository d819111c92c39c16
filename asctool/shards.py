"""Shard features files combined into one, without copying (``featurize --combine``).

The combined file holds an HDF5 virtual dataset that reads the shards in
place, plus the clips' metadata (docs/artifacts.md).
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Sequence

import h5py
import numpy as np

from .artifacts import (_META_FIELDS, KIND_FEATURES, _write_strings, check_same_config, check_unique_ids,
                        open_features, provenance_attrs)
from .errors import ArtifactError, MismatchError
from .h5write import new_h5

__all__ = ["combine_features"]


def combine_features(shards: Sequence[str | os.PathLike], out: str | os.PathLike) -> Path:
    """Combine shard features files into one without copying the features.

    ``out`` holds an HDF5 virtual dataset pointing at the shards (by path
    relative to ``out``'s folder, so keep them together), plus the metadata.
    Shards must share config, dtype and feature shape and have disjoint ids.
    """
    out = Path(out)
    if not shards:
        raise ArtifactError(f"{out}: no shard files given to combine")
    opened = [open_features(p) for p in shards]
    try:
        first = opened[0]
        for other in opened[1:]:
            check_same_config(first.config, other.config, first.path, other.path)
            if other.dtype != first.dtype or other.feature_shape != first.feature_shape:
                raise MismatchError(
                    f"{other.path}: features {other.dtype} {other.feature_shape} differ from "
                    f"{first.path}: {first.dtype} {first.feature_shape}"
                )
        for other in opened[1:]:
            if other.classes != first.classes:
                raise MismatchError(
                    f"{other.path}: declared classes {other.classes} differ from {first.path}: {first.classes}"
                )
        ids = np.concatenate([f.ids for f in opened])
        check_unique_ids(ids, out)
        total = len(ids)
        layout = h5py.VirtualLayout(shape=(total, *first.feature_shape), dtype=first.dtype)
        offset = 0
        for f in opened:
            n = len(f)
            rel = os.path.relpath(Path(f.path).resolve(), out.resolve().parent)
            if n:
                layout[offset:offset + n] = h5py.VirtualSource(rel, "features", shape=f.shape)
            offset += n
        attrs = provenance_attrs(KIND_FEATURES, [f.path for f in opened])
        attrs["config"] = json.dumps(first.config, sort_keys=True)
        if first.classes is not None:
            attrs["classes"] = json.dumps(first.classes)
        attrs["shards"] = json.dumps([os.path.relpath(Path(f.path).resolve(), out.resolve().parent) for f in opened])
        with new_h5(out) as handle:
            for key, value in attrs.items():
                handle.attrs[key] = value
            handle.create_virtual_dataset("features", layout, fillvalue=np.nan)
            _write_strings(handle, "id", ids)
            for name, attr in zip(_META_FIELDS, ("scenes", "devices", "locations")):
                _write_strings(handle, name, np.concatenate([getattr(f, attr) for f in opened]))
            shard_tags = [f.tags for f in opened]
            if all(t is not None for t in shard_tags):
                _write_strings(handle, "tags", np.concatenate(shard_tags))
    finally:
        for f in opened:
            f.close()
    return out
