"""Tests of prediction with Keras and TensorFlow Lite models."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from asctool.artifacts import read_scores
from asctool.errors import ArtifactError, AsctoolError, MismatchError
from asctool.runs import MODEL_METADATA_KEYS, read_model_metadata
from asctool.stages.predict import run as predict

from helpers import CLASSES, make_features, poke, trained_run


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> dict:
    return trained_run(tmp_path_factory)


def test_model_carries_its_metadata_wherever_it_is_copied(run, tmp_path):
    config = read_model_metadata(run["run"] / "model.keras")
    assert all(key in config for key in MODEL_METADATA_KEYS)
    assert config["classes"] == list(CLASSES)
    # a copy alone in another folder still knows its classes and front end ...
    lonely = tmp_path / "elsewhere" / "copy.keras"
    lonely.parent.mkdir()
    shutil.copyfile(run["run"] / "model.keras", lonely)
    run_config = json.loads((run["run"] / "config.json").read_text())
    copied = read_model_metadata(lonely)
    assert {k: copied[k] for k in MODEL_METADATA_KEYS} == {k: run_config.get(k) for k in MODEL_METADATA_KEYS}
    # ... and a config.json of another model in that folder does not override it
    (lonely.parent / "config.json").write_text(json.dumps({"model": "other", "classes": ["x"]}))
    assert read_model_metadata(lonely)["classes"] == list(CLASSES)
    assert predict(lonely, run["test"], tmp_path / "s.h5")["classes"] == list(CLASSES)


def test_model_without_metadata_falls_back_to_config_json(run, tmp_path):
    from asctool.models import load_model

    bare = tmp_path / "model.keras"
    load_model(run["run"] / "model.keras").save(bare)   # plain Keras save: no asctool metadata
    with pytest.raises(ArtifactError, match="no config.json"):
        read_model_metadata(bare)
    assert read_model_metadata(bare, required=False) is None
    (tmp_path / "config.json").write_text(json.dumps({"model": "fcnn"}))
    with pytest.raises(ArtifactError, match="classes"):
        read_model_metadata(bare)
    shutil.copyfile(run["run"] / "config.json", tmp_path / "config.json")
    assert read_model_metadata(bare)["classes"] == list(CLASSES)
    with pytest.raises(ArtifactError, match="not found"):
        read_model_metadata(tmp_path / "missing.tflite")


def test_predict_writes_scores_that_beat_chance(run, tmp_path):
    out = tmp_path / "scores.h5"
    summary = predict(run["run"] / "model.keras", run["test"], out, batch_size=7)
    scores = read_scores(out)
    assert scores.classes == list(CLASSES) and len(scores) == 40 == summary["clips"]
    assert list(scores.ids)[:2] == [f"{CLASSES[0]}-paris-0-10-a", f"{CLASSES[1]}-paris-1-11-a"]
    np.testing.assert_allclose(scores.scores.sum(axis=1), 1.0, atol=1e-5)
    assert set(scores.devices) == {"a"} and list(scores.scenes[:4]) == list(CLASSES)
    # held-out clips from another city: clearly above chance (0.25)
    assert summary["accuracy"] >= 0.6
    # the batch size does not change the scores
    predict(run["run"] / "model.keras", run["test"], tmp_path / "big.h5", batch_size=64)
    np.testing.assert_allclose(read_scores(tmp_path / "big.h5").scores, scores.scores, atol=1e-5)


def test_predict_refuses_another_front_end(run, tmp_path):
    other = make_features(tmp_path / "other.h5", 8, config={"preset": "1b", "n_mels": 16})
    with pytest.raises(MismatchError, match=r"model\.keras.*other\.h5"):
        predict(run["run"] / "model.keras", other, tmp_path / "s.h5")
    assert not (tmp_path / "s.h5").exists()
    with pytest.raises(ArtifactError, match="not found"):
        predict(run["run"] / "model.keras", tmp_path / "missing.h5", tmp_path / "s.h5")


def test_predict_tflite_matches_keras(run, tmp_path):
    import tensorflow as tf

    from asctool.models import load_model

    model = load_model(run["run"] / "model.keras")
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    folder = tmp_path / "lite"
    folder.mkdir()
    (folder / "model.tflite").write_bytes(converter.convert())
    shutil.copyfile(run["run"] / "config.json", folder / "config.json")   # a .tflite without metadata
    assert read_model_metadata(folder / "model.tflite")["model"] == "fcnn"
    predict(folder / "model.tflite", run["test"], tmp_path / "lite.h5", batch_size=16)
    predict(run["run"] / "model.keras", run["test"], tmp_path / "keras.h5", batch_size=16)
    lite, keras_scores = read_scores(tmp_path / "lite.h5"), read_scores(tmp_path / "keras.h5")
    assert list(lite.ids) == list(keras_scores.ids)
    np.testing.assert_allclose(lite.scores, keras_scores.scores, atol=1e-4)


def test_cli_predict(run, tmp_path):
    from click.testing import CliRunner

    from asctool.cli import cli

    out = tmp_path / "cli.h5"
    result = CliRunner().invoke(cli, ["predict", "--model", str(run["run"] / "model.keras"),
                                      "--features", str(run["test"]), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert read_scores(out).classes == list(CLASSES)
    bad = CliRunner().invoke(cli, ["predict", "--model", str(tmp_path / "nothing.keras"),
                                   "--features", str(run["test"]), "--out", str(tmp_path / "bad.h5")])
    assert bad.exit_code == 1 and "nothing.keras" in bad.output


# --------------------------------------------------------------------------
# outputs: never overwritten without --force, impossible ones refused first (issue 9, items 16, 17, 19)
# --------------------------------------------------------------------------
def _cli(*args):
    from click.testing import CliRunner

    from asctool.cli import cli

    return CliRunner().invoke(cli, ["predict", *map(str, args)])


def test_an_existing_scores_file_needs_force(run, tmp_path, one_line_error):
    model = run["run"] / "model.keras"
    out = tmp_path / "s.h5"
    out.write_bytes(b"an earlier result")
    one_line_error(_cli("--model", model, "--features", run["test"], "--out", out),
                   f"{out}: already exists (use --force to overwrite)")
    assert out.read_bytes() == b"an earlier result"
    done = _cli("--model", model, "--features", run["test"], "--out", out, "--force")
    assert done.exit_code == 0, done.output
    assert read_scores(out).classes == list(CLASSES)
    one_line_error(_cli("--model", model, "--features", run["test"], "--out", run["test"], "--force"),
                   "is also an input")


def test_impossible_outputs_are_one_line_errors(run, tmp_path, read_only_dir, one_line_error, tree):
    model = run["run"] / "model.keras"
    (tmp_path / "some.tsv").write_text("id\tpath\n")
    one_line_error(_cli("--model", model, "--features", run["test"], "--out", tmp_path / "some.tsv" / "x.h5"),
                   "some.tsv/x.h5: cannot be written:", "some.tsv is not a folder")
    one_line_error(_cli("--model", model, "--features", run["test"], "--out", read_only_dir / "x.h5"),
                   "RO/x.h5: cannot be written: no permission to write in")
    (tmp_path / "folder.h5").mkdir()
    one_line_error(_cli("--model", model, "--features", run["test"], "--out", tmp_path / "folder.h5", "--force"),
                   "folder.h5' is a directory", code=2)   # click's check
    with pytest.raises(AsctoolError, match=r"folder\.h5: is a folder"):
        predict(model, run["test"], tmp_path / "folder.h5", force=True)
    assert tree(tmp_path) == ["RO", "folder.h5", "some.tsv"]


def test_a_text_file_named_model_keras_is_not_a_keras_archive(run, tmp_path, one_line_error):
    fake = tmp_path / "run" / "model.keras"
    fake.parent.mkdir()
    fake.write_text("this is not a model\n")
    one_line_error(_cli("--model", fake, "--features", run["test"], "--out", tmp_path / "s.h5"),
                   f"{fake}: not a Keras archive")
    assert not (tmp_path / "s.h5").exists()


# --------------------------------------------------------------------------
# silent wrong results refused (issue 9 items 4 and 8)
# --------------------------------------------------------------------------
def test_one_nan_in_the_features_is_refused(run, tmp_path):
    """One NaN in features[0, 0, 0, 0] gave finite scores for every clip."""
    feats = poke(shutil.copyfile(run["test"], tmp_path / "nan.h5"), "features", (0, 0, 0, 0), np.nan)
    with pytest.raises(ArtifactError, match=rf"nan\.h5: features of clip {CLASSES[0]}-paris-0-10-a \(row 0\) "
                                            r"contain NaN or Inf"):
        predict(run["run"] / "model.keras", feats, tmp_path / "s.h5", batch_size=16)
    # another instance: an Inf in a later batch
    feats = poke(shutil.copyfile(run["test"], tmp_path / "inf.h5"), "features", (37, 5, 9, 2), np.inf)
    with pytest.raises(ArtifactError, match=r"inf\.h5: features of clip .* \(row 37\) contain NaN or Inf"):
        predict(run["run"] / "model.keras", feats, tmp_path / "s.h5", batch_size=16)
    assert not (tmp_path / "s.h5").exists()


def test_a_combined_file_moved_away_from_its_shards_is_refused(run, tmp_path):
    """It read as all NaN: identical scores for every clip, exit 0."""
    from asctool.shards import combine_features

    shards = tmp_path / "shards"
    shards.mkdir()
    make_features(shards / "s1.h5", 8, seed=1, city="paris")
    make_features(shards / "s2.h5", 8, seed=2, city="rome")
    combine_features([shards / "s1.h5", shards / "s2.h5"], shards / "all.h5")
    predict(run["run"] / "model.keras", shards / "all.h5", tmp_path / "ok.h5")
    (shards / "all.h5").rename(tmp_path / "all.h5")
    with pytest.raises(ArtifactError, match=r"all\.h5: its features are a virtual dataset over shard .*s1\.h5, "
                                            r"which is missing; .*h5repack"):
        predict(run["run"] / "model.keras", tmp_path / "all.h5", tmp_path / "s.h5")
    assert not (tmp_path / "s.h5").exists()


def test_a_corrupted_tflite_is_refused_by_its_size_json_checksum(run, tmp_path):
    """2,000 corrupted bytes in a .tflite still ran, with scores off by a little."""
    from asctool.inference import load_runner
    from asctool.stages.quantize import run as quantize

    lite = tmp_path / "q" / "model.tflite"
    quantize(run["run"] / "model.keras", lite)
    predict(lite, run["test"], tmp_path / "ok.h5")
    original = lite.read_bytes()
    content = bytearray(original)
    middle = len(content) // 2
    content[middle:middle + 2000] = bytes(b ^ 1 for b in content[middle:middle + 2000])
    lite.write_bytes(bytes(content))
    with pytest.raises(ArtifactError, match=r"model\.tflite: SHA-256 .* differs from .* recorded in .*q/size\.json"):
        predict(lite, run["test"], tmp_path / "s.h5")
    assert not (tmp_path / "s.h5").exists()
    # another instance: a file that grew (bytes appended), loaded by the runner predict uses
    lite.write_bytes(bytes(content) + b"\0" * 64)
    with pytest.raises(ArtifactError, match="differs from"):
        load_runner(lite)
    # the intact file passes; a .tflite without a size.json (from elsewhere) is used as it is
    lite.write_bytes(original)
    load_runner(lite)
    (lite.parent / "size.json").unlink()
    lite.write_bytes(bytes(content))
    load_runner(lite)


def test_scores_carry_the_label_map_the_model_was_trained_with(run, tmp_path):
    """(issue 14) so that score (and fuse) map the reference labels without --labels."""
    import zipfile

    from asctool.runs import embed_keras_metadata
    from asctool.scoring import carried_label_map
    from asctool.stages.score import run as score

    mapping = {c: c for c in CLASSES}          # a map to the same classes keeps the model's outputs meaningful
    mapped = tmp_path / "mapped.keras"
    with zipfile.ZipFile(run["run"] / "model.keras") as source, zipfile.ZipFile(mapped, "w") as target:
        for item in source.infolist():
            if item.filename != "asctool.json":
                target.writestr(item, source.read(item.filename))
    embed_keras_metadata(mapped, {**read_model_metadata(run["run"] / "model.keras"), "label_map": mapping})
    predict(mapped, run["test"], tmp_path / "s.h5")
    scores = read_scores(tmp_path / "s.h5")
    assert carried_label_map(scores.attrs, scores.path) == mapping
    assert score(tmp_path / "s.h5")["labels"] == "the map the scores carry (their model's --labels)"
    predict(run["run"] / "model.keras", run["test"], tmp_path / "plain.h5")
    assert "label_map" not in read_scores(tmp_path / "plain.h5").attrs


# --------------------------------------------------------------------------
# embeddings (mlp on frames) and linear back-ends (RUN/model.json)
# --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def shallow(tmp_path_factory) -> dict:
    from asctool.stages.train import run as train

    from helpers import make_embeddings

    root = tmp_path_factory.mktemp("shallow")
    emb = make_embeddings(root / "train.h5", 40, frames=4, dim=8, seed=0)
    feats = make_features(root / "feats.h5", 40, seed=0)
    train([emb], "mlp", root / "mlp", epochs=3, seed=0)
    train([emb], "logreg", root / "logreg")
    train([feats], "logreg", root / "probe")
    return {"root": root, "emb": emb, "feats": feats}


def test_predict_collapses_frame_probabilities_by_id(shallow, tmp_path):
    """Scores per clip id equal the model's frame probabilities collapsed by hand (clips in another order)."""
    from asctool.models import load_model

    from helpers import make_embeddings

    values = np.random.default_rng(5).normal(3.0, 1.0, (6, 4, 8))
    ids = [f"clip{k}" for k in (5, 3, 0, 4, 1, 2)]
    test = make_embeddings(tmp_path / "test.h5", 6, frames=4, dim=8, values=values, ids=ids,
                           scenes=["bus", "park", "tram", "airport", "bus", "park"])
    model = load_model(shallow["root"] / "mlp" / "model.keras")
    for method, reduce in (("sum", lambda p: p.sum(axis=0)), ("max", lambda p: p.max(axis=0))):
        out = tmp_path / f"{method}.h5"
        summary = predict(shallow["root"] / "mlp" / "model.keras", test, out, batch_size=4, collapse=method)
        scores = read_scores(out).reindex(sorted(ids))
        assert scores.attrs["collapse"] == method and scores.classes == list(CLASSES)
        for row, clip in enumerate(sorted(ids)):
            frame_probs = np.asarray(model(values[ids.index(clip)].astype(np.float32)), dtype=np.float64)
            expected = reduce(frame_probs) / reduce(frame_probs).sum()
            np.testing.assert_allclose(scores.scores[row], expected, rtol=1e-4, atol=1e-6)
        assert summary["clips"] == 6 and 0 <= summary["accuracy"] <= 1


