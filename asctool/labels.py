"""Class sets and label maps: the one place that resolves ``--labels``.

A *label map* sends each reference scene to the class a model learns
(``{"airport": "indoor", ...}``); ``None`` means the scene itself is the
label. Every stage that trains, scores or combines resolves ``--labels``
through :func:`resolve_label_map`, so ``scene``, ``coarse`` and a user's TSV
mean the same thing everywhere.
"""
from __future__ import annotations

import os
from importlib import resources
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from .errors import ConfigError, ManifestError, MismatchError
from .io import read_text

__all__ = [
    "SCENES",
    "COARSE_CLASSES",
    "read_label_map",
    "packaged_hierarchy",
    "resolve_label_map",
    "map_labels",
]

#: The 10 scenes of TAU 2020 Mobile, in the alphabetical class order.
SCENES = (
    "airport", "bus", "metro", "metro_station", "park", "public_square",
    "shopping_mall", "street_pedestrian", "street_traffic", "tram",
)
#: The 3 coarse classes of DCASE 2020 Task 1b, alphabetical.
COARSE_CLASSES = ("indoor", "outdoor", "transportation")

_HEADERS = {("scene", "label"), ("fine", "coarse"), ("scene", "coarse")}


def read_label_map(path: str | os.PathLike) -> dict[str, str]:
    """Read a two-column TSV ``fine<TAB>coarse`` (a header line is optional).

    Parameters
    ----------
    path : path
        UTF-8 text (a BOM is tolerated); ``#`` comments and blank lines are skipped.

    Returns
    -------
    dict
        fine class -> coarse class.

    Raises
    ------
    ManifestError
        The file is missing, a line has not exactly two non-empty fields, a
        fine class is mapped twice, or the map is empty.
    """
    path = Path(path)
    lines = read_text(path, error=ManifestError, encoding="utf-8-sig").splitlines()
    mapping: dict[str, str] = {}
    for lineno, line in enumerate(lines, start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = [p.strip() for p in line.split("\t")]
        if len(parts) != 2 or not all(parts):
            raise ManifestError(f"{path}: line {lineno} must be 'fine<TAB>coarse', got {line!r}")
        fine, coarse = parts
        if lineno == 1 and (fine, coarse) in _HEADERS:
            continue
        if fine in mapping:
            raise ManifestError(
                f"{path}: class {fine!r} is mapped twice (to {mapping[fine]!r} and {coarse!r})"
            )
        mapping[fine] = coarse
    if not mapping:
        raise ManifestError(f"{path}: label map is empty")
    return mapping


def packaged_hierarchy() -> dict[str, str]:
    """The DCASE 2020 3-class map shipped with asctool (scene -> coarse class)."""
    ref = resources.files("asctool") / "conf" / "hierarchy_dcase2020.tsv"
    with resources.as_file(ref) as path:
        return read_label_map(path)


def resolve_label_map(labels: str | os.PathLike | None) -> dict[str, str] | None:
    """The label map that ``--labels`` names.

    Parameters
    ----------
    labels : str, path or None
        ``None``, ``""`` or ``"scene"``: no map (the scene is the label);
        ``"coarse"``: the packaged DCASE 2020 3-class hierarchy; anything
        else: a TSV ``scene<TAB>label`` read by :func:`read_label_map`.

    Raises
    ------
    ConfigError
        The TSV does not exist or cannot be parsed (the message names it).
    """
    if labels is None or str(labels) in ("", "scene"):
        return None
    if str(labels) == "coarse":
        return packaged_hierarchy()
    path = Path(labels)
    if not path.is_file():
        raise ConfigError(f"--labels {labels}: not 'scene', 'coarse' or an existing TSV file")
    try:
        return read_label_map(path)
    except ManifestError as exc:
        raise ConfigError(str(exc)) from None


def map_labels(scenes: Sequence[str], label_map: Mapping[str, str], where: str | os.PathLike) -> np.ndarray:
    """Map reference scenes through ``label_map``; empty scenes (unlabelled clips) stay empty.

    Returns
    -------
    np.ndarray [shape=(len(scenes),), dtype=object]

    Raises
    ------
    MismatchError
        A non-empty scene is not in the map (the message names ``where``).
    """
    missing = sorted({s for s in scenes if s and s not in label_map})
    if missing:
        raise MismatchError(
            f"{where}: reference scene(s) {', '.join(missing)} not in the label map "
            f"(it maps {', '.join(sorted(label_map))})"
        )
    return np.asarray([label_map[s] if s else "" for s in scenes], dtype=object)
