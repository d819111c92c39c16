"""The shared machinery of ensemble and fusion methods: registries, decorators, weights, hierarchy.

- :data:`ENSEMBLE_METHODS` and :data:`FUSION_METHODS`, the registries
  (:class:`asctool.registry.Registry`) filled by the decorators
  :func:`ensemble_method` and :func:`fusion_method`; a method module of this
  package imports them from here (never from the package, whose
  ``__init__`` imports the method modules);
- the parameters every method shares: member weights (:func:`parse_weights`),
  coarse weights (:func:`check_weight`, :func:`parse_weight_grid`) and the
  choice of the coarse weight on validation scores
  (:func:`select_coarse_weight`);
- the class hierarchy of a fusion (:func:`parent_index`) and the oracle
  gating it is measured against (:func:`oracle_gating`).

The joins by clip id and the guards against leakage are in :mod:`.joins`.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from ..errors import ConfigError, MismatchError
from ..registry import Registry
from ..scoring import accuracy, log_loss

__all__ = [
    "DEFAULT_WEIGHT_GRID",
    "LOG_FLOOR",
    "EnsembleMethod",
    "ENSEMBLE_METHODS",
    "ensemble_method",
    "ensemble_methods",
    "get_ensemble_method",
    "FusionMethod",
    "FUSION_METHODS",
    "fusion_method",
    "fusion_methods",
    "get_fusion_method",
    "parse_weights",
    "parent_index",
    "oracle_gating",
    "check_weight",
    "parse_weight_grid",
    "select_coarse_weight",
]

#: Coarse weights tried by ``fuse --choose-weight-on`` unless a grid is given.
DEFAULT_WEIGHT_GRID = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0)
#: Probabilities are clipped to this before taking logs (logistic regression, log-domain methods).
LOG_FLOOR = 1e-7

#: Method names are also attribute names of the scores files written (the
#: fitted state of an ensemble method is stored under its name), so these
#: attributes of the file are not method names.
_RESERVED = ("method", "members", "weights", "fit", "classes", "fine", "coarse", "hierarchy", "coarse_weight",
             "coarse_weight_selection", "asctool_kind", "schema_version", "asctool_version", "created", "command",
             "inputs", "label_map")


def _add(registry: Registry, name: str, entry: Any) -> None:
    """``registry.add(name, entry)``, refusing names that cannot be attribute names of the files written."""
    if not re.fullmatch(r"[a-z][a-z0-9_-]*", name) or name in _RESERVED:
        raise ValueError(f"{registry.kind} name {name!r}: lower-case letters, digits, '-' or '_', "
                         f"and none of {', '.join(_RESERVED)}")
    registry.add(name, entry)


# --------------------------------------------------------------------------
# the registries
# --------------------------------------------------------------------------
@dataclass(frozen=True)
class EnsembleMethod:
    """One registered ensemble method.

    Attributes
    ----------
    name : str
        ``asctool ensemble --method NAME``.
    combine : callable
        ``combine(probs, *, weights, fitted) -> np.ndarray [shape=(n, k)]``:
        ``probs`` the members' probabilities (m arrays (n, k), rows aligned),
        ``weights`` the normalised member weights (m,) or None, ``fitted``
        what ``fit`` returned or None. Rows must sum to 1.
    fit : callable or None
        ``fit(probs, labels, n_classes) -> fitted`` on labelled validation
        scores of every member (``labels`` (n,) class indices); None for a
        method that is not fitted. ``fitted.to_json()`` is stored in the
        output's attribute named like the method, and ``fitted.summary()``
        (a dict, optional) joins the stage's summary.
    weighted : bool
        Whether the method takes member weights (``--weights``).
    title : str
        What messages call it (default ``--method NAME``).
    """

    name: str
    combine: Callable[..., np.ndarray]
    fit: Callable[..., Any] | None = None
    weighted: bool = False
    title: str = ""


@dataclass(frozen=True)
class FusionMethod:
    """One registered fusion method.

    Attributes
    ----------
    name : str
        ``asctool fuse --method NAME``.
    func : callable
        ``func(p_fine, p_coarse, parents, coarse_weight) -> np.ndarray``:
        ``p_fine`` (n, k_fine) and ``p_coarse`` (n, k_coarse) with rows
        aligned, ``parents`` (k_fine,) the coarse index of each fine class
        (:func:`parent_index`), ``coarse_weight`` >= 0; returns (n, k_fine)
        probabilities, rows summing to 1.
    """

    name: str
    func: Callable[..., np.ndarray]


#: How both registries word an unknown ``--method``.
_UNKNOWN = "--method {name!r}: unknown {kind}; known: {known}"
#: name -> :class:`EnsembleMethod`, filled by :func:`ensemble_method`.
ENSEMBLE_METHODS: Registry[EnsembleMethod] = Registry("ensemble method", unknown=_UNKNOWN)
#: name -> :class:`FusionMethod`, filled by :func:`fusion_method`.
FUSION_METHODS: Registry[FusionMethod] = Registry("fusion method", unknown=_UNKNOWN)


def ensemble_method(name: str, *, fit: Callable[..., Any] | None = None, weighted: bool = False,
                    title: str | None = None) -> Callable[[Callable[..., np.ndarray]], Callable[..., np.ndarray]]:
    """Decorator registering ``combine`` as ensemble method ``name`` (see :class:`EnsembleMethod`).

    Parameters
    ----------
    name : str
        New method name (lower case).
    fit : callable, optional
        ``fit(probs, labels, n_classes) -> fitted``, for methods fitted on
        validation scores (``--fit``).
    weighted : bool
        The method takes member weights (``--weights``).
    title : str, optional
        What messages call it (default ``--method NAME``).
    """

    def decorate(combine: Callable[..., np.ndarray]) -> Callable[..., np.ndarray]:
        _add(ENSEMBLE_METHODS, name, EnsembleMethod(name, combine, fit, bool(weighted), title or f"--method {name}"))
        return combine

    return decorate


def fusion_method(name: str) -> Callable[[Callable[..., np.ndarray]], Callable[..., np.ndarray]]:
    """Decorator registering ``func`` as fusion method ``name`` (see :class:`FusionMethod`)."""

    def decorate(func: Callable[..., np.ndarray]) -> Callable[..., np.ndarray]:
        _add(FUSION_METHODS, name, FusionMethod(name, func))
        return func

    return decorate


#: Registered ensemble method names, in registration order.
ensemble_methods = ENSEMBLE_METHODS.names
#: Registered fusion method names, in registration order.
fusion_methods = FUSION_METHODS.names
#: The ensemble method ``name`` (ConfigError listing the known ones).
get_ensemble_method = ENSEMBLE_METHODS.get
#: The fusion method ``name`` (ConfigError listing the known ones).
get_fusion_method = FUSION_METHODS.get


# --------------------------------------------------------------------------
# member weights of an ensemble
# --------------------------------------------------------------------------
def parse_weights(weights: str | Sequence[float] | None, n: int) -> np.ndarray:
    """Member weights, normalised to sum to 1 (equal weights when None).

    Parameters
    ----------
    weights : comma-separated text (``"1,2,1"``), a sequence of numbers, or None
    n : number of members

    Raises
    ------
    ConfigError
        when the count differs from ``n``, a weight is negative or not a
        number, or all weights are 0.
    """
    if weights is None:
        return np.full(n, 1.0 / n)
    if isinstance(weights, str):
        parts = [p.strip() for p in weights.split(",")]
        try:
            values = [float(p) for p in parts]
        except ValueError:
            raise ConfigError(f"--weights {weights!r}: not a comma-separated list of numbers") from None
    else:
        values = [float(w) for w in weights]
    if len(values) != n:
        raise ConfigError(f"--weights {weights!r}: {len(values)} weights for {n} members")
    arr = np.asarray(values, dtype=np.float64)
    if not np.isfinite(arr).all() or (arr < 0).any() or arr.sum() <= 0:
        raise ConfigError(f"--weights {weights!r}: weights must be finite, non-negative and not all 0")
    return arr / arr.sum()


# --------------------------------------------------------------------------
# the hierarchy and the coarse weight of a fusion
# --------------------------------------------------------------------------
def parent_index(
    fine_classes: Sequence[str],
    coarse_classes: Sequence[str],
    hierarchy: Mapping[str, str],
    *,
    hierarchy_name: str = "hierarchy",
    coarse_name: str = "coarse scores",
    fine_name: str = "the fine scores",
) -> np.ndarray:
    """Index into ``coarse_classes`` of the parent of each fine class.

    Raises
    ------
    MismatchError
        when the hierarchy does not cover every fine class, or names a parent
        that is not among ``coarse_classes``.
    """
    missing = [c for c in fine_classes if c not in hierarchy]
    if missing:
        raise MismatchError(
            f"{hierarchy_name}: no parent for fine class(es) {', '.join(missing)} of {fine_name}"
        )
    position = {c: i for i, c in enumerate(coarse_classes)}
    for fine in fine_classes:
        if hierarchy[fine] not in position:
            raise MismatchError(
                f"{hierarchy_name}: maps {fine!r} to {hierarchy[fine]!r}, which is not a class of "
                f"{coarse_name} [{', '.join(coarse_classes)}]"
            )
    return np.asarray([position[hierarchy[c]] for c in fine_classes], dtype=np.int64)


def oracle_gating(p_fine: np.ndarray, parents: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Predictions of a perfect coarse stage: argmax of p_fine over the true parent's children.

    Returns
    -------
    np.ndarray [shape=(n,)] of fine class indices.
    """
    p_fine = np.asarray(p_fine, dtype=np.float64)
    true_parent = np.asarray(parents)[np.asarray(reference, dtype=np.int64)]
    allowed = np.asarray(parents)[None, :] == true_parent[:, None]
    return np.where(allowed, p_fine, -np.inf).argmax(axis=1)


