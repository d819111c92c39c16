"""Combining scores: ensembles within a stage and two-stage (coarse -> fine) fusion.

A pure library (arrays in, arrays out; the stages ``asctool ensemble`` and
``asctool fuse`` in :mod:`asctool.stages` read and write the files):

- ensemble methods, a registry filled by :func:`ensemble_method`: ``mean``
  (the weighted mean of the members' probabilities) and ``logreg`` (a
  multinomial logistic regression on their stacked log-probabilities, fitted
  on validation scores);
- fusion methods, a registry filled by :func:`fusion_method`: ``two-stage``,
  p(fine) proportional to p_fine(fine) * p_coarse(parent(fine)) ** w, and the
  choice of ``w`` on validation scores (:func:`select_coarse_weight`);
- the joins every combination makes: by clip id, never by row order (the
  published two-stage gain of the reference system came from multiplying row
  i of one file with row i of another that listed the clips in a different
  order), with differing id sets or class lists as errors, and the guards
  against fitting on the scores being combined.

A new method is one function and one decorator line (``docs/extending.md``).
"""
from __future__ import annotations

import json
import logging
import math
import os
import re
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from .artifacts import Scores, align_ids, check_same_classes
from .errors import ConfigError, MismatchError
from .registry import Registry
from .scoring import accuracy, log_loss

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
    "mean_ensemble",
    "logreg_features",
    "LogReg",
    "fit_logreg",
    "predict_logreg",
    "parent_index",
    "fuse_probabilities",
    "oracle_gating",
    "check_weight",
    "parse_weight_grid",
    "select_coarse_weight",
    "join_scores",
    "join_all",
    "merge_meta",
    "refuse_same_files",
    "refuse_shared_ids",
    "refuse_overwriting_inputs",
]

log = logging.getLogger(__name__)

#: Coarse weights tried by ``fuse --choose-weight-on`` unless a grid is given.
DEFAULT_WEIGHT_GRID = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0)
#: Probabilities are clipped to this before taking logs for logistic regression.
LOG_FLOOR = 1e-7

#: Method names are also attribute names of the scores files written (the
#: fitted state of an ensemble method is stored under its name), so these
#: attributes of the file are not method names.
_RESERVED = ("method", "members", "weights", "fit", "classes", "fine", "coarse", "hierarchy", "coarse_weight",
             "coarse_weight_selection", "asctool_kind", "schema_version", "asctool_version", "created", "command",
             "inputs")


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
# ensembles (pure)
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


@ensemble_method("mean", weighted=True)
def _mean(probs: Sequence[np.ndarray], *, weights: np.ndarray | None, fitted: None) -> np.ndarray:
    """The (weighted) mean of the probabilities (the reference system's ensemble)."""
    return mean_ensemble(probs, weights)


def _fit_logreg(probs: Sequence[np.ndarray], labels: np.ndarray, n_classes: int) -> LogReg:
    return fit_logreg(logreg_features(probs), labels, n_classes)


@ensemble_method("logreg", fit=_fit_logreg, title="logistic regression")
def _logreg(probs: Sequence[np.ndarray], *, weights: None, fitted: LogReg) -> np.ndarray:
    """Multinomial logistic regression on the members' log-probabilities, fitted on validation scores."""
    return predict_logreg(logreg_features(probs), fitted)


# --------------------------------------------------------------------------
# two-stage fusion (pure)
# --------------------------------------------------------------------------
def parent_index(
    fine_classes: Sequence[str],
    coarse_classes: Sequence[str],
    hierarchy: Mapping[str, str],
    *,
    hierarchy_name: str = "hierarchy",
    coarse_name: str = "coarse scores",
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
            f"{hierarchy_name}: no parent for fine class(es) {', '.join(missing)}"
        )
    position = {c: i for i, c in enumerate(coarse_classes)}
    for fine in fine_classes:
        if hierarchy[fine] not in position:
            raise MismatchError(
                f"{hierarchy_name}: maps {fine!r} to {hierarchy[fine]!r}, which is not a class of "
                f"{coarse_name} [{', '.join(coarse_classes)}]"
            )
    return np.asarray([position[hierarchy[c]] for c in fine_classes], dtype=np.int64)


