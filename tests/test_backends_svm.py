"""SVM back-end (asctool.backends.svm): libsvm's decision values recomputed in NumPy, the file round trip."""
from __future__ import annotations

import numpy as np
import pytest

from asctool.errors import ArtifactError
from asctool.backends.svm import decision_ovo, fit_backend, read_backend, write_backend


def _data(seed, n=30, classes=3, d=6):
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(classes), n // classes)
    x = rng.normal(size=(len(y), d)) + 1.2 * np.eye(classes, d)[y]
    return x, y


@pytest.mark.parametrize("kernel", ["rbf", "sigmoid"])
def test_decision_values_equal_scikit_learn(kernel):
    from sklearn.svm import SVC

    x, y = _data(0)
    xv, yv = _data(1)
    backend = fit_backend(x, y, xv, yv, ["a", "b", "c"], kernel=kernel)
    svc = SVC(kernel=kernel, C=backend.C, gamma=backend.gamma, decision_function_shape="ovo").fit(x, y)
    np.testing.assert_allclose(decision_ovo(backend, xv), svc.decision_function(xv), rtol=1e-6, atol=1e-8)
    best = max(row["valid_accuracy"] for row in backend.info["grid"])
    assert backend.info["valid_accuracy"] == best and len(backend.info["grid"]) == 12
    p = backend.predict_proba(xv)
    assert p.shape == (30, 3)
    np.testing.assert_allclose(p.sum(axis=1), 1.0)


def test_backend_file_round_trip_and_bad_file(tmp_path):
    x, y = _data(0)
    xv, yv = _data(1)
    backend = fit_backend(x, y, xv, yv, ["a", "b", "c"], kernel="rbf", model_sha256="ab" * 32)
    path = write_backend(tmp_path / "b.h5", backend)
    again = read_backend(path)
    assert again.classes == ["a", "b", "c"] and again.model_sha256 == "ab" * 32
    np.testing.assert_array_equal(again.predict_proba(xv), backend.predict_proba(xv))
    import h5py
    with h5py.File(path, "r+") as handle:
        del handle["intercept"]
        handle["intercept"] = np.zeros(2)
    with pytest.raises(ArtifactError, match=r"b\.h5: backend arrays do not fit together \(3 classes"):
        read_backend(path)


def test_calibration_needs_every_class_in_validation():
    x, y = _data(0)
    xv, yv = _data(1)
    with pytest.raises(ArtifactError, match="validation clips of every class"):
        fit_backend(x, y, xv[yv < 2], yv[yv < 2], ["a", "b", "c"], kernel="rbf")
