"""Ensemble method ``logreg``: a multinomial logistic regression on the members' log-probabilities.

Fitted on labelled validation scores of every member (``asctool ensemble
--fit``), never on the scores it combines.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from .core import LOG_FLOOR, ensemble_method

__all__ = ["logreg_features", "LogReg", "fit_logreg", "predict_logreg"]

log = logging.getLogger(__name__)


def logreg_features(probs: Sequence[np.ndarray], *, floor: float = LOG_FLOOR) -> np.ndarray:
    """Stack the members' log-probabilities side by side: shape (n, m * k).

    Log-probabilities (clipped at ``floor``) rather than probabilities: on
    this scale a weighted geometric mean of the members (a product of
    experts) is one particular solution, and confident members are not
    squashed against 0 and 1.
    """
    return np.concatenate([np.log(np.clip(np.asarray(p, dtype=np.float64), floor, 1.0)) for p in probs], axis=1)


@dataclass
class LogReg:
    """A fitted multinomial logistic regression: p = softmax(x @ coef + intercept)."""

    coef: np.ndarray  # (d, k)
    intercept: np.ndarray  # (k,)
    l2: float
    converged: bool
    loss: float

    def summary(self) -> dict[str, Any]:
        """What the ensemble stage adds to its summary."""
        return {"converged": self.converged}

    def to_json(self) -> str:
        """The fitted model as stored in the ``logreg`` attribute of the scores file."""
        return json.dumps({
            "features": "log-probabilities of each member, concatenated in member order",
            "floor": LOG_FLOOR, "l2": self.l2, "converged": self.converged, "loss": self.loss,
            "coef": self.coef.tolist(), "intercept": self.intercept.tolist(),
        })


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def fit_logreg(x: np.ndarray, y: np.ndarray, n_classes: int, *, l2: float = 1e-3, max_iter: int = 1000) -> LogReg:
    """Fit a multinomial logistic regression by L-BFGS (deterministic: zero start).

    Minimises ``mean cross-entropy + l2 / 2 * ||coef||^2`` (the intercept is
    not penalised).

    Parameters
    ----------
    x : np.ndarray [shape=(n, d)]
        Features (see :func:`logreg_features`).
    y : np.ndarray [shape=(n,)]
        Class indices in ``[0, n_classes)``.
    n_classes : int
    l2 : float >= 0
        L2 penalty on the coefficients.
    """
    from scipy.optimize import minimize

    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.int64)
    n, d = x.shape
    k = int(n_classes)
    onehot = np.zeros((n, k))
    onehot[np.arange(n), y] = 1.0

    def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
        w = theta[: d * k].reshape(d, k)
        b = theta[d * k:]
        z = x @ w + b
        zmax = z.max(axis=1, keepdims=True)
        lse = zmax[:, 0] + np.log(np.exp(z - zmax).sum(axis=1))
        loss = float(np.mean(lse - z[np.arange(n), y]) + 0.5 * l2 * np.sum(w * w))
        g = (np.exp(z - lse[:, None]) - onehot) / n
        grad = np.concatenate([(x.T @ g + l2 * w).ravel(), g.sum(axis=0)])
        return loss, grad

    result = minimize(objective, np.zeros(d * k + k), jac=True, method="L-BFGS-B",
                      options={"maxiter": max_iter, "gtol": 1e-8})
    if not result.success:
        log.warning("logistic regression did not converge: %s", result.message)
    theta = result.x
    return LogReg(theta[: d * k].reshape(d, k), theta[d * k:], float(l2), bool(result.success), float(result.fun))


def predict_logreg(x: np.ndarray, model: LogReg) -> np.ndarray:
    """Class probabilities [shape=(n, k)] of a fitted :class:`LogReg`."""
    return _softmax(np.asarray(x, dtype=np.float64) @ model.coef + model.intercept)


def _fit_logreg(probs: Sequence[np.ndarray], labels: np.ndarray, n_classes: int) -> LogReg:
    return fit_logreg(logreg_features(probs), labels, n_classes)


@ensemble_method("logreg", fit=_fit_logreg, title="logistic regression")
def _logreg(probs: Sequence[np.ndarray], *, weights: None, fitted: LogReg) -> np.ndarray:
    """Multinomial logistic regression on the members' log-probabilities, fitted on validation scores."""
    return predict_logreg(logreg_features(probs), fitted)
