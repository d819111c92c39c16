from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

from asctool import artifacts, provenance
from asctool.errors import ArtifactError, MismatchError
from asctool.shards import combine_features


from helpers import poke, write_raw_scores  # noqa: E402
from helpers import write_tiny_features as _write_features  # noqa: E402

def test_features_round_trip_and_provenance(tmp_path):
    path = _write_features(tmp_path / "f.h5", ["c1", "c2", "c3"])
    with artifacts.open_features(path) as f:
        assert f.shape == (3, 4, 5, 3)
        assert f.dtype == np.float16
        assert list(f.ids) == ["c1", "c2", "c3"]
        assert f.config == {"sr": 44100, "n_mels": 4}
        np.testing.assert_array_equal(f.features[2], np.full((4, 5, 3), 2))
        assert f.features.chunks == (1, 4, 5, 3)
        attrs = f.attrs
    assert attrs["asctool_kind"] == "features"
    assert attrs["schema_version"] == 1
    for key in ("asctool_version", "created", "command", "inputs"):
        assert key in attrs
    with h5py.File(path) as handle:
        assert h5py.check_string_dtype(handle["id"].dtype).encoding == "utf-8"


def test_features_writer_leaves_nothing_on_error(tmp_path):
    path = tmp_path / "f.h5"
    with pytest.raises(RuntimeError):
        with artifacts.FeaturesWriter(path, n=2, feature_shape=(4, 5, 3), config={}, ids=["a", "b"]) as w:
            w.write(0, np.zeros((4, 5, 3)))
            raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []


def test_features_writer_refuses_incomplete_file(tmp_path):
    path = tmp_path / "f.h5"
    with pytest.raises(ArtifactError, match="1 of 2 clips were never written"):
        with artifacts.FeaturesWriter(path, n=2, feature_shape=(4, 5, 3), config={}, ids=["a", "b"]) as w:
            w.write(0, np.zeros((4, 5, 3)))
    assert list(tmp_path.iterdir()) == []


def test_duplicate_ids_rejected(tmp_path):
    with pytest.raises(ArtifactError, match="duplicate ids: a"):
        artifacts.FeaturesWriter(tmp_path / "f.h5", n=2, feature_shape=(1, 1, 1), config={}, ids=["a", "a"])


def test_scores_round_trip_and_checks(tmp_path):
    path = tmp_path / "s.h5"
    probs = np.array([[0.2, 0.8], [0.5, 0.5]])
    artifacts.write_scores(path, ids=["x", "y"], scores=probs, classes=["bus", "tram"], scenes=["tram", "bus"])
    s = artifacts.read_scores(path)
    assert s.classes == ["bus", "tram"]
    np.testing.assert_allclose(s.scores, probs)
    assert list(s.scenes) == ["tram", "bus"]
    assert s.devices is None
    assert list(s.reindex(["y", "x"]).ids) == ["y", "x"]
    np.testing.assert_allclose(s.reindex(["y", "x"]).scores, probs[::-1])

    with pytest.raises(ArtifactError, match="do not sum to 1"):
        artifacts.write_scores(tmp_path / "bad.h5", ids=["x"], scores=[[0.5, 0.9]], classes=["bus", "tram"])
    with pytest.raises(ArtifactError, match="do not match 1 ids x 3 classes"):
        artifacts.write_scores(tmp_path / "bad.h5", ids=["x"], scores=[[0.5, 0.5]], classes=["a", "b", "c"])
    assert not (tmp_path / "bad.h5").exists()


def test_read_scores_rejects_rows_not_summing_to_one(tmp_path):
    path = tmp_path / "s.h5"
    artifacts.write_scores(path, ids=["x"], scores=[[0.5, 0.5]], classes=["a", "b"])
    with h5py.File(path, "a") as handle:
        handle["scores"][0] = [0.9, 0.9]
    with pytest.raises(ArtifactError, match=r"s\.h5: 1 score rows do not sum to 1"):
        artifacts.read_scores(path)


def test_wrong_kind_is_refused(tmp_path):
    path = _write_features(tmp_path / "f.h5", ["a"])
    with pytest.raises(ArtifactError, match="expected a scores file, found a 'features' artifact"):
        artifacts.read_scores(path)
    with pytest.raises(ArtifactError, match="file not found"):
        artifacts.open_features(tmp_path / "missing.h5")