@fusion_method("two-stage")
def fuse_probabilities(p_fine: np.ndarray, p_coarse: np.ndarray, parents: np.ndarray, coarse_weight: float = 1.0) -> np.ndarray:
    """p(fine) proportional to p_fine * p_coarse(parent(fine)) ** coarse_weight.

    Parameters
    ----------
    p_fine : np.ndarray [shape=(n, k_fine)]
    p_coarse : np.ndarray [shape=(n, k_coarse)], rows aligned with ``p_fine``
    parents : np.ndarray [shape=(k_fine,)]
        Parent index of each fine class (:func:`parent_index`).
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


# --------------------------------------------------------------------------
# inputs of a combination: joins by clip id, and guards against leakage
# --------------------------------------------------------------------------
def join_scores(reference: Scores, other: Scores) -> Scores:
    """``other`` with its rows in the order of ``reference``'s ids (same id set required).

    Raises
    ------
    MismatchError
        naming how many ids are only in each file, and the first few.
    """
    order = align_ids(reference.ids, other.ids, reference.path, other.path)
    pick = lambda a: None if a is None else a[order]  # noqa: E731
    return Scores(reference.ids.copy(), other.scores[order], list(other.classes), pick(other.scenes),
                  pick(other.devices), dict(other.attrs), other.path)


def join_all(loaded: Sequence[Scores]) -> list[Scores]:
    """Scores with one class list, every one reordered to the ids of the first."""
    first = loaded[0]
    joined = [first]
    for other in loaded[1:]:
        check_same_classes(first.classes, other.classes, first.path, other.path)
        joined.append(join_scores(first, other))
    return joined


def merge_meta(reference: Scores, others: Sequence[Scores], name: str) -> np.ndarray | None:
    """Per-clip ``scenes`` or ``devices`` of aligned scores; they must agree where known.

    Returns
    -------
    np.ndarray [shape=(n,)] of str (``""`` where no file knows), or None when
    no file has the field.
    """
    merged = None
    source = None
    for s in [reference, *others]:
        values = getattr(s, name)
        if values is None or not any(str(v) for v in values):
            continue
        values = np.asarray([str(v) for v in values], dtype=object)
        if merged is None:
            merged, source = values.copy(), s.path
            continue
        clash = np.flatnonzero((merged != "") & (values != "") & (merged != values))
        if clash.size:
            i = clash[0]
            raise MismatchError(
                f"{source} and {s.path} disagree on the {name.rstrip('s')} of clip {reference.ids[i]} "
                f"({merged[i]!r} vs {values[i]!r})"
            )
        merged = np.where(merged == "", values, merged)
    return merged


def _same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def refuse_same_files(fit: Sequence[str | os.PathLike], evaluated: Sequence[str | os.PathLike], what: str) -> None:
    """ConfigError when a file to fit ``what`` on is one of the evaluated files."""
    for f in fit:
        for e in evaluated:
            if _same_file(f, e):
                raise ConfigError(
                    f"{f}: is also an evaluated input; {what} must be fitted on validation "
                    f"scores, never on the scores it combines"
                )


def refuse_shared_ids(fit: Sequence[Scores], evaluated: Sequence[Scores], what: str) -> None:
    """ConfigError when scores to fit ``what`` on share any clip with the evaluated scores."""
    evaluated_ids = set(evaluated[0].ids)
    for f in fit:
        shared = evaluated_ids & set(f.ids)
        if shared:
            some = ", ".join(sorted(shared)[:3])
            kind = "the same clips as" if len(shared) == len(evaluated_ids) == len(f) else f"{len(shared)} clips with"
            raise ConfigError(
                f"{f.path}: shares {kind} the evaluated scores ({some}); {what} must be fitted on "
                f"validation scores, never on the scores it combines"
            )


def refuse_overwriting_inputs(out: str | os.PathLike, inputs: Sequence[str | os.PathLike]) -> None:
    """ConfigError when the output file is one of the inputs."""
    for p in inputs:
        if _same_file(out, p):
            raise ConfigError(f"{out}: is also an input; write the output to a new file")
