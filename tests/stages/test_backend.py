"""asctool backend svm and predict --backend on the shared trained run."""
from __future__ import annotations

import numpy as np
import pytest
from helpers import make_features, trained_run  # noqa: F401

from asctool.artifacts import read_scores
from asctool.errors import ConfigError, MismatchError
from asctool.stages.backend import run as backend
from asctool.stages.predict import run as predict


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return trained_run(tmp_path_factory)


def test_svm_backend_fits_and_predicts(run, tmp_path):
    valid = make_features(tmp_path / "valid.h5", 24, seed=2, city="rome")
    summary = backend("svm", run["run"], run["data"], valid, tmp_path / "svm.h5", kernel="rbf")
    assert summary["support_vectors"] > 0 and 0 <= summary["valid_accuracy"] <= 1
    out = predict(run["run"] / "model.keras", run["test"], tmp_path / "s.h5", backend_path=tmp_path / "svm.h5")
    scores = read_scores(tmp_path / "s.h5")
    assert scores.scores.shape == (40, 4) and out["clips"] == 40
    np.testing.assert_allclose(scores.scores.sum(axis=1), 1.0, rtol=1e-5)


def test_backend_refuses_another_model_and_bad_options(run, tmp_path):
    valid = make_features(tmp_path / "valid.h5", 24, seed=2, city="rome")
    backend("svm", run["run"], run["data"], valid, tmp_path / "svm.h5", kernel="sigmoid")
    import json

    import h5py
    with h5py.File(tmp_path / "svm.h5", "r+") as handle:   # as if fitted on another model file
        record = json.loads(handle.attrs["backend"])
        handle.attrs["backend"] = json.dumps({**record, "model_sha256": "cd" * 32})
    with pytest.raises(MismatchError, match=r"svm\.h5: fitted on the codes of another model \(SHA-256 cdcdcdcd"):
        predict(run["run"] / "model.keras", run["test"], tmp_path / "s.h5", backend_path=tmp_path / "svm.h5")
    assert not (tmp_path / "s.h5").exists()
    with pytest.raises(ConfigError, match="--kernel 'linear': choose rbf or sigmoid"):
        backend("svm", run["run"], run["data"], valid, tmp_path / "x.h5", kernel="linear")


def test_cli_backend_and_predict_backend(run, tmp_path):
    from click.testing import CliRunner

    from asctool.cli import cli

    valid = make_features(tmp_path / "valid.h5", 24, seed=2, city="rome")
    result = CliRunner().invoke(cli, ["backend", "svm", "--model", str(run["run"]), "--train", str(run["data"]),
                                      "--valid", str(valid), "--kernel", "sigmoid", "--out", str(tmp_path / "b.h5")])
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(cli, ["predict", "--model", str(run["run"] / "model.keras"), "--features",
                                      str(run["test"]), "--backend", str(tmp_path / "b.h5"), "--out",
                                      str(tmp_path / "s.h5")])
    assert result.exit_code == 0, result.output
    assert read_scores(tmp_path / "s.h5").scores.shape == (40, 4)
    bad = CliRunner().invoke(cli, ["backend", "svm", "--model", str(run["run"]), "--train", str(run["data"]),
                                   "--valid", str(valid), "--kernel", "linear", "--out", str(tmp_path / "c.h5")])
    assert bad.exit_code == 2


def test_backend_of_clip_vectors_is_refused_before_reading(tmp_path):
    """logreg is a back-end of the same registry, but fitted on clip vectors by asctool train."""
    with pytest.raises(ConfigError, match=r"^backend 'logreg': fitted on clip vectors, not on a model's codes "
                                          r"\(asctool train --model logreg\); asctool backend fits svm$"):
        backend("logreg", tmp_path / "run", tmp_path / "t.h5", tmp_path / "v.h5", tmp_path / "b.h5")
    assert list(tmp_path.iterdir()) == []


def test_train_model_svm_points_at_asctool_backend(tmp_path):
    from asctool.training.frames import route

    with pytest.raises(ConfigError, match=r"--model svm: a back-end on a trained model's codes, not a model to "
                                          r"train; fit it with asctool backend svm --model RUN"):
        route(tmp_path / "train.h5", "svm")