def test_align_ids_joins_by_id_and_names_differences():
    order = artifacts.align_ids(["b", "c", "a"], ["a", "b", "c"], "fine", "coarse")
    assert list(order) == [1, 2, 0]
    with pytest.raises(MismatchError, match=r"1 ids only in fine \(d\); 1 ids only in coarse \(a\)"):
        artifacts.align_ids(["b", "c", "d"], ["a", "b", "c"], "fine", "coarse")


def test_check_same_classes_and_config():
    artifacts.check_same_classes(["a", "b"], ["a", "b"], "x", "y")
    with pytest.raises(MismatchError, match="different order"):
        artifacts.check_same_classes(["a", "b"], ["b", "a"], "x", "y")
    with pytest.raises(MismatchError, match="sr: 44100 vs 48000"):
        artifacts.check_same_config({"sr": 44100}, {"sr": 48000}, "train.h5", "valid.h5")


def test_combine_features_makes_a_virtual_dataset(tmp_path):
    _write_features(tmp_path / "s1.h5", ["a", "b"], value=1.0)
    _write_features(tmp_path / "s2.h5", ["c"], value=2.0)
    out = combine_features([tmp_path / "s1.h5", tmp_path / "s2.h5"], tmp_path / "all.h5")
    with artifacts.open_features(out) as f:
        assert f.features.is_virtual
        assert list(f.ids) == ["a", "b", "c"]
        assert f.features[1].max() == 1.0 and f.features[2].min() == 2.0
    # the combined file keeps working when the folder moves (relative source paths)
    moved = tmp_path.rename(tmp_path.with_name("moved"))
    with artifacts.open_features(moved / "all.h5") as f:
        assert float(f.features[2].mean()) == 2.0
    with pytest.raises(ArtifactError, match="duplicate ids"):
        combine_features([moved / "s1.h5", moved / "s1.h5"], moved / "dup.h5")


def test_combine_refuses_different_configs(tmp_path):
    _write_features(tmp_path / "s1.h5", ["a"], config={"sr": 44100})
    _write_features(tmp_path / "s2.h5", ["b"], config={"sr": 48000})
    with pytest.raises(MismatchError, match="front-end configs"):
        combine_features([tmp_path / "s1.h5", tmp_path / "s2.h5"], tmp_path / "all.h5")
    assert not (tmp_path / "all.h5").exists()


def test_describe_inputs_hashes_small_files(tmp_path):
    small = tmp_path / "m.tsv"
    small.write_text("id\tpath\n")
    (entry,) = provenance.describe_inputs([small])
    assert entry["size"] == 8 and len(entry["sha256"]) == 64
    assert json.loads(json.dumps(entry)) == entry


# --------------------------------------------------------------------------
# silent wrong results refused (issue 9, items 4, 6, 7, 18)
# --------------------------------------------------------------------------
def test_combined_file_moved_away_from_its_shards_is_refused(tmp_path):
    """Issue 9 item 4: HDF5 reads a missing virtual-dataset source as NaN, without an error."""
    shards = tmp_path / "shards"
    shards.mkdir()
    _write_features(shards / "s1.h5", ["a", "b"], value=1.0)
    _write_features(shards / "s2.h5", ["c"], value=2.0)
    combine_features([shards / "s1.h5", shards / "s2.h5"], shards / "all.h5")
    alone = tmp_path / "elsewhere"
    alone.mkdir()
    (shards / "all.h5").rename(alone / "all.h5")
    with pytest.raises(ArtifactError, match=r"all\.h5: .*virtual dataset over shard .*s1\.h5, which is missing; "
                                            r"keep the shard files beside it.*h5repack -l features:CHUNK=1x4x5x3"):
        artifacts.open_features(alone / "all.h5")


