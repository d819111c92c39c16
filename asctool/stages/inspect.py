"""The ``asctool inspect`` stage: a human-readable description of any artifact.

Features, scores and tags files (kind, shapes, dtypes, config, provenance, counts),
manifests (``.tsv``), Keras (``.keras``) and TensorFlow Lite (``.tflite``)
models with the classes their metadata lists.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from ..artifacts import KIND_EMBEDDINGS, KIND_FEATURES, KIND_SCORES, open_features, read_kind, read_scores
from ..errors import ArtifactError
from ..manifest import read_csv_rows
from ..runs import read_model_metadata
from ..tagsfile import KIND_TAGS, read_tags

__all__ = ["run"]


def _classes_line(path: Path) -> str:
    metadata = read_model_metadata(path, required=False)
    if metadata is None:
        return "; no asctool metadata"
    return f"; model {metadata['model']}, classes {', '.join(map(str, metadata['classes']))}"


def _counts(values) -> str:
    if values is None:
        return "-"
    uniq, counts = np.unique(np.asarray([str(v) for v in values], dtype=object).astype(str), return_counts=True)
    return ", ".join(f"{u or '(none)'}: {c}" for u, c in zip(uniq, counts)) or "-"


def _location_count(values) -> str:
    """How many recording locations the clips come from; clips without one ("") are not a location."""
    if values is None:
        return "-"
    named = {str(v) for v in values} - {""}
    missing = sum(1 for v in values if not str(v))
    if not missing:
        return str(len(named))
    clips = f"{missing} clip{'s' if missing != 1 else ''}"
    return f"{len(named)} ({clips} without a location)" if named else f"(none): {clips}"


def _provenance_lines(attrs: Mapping[str, Any]) -> list[str]:
    lines = [
        f"schema_version: {attrs.get('schema_version')}",
        f"asctool_version: {attrs.get('asctool_version')}",
        f"created: {attrs.get('created')}",
        f"command: {attrs.get('command')}",
    ]
    try:
        inputs = json.loads(attrs.get("inputs", "[]"))
    except ValueError:
        inputs = []
    for entry in inputs:
        detail = entry.get("sha256", "")[:12] or entry.get("mtime", "")
        lines.append(f"input: {entry.get('path')} ({entry.get('size', '?')} bytes {detail})".rstrip())
    return lines


def _describe_embeddings(path: Path) -> str:
    """An embeddings file (``asctool embed``): shape, windows, extractor, provenance, counts."""
    import h5py

    with h5py.File(path, "r") as handle:
        if "embeddings" not in handle or "id" not in handle or "window_times" not in handle:
            raise ArtifactError(f"{path}: embeddings file lacks 'embeddings', 'id' or 'window_times'")
        data, times = handle["embeddings"], handle["window_times"][()]
        attrs = dict(handle.attrs)
        meta = {name: handle[name].asstr()[()] if name in handle else None for name in ("scene", "device", "location")}
        shape, dtype, n = data.shape, data.dtype, len(handle["id"])
    try:
        extractor = json.loads(attrs.get("extractor", "{}"))
    except ValueError:
        raise ArtifactError(f"{path}: attribute 'extractor' is not JSON") from None
    span = f"{times[0]:g} .. {times[-1]:g} s" if len(times) else "none"
    return "\n".join([
        f"{path}: embeddings",
        f"embeddings: shape {shape} dtype {dtype} (clips, windows, dimensions)",
        f"window_times: {len(times)} window centres, {span}",
        f"extractor: {json.dumps(extractor, sort_keys=True)}",
        *_provenance_lines(attrs),
        f"clips: {n}",
        f"scenes: {_counts(meta['scene'])}",
        f"devices: {_counts(meta['device'])}",
        f"locations: {_location_count(meta['location'])}",
    ])


def run(path: str | os.PathLike) -> str:
    """A human-readable description of an artifact (HDF5, .keras, .tflite, .tsv)."""
    path = Path(path)
    if not path.exists():
        raise ArtifactError(f"{path}: file not found")
    suffix = path.suffix.lower()
    if suffix in (".h5", ".hdf5"):
        kind = read_kind(path)
        if kind == KIND_FEATURES:
            with open_features(path) as f:
                lines = [
                    f"{path}: features",
                    f"features: shape {f.shape} dtype {f.dtype}"
                    + (" (virtual dataset over shards)" if f.features.is_virtual else ""),
                    f"config: {json.dumps(f.config, sort_keys=True)}",
                    *_provenance_lines(f.attrs),
                    f"clips: {len(f)}",
                    f"scenes: {_counts(f.scenes)}",
                    f"devices: {_counts(f.devices)}",
                    f"locations: {_location_count(f.locations)}",
                ]
            return "\n".join(lines)
        if kind == KIND_SCORES:
            s = read_scores(path)
            predicted = np.asarray(s.classes, dtype=object)[s.scores.argmax(axis=1)] if len(s) else []
            lines = [
                f"{path}: scores",
                f"scores: shape {s.scores.shape} dtype {s.scores.dtype}",
                f"classes: {', '.join(s.classes)}",
                *_provenance_lines(s.attrs),
                f"clips: {len(s)}",
                f"scenes: {_counts(s.scenes)}",
                f"devices: {_counts(s.devices)}",
                f"predicted: {_counts(predicted)}",
            ]
            return "\n".join(lines)
        if kind == KIND_TAGS:
            t = read_tags(path)
            order = np.argsort(-t.tags.mean(axis=0), kind="stable")[:5]
            lines = [
                f"{path}: tags",
                f"tags: shape {t.tags.shape} dtype {t.tags.dtype}",
                f"tag names: {', '.join(t.tag_names[:10])}" + (f", ... ({len(t.tag_names)} in all)"
                                                               if len(t.tag_names) > 10 else ""),
                f"tagger: {json.dumps(t.tagger, sort_keys=True)}",
                *_provenance_lines(t.attrs),
                f"clips: {len(t)}",
                f"scenes: {_counts(t.scenes)}",
                f"devices: {_counts(t.devices)}",
                "highest mean tags: " + ", ".join(f"{t.tag_names[i]} {t.tags[:, i].mean():.3f}" for i in order),
            ]
            return "\n".join(lines)
        if kind == KIND_EMBEDDINGS:
            return _describe_embeddings(path)
        raise ArtifactError(f"{path}: HDF5 file is not an asctool artifact (no asctool_kind attribute)")
    if suffix == ".tsv":
        header, rows = read_csv_rows(path)
        line = f"{path}: TSV, {len(rows)} rows, columns {', '.join(header)}"
        if "scene" in header:
            line += f"; scenes {len({r['scene'] for r in rows if r.get('scene')})}"
        if "device" in header:
            line += f"; devices {_counts([r['device'] for r in rows])}"
        return line
    if suffix == ".keras":
        import zipfile

        try:
            with zipfile.ZipFile(path) as archive:
                config = json.loads(archive.read("config.json"))
        except (zipfile.BadZipFile, KeyError, ValueError) as exc:
            raise ArtifactError(f"{path}: not a readable Keras archive ({exc})") from None
        name = config.get("config", {}).get("name", "?")
        layers = config.get("config", {}).get("layers", [])
        return f"{path}: Keras model {name!r}, {len(layers)} layers, {path.stat().st_size} bytes" + _classes_line(path)
    if suffix == ".tflite":
        size_json = path.with_name("size.json")
        extra = ""
        if size_json.exists():
            try:
                extra = "; " + ", ".join(f"{k} {v}" for k, v in json.loads(size_json.read_text()).items())
            except ValueError:
                pass
        return f"{path}: TensorFlow Lite model, {path.stat().st_size} bytes{extra}" + _classes_line(path)
    raise ArtifactError(f"{path}: unknown artifact type {suffix or '(no suffix)'!r}")
