"""The validation split: whole recording locations held out, class by class.

One function serves both places that need a validation set from the training
side (docs/reference.md 7.3: validation comes from the training data, split by
recording location, so that no location is on both sides):
``asctool train --valid-split`` (through :func:`asctool.training.data.hold_out_locations`)
and the ``asctool split`` stage (manifest in, train/valid manifests out). Both
therefore hold out the same locations for the same clips, labels, fraction and
seed.

Data sets without recording locations (ESC-50, UrbanSound8K, a folder per
class) go through :func:`validation_split`: whole groups of a column the user
names (``--group-column``, e.g. a source recording), else whole locations,
else, for the clips without one, a split stratified by class (each such clip
its own group), said once on the log.
"""
from __future__ import annotations

import logging
from typing import Sequence

import numpy as np

from .errors import ConfigError

__all__ = ["split_by_location", "validation_split", "NO_GROUP"]

log = logging.getLogger(__name__)

#: The group value of a clip that has none (no location, empty group column).
NO_GROUP = ""


def split_by_location(locations: Sequence[str] | np.ndarray, labels: Sequence | np.ndarray, fraction: float,
                      seed: int) -> np.ndarray:
    """Choose the validation clips by recording location, class by class.

    A location's class is the most common label of its clips (ties: the
    first class in sorted order). For each class, ``round(fraction * n)`` of
    its ``n`` locations go to validation: at least one when it has two or
    more, never all of them, none when it has only one. The locations are
    drawn with ``np.random.default_rng([seed, 0x5A11])``, classes in sorted
    order, locations in sorted order within a class; every clip of a drawn
    location is a validation clip, so no location is on both sides.

    Parameters
    ----------
    locations : sequence of str [shape=(n_clips,)]
        Recording location of every clip (TAU: ``scene-city-locationid``).
    labels : sequence [shape=(n_clips,)]
        Class of every clip: class indices or class names. Only their sorted
        order matters, so indices into a sorted class list and the names
        themselves give the same split.
    fraction : float
        Fraction of each class's locations to hold out, in (0, 1).
    seed : int
        The same seed gives the same split.

    Returns
    -------
    np.ndarray [shape=(n_clips,)], bool
        True for the validation clips. The held-out locations are
        ``sorted(set(locations[mask]))``.

    Raises
    ------
    ConfigError
        When ``fraction`` is not in (0, 1) or the two sequences differ in length.
    """
    if not 0.0 < float(fraction) < 1.0:
        raise ConfigError(f"validation fraction must be in (0, 1), not {fraction}")
    locations = np.asarray(locations).astype(str)
    labels = np.asarray(labels)
    if locations.shape != labels.shape or locations.ndim != 1:
        raise ConfigError(f"{locations.shape[0]} locations for {labels.shape[0]} labels: one of each per clip")
    rng = np.random.default_rng([int(seed), 0x5A11])
    uniq, inverse = np.unique(locations, return_inverse=True)
    inverse = inverse.reshape(-1)
    _, label_index = np.unique(labels, return_inverse=True)
    label_index = label_index.reshape(-1)
    # a location's class: the most common label of its clips
    counts = np.zeros((len(uniq), int(label_index.max(initial=-1)) + 1), dtype=np.int64)
    np.add.at(counts, (inverse, label_index), 1)
    loc_class = counts.argmax(axis=1) if len(uniq) else np.zeros(0, dtype=np.int64)
    held: list[int] = []
    for cls in np.unique(loc_class):
        members = np.flatnonzero(loc_class == cls)
        if len(members) < 2:
            continue
        k = max(1, int(round(fraction * len(members))))
        k = min(k, len(members) - 1)
        held.extend(rng.choice(members, size=k, replace=False).tolist())
    return np.isin(inverse, np.array(held, dtype=np.int64))


#: How :func:`validation_split` tells the user of ``asctool split`` to keep the clips of a recording together.
GROUP_HINT = "give --group-column to keep clips of one recording together"


def validation_split(labels: Sequence | np.ndarray, fraction: float, seed: int, *,
                     locations: Sequence[str] | np.ndarray | None = None,
                     groups: Sequence[str] | np.ndarray | None = None,
                     group_name: str = "group", where: str = "",
                     hint: str = GROUP_HINT) -> tuple[np.ndarray, str]:
    """The validation clips: whole groups, else whole locations, else stratified by class.

    The draw is :func:`split_by_location` on the clips' group keys: the value
    of ``groups`` when given (a ``--group-column``), else ``locations``. A
    clip whose key is empty (:data:`NO_GROUP`) is a group of its own, so for
    those clips the split is stratified by class: ``round(fraction * n)`` of a
    class's ``n`` such clips (at least one, never all). When any clip lacks a
    key, one warning says how many and what the split did instead. With every
    key given, the result is exactly :func:`split_by_location`'s. (No warning when nothing could
    be held out: the caller's error says so.)

    Parameters
    ----------
    labels : sequence [shape=(n_clips,)]
        Class of every clip (indices or names; only their order matters).
    fraction : float
        In (0, 1).
    seed : int
    locations : sequence of str [shape=(n_clips,)], optional
        Recording locations; "" for a clip without one.
    groups : sequence of str [shape=(n_clips,)], optional
        Group of every clip (e.g. the source recording); takes the place of
        ``locations``. "" for a clip without one.
    group_name : str
        What ``groups`` is called in the warning (the column's name).
    where : str
        The data the warning names (a file).
    hint : str
        How to keep the clips of one recording together, said in the warning
        when no clip has a key: the caller's option (:data:`GROUP_HINT`, the
        ``asctool split`` one, by default; ``asctool train`` has no such option).

    Returns
    -------
    mask : np.ndarray [shape=(n_clips,)], bool
        True for the validation clips.
    kind : str
        ``"location"``, ``"group"`` (every clip had a key), ``"stratified"``
        (no clip had one) or ``"mixed"``.

    Raises
    ------
    ConfigError
        As :func:`split_by_location`.
    """
    labels = np.asarray(labels)
    keys = groups if groups is not None else locations
    what = f"{group_name!r} value" if groups is not None else "recording location"
    if keys is None:
        keys = np.full(labels.shape, NO_GROUP, dtype=object)
    keys = np.asarray([str(k) for k in np.asarray(keys, dtype=object).reshape(-1)], dtype=object)
    if keys.shape != labels.shape:
        raise ConfigError(f"{keys.shape[0]} groups for {labels.shape[0]} labels: one of each per clip")
    missing = keys == NO_GROUP
    kind = "group" if groups is not None else "location"
    if missing.any():
        # a clip without a key is its own group ("\x1f", the unit separator, starts no real value)
        width = len(str(len(keys)))
        keys = keys.copy()
        keys[missing] = [f"\x1f{i:0{width}d}" for i in np.flatnonzero(missing)]
        kind = "stratified" if missing.all() else "mixed"
    mask = split_by_location(keys, labels, fraction, seed)
    if missing.any() and mask.any():  # (an empty split is the caller's one-line error; no warning before it)
        prefix = f"{where}: " if where else ""
        if missing.all():
            log.warning("%sno clip has a %s: the validation clips are drawn stratified by class (%s)",
                        prefix, what, hint)
        else:
            log.warning("%s%d of %d clips have no %s: each of them is drawn on its own, stratified by class",
                        prefix, int(missing.sum()), len(keys), what)
    return mask, kind
