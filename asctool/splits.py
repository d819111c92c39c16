"""The validation split: whole recording locations held out, class by class.

One function serves both places that need a validation set from the training
side (docs/reference.md 7.3: validation comes from the training data, split by
recording location, so that no location is on both sides):
``asctool train --valid-split`` (through :func:`asctool.training.data.split_by_location`)
and the ``asctool split`` stage (manifest in, train/valid manifests out). Both
therefore hold out the same locations for the same clips, labels, fraction and
seed.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from .errors import ConfigError

__all__ = ["split_by_location", "split_stratified"]


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


def split_stratified(labels: Sequence | np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Choose validation clips class by class, for clips without a recording location.

    The fallback of :func:`split_by_location` when the data carry no
    location: for each class with ``n`` clips, ``round(fraction * n)`` of them
    (at least one when ``n >= 2``, never all, none when ``n == 1``) go to
    validation, drawn with ``np.random.default_rng([seed, 0x57A7])``, classes
    in sorted order, clips in their order within a class. Clips of one
    recording may then be on both sides, so validation accuracy can be
    optimistic.

    Parameters
    ----------
    labels : sequence [shape=(n_clips,)]
        Class of every clip (indices or names; only their sorted order matters).
    fraction : float
        Fraction of each class's clips to hold out, in (0, 1).
    seed : int

    Returns
    -------
    np.ndarray [shape=(n_clips,)], bool
        True for the validation clips.

    Raises
    ------
    ConfigError
        When ``fraction`` is not in (0, 1).
    """
    if not 0.0 < float(fraction) < 1.0:
        raise ConfigError(f"validation fraction must be in (0, 1), not {fraction}")
    labels = np.asarray(labels)
    rng = np.random.default_rng([int(seed), 0x57A7])
    mask = np.zeros(labels.shape[0], dtype=bool)
    for cls in np.unique(labels):
        members = np.flatnonzero(labels == cls)
        if len(members) < 2:
            continue
        k = min(max(1, int(round(fraction * len(members)))), len(members) - 1)
        mask[rng.choice(members, size=k, replace=False)] = True
    return mask
