"""Class sets and label maps: the one place that resolves ``--labels``.

A *label map* sends each reference scene to the class a model learns
(``{"airport": "indoor", ...}``); ``None`` means the scene itself is the
label. Every stage that trains, scores or combines resolves ``--labels``
through :func:`resolve_label_map`, so ``scene``, ``coarse`` and a user's TSV
mean the same thing everywhere.

The *known classes* are the labels a manifest or features file may carry: the
10 DCASE scenes (:data:`SCENES`), or the 3 coarse classes
(:data:`COARSE_CLASSES`, the 3Class data set), or the classes a user lists in
a ``--classes FILE`` (:func:`read_classes`). :func:`check_known_labels`
refuses any other label (a typo such as ``airprot`` would silently add a class).
When a data set declares no class set, :func:`infer_class_set` takes it from
the data: the DCASE scenes or coarse classes when most labels are theirs
(so a typo among them is still caught), else the data's own labels.
"""
from __future__ import annotations

import os
from importlib import resources
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np

from .errors import AsctoolError, ConfigError, ManifestError, MismatchError
from .io import read_text

__all__ = [
    "SCENES",
    "COARSE_CLASSES",
    "read_label_map",
    "packaged_hierarchy",
    "resolve_label_map",
    "map_labels",
    "read_classes",
    "check_known_labels",
    "infer_class_set",
    "classes_text",
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


def read_classes(path: str | os.PathLike | None) -> list[str] | None:
    """Read a ``--classes FILE``: one class name per line (``#`` comments and blank lines skipped).

    Returns None when ``path`` is None (the DCASE classes are the known ones).

    Raises
    ------
    ConfigError
        The file is missing or empty, a name holds a tab, or a class is listed twice.
    """
    if path is None:
        return None
    path = Path(path)
    classes: list[str] = []
    lines = read_text(path, error=ConfigError, encoding="utf-8-sig").splitlines()
    for lineno, line in enumerate(lines, start=1):
        name = line.strip()
        if not name or name.startswith("#"):
            continue
        if "\t" in name or name in classes:
            why = "holds a tab" if "\t" in name else "is listed twice"
            raise ConfigError(f"{path}: line {lineno}: class {name!r} {why} (one class name per line)")
        classes.append(name)
    if not classes:
        raise ConfigError(f"{path}: lists no classes (one class name per line)")
    return classes


def infer_class_set(labels: Sequence[str]) -> tuple[str, tuple[str, ...]]:
    """The class set a data set's labels belong to, when none is declared.

    Parameters
    ----------
    labels : sequence of str
        One label per clip; empty labels (unlabelled clips) are ignored.

    Returns
    -------
    (label_set, classes)
        ``("scene", SCENES)`` or ``("coarse", COARSE_CLASSES)`` when more than
        half of the labels are DCASE scenes (coarse classes): a label outside
        that set is then a typo to refuse. Otherwise ``("data", classes)``,
        the sorted distinct labels: another data set's own classes (ESC-50,
        UrbanSound8K, a folder per class). No labels at all: ``("scene", SCENES)``.
    """
    given = [str(v) for v in labels if str(v)]
    in_scenes = sum(v in SCENES for v in given)
    in_coarse = sum(v in COARSE_CLASSES for v in given)
    if not given:
        return "scene", SCENES
    if 2 * max(in_scenes, in_coarse) > len(given):
        return ("coarse", COARSE_CLASSES) if in_coarse > in_scenes else ("scene", SCENES)
    return "data", tuple(sorted(set(given)))


def classes_text(classes: Sequence[str]) -> str:
    """A class set as the text of a ``--classes FILE`` (one name per line), read back by :func:`read_classes`."""
    return "".join(f"{c}\n" for c in classes)


def check_known_labels(labels: Sequence[str], classes: Sequence[str] | None, where: Callable[[int], str],
                       *, error: type[AsctoolError] = ManifestError) -> None:
    """Refuse a label outside the known classes, naming its row.

    Parameters
    ----------
    labels : sequence of str
        One label (scene) per row; empty labels (unlabelled clips) pass.
    classes : sequence of str or None
        The user's classes (``--classes FILE``); None: the labels must all be
        DCASE scenes (:data:`SCENES`) or all coarse classes (:data:`COARSE_CLASSES`),
        whichever holds more of them.
    where : callable
        Row index -> where that row is (``"m.tsv: line 7"``), for the message.
    error : the exception type raised.
    """
    given = [str(v) for v in labels]
    if classes is not None:
        known, name = set(classes), "the classes of --classes"
    else:
        in_scenes = sum(v in SCENES for v in given)
        in_coarse = sum(v in COARSE_CLASSES for v in given)
        known, name = ((set(COARSE_CLASSES), "the coarse classes") if in_coarse > in_scenes
                       else (set(SCENES), "the DCASE scenes"))
    for i, value in enumerate(given):
        if value and value not in known:
            listed = ", ".join(sorted(known)) if len(known) <= 12 else ", ".join(sorted(known)[:12]) + ", ..."
            if classes is not None:
                hint = ""
            elif infer_class_set(given)[0] == "data":  # most labels are not DCASE classes: another data set
                hint = ("; these are not DCASE classes: declare the data set's classes with --classes FILE "
                        "(asctool prepare writes SETUP_classes.txt)")
            else:
                hint = "; a data set with other classes lists them, one per line, in a file given with --classes FILE"
            raise error(f"{where(i)}: unknown label {value!r}, not one of {name} ({listed}){hint}")
