"""Ensemble method ``mean``: the (weighted) mean of the members' probabilities."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from .core import ensemble_method

__all__ = ["mean_ensemble"]


def mean_ensemble(probs: Sequence[np.ndarray], weights: np.ndarray | None = None) -> np.ndarray:
    """Weighted mean of the members' probabilities.

    Parameters
    ----------
    probs : m arrays [shape=(n, k)], rows aligned (same clip in the same row)
    weights : np.ndarray [shape=(m,)] summing to 1, or None for equal weights

    Returns
    -------
    np.ndarray [shape=(n, k)], float64, rows renormalised to sum to 1.
    """
    stack = np.stack([np.asarray(p, dtype=np.float64) for p in probs])
    w = np.full(len(stack), 1.0 / len(stack)) if weights is None else np.asarray(weights, dtype=np.float64)
    mean = np.tensordot(w, stack, axes=1)
    return mean / mean.sum(axis=1, keepdims=True)


@ensemble_method("mean", weighted=True)
def _mean(probs: Sequence[np.ndarray], *, weights: np.ndarray | None, fitted: None) -> np.ndarray:
    """The (weighted) mean of the probabilities (the reference system's ensemble)."""
    return mean_ensemble(probs, weights)