def test_combined_file_over_a_replaced_shard_is_refused(tmp_path):
    """Another instance: a shard rewritten with fewer clips leaves NaN rows in the combined file."""
    _write_features(tmp_path / "s1.h5", ["a", "b"])
    _write_features(tmp_path / "s2.h5", ["c", "d"])
    combine_features([tmp_path / "s1.h5", tmp_path / "s2.h5"], tmp_path / "all.h5")
    (tmp_path / "s2.h5").unlink()
    _write_features(tmp_path / "s2.h5", ["c"])
    with pytest.raises(ArtifactError, match=r"shard .*s2\.h5, which is unreadable or holds other features"):
        artifacts.open_features(tmp_path / "all.h5")


def test_check_finite_features_names_the_first_bad_clip(tmp_path):
    path = _write_features(tmp_path / "f.h5", [f"c{i}" for i in range(7)], dtype="float32")
    with artifacts.open_features(path) as f:
        artifacts.check_finite_features(f, batch=3)
    poke(path, "features", (5, 1, 2, 0), np.inf)
    poke(path, "features", (6, 0, 0, 0), np.nan)
    with artifacts.open_features(path) as f:
        with pytest.raises(ArtifactError, match=r"f\.h5: features of clip c5 \(row 5\) contain NaN or Inf"):
            artifacts.check_finite_features(f, batch=3)
    assert artifacts.first_nonfinite(np.zeros((3, 2), np.float16)) is None
    assert artifacts.first_nonfinite(np.array([[0.0, 1.0], [np.nan, 0.0]])) == 1


def test_readers_refuse_duplicate_ids(tmp_path):
    """Issue 9 item 6: a duplicated id would be joined to the other file's row for that id."""
    dup = write_raw_scores(tmp_path / "dup.h5", ["x", "y", "x"], [[1, 0], [0, 1], [0.5, 0.5]], ["a", "b"])
    with pytest.raises(ArtifactError, match=r"dup\.h5: duplicate ids: x"):
        artifacts.read_scores(dup)
    feats = _write_features(tmp_path / "f.h5", ["p", "q", "r"])
    poke(feats, "id", 2, "p")
    with pytest.raises(ArtifactError, match=r"f\.h5: duplicate ids: p"):
        artifacts.open_features(feats)


def test_empty_scores_are_refused(tmp_path):
    """Issue 9 item 7: a 0-clip scores file is neither written nor read (unless asked for)."""
    with pytest.raises(ArtifactError, match=r"e\.h5: no clips to write"):
        artifacts.write_scores(tmp_path / "e.h5", ids=[], scores=np.zeros((0, 2)), classes=["a", "b"])
    assert not (tmp_path / "e.h5").exists()
    empty = write_raw_scores(tmp_path / "raw.h5", [], np.zeros((0, 2)), ["a", "b"])
    with pytest.raises(ArtifactError, match=r"raw\.h5: scores file holds no clips"):
        artifacts.read_scores(empty)
    assert len(artifacts.read_scores(empty, allow_empty=True)) == 0


def test_read_scores_names_the_clip_with_nan_or_inf(tmp_path):
    path = artifacts.write_scores(tmp_path / "s.h5", ids=["x", "y"], scores=[[0.5, 0.5], [1, 0]], classes=["a", "b"])
    poke(path, "scores", (1, 0), np.inf)
    with pytest.raises(ArtifactError, match=r"s\.h5: scores of clip y \(row 1\) are NaN or Inf"):
        artifacts.read_scores(path)


def test_classes_attribute_may_be_an_hdf5_string_array(tmp_path):
    """Issue 9 item 18: ``attrs["classes"] = [...]`` (what h5py users write) reads like the JSON string."""
    probs = [[0.25, 0.75], [1.0, 0.0]]
    listed = write_raw_scores(tmp_path / "list.h5", ["x", "y"], probs, ["bus", "tram"],
                              classes_attr=np.array(["bus", "tram"], dtype=h5py.string_dtype()))
    assert artifacts.read_scores(listed).classes == ["bus", "tram"]
    # another instance: fixed-length byte strings (numpy's "S" dtype) come back as bytes
    fixed = write_raw_scores(tmp_path / "fixed.h5", ["x", "y"], probs, ["bus", "tram"],
                             classes_attr=np.array([b"bus", b"tram"]))
    assert artifacts.read_scores(fixed).classes == ["bus", "tram"]
    bad = write_raw_scores(tmp_path / "bad.h5", ["x", "y"], probs, ["bus", "tram"], classes_attr="bus,tram")
    with pytest.raises(ArtifactError, match=r"bad\.h5: attribute 'classes' is not a JSON list"):
        artifacts.read_scores(bad)