def test_predict_with_a_linear_run(shallow, tmp_path):
    from asctool.artifacts import open_embeddings, open_features
    from asctool.backends import LinearModel, clip_summaries

    from helpers import make_embeddings

    for run_name, make, opener, kind in (("logreg", make_embeddings, open_embeddings, "embeddings"),
                                         ("probe", make_features, open_features, "features")):
        test = make(tmp_path / f"{run_name}_test.h5", 20, seed=9, city="paris",
                    **({"frames": 4, "dim": 8} if kind == "embeddings" else {}))
        out = tmp_path / f"{run_name}.h5"
        summary = predict(shallow["root"] / run_name / "model.json", test, out)
        model = LinearModel.load(shallow["root"] / run_name / "model.json")
        with opener(test) as f:
            expected = model.predict_proba(clip_summaries(f, kind))
        np.testing.assert_allclose(read_scores(out).scores, expected, rtol=1e-5, atol=1e-6)
        assert summary["accuracy"] >= 0.9, run_name


def test_predict_refuses_the_wrong_kind_of_input(shallow, run, tmp_path):
    from asctool.artifacts import read_kind

    from helpers import make_embeddings

    other = make_embeddings(tmp_path / "other.h5", 4, frames=4, dim=8, extractor={"name": "other"})
    cases = [
        (run["run"] / "model.keras", shallow["emb"], MismatchError, "holds embeddings; .* reads features"),
        (shallow["root"] / "mlp" / "model.keras", shallow["feats"], MismatchError,
         "a features file; .*model.keras was trained on embeddings"),
        (shallow["root"] / "probe" / "model.json", shallow["emb"], MismatchError,
         "an? embeddings file; .*model.json was trained on features"),
        (shallow["root"] / "mlp" / "model.keras", other, MismatchError, "configs of .* differ: .*name: .test. vs .other."),
    ]
    for model, features, error, pattern in cases:
        out = tmp_path / "s.h5"
        with pytest.raises(error, match=pattern) as caught:
            predict(model, features, out)
        assert "\n" not in str(caught.value) and not out.exists()
    assert read_kind(shallow["emb"]) == "embeddings"


def test_cli_predict_collapse(shallow, tmp_path, one_line_error):
    from click.testing import CliRunner

    from asctool.cli import cli

    args = ["predict", "--model", str(shallow["root"] / "mlp" / "model.keras"), "--features", str(shallow["emb"])]
    done = CliRunner().invoke(cli, [*args, "--out", str(tmp_path / "s.h5"), "--collapse", "mean"])
    assert done.exit_code == 0, done.output
    one_line_error(CliRunner().invoke(cli, [*args, "--out", str(tmp_path / "t.h5"), "--collapse", "vote"]),
                   "'vote' is not one of", code=2)
