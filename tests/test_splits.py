"""asctool.splits: the one validation split by recording location."""
from __future__ import annotations

import numpy as np
import pytest

from asctool.errors import ConfigError
from asctool.splits import split_by_location, validation_split


def _clips(n_classes=3, n_locations=6, per_location=3):
    labels, locations = [], []
    for c in range(n_classes):
        for loc in range(n_locations):
            labels += [c] * per_location
            locations += [f"c{c}-city-{loc}"] * per_location
    return np.array(labels), np.array(locations, dtype=object)


def test_whole_locations_per_class_seeded():
    labels, locations = _clips()
    mask = split_by_location(locations, labels, 0.34, seed=0)
    assert mask.dtype == bool and mask.shape == labels.shape
    assert not set(locations[mask]) & set(locations[~mask])
    assert [len(set(locations[mask & (labels == c)])) for c in range(3)] == [2, 2, 2]   # round(0.34 * 6)
    assert np.array_equal(mask, split_by_location(locations, labels, 0.34, seed=0))
    assert not np.array_equal(mask, split_by_location(locations, labels, 0.34, seed=1))


def test_class_names_and_indices_give_the_same_draw():
    """Labels count only by their sorted order: names of a sorted class list = its indices."""
    labels, locations = _clips(n_classes=4)
    names = np.array(["indoor", "outdoor", "park", "transportation"])[labels]
    assert np.array_equal(split_by_location(locations, labels, 0.2, 5), split_by_location(locations, names, 0.2, 5))


def test_a_location_goes_with_its_majority_class_and_singletons_stay():
    labels = np.array([0, 0, 1, 1, 1, 1, 2])
    locations = np.array(["a", "a", "a", "b", "c", "c", "z"])   # a: class 0 (2 of 3 clips); z: only class 2
    for seed in range(10):
        mask = split_by_location(locations, labels, 0.5, seed)
        assert not mask[:3].any() and not mask[6]   # a and z: the only location of their class
        assert mask[3] != mask[4] and mask[4] == mask[5]   # b or c: one of class 1's two, whole


def test_bad_input():
    labels, locations = _clips()
    for fraction in (0.0, 1.0, -0.1):
        with pytest.raises(ConfigError, match="in \\(0, 1\\)"):
            split_by_location(locations, labels, fraction, 0)
    with pytest.raises(ConfigError, match="one of each per clip"):
        split_by_location(locations[:-1], labels, 0.1, 0)


def test_validation_split_falls_back_to_stratified_by_class(caplog):
    """(issue 14) clips without a location: each its own group, so the draw is stratified by class."""
    labels = np.array([0] * 10 + [1] * 5 + [2] * 1)
    with caplog.at_level("WARNING"):
        mask, kind = validation_split(labels, 0.2, 0, locations=[""] * 16, where="x.h5")
    assert kind == "stratified"
    assert np.bincount(labels[mask], minlength=3).tolist() == [2, 1, 0]    # round(0.2 n), >= 1, never all
    assert [r.getMessage() for r in caplog.records] == [
        "x.h5: no clip has a recording location: the validation clips are drawn stratified by class "
        "(give --group-column to keep clips of one recording together)"]
    again, _ = validation_split(labels, 0.2, 0, locations=None)
    assert np.array_equal(mask, again) and not np.array_equal(mask, validation_split(labels, 0.2, 1)[0])


def test_validation_split_with_locations_or_groups_is_the_location_draw(caplog):
    labels, locations = _clips()
    with caplog.at_level("WARNING"):
        mask, kind = validation_split(labels, 0.34, 5, locations=locations)
    assert kind == "location" and not caplog.records
    assert np.array_equal(mask, split_by_location(locations, labels, 0.34, 5))
    mask, kind = validation_split(labels, 0.34, 5, locations=["x"] * len(labels), groups=locations)
    assert kind == "group" and np.array_equal(mask, split_by_location(locations, labels, 0.34, 5))
    partial = locations.copy()
    partial[:3] = ""                                                         # one location of class 0 lost
    with caplog.at_level("WARNING"):
        mask, kind = validation_split(labels, 0.5, 0, groups=partial, group_name="src")
    assert kind == "mixed" and "3 of 54 clips have no 'src' value" in caplog.records[-1].getMessage()
    assert not set(partial[mask]) - {""} & set(partial[~mask]) - {""}
