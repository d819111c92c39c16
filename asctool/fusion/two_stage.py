"""Fusion method ``two-stage``: p(fine) proportional to p_fine(fine) * p_coarse(parent(fine)) ** w."""
from __future__ import annotations

import numpy as np

from .core import fusion_method

__all__ = ["fuse_probabilities"]


@fusion_method("two-stage")
def fuse_probabilities(p_fine: np.ndarray, p_coarse: np.ndarray, parents: np.ndarray, coarse_weight: float = 1.0) -> np.ndarray:
    """p(fine) proportional to p_fine * p_coarse(parent(fine)) ** coarse_weight.

    Parameters
    ----------
    p_fine : np.ndarray [shape=(n, k_fine)]
    p_coarse : np.ndarray [shape=(n, k_coarse)], rows aligned with ``p_fine``
    parents : np.ndarray [shape=(k_fine,)]
        Parent index of each fine class (:func:`.core.parent_index`).
    coarse_weight : float >= 0
        0 gives ``p_fine`` back.

    Returns
    -------
    np.ndarray [shape=(n, k_fine)], float64, rows summing to 1. Computed in
    the log domain; a row whose product is 0 everywhere keeps ``p_fine``.
    """
    p_fine = np.asarray(p_fine, dtype=np.float64)
    p_fine = p_fine / p_fine.sum(axis=1, keepdims=True)
    if coarse_weight == 0:
        return p_fine
    with np.errstate(divide="ignore"):
        logp = np.log(p_fine) + coarse_weight * np.log(np.asarray(p_coarse, dtype=np.float64)[:, parents])
    top = logp.max(axis=1, keepdims=True)
    dead = ~np.isfinite(top[:, 0])
    top[dead] = 0.0
    fused = np.exp(logp - top)
    fused /= np.where(dead[:, None], 1.0, fused.sum(axis=1, keepdims=True))
    fused[dead] = p_fine[dead]
    return fused
