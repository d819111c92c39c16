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
