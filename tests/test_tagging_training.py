"""``train --task tagging`` (asctool.training.tagging): multi-label features, sigmoid outputs, BCE, mAP."""
from __future__ import annotations

import json

import numpy as np
import pytest

from asctool.artifacts import FeaturesWriter, open_features
from asctool.shards import combine_features
from asctool.errors import ArtifactError, ConfigError
from asctool.runs import read_model_metadata

SHAPE = (24, 20, 1)
EVENTS = ("dog", "engine", "siren")


def make_tagged_features(path, n=60, seed=0, city="lyon", with_tags=True):
    """Event k present: frequency band k bright. Each clip draws each event with probability 0.5."""
    rng = np.random.default_rng(seed)
    present = rng.uniform(size=(n, len(EVENTS))) < 0.5
    labels = [";".join(e for e, p in zip(EVENTS, row) if p) for row in present]
    ids = [f"clip-{city}-{seed}-{i}" for i in range(n)]
    with FeaturesWriter(path, n=n, feature_shape=SHAPE, config={"preset": "test"}, ids=ids,
                        scenes=["park"] * n, devices=["a"] * n, locations=[f"{city}-{i % 6}" for i in range(n)],
                        tags=labels if with_tags else None) as w:
        for i in range(n):
            x = rng.normal(0.2, 0.1, SHAPE)
            for k in np.flatnonzero(present[i]):
                x[k * 8:(k + 1) * 8] += 0.8
            w.write(i, x)
    return path, present


def test_features_carry_event_labels_through_combine(tmp_path):
    a, present = make_tagged_features(tmp_path / "a.h5", n=5)
    b, _ = make_tagged_features(tmp_path / "b.h5", n=4, seed=1, city="paris")
    combined = combine_features([a, b], tmp_path / "all.h5")
    with open_features(a) as f:
        assert f.tags[0] == ";".join(e for e, p in zip(EVENTS, present[0]) if p)
    with open_features(combined) as f:
        assert len(f.tags) == 9


@pytest.mark.slow
def test_tagger_learns_bands_and_its_run_folder_serves_as_tagger(tmp_path):
    from asctool.models import load_model
    from asctool.stages.train import run as train
    from asctool.tagging.metrics import mean_average_precision

    data, _ = make_tagged_features(tmp_path / "train.h5", n=96)
    test, present = make_tagged_features(tmp_path / "test.h5", n=40, seed=5, city="paris")
    summary = train([data], "fcnn", tmp_path / "run", task="tagging", profile="demo", epochs=8, batch_size=16,
                    valid_split=0.25, seed=1, width=0.25)
    assert summary["task"] == "tagging" and summary["tags"] == 3 and summary["n_train"] + summary["n_valid"] == 96
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["classes"] == list(EVENTS) and config["loss"] == "binary_crossentropy"
    metadata = read_model_metadata(tmp_path / "run" / "model.keras")
    assert metadata["task"] == "tagging" and metadata["classes"] == list(EVENTS)
    model = load_model(tmp_path / "run" / "model.keras")
    assert model.layers[-1].name == "sigmoid"
    with open_features(test) as f:
        scores = np.asarray(model.predict_on_batch(f.features[()].astype(np.float32)))
    assert scores.shape == (40, 3) and ((scores >= 0) & (scores <= 1)).all()
    assert not np.allclose(scores.sum(axis=1), 1.0)  # independent probabilities, not a softmax
    assert mean_average_precision(present, scores)[0] > 0.9
    history = (tmp_path / "run" / "history.tsv").read_text().splitlines()
    assert history[0].split("\t") == ["epoch", "loss", "val_loss", "val_mAP"] and len(history) == 9


