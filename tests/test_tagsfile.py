"""Tags files (asctool.tagsfile): round trip, join by id, and every refusal in one line."""
from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

from asctool.errors import ArtifactError, MismatchError
from asctool.tagsfile import check_same_tagger, read_tags, write_tags

TAGGER = {"name": "keras", "options": {"model": "m.keras"}, "sha256": "ab" * 32, "pooling": "mean"}


def _write(path, **changes):
    kwargs = dict(ids=["a", "b", "c"], tags=np.array([[0.1, 0.9], [0.0, 1.0], [0.5, 0.25]]),
                  tag_names=["dog", "siren"], tagger=TAGGER, scenes=["park", "street", "park"],
                  devices=["a", "b", "c"])
    kwargs.update(changes)
    return write_tags(path, **kwargs)


def test_round_trip_keeps_values_names_tagger_and_labels(tmp_path):
    path = _write(tmp_path / "t.h5")
    t = read_tags(path)
    assert t.tags.dtype == np.float32 and t.tags.shape == (3, 2)
    np.testing.assert_array_equal(t.tags, np.float32([[0.1, 0.9], [0.0, 1.0], [0.5, 0.25]]))
    assert t.tag_names == ["dog", "siren"] and t.tagger == TAGGER
    assert list(t.ids) == ["a", "b", "c"] and list(t.scenes) == ["park", "street", "park"]
    assert list(t.locations) == ["", "", ""]
    with h5py.File(path, "r") as h:
        assert h.attrs["asctool_kind"] == "tags" and json.loads(h.attrs["tagger"])["pooling"] == "mean"


def test_reindex_joins_by_id_whatever_the_order_and_refuses_missing_ids(tmp_path):
    t = read_tags(_write(tmp_path / "t.h5"))
    r = t.reindex(["c", "a", "b"])
    np.testing.assert_array_equal(r.tags, t.tags[[2, 0, 1]])
    assert list(r.scenes) == ["park", "park", "street"]
    with pytest.raises(MismatchError, match="1 ids only in features"):
        t.reindex(["a", "b", "c", "d"], "features")


@pytest.mark.parametrize("changes, message", [
    (dict(ids=["a", "a", "c"]), "duplicate ids: a"),
    (dict(tags=np.array([[0.1, np.nan], [0, 1], [0, 0]])), "tags of clip a .row 0. are NaN or Inf"),
    (dict(tags=np.array([[0.1, 0.2], [0, 1.5], [0, 0]])), "tag 'siren' of clip b .row 1. is 1.5, outside .0, 1."),
    (dict(tags=np.array([[0.1, 0.2], [0, 1], [-0.01, 0]])), "tag 'dog' of clip c .row 2. is -0.01, outside"),
    (dict(ids=[], tags=np.zeros((0, 2)), scenes=None, devices=None), "no clips"),
    (dict(tag_names=["dog", "dog"]), "duplicate tag names: dog"),
    (dict(tags=np.zeros((3, 3))), r"tags of shape \(3, 3\) do not match 3 ids x 2 tag names"),
    (dict(tagger={**TAGGER, "pooling": "median"}), "tagger pooling 'median' is not one of mean, max"),
    (dict(tagger={"name": "x"}), "attribute 'tagger' must be a JSON object"),
    (dict(devices=["a"]), "device has 1 entries, expected 3"),
])
def test_writer_refuses_bad_tags_and_writes_nothing(tmp_path, changes, message):
    with pytest.raises(ArtifactError, match=message):
        _write(tmp_path / "t.h5", **changes)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("edit, message", [
    (lambda h: h["tags"].__setitem__((1, 0), 2.0), "tag 'dog' of clip b .row 1. is 2, outside"),
    (lambda h: h["tags"].__setitem__((2, 1), np.inf), "tags of clip c .row 2. are NaN or Inf"),
    (lambda h: h.attrs.__setitem__("tag_names", "dog"), "attribute 'tag_names' is not a JSON list"),
    (lambda h: h.attrs.__delitem__("tagger"), "no 'tagger' attribute"),
    (lambda h: h.attrs.__setitem__("asctool_kind", "scores"), "expected a tags file, found a 'scores' artifact"),
])
def test_reader_refuses_edited_files(tmp_path, edit, message):
    path = _write(tmp_path / "t.h5")
    with h5py.File(path, "r+") as h:
        edit(h)
    with pytest.raises(ArtifactError, match=message):
        read_tags(path)


def test_check_same_tagger_names_the_difference(tmp_path):
    t = read_tags(_write(tmp_path / "t.h5"))
    check_same_tagger(t.identity, t.identity, "model", "tags")
    other = {"tagger": {**TAGGER, "sha256": "cd" * 32}, "tag_names": ["dog", "siren"]}
    with pytest.raises(MismatchError, match="tags: tags from another tagger than model: sha256"):
        check_same_tagger(t.identity, other, "model", "tags")
    with pytest.raises(MismatchError, match="tag names differ"):
        check_same_tagger(t.identity, {**t.identity, "tag_names": ["siren", "dog"]}, "model", "tags")
