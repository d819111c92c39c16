"""Back-end ``svm`` on a trained model's codes (Jung et al., Interspeech 2020, sec. 4: the
raw-waveform baseline's codes classified by an SVM); ``asctool backend svm``.

The *code* of a clip is the input of the model's last (output) layer: the 64-d
dense code of ``rawnet``, the fused code of a tag-conditioned model, the pooled
features of the other backbones. A scikit-learn ``SVC`` (``rbf`` or
``sigmoid`` kernel, one-vs-one) is fitted on the training clips' codes; C and
gamma are chosen by validation accuracy, and a multinomial logistic regression
on the validation clips' one-vs-one decision values turns them into class
probabilities (scikit-learn 1.9 deprecates ``SVC(probability=True)``).

Nothing is pickled: the backend file (HDF5, kind ``svm_backend``) stores the
support vectors, dual coefficients, intercepts, support counts, kernel
parameters and the calibration's weights, and :func:`decision_ovo` recomputes
libsvm's decision values from them in NumPy (checked against ``SVC`` in the
tests). The file also records the SHA-256 of the model file whose codes it was
fitted on; ``predict --backend`` refuses another model (:mod:`asctool.backends.codes`).
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..artifacts import _open_checked
from ..errors import ArtifactError
from ..h5write import new_h5
from ..provenance import provenance_attrs
from .core import register

__all__ = ["KIND_BACKEND", "KERNELS", "SvmBackend", "fit_backend", "decision_ovo", "write_backend", "read_backend"]

KIND_BACKEND = "svm_backend"
KERNELS = ("rbf", "sigmoid")
#: Grid searched on validation: C values, and gamma as multiples of 1 / (d * var(codes)) (scikit-learn's "scale").
C_GRID = (0.1, 1.0, 10.0, 100.0)
GAMMA_FACTORS = (0.1, 1.0, 10.0)


@dataclass
class SvmBackend:
    """A fitted SVM and its calibration, as stored (see the module docstring).

    Attributes
    ----------
    classes : the K class names (output order)
    kernel : ``rbf`` or ``sigmoid``; gamma, coef0, C: the kernel's and the SVM's parameters
    support_vectors : (S, d); n_support : (K,) support vectors per class, in class order
    dual_coef : (K - 1, S); intercept : (K (K - 1) / 2,) libsvm's one-vs-one layout
    calib_coef : (K, K (K - 1) / 2); calib_intercept : (K,) the logistic calibration
    model_sha256 : SHA-256 of the model file whose codes were used
    """

    classes: list[str]
    kernel: str
    gamma: float
    coef0: float
    C: float
    support_vectors: np.ndarray
    n_support: np.ndarray
    dual_coef: np.ndarray
    intercept: np.ndarray
    calib_coef: np.ndarray
    calib_intercept: np.ndarray
    model_sha256: str
    info: dict[str, Any]

    def predict_proba(self, codes: np.ndarray) -> np.ndarray:
        """Class probabilities ``(N, K)`` of codes ``(N, d)``."""
        z = decision_ovo(self, codes) @ self.calib_coef.T + self.calib_intercept
        z -= z.max(axis=1, keepdims=True)
        p = np.exp(z)
        return p / p.sum(axis=1, keepdims=True)


def _kernel(kernel: str, x: np.ndarray, sv: np.ndarray, gamma: float, coef0: float) -> np.ndarray:
    """``exp(-gamma |x - s|^2)`` (rbf) or ``tanh(gamma <x, s> + coef0)`` (sigmoid), ``(N, S)``."""
    if kernel == "rbf":
        d2 = (x * x).sum(1)[:, None] + (sv * sv).sum(1)[None, :] - 2.0 * x @ sv.T
        return np.exp(-gamma * np.maximum(d2, 0.0))
    return np.tanh(gamma * (x @ sv.T) + coef0)


def decision_ovo(svm, codes: np.ndarray) -> np.ndarray:
    """libsvm's one-vs-one decision values ``(N, K (K - 1) / 2)``, pairs (0,1), (0,2), ..., (K-2, K-1).

    For the pair (i, j): ``sum_{s in i} a[j-1, s] k(x, s) + sum_{s in j} a[i, s] k(x, s) + b_ij``
    (Chang & Lin, LIBSVM, sec. 7: the layout of the dual coefficients). Positive: class i.
    """
    x = np.asarray(codes, dtype=np.float64)
    k = _kernel(svm.kernel, x, np.asarray(svm.support_vectors, dtype=np.float64), float(svm.gamma), float(svm.coef0))
    starts = np.concatenate([[0], np.cumsum(svm.n_support)])
    classes = len(svm.n_support)
    out, p = np.empty((len(x), classes * (classes - 1) // 2)), 0
    for i in range(classes):
        for j in range(i + 1, classes):
            si, sj = slice(starts[i], starts[i + 1]), slice(starts[j], starts[j + 1])
            out[:, p] = (k[:, si] @ svm.dual_coef[j - 1, si] + k[:, sj] @ svm.dual_coef[i, sj]
                         + svm.intercept[p])
            p += 1
    return out


@register("svm", "SVM (scikit-learn SVC, rbf or sigmoid kernel, C and gamma on validation, logistic "
          "calibration) on a trained model's codes", defaults={"kernel": "rbf"}, choices={"kernel": KERNELS},
          fits_on="codes", kind=KIND_BACKEND, read=lambda path: read_backend(path),
          write=lambda path, backend, **kw: write_backend(path, backend, **kw))
def fit_backend(train_codes: np.ndarray, train_labels: np.ndarray, valid_codes: np.ndarray,
                valid_labels: np.ndarray, classes: Sequence[str], *, kernel: str, seed: int = 0,
                model_sha256: str = "") -> SvmBackend:
    """Fit the SVM on the training codes, C and gamma chosen by validation accuracy, then calibrate.

    Parameters
    ----------
    train_codes, valid_codes : (N, d) float arrays
    train_labels, valid_labels : (N,) int class indices into ``classes``
    kernel : ``rbf`` or ``sigmoid``

    Returns
    -------
    SvmBackend
        ``info`` holds the grid's validation accuracies and the chosen values.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.svm import SVC

    x, xv = np.asarray(train_codes, np.float64), np.asarray(valid_codes, np.float64)
    scale = 1.0 / (x.shape[1] * max(float(x.var()), 1e-12))
    grid, best = [], None
    for c in C_GRID:
        for factor in GAMMA_FACTORS:
            svc = SVC(kernel=kernel, C=c, gamma=scale * factor, decision_function_shape="ovo",
                      random_state=seed).fit(x, train_labels)
            accuracy = float(np.mean(svc.predict(xv) == valid_labels))
            grid.append({"C": c, "gamma": scale * factor, "valid_accuracy": accuracy})
            if best is None or accuracy > best[0]:
                best = (accuracy, svc)
    svc = best[1]
    if list(svc.classes_) != list(range(len(classes))):
        raise ArtifactError("svm backend: every class needs training clips "
                            f"(found {len(svc.classes_)} of {len(classes)})")
    if len(np.unique(valid_labels)) != len(classes):
        raise ArtifactError(f"svm backend: the calibration needs validation clips of every class "
                            f"(found {len(np.unique(valid_labels))} of {len(classes)})")
    ovo = svc.decision_function(xv).reshape(len(xv), -1)
    calib = LogisticRegression(max_iter=2000).fit(ovo, valid_labels)
    coef, intercept = calib.coef_, calib.intercept_
    if len(classes) == 2:   # binary: one weight vector for class 1
        coef = np.vstack([-coef[0] / 2, coef[0] / 2])
        intercept = np.array([-intercept[0] / 2, intercept[0] / 2])
    return SvmBackend(list(classes), kernel, float(svc._gamma), float(svc.coef0), float(svc.C),
                      np.asarray(svc.support_vectors_), np.asarray(svc.n_support_, dtype=np.int64),
                      np.asarray(svc.dual_coef_), np.asarray(svc.intercept_), np.asarray(coef, np.float64),
                      np.asarray(intercept, np.float64), model_sha256,
                      {"grid": grid, "C": float(svc.C), "gamma": float(svc._gamma), "valid_accuracy": best[0]})


