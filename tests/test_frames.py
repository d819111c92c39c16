"""Tests of asctool.training.frames: collapse, hold-out, routing, the mlp's training protocol."""
from __future__ import annotations

import json

import numpy as np
import pytest

from asctool.errors import ConfigError
from asctool.training import frames
from asctool.training.trainer import resolve_profile

from helpers import make_embeddings, make_features


def test_collapse_on_hand_made_frame_probabilities():
    p = np.array([[[0.6, 0.4], [0.2, 0.8], [0.5, 0.5]],     # clip 1: sums 1.3 1.7, maxima .6 .8
                  [[0.9, 0.1], [0.9, 0.1], [0.0, 1.0]]])    # clip 2: sums 1.8 1.2, maxima .9 1.0
    np.testing.assert_allclose(frames.collapse(p, "sum"), [[1.3 / 3, 1.7 / 3], [0.6, 0.4]])
    np.testing.assert_allclose(frames.collapse(p, "mean"), frames.collapse(p, "sum"))
    np.testing.assert_allclose(frames.collapse(p, "max"), [[0.6 / 1.4, 0.8 / 1.4], [0.9 / 1.9, 1.0 / 1.9]])
    assert frames.collapse(p, "sum").argmax(axis=1).tolist() == [1, 0]
    assert frames.collapse(p, "max").argmax(axis=1).tolist() == [1, 1]   # the choice matters
    with pytest.raises(ConfigError, match="--collapse 'vote': choose from sum, mean, max"):
        frames.collapse(p, "vote")


def test_stratified_hold_out():
    labels = np.repeat([0, 1, 2, 3], [30, 30, 20, 20])
    mask = frames.stratified_hold_out(labels, 0.1, 0, "x.h5")
    assert mask.sum() == 10
    assert [int(mask[labels == k].sum()) for k in range(4)] == [3, 3, 2, 2]
    np.testing.assert_array_equal(mask, frames.stratified_hold_out(labels, 0.1, 0, "x.h5"))
    assert not np.array_equal(mask, frames.stratified_hold_out(labels, 0.1, 1, "x.h5"))
    with pytest.raises(ConfigError, match=r"^x\.h5: cannot hold out 10% of the clips stratified by class .*"
                                          r"give --valid FILE$"):
        frames.stratified_hold_out(np.array([0, 0, 0, 1]), 0.1, 0, "x.h5")


def test_route(tmp_path):
    emb = make_embeddings(tmp_path / "e.h5", 8)
    feats = make_features(tmp_path / "f.h5", 8)
    assert frames.route(emb, "mlp") == "frames"
    assert frames.route(emb, "logreg") == frames.route(feats, "logreg") == "linear"
    assert frames.route(feats, "fcnn") is None
    with pytest.raises(ConfigError, match=r"e\.h5: holds embeddings; model 'fcnn' reads features"):
        frames.route(emb, "fcnn")
    with pytest.raises(ConfigError, match=r"f\.h5: model 'mlp' reads embedding frames \(asctool embed\), "
                                          r"not a features file"):
        frames.route(feats, "mlp")


def test_profiles():
    assert resolve_profile("dcase2020-baseline", "mlp")["epochs"] == 200
    assert resolve_profile("dcase2020-baseline", "mlp")["batch_size"] == 64
    assert frames.FRAME_PROFILES["dcase2020-baseline"] == {"lr": 1e-3, "patience": None}
    paper = resolve_profile("paper", "mlp")
    assert (paper["epochs"], paper["batch_size"], frames.FRAME_PROFILES["paper"]["patience"]) == (50, 64, 20)
    assert frames.GRID == (1e-5, 1e-4, 1e-3) and frames.HOLD_OUT == 0.1


def test_mlp_learns_from_frames_with_training_statistics_stored(tmp_path):
    from asctool.models import load_model
    from asctool.stages.train import run as train

    data = make_embeddings(tmp_path / "train.h5", 40, frames=4, dim=8, seed=0)
    valid = make_embeddings(tmp_path / "valid.h5", 12, frames=4, dim=8, seed=1, city="paris")
    summary = train([data], "mlp", tmp_path / "run", valid_path=valid, epochs=4, seed=2)
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["inputs"] == "embeddings" and config["input_shape"] == [8] and config["n_train_frames"] == 160
    assert config["valid_protocol"] == "file" and config["lr"] == 1e-3 and config["patience"] == 20
    assert summary["n_train"] == 40 and summary["n_valid"] == 12 and summary["epochs_run"] == 4
    model = load_model(tmp_path / "run" / "model.keras")
    mean, variance, _ = model.get_layer("standardise").get_weights()
    import h5py
    with h5py.File(data) as handle:
        x = handle["embeddings"][()].reshape(-1, 8).astype(np.float64)
    np.testing.assert_allclose(mean, x.mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(variance, x.var(axis=0), rtol=1e-4)
    history = (tmp_path / "run" / "history.tsv").read_text().splitlines()
    assert len(history) == 5 and history[0].startswith("epoch\tlr\tloss")
    assert summary["best_val_accuracy"] >= 0.75 and summary["best_epoch"] in range(4)


def test_early_stopping_keeps_the_best_epoch(tmp_path, monkeypatch):
    """Constant frames cannot improve validation accuracy after the first epoch: patience 2 stops at 3 epochs."""
    from asctool.stages.train import run as train

    monkeypatch.setitem(frames.FRAME_PROFILES, "paper", {"lr": 1e-3, "patience": 2})
    data = make_embeddings(tmp_path / "train.h5", 40, frames=2, dim=4, values=np.ones((40, 2, 4)))
    summary = train([data], "mlp", tmp_path / "run", epochs=30, seed=0)
    assert summary["epochs_run"] == 3 and summary["best_epoch"] == 0
    assert summary["n_valid"] == 4   # 10 % of 40 clips, stratified by class


@pytest.mark.slow
def test_grid_chooses_the_pair_with_the_best_validation_accuracy(tmp_path):
    from asctool.stages.train import run as train

    data = make_embeddings(tmp_path / "train.h5", 40, frames=2, dim=8)
    summary = train([data], "mlp", tmp_path / "run", epochs=3, seed=0, grid=True)
    rows = [line.split("\t") for line in (tmp_path / "run" / "grid.tsv").read_text().splitlines()]
    assert rows[0] == ["lr", "weight_decay", "epochs_run", "best_epoch", "val_accuracy"]
    pairs = [(float(r[0]), float(r[1])) for r in rows[1:]]
    assert pairs == [(lr, wd) for lr in frames.GRID for wd in frames.GRID]
    accuracies = [float(r[4]) for r in rows[1:]]
    assert (summary["lr"], summary["weight_decay"]) == pairs[int(np.argmax(accuracies))]
    assert summary["best_val_accuracy"] == pytest.approx(max(accuracies), abs=1e-6)
    assert json.loads((tmp_path / "run" / "config.json").read_text())["lr"] is None