# --------------------------------------------------------------------------
# embeddings files (written by asctool embed; read here)
# --------------------------------------------------------------------------
def test_open_embeddings_reads_the_layout(tmp_path):
    from helpers import EXTRACTOR, make_embeddings

    values = np.arange(3 * 4 * 2, dtype=np.float32).reshape(3, 4, 2)
    path = make_embeddings(tmp_path / "e.h5", 3, frames=4, dim=2, values=values, scenes=["bus", "park", "bus"],
                           ids=["x", "y", "z"], devices=["a", "b", "s1"])
    with artifacts.open_embeddings(path) as f:
        assert isinstance(f, artifacts.EmbeddingsFile) and len(f) == 3
        assert f.shape == (3, 4, 2) and f.feature_shape == (4, 2)
        assert list(f.ids) == ["x", "y", "z"] and list(f.devices) == ["a", "b", "s1"]
        assert list(f.scenes) == ["bus", "park", "bus"] and f.locations[1] == "park-lyon-1"
        np.testing.assert_array_equal(f.window_times, [0.0, 0.5, 1.0, 1.5])
        assert f.config == EXTRACTOR and f.embeddings is not None
        batches = [(start, view.copy()) for start, view in f.batches(2)]
    assert [start for start, _ in batches] == [0, 2]
    np.testing.assert_array_equal(np.concatenate([v for _, v in batches]), values)


def _edit(path, change):
    with h5py.File(path, "a") as handle:
        change(handle)
    return path


@pytest.mark.parametrize("change,message", [
    (lambda h: h.attrs.__setitem__("asctool_kind", "features"), "expected a embeddings file, found a 'features'"),
    (lambda h: h.__delitem__("window_times"), "lacks the 'window_times' dataset"),
    (lambda h: (h.__delitem__("window_times"), h.create_dataset("window_times", data=[0.0, 1.0])),
     "embeddings of shape (4, 3, 2) do not match 4 ids and 2 window times"),
    (lambda h: h.attrs.__setitem__("extractor", "[1, 2]"), "no 'extractor' attribute holding a JSON object"),
    (lambda h: h.attrs.__setitem__("extractor", "{not json"), "no 'extractor' attribute holding a JSON object"),
    (lambda h: (h.__delitem__("embeddings"), h.create_dataset("embeddings", data=np.zeros((4, 6)))),
     "'embeddings' is a 2-D dataset of float64, not 3-D numbers"),
])
def test_open_embeddings_refusals_are_one_line(tmp_path, change, message):
    from helpers import make_embeddings

    path = _edit(make_embeddings(tmp_path / "e.h5", 4, frames=3, dim=2), change)
    with pytest.raises(ArtifactError) as caught:
        artifacts.open_embeddings(path)
    assert str(caught.value).startswith(f"{path}: ") and message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_embeddings_duplicates_empty_and_nan(tmp_path):
    from helpers import make_embeddings

    dup = make_embeddings(tmp_path / "d.h5", 3, ids=["a1", "b2", "a1"])
    with pytest.raises(ArtifactError, match=r"d\.h5: duplicate ids: a1"):
        artifacts.open_embeddings(dup)
    empty = make_embeddings(tmp_path / "empty.h5", 0, values=np.zeros((0, 5, 16)))
    with pytest.raises(ArtifactError, match=r"empty\.h5: embeddings file holds no clips"):
        artifacts.open_embeddings(empty)
    assert len(artifacts.open_embeddings(empty, allow_empty=True)) == 0
    nan = make_embeddings(tmp_path / "nan.h5", 5)
    with h5py.File(nan, "a") as handle:
        handle["embeddings"][3, 1, 0] = np.nan
    with artifacts.open_embeddings(nan) as f:
        ids = list(f.ids)
        with pytest.raises(ArtifactError) as caught:
            list(f.batches(2))
    assert str(caught.value) == (f"{nan}: embeddings of clip {ids[3]} (row 3) contain NaN or Inf; "
                                 "refusing to use them (embed the clip again)")