def check_weight(w: float, option: str = "--coarse-weight") -> float:
    """``w`` as a float; ConfigError naming ``option`` unless finite and >= 0."""
    if not math.isfinite(float(w)) or float(w) < 0:
        raise ConfigError(f"{option} {w!r}: weights must be finite numbers >= 0")
    return float(w)


def parse_weight_grid(grid: str | Sequence[float]) -> list[float]:
    """Coarse weights to try: comma-separated text or a sequence; each finite and >= 0."""
    if isinstance(grid, str):
        try:
            grid = [float(w) for w in grid.split(",") if w.strip()]
        except ValueError:
            raise ConfigError(f"--weight-grid {grid!r}: not a comma-separated list of numbers") from None
    values = [check_weight(w, "--weight-grid") for w in grid]
    if not values:
        raise ConfigError("--weight-grid: no weights given")
    return values


def select_coarse_weight(
    p_fine: np.ndarray,
    p_coarse: np.ndarray,
    parents: np.ndarray,
    reference: np.ndarray,
    grid: Sequence[float] = DEFAULT_WEIGHT_GRID,
    *,
    method: str = "two-stage",
) -> tuple[float, list[dict[str, float]]]:
    """Choose the coarse weight with the best fused accuracy on labelled (validation) scores.

    Ties in accuracy go to the lower log loss, then to the smaller weight.

    Parameters
    ----------
    p_fine, p_coarse, parents
        As for the fusion method.
    reference : np.ndarray [shape=(n,)]
        Fine class index of each clip.
    grid : sequence of float
        Weights to try.
    method : str
        Registered fusion method.

    Returns
    -------
    best : float
    table : one ``{"coarse_weight", "accuracy", "log_loss"}`` per grid value
    """
    fuse = get_fusion_method(method).func
    if not len(grid):
        raise ConfigError("the coarse-weight grid is empty")
    table = []
    for w in grid:
        fused = fuse(p_fine, p_coarse, parents, float(w))
        table.append({"coarse_weight": float(w), "accuracy": accuracy(reference, fused.argmax(axis=1)),
                      "log_loss": log_loss(reference, fused)})
    best = min(table, key=lambda r: (-r["accuracy"], r["log_loss"], r["coarse_weight"]))
    return best["coarse_weight"], table
