"""Tests of the linear back-ends: clip vectors, the scikit-learn fit, the JSON model file."""
from __future__ import annotations

import json

import numpy as np
import pytest

from asctool import backends
from asctool.artifacts import open_embeddings, open_features
from asctool.errors import ArtifactError, ConfigError

from helpers import make_embeddings, make_features


def test_probe_vectors_are_band_mean_and_std_per_channel(tmp_path):
    path = make_features(tmp_path / "f.h5", 5, shape=(6, 9, 2), dtype="float32")
    with open_features(path) as f:
        got = backends.clip_summaries(f, "features", batch=2)
        raw = f.features[()].astype(np.float64)
    assert got.shape == (5, 2 * 6 * 2)
    for i in range(5):
        expected = []
        for c in range(2):
            expected += [raw[i, b, :, c].mean() for b in range(6)] + [raw[i, b, :, c].std() for b in range(6)]
        np.testing.assert_allclose(got[i], expected, rtol=1e-12)


def test_embedding_vectors_are_frame_means(tmp_path):
    values = np.random.default_rng(1).normal(size=(4, 3, 5))
    path = make_embeddings(tmp_path / "e.h5", 4, frames=3, dim=5, values=values)
    with open_embeddings(path) as f:
        got = backends.clip_summaries(f, "embeddings", batch=3)
    np.testing.assert_allclose(got, values.astype(np.float32).astype(np.float64).mean(axis=1), rtol=1e-12)


@pytest.mark.parametrize("n_classes", [2, 4])
def test_logreg_gives_scikit_learns_probabilities(n_classes):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(0)
    y = np.arange(60) % n_classes
    x = rng.normal(size=(60, 7)) * [1, 2, 3, 4, 5, 6, 7] + 10
    x[np.arange(60), y] += 3
    coef, intercept, mean, scale, info = backends.spec("logreg").fit(x, y, n_classes, seed=0, c=0.5)
    model = backends.LinearModel(coef, intercept, mean, scale, {"classes": [str(k) for k in range(n_classes)]})
    reference = make_pipeline(StandardScaler(), LogisticRegression(C=0.5, max_iter=2000)).fit(x, y)
    test = rng.normal(size=(10, 7)) * 3 + 10
    np.testing.assert_allclose(model.predict_proba(test), reference.predict_proba(test), atol=1e-6)
    assert coef.shape == (n_classes, 7) and info["converged"]


def _model(tmp_path):
    model = backends.LinearModel(np.eye(3, 4), np.zeros(3), np.ones(4), np.full(4, 2.0),
                                 {"classes": ["a", "b", "c"], "inputs": "embeddings", "frontend_config": {"x": 1},
                                  "input_shape": [5, 4], "model": "logreg"})
    path = tmp_path / "model.json"
    model.save(path)
    return model, path


def test_model_file_round_trip(tmp_path):
    model, path = _model(tmp_path)
    record = json.loads(path.read_text())
    assert record["format"] == "asctool linear model" and record["coef"][0] == [1, 0, 0, 0]
    again = backends.LinearModel.load(path)
    x = np.random.default_rng(0).normal(size=(3, 4))
    np.testing.assert_array_equal(again.predict_proba(x), model.predict_proba(x))
    assert again.classes == ["a", "b", "c"] and again.metadata["frontend_config"] == {"x": 1}


@pytest.mark.parametrize("edit,message", [
    (lambda r: "not json", "not a readable JSON file"),
    (lambda r: {**r, "format": "pickle"}, 'not an asctool linear model'),
    (lambda r: {k: v for k, v in r.items() if k != "scale"}, "linear model lacks scale"),
    (lambda r: {**r, "coef": [[1, 2]]}, "inconsistent linear model (coef (1, 2)"),
    (lambda r: {**r, "scale": [1, 0, 1, 1]}, "inconsistent linear model"),
    (lambda r: {**r, "coef": "x"}, "weights are not numeric arrays"),
])
def test_bad_model_files_are_one_line(tmp_path, edit, message):
    _, path = _model(tmp_path)
    changed = edit(json.loads(path.read_text()))
    path.write_text(changed if isinstance(changed, str) else json.dumps(changed))
    with pytest.raises(ArtifactError) as caught:
        backends.LinearModel.load(path)
    assert str(caught.value).startswith(f"{path}: ") and message in str(caught.value)
    assert "\n" not in str(caught.value)
    with pytest.raises(ArtifactError, match="model file not found"):
        backends.LinearModel.load(tmp_path / "missing.json")


def test_options_are_checked():
    assert backends.check_options("logreg", {"c": "2", "max_iter": "50"}) == {"c": 2.0, "max_iter": 50}
    with pytest.raises(ConfigError, match="unknown option.*gamma; known options: c, max_iter"):
        backends.check_options("logreg", {"gamma": 1})
    with pytest.raises(ConfigError, match="option c='x' is not a valid float"):
        backends.check_options("logreg", {"c": "x"})
    with pytest.raises(ConfigError, match="unknown back-end 'xgboost'; known: logreg, svm"):
        backends.spec("xgboost")
    with pytest.raises(ConfigError, match="--kernel 'linear': choose rbf or sigmoid"):
        backends.check_options("svm", {"kernel": "linear"})


def test_registry_says_what_each_back_end_is_fitted_on(tmp_path):
    """logreg is trained on clip vectors (train --model), svm on a model's codes (backend svm)."""
    from asctool.backends import svm

    assert backends.available() == ["logreg", "svm"]
    assert backends.available("clips") == ["logreg"] and backends.available("codes") == ["svm"]
    assert backends.spec("svm").fit is svm.fit_backend and backends.spec("svm").kind == "svm_backend"
    with pytest.raises(ValueError, match="a back-end on codes needs its file kind, read and write"):
        backends.register("toy", "toy", fits_on="codes")
    with pytest.raises(ValueError, match="fits_on='frames', choose clips or codes"):
        backends.register("toy", "toy", fits_on="frames")
    assert "toy" not in backends.available()
    import h5py

    with h5py.File(tmp_path / "f.h5", "w") as handle:
        handle.attrs["asctool_kind"] = "features"
    with pytest.raises(ArtifactError, match=r"f\.h5: not a back-end file \(kind 'features'; asctool backend svm writes one\)"):
        backends.read_code_backend(tmp_path / "f.h5")