def test_refusals_in_one_line_before_anything_is_written(tmp_path):
    from asctool.stages.train import run as train

    bare, _ = make_tagged_features(tmp_path / "bare.h5", n=8, with_tags=False)
    with pytest.raises(ArtifactError, match="bare.h5: no event labels .'tags' dataset.; featurize a manifest"):
        train([bare], "fcnn", tmp_path / "run", task="tagging", epochs=1)
    data, _ = make_tagged_features(tmp_path / "d.h5", n=8)
    with pytest.raises(ConfigError, match="--task tagging does not take --snapshots"):
        train([data], "fcnn", tmp_path / "run", task="tagging", epochs=1, snapshots=2)
    with pytest.raises(ConfigError, match="--task 'events': choose scene or tagging"):
        train([data], "fcnn", tmp_path / "run", task="events", epochs=1)
    assert not (tmp_path / "run").exists()


def _history(run):
    return (run / "history.tsv").read_text().splitlines()


@pytest.mark.slow
def test_a_killed_tagging_run_resumes_at_the_next_epoch(tmp_path, monkeypatch):
    from asctool.stages.train import run as train
    from asctool.training import tagging
    from asctool.training.trainer import SimulatedKill

    data, _ = make_tagged_features(tmp_path / "d.h5", n=12)
    settings = dict(task="tagging", profile="demo", epochs=3, batch_size=4, valid_split=0.34, seed=2, width=0.125)
    whole = train([data], "fcnn", tmp_path / "whole", **settings)
    assert whole["epochs"] == 3 and whole["stopped_early"] is False

    real = tagging._checkpoint_epoch

    def killed_after_2(model, out_dir, state, row, epoch, *args):
        real(model, out_dir, state, row, epoch, *args)
        if epoch == 2:
            raise SimulatedKill()

    monkeypatch.setattr(tagging, "_checkpoint_epoch", killed_after_2)
    with pytest.raises(SimulatedKill):
        train([data], "fcnn", tmp_path / "run", **settings)
    run = tmp_path / "run"
    assert not (run / "model.keras").exists()   # written once, at the end
    assert sorted(p.name for p in (run / "checkpoint").iterdir()) == ["best.keras", "epoch-0002.keras"]
    assert json.loads((run / "state.json").read_text())["epoch"] == 2
    monkeypatch.setattr(tagging, "_checkpoint_epoch", real)
    with pytest.raises(ConfigError, match="already holds a run"):
        train([data], "fcnn", run, **settings)
    with pytest.raises(ConfigError, match=r"config.json: --resume with another epochs \(3 in the run, 4 now\)"):
        train([data], "fcnn", run, **{**settings, "epochs": 4}, resume=True)
    resumed = train([data], "fcnn", run, **settings, resume=True)
    assert resumed["epochs"] == 3 and (run / "model.keras").is_file()
    # the epochs before the kill are the uninterrupted run's (same seed, same batch order)
    assert _history(run)[:3] == _history(tmp_path / "whole")[:3] and len(_history(run)) == 4
    assert "resuming" in (run / "train.log").read_text()
    assert [p.name for p in (run / "checkpoint").glob("epoch-*.keras")] == ["epoch-0003.keras"]


@pytest.mark.slow
def test_tagging_early_stopping_keeps_the_best_epoch(tmp_path, monkeypatch):
    from asctool.stages.train import run as train
    from asctool.training import tagging

    maps = iter([0.9, 0.5, 0.4, 0.3, 0.2])   # validation mAP per epoch: best at epoch 1
    monkeypatch.setattr(tagging, "mean_average_precision", lambda y, s: (next(maps), None))
    data, _ = make_tagged_features(tmp_path / "d.h5", n=12)
    summary = train([data], "fcnn", tmp_path / "run", task="tagging", profile="demo", epochs=5, batch_size=4,
                    valid_split=0.34, seed=0, width=0.125, early_stopping=True, patience=2)
    assert summary["stopped_early"] is True and summary["epochs"] == 3 and summary["best_epoch"] == 1
    assert [row.split("\t")[0] for row in _history(tmp_path / "run")[1:]] == ["1", "2", "3"]
    with open_features(data) as f:
        x = f.features[:2].astype(np.float32)
    from asctool.models import load_model
    best = load_model(tmp_path / "run" / "checkpoint" / "best.keras").predict_on_batch(x)
    np.testing.assert_array_equal(load_model(tmp_path / "run" / "model.keras").predict_on_batch(x), best)
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["early_stopping"] is True and config["patience"] == 2
