"""Training data: which clips of which features files, with which labels.

Only metadata is held in memory (ids, labels, locations: a few bytes per
clip); the features stay in the HDF5 files and are read batch by batch by
:mod:`asctool.training.pipeline`.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .. import splits
from ..artifacts import check_finite_features, check_same_config, check_unique_ids, open_features
from ..errors import ArtifactError, ConfigError, ManifestError, MismatchError
from ..labels import check_known_labels
from ..manifest import location_of

__all__ = ["SourceInfo", "ClipSet", "read_sources", "make_clip_set", "join_tags", "clip_ids",
           "hold_out_locations", "clip_locations", "hold_out_validation"]

log = logging.getLogger(__name__)


@dataclass
class SourceInfo:
    """Metadata of one features file (the features themselves are not read)."""

    path: Path
    n: int
    feature_shape: tuple[int, int, int]
    dtype: np.dtype
    config: dict[str, Any]
    ids: np.ndarray
    scenes: np.ndarray
    locations: np.ndarray
    classes: list[str] | None = None  # the declared label set (featurize --classes), if any


@dataclass
class ClipSet:
    """A set of clips addressed as (file, row), with integer labels.

    Attributes
    ----------
    paths : list of Path
        The features files; ``file_index`` points into this list.
    file_index : np.ndarray [shape=(n,)], int32
    row : np.ndarray [shape=(n,)], int64
    labels : np.ndarray [shape=(n,)], int32
        Class indices into the run's class list.
    feature_shape : (freq, time, channels)
    dtype : np.dtype
        float16 when every file is float16, else float32.
    """

    paths: list[Path]
    file_index: np.ndarray
    row: np.ndarray
    labels: np.ndarray
    feature_shape: tuple[int, int, int]
    dtype: np.dtype
    tags: np.ndarray | None = None   # (n, C) float32 tag vectors (``train --tags``), joined by id

    def __len__(self) -> int:
        return int(self.row.shape[0])

    def subset(self, mask: np.ndarray) -> "ClipSet":
        """The clips where ``mask`` is true (same files)."""
        return ClipSet(self.paths, self.file_index[mask], self.row[mask], self.labels[mask],
                       self.feature_shape, self.dtype, None if self.tags is None else self.tags[mask])


def clip_ids(clips: ClipSet, sources: Sequence[SourceInfo]) -> np.ndarray:
    """The id of every clip of ``clips`` (its files among ``sources``)."""
    by_path = {Path(s.path): s.ids for s in sources}
    return np.array([by_path[Path(clips.paths[f])][r] for f, r in zip(clips.file_index.tolist(), clips.row.tolist())],
                    dtype=object)


def join_tags(tags, ids: Sequence[str], where) -> np.ndarray:
    """The tag vectors of clips ``ids``, joined by id whatever the row order of the tags file.

    Parameters
    ----------
    tags : asctool.tagsfile.TagsFile
        May hold more clips than ``ids`` (one tags file for a whole data set).
    ids : sequence of str
    where : str or path
        The features file(s) the ids come from (for the message).

    Returns
    -------
    np.ndarray [shape=(len(ids), C)], float32

    Raises
    ------
    MismatchError
        A clip without tags: one line naming the tags file, the clip and ``where``.
    """
    position = {str(clip): i for i, clip in enumerate(tags.ids)}
    missing = [str(clip) for clip in ids if str(clip) not in position]
    if missing:
        raise MismatchError(f"{tags.path}: no tags for clip {missing[0]} of {where}"
                            + (f" ({len(missing)} clips lack tags)" if len(missing) > 1 else ""))
    return tags.tags[np.fromiter((position[str(c)] for c in ids), dtype=np.int64, count=len(ids))]


def read_sources(paths: Sequence[str | os.PathLike], role: str) -> list[SourceInfo]:
    """Read the metadata of features files and check that they can be used together.

    Parameters
    ----------
    paths : sequence of path
        Features files.
    role : str
        ``"training"`` or ``"validation"`` (for messages).

    Raises
    ------
    ArtifactError
        A file is missing, not a features file, holds no clips, or holds NaN
        or Inf features (every file is scanned once, a few clips at a time).
    MismatchError
        Two files differ in front-end config or feature shape, or share ids.
    """
    sources: list[SourceInfo] = []
    for raw in paths:
        with open_features(raw) as f:
            if len(f) == 0:
                raise ArtifactError(f"{f.path}: {role} features file holds no clips")
            shape = f.feature_shape
            if len(shape) != 3:
                raise ArtifactError(f"{f.path}: features of shape {shape}, expected (freq, time, channels)")
            check_finite_features(f)
            sources.append(SourceInfo(Path(raw), len(f), tuple(int(s) for s in shape), np.dtype(f.dtype),
                                      f.config, f.ids, f.scenes, f.locations, f.classes))
    first = sources[0]
    for other in sources[1:]:
        check_same_config(first.config, other.config, first.path, other.path)
        if other.feature_shape != first.feature_shape:
            raise MismatchError(
                f"{other.path}: features of shape {other.feature_shape} differ from "
                f"{first.path}: {first.feature_shape}"
            )
    if len(sources) > 1:
        check_unique_ids(np.concatenate([s.ids for s in sources]),
                         " + ".join(str(s.path) for s in sources))
    return sources


def _scenes_to_labels(source: SourceInfo, mapping: dict[str, str] | None, where: str,
                      known: Sequence[str] | None) -> np.ndarray:
    scenes = np.asarray(source.scenes, dtype=object)
    empty = np.flatnonzero(scenes == "")
    if empty.size:
        raise ArtifactError(
            f"{source.path}: {empty.size} clip(s) have no scene label (e.g. {source.ids[empty[0]]}); "
            "training needs labelled clips"
        )
    if known is not None or mapping is None:  # a label map names the scenes it knows itself
        check_known_labels(scenes, known if known is not None else source.classes,
                           lambda i: f"{source.path}: clip {source.ids[i]} (row {i})", error=ConfigError)
    if mapping is None:
        return scenes
    outside = sorted(set(scenes) - set(mapping))
    if outside:
        raise ConfigError(
            f"{source.path}: scene(s) {', '.join(outside)} are not in the label map {where}"
        )
    return np.array([mapping[s] for s in scenes], dtype=object)


def make_clip_set(sources: Sequence[SourceInfo], mapping: dict[str, str] | None,
                  classes: Sequence[str] | None, *, labels_name: str,
                  known: Sequence[str] | None = None) -> tuple[ClipSet, list[str]]:
    """Label every clip of ``sources``.

    Parameters
    ----------
    sources : sequence of SourceInfo
    mapping : dict or None
        Scene -> label map (None: the scene is the label).
    classes : sequence of str or None
        The class list; None derives it: the sorted labels of the map, or the
        sorted scenes present when there is no map.
    labels_name : str
        How ``--labels`` was given (for messages).
    known : sequence of str or None
        The known scenes (``--classes FILE``). None: the set each file
        records (``featurize --classes``), else the DCASE scenes or coarse
        classes; with a label map, the map's scenes are the known ones.

    Returns
    -------
    (ClipSet, classes)

    Raises
    ------
    ConfigError
        A scene outside the known classes or the map, or a label outside ``classes``.
    """
    per_file = [_scenes_to_labels(s, mapping, f"({labels_name})", known) for s in sources]
    if classes is None:
        if mapping is not None:
            classes = sorted(set(mapping.values()))
        else:
            classes = sorted(set(np.concatenate(per_file)))
    classes = list(classes)
    index = {c: i for i, c in enumerate(classes)}
    labels = []
    for source, values in zip(sources, per_file):
        outside = sorted(set(values) - set(index))
        if outside:
            raise ConfigError(
                f"{source.path}: label(s) {', '.join(outside)} are not among the training classes "
                f"({', '.join(classes)})"
            )
        labels.append(np.fromiter((index[v] for v in values), dtype=np.int32, count=len(values)))
    file_index = np.concatenate([np.full(s.n, i, dtype=np.int32) for i, s in enumerate(sources)])
    rows = np.concatenate([np.arange(s.n, dtype=np.int64) for s in sources])
    dtype = np.dtype(np.float16) if all(s.dtype == np.float16 for s in sources) else np.dtype(np.float32)
    clip_set = ClipSet([s.path for s in sources], file_index, rows, np.concatenate(labels),
                       sources[0].feature_shape, dtype)
    return clip_set, classes


def clip_locations(source: SourceInfo) -> np.ndarray:
    """Recording location of every clip: the ``location`` dataset, else parsed from the TAU id, else ""
    (no location: :func:`hold_out_locations` draws such clips stratified by class)."""
    locations = np.asarray(source.locations, dtype=object).copy()
    for i in np.flatnonzero(locations == ""):
        try:
            locations[i] = location_of(str(source.ids[i]))
        except ManifestError:
            pass
    return locations


def hold_out_locations(clips: ClipSet, locations: np.ndarray, fraction: float,
                       seed: int) -> tuple[np.ndarray, list[str]]:
    """Choose validation clips by recording location, class by class.

    The draw of :func:`asctool.splits.split_by_location` (the one the
    ``asctool split`` stage makes on a manifest) on the clips' class indices:
    for each class, ``round(fraction * n)`` of its ``n`` locations (at least
    one when it has two or more, none when it has only one) go to validation;
    no location is on both sides. Clips without a location ("") are drawn
    stratified by class (:func:`asctool.splits.validation_split`, said once).

    Parameters
    ----------
    clips : ClipSet
    locations : np.ndarray [shape=(len(clips),)], str
    fraction : float
        In (0, 1).
    seed : int

    Returns
    -------
    (mask, held_out) : boolean mask of validation clips, and the held-out locations (sorted).
    """
    mask, _ = splits.validation_split(clips.labels, fraction, seed, locations=locations, hint=TRAIN_GROUP_HINT)
    return mask, sorted(set(np.asarray(locations).astype(str)[mask].tolist()) - {splits.NO_GROUP})


#: ``asctool train`` has no ``--group-column``: the split stage does it, and train takes its output.
TRAIN_GROUP_HINT = ("to keep clips of one recording together, split the manifest with asctool split "
                    "--group-column COLUMN and give train the validation features with --valid")


def hold_out_validation(clips: ClipSet, sources: Sequence[SourceInfo], fraction: float,
                        seed: int) -> tuple[np.ndarray, dict[str, Any]]:
    """Validation clips by recording location, or by class when the clips carry no location.

    The draw of :func:`asctool.splits.validation_split` on the clips'
    locations (:func:`clip_locations`): whole locations held out; clips
    without one drawn stratified by class, announced by one warning that
    names the first file lacking locations.

    Returns
    -------
    (mask, info) : boolean mask of validation clips, and what to record in
        ``config.json``: ``{"valid_locations": [...]}``, or
        ``{"valid_split_by": "class"}`` when no clip has a location
        (``"mixed"`` when some have).
    """
    per_source = [clip_locations(s) for s in sources]
    locations = np.concatenate(per_source)
    where = next((str(s.path) for s, locs in zip(sources, per_source) if (locs == splits.NO_GROUP).any()), "")
    mask, kind = splits.validation_split(clips.labels, fraction, seed, locations=locations, where=where,
                                         hint=TRAIN_GROUP_HINT)
    if kind == "stratified":
        return mask, {"valid_split_by": "class"}
    held = sorted(set(np.asarray(locations).astype(str)[mask].tolist()) - {splits.NO_GROUP})
    if kind == "mixed":
        return mask, {"valid_split_by": "mixed", "valid_locations": held}
    return mask, {"valid_locations": held}