_ARRAYS = ("support_vectors", "n_support", "dual_coef", "intercept", "calib_coef", "calib_intercept")


def write_backend(path: str | os.PathLike, backend: SvmBackend, *, inputs: Sequence[str | os.PathLike] = (),
                  extra: dict[str, Any] | None = None) -> Path:
    """Write a backend file atomically (arrays and JSON attributes; no pickle)."""
    path = Path(path)
    attrs = provenance_attrs(KIND_BACKEND, inputs)
    attrs["backend"] = json.dumps({"classes": backend.classes, "kernel": backend.kernel, "gamma": backend.gamma,
                                   "coef0": backend.coef0, "C": backend.C, "model_sha256": backend.model_sha256,
                                   "info": {**backend.info, **(extra or {})}})
    with new_h5(path) as handle:
        for key, value in attrs.items():
            handle.attrs[key] = value
        for name in _ARRAYS:
            handle.create_dataset(name, data=getattr(backend, name))
    return path


def read_backend(path: str | os.PathLike) -> SvmBackend:
    """Read a backend file and check its arrays' shapes against each other.

    Raises
    ------
    ArtifactError
        Not a backend file, a missing array or attribute, shapes that disagree, NaN or Inf.
    """
    path = Path(path)
    with _open_checked(path, KIND_BACKEND) as handle:
        missing = [n for n in _ARRAYS if n not in handle]
        if missing or "backend" not in handle.attrs:
            raise ArtifactError(f"{path}: backend file lacks {', '.join(missing) or 'the backend attribute'}")
        arrays = {n: np.asarray(handle[n][()]) for n in _ARRAYS}
        try:
            meta = json.loads(handle.attrs["backend"])
        except (TypeError, ValueError):
            raise ArtifactError(f"{path}: attribute 'backend' is not JSON") from None
    k = len(meta.get("classes", []))
    s = arrays["support_vectors"].shape[0]
    pairs = k * (k - 1) // 2
    if (k < 2 or meta.get("kernel") not in KERNELS or arrays["n_support"].shape != (k,)
            or int(arrays["n_support"].sum()) != s or arrays["dual_coef"].shape != (k - 1, s)
            or arrays["intercept"].shape != (pairs,) or arrays["calib_coef"].shape != (k, pairs)
            or arrays["calib_intercept"].shape != (k,)):
        raise ArtifactError(f"{path}: backend arrays do not fit together ({k} classes, {s} support vectors)")
    if not all(np.isfinite(a).all() for a in arrays.values()):
        raise ArtifactError(f"{path}: backend arrays hold NaN or Inf")
    return SvmBackend(list(meta["classes"]), meta["kernel"], float(meta["gamma"]), float(meta["coef0"]),
                      float(meta["C"]), arrays["support_vectors"], arrays["n_support"].astype(np.int64),
                      arrays["dual_coef"], arrays["intercept"], arrays["calib_coef"], arrays["calib_intercept"],
                      str(meta.get("model_sha256", "")), dict(meta.get("info", {})))
