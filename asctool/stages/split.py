"""``asctool split``: a training manifest -> training and validation manifests, by location.

The held-out locations are those ``asctool train --valid-split`` would hold out
for the same clips (both call :func:`asctool.splits.validation_split`): for
each class, ``round(fraction * n)`` of its ``n`` recording locations go to the
validation manifest, so no location is on both sides (docs/reference.md 7.3).
With ``--group-column COLUMN`` the groups are that column's values instead (a
source recording, a fold); clips with neither are drawn stratified by class,
said once on the log.
"""
from __future__ import annotations

import logging
import os
from dataclasses import replace
from pathlib import Path

import numpy as np

from ..errors import ConfigError, ManifestError
from ..io import claim_outputs, locked_outputs
from ..labels import map_labels, read_classes, resolve_label_map
from ..manifest import Clip, column_values, location_of, read_manifest, write_manifest
from ..splits import validation_split

__all__ = ["run"]

log = logging.getLogger(__name__)


def _location(clip: Clip) -> str:
    """The clip's location: its column, else parsed from a TAU file stem, else "" (none)."""
    if clip.location:
        return clip.location
    try:
        return location_of(clip.id)
    except ManifestError:
        return ""


def _rebased(clips: list[Clip], source_dir: Path, out: Path) -> list[Clip]:
    """The clips with relative audio paths rewritten relative to ``out``'s folder."""
    out_dir = out.resolve().parent
    if out_dir == source_dir:
        return clips
    return [c if not c.path or os.path.isabs(c.path)
            else replace(c, path=os.path.relpath(source_dir / c.path, out_dir)) for c in clips]


@locked_outputs("out_train", "out_valid")  # one writer per output (docs/reliability.md)
def run(manifest_path: str | os.PathLike, out_train: str | os.PathLike, out_valid: str | os.PathLike, *,
        valid_split: float = 0.1, labels: str = "scene", seed: int = 0, force: bool = False,
        classes_path: str | os.PathLike | None = None, group_column: str | None = None) -> dict:
    """Split a manifest into training and validation manifests by recording location.

    Parameters
    ----------
    manifest_path : path
        Input manifest (TSV with ``id``, ``path``, ``scene`` and, ideally,
        ``location``; a missing location is parsed from the TAU file stem).
    out_train, out_valid : path
        Manifests to write: every column kept, relative audio paths rewritten
        relative to the output's folder.
    valid_split : float
        Fraction of each class's locations held out, in (0, 1).
    labels : str
        The classes the split is made by, as ``asctool train --labels``:
        ``scene``, ``coarse`` or a TSV ``scene<TAB>label``. Give the training
        run's value to hold out the locations its ``--valid-split`` would.
    seed : int
        The same seed gives the same split.
    force : bool
        Overwrite existing outputs.
    classes_path : path, optional
        The data set's own classes, one per line (``--classes FILE``). Every
        scene must be one of them, or (by default) of the DCASE scenes or
        coarse classes; with a ``labels`` TSV and no ``classes_path``, of the
        scenes the TSV maps.
    group_column : str, optional
        A column (known or extra, e.g. ``fold`` or a source recording) whose
        values are held out whole instead of the locations.

    Without locations (and without ``group_column``) the validation clips
    are drawn stratified by class (:func:`asctool.splits.validation_split`).

    Returns
    -------
    dict
        ``train`` and ``valid`` (paths and clip counts), ``split`` (``location``,
        ``group``, ``stratified`` or ``mixed``) and the held-out
        ``valid_locations`` (or ``valid_groups``).

    Raises
    ------
    ConfigError
        A bad fraction or ``labels``, or no class with two locations (groups,
        clips) to split.
    ManifestError
        A clip without scene label; a scene outside the known classes (naming ``MANIFEST:LINE``).
    MismatchError
        A scene outside the label map.
    AsctoolError
        An output exists and ``force`` is not given.
    """
    path = Path(manifest_path)
    out_train, out_valid = Path(out_train), Path(out_valid)
    if not 0.0 < float(valid_split) < 1.0:
        raise ConfigError(f"--valid-split must be in (0, 1), not {valid_split}")
    if out_train.resolve() == out_valid.resolve():
        raise ConfigError(f"{out_train}: the training and validation manifests must be two files")
    claim_outputs([out_train, out_valid], force=force, inputs=[path, classes_path])
    mapping = resolve_label_map(labels)
    known = read_classes(classes_path)
    # a typo scene would be a class of its own: refused, naming the row (a --labels TSV lists the scenes itself)
    manifest = read_manifest(path, check_labels=mapping is None or known is not None, classes=known)
    unlabelled = [c.id for c in manifest if not c.scene]
    if unlabelled:
        raise ManifestError(f"{path}: clip {unlabelled[0]} has no scene label; the split is made class by class")
    if group_column is not None:
        try:
            keys = np.array(column_values(manifest, group_column), dtype=object)
        except ManifestError as exc:
            raise ConfigError(f"--group-column {group_column}: {exc}") from None
    else:
        keys = np.array([_location(c) for c in manifest], dtype=object)
    scenes = np.array([c.scene for c in manifest], dtype=object)
    classes = scenes if mapping is None else map_labels(scenes, mapping, path)
    mask, kind = validation_split(classes.astype(str), float(valid_split), int(seed),
                                  locations=None if group_column is not None else keys,
                                  groups=keys if group_column is not None else None,
                                  group_name=group_column or "group", where=str(path))
    if not mask.any():
        unit = {"location": "recording locations", "group": f"values of {group_column}"}.get(kind, "clips")
        raise ConfigError(f"{path}: no class has two {unit} to split")
    held = sorted(set(keys[mask].tolist()) - {""})
    train = [c for c, v in zip(manifest, mask) if not v]
    valid = [c for c, v in zip(manifest, mask) if v]
    write_manifest(out_train, _rebased(train, manifest.root, out_train))
    write_manifest(out_valid, _rebased(valid, manifest.root, out_valid))
    log.info("%s: %d clips (%s split); %s: %d clips", out_valid, len(valid), kind, out_train, len(train))
    summary = {
        "train": {"path": str(out_train), "clips": len(train)},
        "valid": {"path": str(out_valid), "clips": len(valid)},
        "valid_split": float(valid_split),
        "labels": labels,
        "seed": int(seed),
        "split": kind,
    }
    if group_column is not None:
        summary["group_column"] = group_column
        summary["valid_groups"] = held
    else:
        summary["valid_locations"] = held
    return summary
