"""asctool.runs: model metadata inside .keras and .tflite files; run folders."""
from __future__ import annotations

import json

import numpy as np
import pytest

from asctool.errors import ArtifactError, ConfigError
from asctool.runs import (
    MODEL_METADATA_KEYS,
    check_run_dir,
    embed_keras_metadata,
    embed_tflite_metadata,
    read_model_metadata,
    write_history,
)

METADATA = {"model": "toy", "classes": ["bus", "park"], "labels": "scene", "label_map": None,
            "frontend_config": {"n_mels": 4}, "input_shape": [4, 6, 1]}


@pytest.fixture(scope="module")
def toy_model():
    import keras

    keras.utils.set_random_seed(0)
    return keras.Sequential([keras.Input((4, 6, 1)), keras.layers.Flatten(),
                             keras.layers.Dense(2, activation="softmax")])


def test_keras_metadata_round_trip_and_the_model_still_loads(toy_model, tmp_path):
    import keras

    path = tmp_path / "m.keras"
    toy_model.save(path)
    embed_keras_metadata(path, METADATA)
    assert read_model_metadata(path) == METADATA
    x = np.random.default_rng(0).normal(size=(3, 4, 6, 1)).astype(np.float32)
    np.testing.assert_allclose(keras.saving.load_model(path).predict(x, verbose=0),
                               toy_model.predict(x, verbose=0), rtol=1e-6)
    with pytest.raises(ArtifactError, match="already holds"):
        embed_keras_metadata(path, METADATA)


def test_tflite_metadata_round_trip_and_identical_outputs(toy_model, tmp_path):
    import tensorflow as tf

    from asctool.inference import load_runner

    plain = tf.lite.TFLiteConverter.from_keras_model(toy_model).convert()
    (tmp_path / "plain.tflite").write_bytes(plain)
    (tmp_path / "meta.tflite").write_bytes(embed_tflite_metadata(plain, METADATA))
    assert read_model_metadata(tmp_path / "meta.tflite") == METADATA
    assert read_model_metadata(tmp_path / "plain.tflite", required=False) is None
    x = np.random.default_rng(1).normal(size=(1, 4, 6, 1)).astype(np.float32)
    np.testing.assert_array_equal(load_runner(tmp_path / "meta.tflite")(x), load_runner(tmp_path / "plain.tflite")(x))


def test_metadata_errors_name_the_file(tmp_path):
    (tmp_path / "text.keras").write_text("not a zip")
    with pytest.raises(ArtifactError, match=r"text\.keras: not a Keras archive"):
        read_model_metadata(tmp_path / "text.keras")
    (tmp_path / "m.onnx").write_bytes(b"")
    with pytest.raises(ArtifactError, match=r"expected a \.keras or \.tflite"):
        read_model_metadata(tmp_path / "m.onnx")
    assert set(MODEL_METADATA_KEYS) == set(METADATA)


def test_check_run_dir(tmp_path):
    check_run_dir(tmp_path, resume=False, force=False)           # empty: fine
    with pytest.raises(ConfigError, match="nothing to resume"):
        check_run_dir(tmp_path, resume=True, force=False)
    (tmp_path / "config.json").write_text(json.dumps(METADATA))
    with pytest.raises(ConfigError, match=r"already holds a run \(config\.json\)"):
        check_run_dir(tmp_path, resume=False, force=False)
    check_run_dir(tmp_path, resume=False, force=True)
    check_run_dir(tmp_path, resume=True, force=False)
    with pytest.raises(ConfigError, match="exclude each other"):
        check_run_dir(tmp_path, resume=True, force=True)


def test_write_history(tmp_path):
    write_history(tmp_path / "h.tsv", [{"epoch": 0, "lr": 0.1, "loss": 1.234567891, "accuracy": 0.5}])
    assert (tmp_path / "h.tsv").read_text().splitlines() == [
        "epoch\tlr\tloss\taccuracy\tval_loss\tval_accuracy", "0\t0.1\t1.23457\t0.5\t\t"]
