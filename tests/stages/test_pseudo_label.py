"""The pseudo-label stage: exactly the clips where both labellers agree with confidence, written as features."""
from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from asctool.artifacts import FeaturesWriter, open_features
from asctool.errors import ArtifactError, ConfigError
from asctool.training.adversarial import select_pseudo_labels

from helpers import CONFIG  # noqa: E402

CLASSES = ["bus", "park", "tram"]
SHAPE = (3, 2, 1)
# clip: labeller 1, labeller 2 probabilities; the hand-made verdict at threshold 0.5
P1 = np.array([[0.8, 0.1, 0.1],    # c0 bus/bus, both > .5             keep bus
               [0.6, 0.3, 0.1],    # c1 bus/park: disagree             drop
               [0.1, 0.7, 0.2],    # c2 park/park, F2 .45 <= .5        drop
               [0.2, 0.2, 0.6],    # c3 tram/tram .6, .9               keep tram
               [0.5, 0.4, 0.1],    # c4 bus/bus, F1 exactly .5         drop (must exceed)
               [0.1, 0.85, 0.05]]) # c5 park/park .85/.55              keep park
P2 = np.array([[0.7, 0.2, 0.1],
               [0.3, 0.6, 0.1],
               [0.35, 0.45, 0.2],
               [0.05, 0.05, 0.9],
               [0.9, 0.05, 0.05],
               [0.25, 0.55, 0.2]])
KEPT = [0, 3, 5]


def test_select_keeps_exactly_the_agreeing_confident_clips():
    keep, labels = select_pseudo_labels(P1, P2, 0.5)
    assert np.flatnonzero(keep).tolist() == KEPT
    assert labels[keep].tolist() == [0, 2, 1]
    keep, _ = select_pseudo_labels(P1, P2, 0.0)
    assert np.flatnonzero(keep).tolist() == [0, 2, 3, 4, 5]
    with pytest.raises(ValueError, match="expected two equal"):
        select_pseudo_labels(P1, P2[:, :2], 0.5)


def _labellers_run(folder, name="labellers.keras"):
    """A run folder whose labellers.keras outputs, for clip i (features all equal to i), rows P1[i] and P2[i].

    The features of clip i are the one-hot of i over 6 values laid out as (3, 2, 1); a Dense layer without
    bias then picks row i of its kernel: the probabilities themselves (softmax of their logs).
    """
    import keras

    from asctool.runs import embed_keras_metadata

    folder.mkdir()
    inputs = keras.Input(shape=SHAPE)
    flat = keras.layers.Flatten()(inputs)
    outs = []
    for layer_name, probs in (("ft", P1), ("l1", P1), ("l2", P2)):
        dense = keras.layers.Dense(3, use_bias=False, name=layer_name)
        outs.append(keras.layers.Softmax()(dense(flat)))
        dense.set_weights([np.log(probs).astype("float32")])
    model = keras.Model(inputs, outs, name="labellers")
    config = {"classes": CLASSES, "frontend_config": CONFIG, "input_shape": list(SHAPE), "model": "hand", "labels": "scene",
              "label_map": None}
    model.save(folder / name)
    embed_keras_metadata(folder / name, config)
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def _features(path, scenes):
    with FeaturesWriter(path, n=6, feature_shape=SHAPE, config=CONFIG, ids=[f"c{i}" for i in range(6)],
                        scenes=scenes, devices=["a", "s4", "s4", "s5", "a", "s4"], dtype="float32") as writer:
        for i in range(6):
            writer.write(i, np.eye(6, dtype="float32")[i].reshape(SHAPE))
    return path


def test_stage_writes_the_kept_clips_with_labels_and_confidences(tmp_path):
    from asctool.cli import cli
    from asctool.stages.pseudo_label import run

    folder = _labellers_run(tmp_path / "run")
    truth = ["bus", "bus", "park", "park", "bus", "park"]     # c3's pseudo-label tram is wrong
    feats = _features(tmp_path / "unl.h5", truth)
    summary = run(folder, feats, tmp_path / "pseudo.h5")
    assert summary["kept"] == 3 and summary["clips"] == 6 and summary["coverage"] == pytest.approx(0.5)
    assert summary["precision"] == pytest.approx(2 / 3)
    assert summary["per_device"]["s4"] == {"clips": 3, "kept": 1, "precision": 1.0}
    assert summary["per_device"]["s5"] == {"clips": 1, "kept": 1, "precision": 0.0}
    with open_features(tmp_path / "pseudo.h5") as f:
        assert list(f.ids) == ["c0", "c3", "c5"] and list(f.scenes) == ["bus", "tram", "park"]
        np.testing.assert_array_equal(f.features[1], np.eye(6)[3].reshape(SHAPE))
    with h5py.File(tmp_path / "pseudo.h5") as h:
        np.testing.assert_allclose(h["confidence1"][:], [0.8, 0.6, 0.85], rtol=1e-5)
        np.testing.assert_allclose(h["confidence2"][:], [0.7, 0.9, 0.55], rtol=1e-5)
        assert [s.decode() for s in h["reference_scene"][:]] == ["bus", "park", "park"]
    # unlabelled input: no precision; the CLI
    _features(tmp_path / "bare.h5", None)
    result = CliRunner().invoke(cli, ["pseudo-label", "--model", str(folder), "--features", str(tmp_path / "bare.h5"),
                                      "--threshold", "0.5", "--out", str(tmp_path / "p2.h5")])
    assert result.exit_code == 0, result.output
    assert "precision" not in result.output and (tmp_path / "p2.h5").is_file()


def test_refusals_write_nothing(tmp_path):
    from asctool.stages.pseudo_label import run

    feats = _features(tmp_path / "unl.h5", None)
    (tmp_path / "plain").mkdir()
    with pytest.raises(ConfigError, match="plain: no labellers.keras; pseudo-labels need a run trained with --tri-training"):
        run(tmp_path / "plain", feats, tmp_path / "p.h5")
    folder = _labellers_run(tmp_path / "run")
    with pytest.raises(ArtifactError, match="agree above 0.95 on no clip"):
        run(folder, feats, tmp_path / "p.h5", threshold=0.95)
    with pytest.raises(ConfigError, match="--threshold 1.0"):
        run(folder, feats, tmp_path / "p.h5", threshold=1.0)
    assert not (tmp_path / "p.h5").exists()


def test_a_run_without_validation_uses_the_last_labellers(tmp_path):
    from asctool.stages.pseudo_label import run

    folder = _labellers_run(tmp_path / "run", "labellers-last.keras")
    summary = run(folder, _features(tmp_path / "unl.h5", None), tmp_path / "p.h5")
    assert summary["kept"] == 3
