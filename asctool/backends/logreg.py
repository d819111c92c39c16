"""Linear back-end ``logreg``: multinomial logistic regression (scikit-learn) on standardised clip vectors.

``sklearn.preprocessing.StandardScaler`` then
``sklearn.linear_model.LogisticRegression`` (L-BFGS, multinomial, L2 penalty of
inverse strength ``c``): the linear probe of ``benchmarks/synth_learnability.py``
(``C = 0.1``), and on embeddings the usual linear evaluation of a pretrained
representation. Only the fitted numbers are kept (:class:`~asctool.backends.core.LinearModel`).
"""
from __future__ import annotations

import logging
import warnings

import numpy as np

from .core import register

__all__ = ["fit_logreg"]

log = logging.getLogger(__name__)


@register("logreg", "multinomial logistic regression (scikit-learn) on clip vectors: embedding means, "
          "or log-mel band mean and std (the linear probe)", defaults={"c": 0.1, "max_iter": 2000})
def fit_logreg(x: np.ndarray, y: np.ndarray, n_classes: int, *, seed: int = 0, c: float = 0.1,
               max_iter: int = 2000):
    """Fit the scaler and the regression on clip vectors.

    Parameters
    ----------
    x : np.ndarray [shape=(n, d)]
    y : np.ndarray [shape=(n,)], int
        Class indices in ``[0, n_classes)``; every class present.
    n_classes : int
    seed : int
        ``random_state`` (L-BFGS is deterministic; kept for other solvers).
    c : float > 0
        Inverse L2 strength (scikit-learn's ``C``).
    max_iter : int

    Returns
    -------
    (coef (K, d), intercept (K,), mean (d,), scale (d,), info dict)
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    if not c > 0 or max_iter < 1:
        from ..errors import ConfigError

        raise ConfigError(f"logreg: c={c} must be > 0 and max_iter={max_iter} >= 1")
    scaler = StandardScaler().fit(x)
    scale = np.where(scaler.scale_ > 0, scaler.scale_, 1.0)  # a constant column: left at 0 after centring
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        model = LogisticRegression(C=c, max_iter=max_iter, random_state=seed).fit((x - scaler.mean_) / scale, y)
    converged = not any(issubclass(w.category, ConvergenceWarning) for w in caught)
    if not converged:
        log.warning("logreg: L-BFGS did not converge in %d iterations (raise --option max_iter=N)", max_iter)
    coef, intercept = np.asarray(model.coef_, dtype=np.float64), np.asarray(model.intercept_, dtype=np.float64)
    if n_classes == 2 and coef.shape[0] == 1:  # sigmoid(z) = softmax([0, z])[1]
        coef = np.concatenate([np.zeros_like(coef), coef])
        intercept = np.concatenate([[0.0], intercept])
    info = {"converged": converged, "iterations": int(np.max(model.n_iter_)),
            "train_accuracy": float(model.score((x - scaler.mean_) / scale, y))}
    return coef, intercept, scaler.mean_.astype(np.float64), scale.astype(np.float64), info
