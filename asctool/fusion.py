"""Ensembles within a stage and two-stage (coarse -> fine) fusion.

``asctool ensemble`` combines the scores of several models of one stage:
the (weighted) mean of their probabilities (REFERENCE.md 6), or a
multinomial logistic regression on their stacked log-probabilities, fitted
on validation scores. ``asctool fuse`` combines a fine (10-scene) and a
coarse (3-class) stage: p(fine) proportional to
p_fine(fine) * p_coarse(parent(fine)) ** w.

Every combination joins its inputs by clip id (REFERENCE.md 7.1: the
published two-stage gain came from multiplying row i of one file with row i
of another that listed the clips in a different order). Differing id sets or
class lists are errors.

The pure functions (:func:`mean_ensemble`, :func:`fit_logreg`,
:func:`fuse_probabilities`, :func:`select_coarse_weight`, ...) take arrays;
:func:`ensemble` and :func:`fuse` are the stage entry points.
"""
from __future__ import annotations

import json
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from .artifacts import Scores, align_ids, check_same_classes, read_scores, write_scores
from .errors import ConfigError, MismatchError
from .labels import resolve_label_map
from .scoring import accuracy, log_loss, reference_indices

__all__ = [
    "DEFAULT_WEIGHT_GRID",
    "LOG_FLOOR",
    "parse_weights",
    "mean_ensemble",
    "logreg_features",
    "LogReg",
    "fit_logreg",
    "predict_logreg",
    "parent_index",
    "fuse_probabilities",
    "oracle_gating",
    "select_coarse_weight",
    "ensemble",
    "fuse",
]

log = logging.getLogger(__name__)

#: Coarse weights tried by ``fuse --choose-weight-on`` unless a grid is given.
DEFAULT_WEIGHT_GRID = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0)
#: Probabilities are clipped to this before taking logs for logistic regression.
LOG_FLOOR = 1e-7


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

    def to_json(self) -> str:
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


def select_coarse_weight(
    p_fine: np.ndarray,
    p_coarse: np.ndarray,
    parents: np.ndarray,
    reference: np.ndarray,
    grid: Sequence[float] = DEFAULT_WEIGHT_GRID,
) -> tuple[float, list[dict[str, float]]]:
    """Choose the coarse weight with the best fused accuracy on labelled (validation) scores.

    Ties in accuracy go to the lower log loss, then to the smaller weight.

    Returns
    -------
    best : float
    table : one ``{"coarse_weight", "accuracy", "log_loss"}`` per grid value
    """
    if not len(grid):
        raise ConfigError("the coarse-weight grid is empty")
    table = []
    for w in grid:
        fused = fuse_probabilities(p_fine, p_coarse, parents, float(w))
        table.append({"coarse_weight": float(w), "accuracy": accuracy(reference, fused.argmax(axis=1)),
                      "log_loss": log_loss(reference, fused)})
    best = min(table, key=lambda r: (-r["accuracy"], r["log_loss"], r["coarse_weight"]))
    return best["coarse_weight"], table


# --------------------------------------------------------------------------
# loading and joining
# --------------------------------------------------------------------------
def _merge_meta(reference: Scores, others: Sequence[Scores], name: str) -> np.ndarray | None:
    """Per-clip ``scene`` or ``device`` of aligned files; they must agree where known."""
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


def _join(reference: Scores, other: Scores) -> Scores:
    """``other`` with its rows in the order of ``reference``'s ids (same id set required)."""
    order = align_ids(reference.ids, other.ids, reference.path, other.path)
    pick = lambda a: None if a is None else a[order]  # noqa: E731
    return Scores(reference.ids.copy(), other.scores[order], list(other.classes), pick(other.scenes),
                  pick(other.devices), dict(other.attrs), other.path)


def _load_joined(paths: Sequence[str | os.PathLike]) -> list[Scores]:
    """Read scores files with one class list and reorder all of them to the ids of the first."""
    loaded = [read_scores(p) for p in paths]
    first = loaded[0]
    joined = [first]
    for other in loaded[1:]:
        check_same_classes(first.classes, other.classes, first.path, other.path)
        joined.append(_join(first, other))
    return joined


def _same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _refuse_same_files(fit: Sequence[Path], evaluated: Sequence[Path], what: str) -> None:
    """Refuse fitting on one of the evaluated files."""
    for f in fit:
        for e in evaluated:
            if _same_file(f, e):
                raise ConfigError(
                    f"{f}: is also an evaluated input; {what} must be fitted on validation "
                    f"scores, never on the scores it combines"
                )


def _refuse_shared_ids(fit: Sequence[Scores], evaluated: Sequence[Scores], what: str) -> None:
    """Refuse fitting on scores that share any clip with the evaluated scores."""
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


def _refuse_overwriting_inputs(out: Path, inputs: Sequence[str | os.PathLike]) -> None:
    for p in inputs:
        if _same_file(out, p):
            raise ConfigError(f"{out}: is also an input; write the output to a new file")


# --------------------------------------------------------------------------
# stage entry points
# --------------------------------------------------------------------------
def ensemble(
    members: Sequence[str | os.PathLike],
    out: str | os.PathLike,
    *,
    method: str = "mean",
    weights: str | Sequence[float] | None = None,
    fit_paths: Sequence[str | os.PathLike] = (),
    labels: str | os.PathLike | None = None,
    l2: float = 1e-3,
) -> dict[str, Any]:
    """Combine the scores of several models of one stage into one scores file.

    Parameters
    ----------
    members : scores files with the same clips and class list, joined by id;
        the output lists the clips in the order of the first
    out : scores file to write
    method : ``mean`` (weighted mean of the probabilities) or ``logreg``
        (multinomial logistic regression on the members' log-probabilities)
    weights : member weights for ``mean`` (comma-separated or a sequence;
        normalised); equal weights when None
    fit_paths : ``logreg`` only: labelled validation scores of each member, in
        the same order as ``members``; they may share no clip with ``members``
    labels : ``coarse`` or a TSV ``scene<TAB>label`` mapping the reference
        scenes to the class list (e.g. for a 3-class stage)
    l2 : L2 penalty of the logistic regression

    Returns
    -------
    dict
        ``out``, ``method``, ``clips``, ``members``, ``weights`` and, when the
        members are labelled, the accuracy of each member and of the ensemble.
    """
    out = Path(out)
    members = [Path(m) for m in members]
    fit_paths = [Path(f) for f in fit_paths]
    if not members:
        raise ConfigError("ensemble: no member scores given")
    if method not in ("mean", "logreg"):
        raise ConfigError(f"--method {method!r}: must be mean or logreg")
    if method == "mean" and fit_paths:
        raise ConfigError("--fit is only used with --method logreg")
    if method == "logreg" and weights is not None:
        raise ConfigError("--weights is only used with --method mean (logreg learns its own)")
    if method == "logreg" and len(fit_paths) != len(members):
        raise ConfigError(
            f"--method logreg needs one --fit validation scores file per member, in the same order: "
            f"got {len(fit_paths)} for {len(members)} members"
        )
    _refuse_overwriting_inputs(out, [*members, *fit_paths])
    label_map = resolve_label_map(labels)
    joined = _load_joined(members)
    classes = joined[0].classes
    scenes = _merge_meta(joined[0], joined[1:], "scenes")
    devices = _merge_meta(joined[0], joined[1:], "devices")
    probs = [s.scores.astype(np.float64) for s in joined]
    attrs: dict[str, Any] = {"method": method, "members": json.dumps([str(m) for m in members])}
    summary: dict[str, Any] = {"out": str(out), "method": method, "clips": len(joined[0]),
                               "members": [str(m) for m in members]}
    if method == "mean":
        w = parse_weights(weights, len(members))
        combined = mean_ensemble(probs, w)
        attrs["weights"] = json.dumps(w.tolist())
        summary["weights"] = w.tolist()
    else:
        _refuse_same_files(fit_paths, members, "logistic regression")
        fit = _load_joined(fit_paths)
        for f, m in zip(fit, joined):
            check_same_classes(m.classes, f.classes, m.path, f.path)
        _refuse_shared_ids(fit, joined, "logistic regression")
        fit_scenes = _merge_meta(fit[0], fit[1:], "scenes")
        y = reference_indices(fit_scenes, classes, fit[0].path, label_map)
        if y is None:
            raise ConfigError(f"{fit[0].path}: validation scores have no reference labels to fit on")
        model = fit_logreg(logreg_features([f.scores for f in fit]), y, len(classes), l2=l2)
        combined = predict_logreg(logreg_features(probs), model)
        attrs["weights"] = json.dumps(None)
        attrs["fit"] = json.dumps([str(f) for f in fit_paths])
        attrs["logreg"] = model.to_json()
        fitted = predict_logreg(logreg_features([f.scores for f in fit]), model)
        summary.update(weights=None, fit=[str(f) for f in fit_paths], fit_clips=len(fit[0]),
                       fit_accuracy=accuracy(y, fitted.argmax(axis=1)), fit_log_loss=log_loss(y, fitted),
                       converged=model.converged)
    reference = reference_indices(scenes, classes, members[0], label_map)
    if reference is not None:
        summary["accuracy"] = {
            "members": {str(m): accuracy(reference, p.argmax(axis=1)) for m, p in zip(members, probs)},
            "ensemble": accuracy(reference, combined.argmax(axis=1)),
        }
    write_scores(out, ids=joined[0].ids, scores=combined, classes=classes, scenes=scenes, devices=devices,
                 inputs=[*members, *fit_paths], extra_attrs=attrs)
    log.info("wrote %s (%s of %d members, %d clips)", out, method, len(members), len(joined[0]))
    return summary


def _hierarchy(hierarchy: str | os.PathLike | None) -> tuple[dict[str, str], str]:
    from .labels import packaged_hierarchy, read_label_map

    if hierarchy is None:
        return packaged_hierarchy(), "the packaged DCASE 2020 hierarchy"
    return read_label_map(hierarchy), str(hierarchy)


def _load_pair(fine: Path, coarse: Path) -> tuple[Scores, Scores]:
    f = read_scores(fine)
    return f, _join(f, read_scores(coarse))


def _parse_grid(grid: str | Sequence[float]) -> list[float]:
    if isinstance(grid, str):
        try:
            grid = [float(w) for w in grid.split(",") if w.strip()]
        except ValueError:
            raise ConfigError(f"--weight-grid {grid!r}: not a comma-separated list of numbers") from None
    values = [_check_weight(w, "--weight-grid") for w in grid]
    if not values:
        raise ConfigError("--weight-grid: no weights given")
    return values


def _fine_scenes(f: Scores, c: Scores) -> np.ndarray | None:
    """Reference scenes of a fine/coarse pair: the fine file's, else the coarse file's
    when they name fine classes (a coarse file may carry coarse labels instead)."""
    for s in (f, c):
        if s.scenes is not None and any(str(v) for v in s.scenes):
            if s is f or all(str(v) in f.classes for v in s.scenes):
                return np.asarray([str(v) for v in s.scenes], dtype=object)
    return None


def _check_weight(w: float, option: str = "--coarse-weight") -> float:
    if not math.isfinite(float(w)) or float(w) < 0:
        raise ConfigError(f"{option} {w!r}: weights must be finite numbers >= 0")
    return float(w)


def fuse(
    fine: str | os.PathLike,
    coarse: str | os.PathLike,
    out: str | os.PathLike,
    *,
    hierarchy: str | os.PathLike | None = None,
    coarse_weight: float | None = None,
    choose_weight_on: Sequence[str | os.PathLike] | None = None,
    weight_grid: str | Sequence[float] | None = None,
) -> dict[str, Any]:
    """Two-stage fusion of fine and coarse scores, joined by clip id.

    Parameters
    ----------
    fine : fine-class (e.g. 10-scene) scores
    coarse : coarse-class (e.g. 3-class) scores of the same clips, any row order
    out : scores file to write (fine classes, clips in the order of ``fine``)
    hierarchy : TSV ``fine<TAB>coarse``; default the packaged DCASE 2020 map.
        It must give every fine class one parent among the coarse classes.
    coarse_weight : exponent ``w`` on the coarse probabilities (>= 0; 1 is
        REFERENCE.md 6, 0 is the fine stage alone). None means 1, or the value
        chosen with ``choose_weight_on``.
    choose_weight_on : ``(valid_fine, valid_coarse)``: labelled validation
        scores of the two stages (sharing no clip with ``fine``); the weight of
        ``weight_grid`` with the best fused validation accuracy is used.
    weight_grid : weights to try, a sequence or comma-separated text
        (default :data:`DEFAULT_WEIGHT_GRID`)

    Returns
    -------
    dict
        ``out``, ``clips``, ``coarse_weight``, the weight selection table when
        chosen, and, when the clips are labelled, ``accuracy`` of ``fine``
        alone, ``coarse`` (the coarse stage on the parents), ``fused`` and
        ``oracle_gating`` (p_fine restricted to the true parent's children:
        the ceiling a perfect coarse stage would give).
    """
    fine, coarse, out = Path(fine), Path(coarse), Path(out)
    if choose_weight_on is not None and coarse_weight is not None:
        raise ConfigError("give either --coarse-weight or --choose-weight-on, not both")
    if choose_weight_on is not None and len(choose_weight_on) != 2:
        raise ConfigError("--choose-weight-on needs two files: VALID_FINE.h5 VALID_COARSE.h5")
    valid_paths = [Path(p) for p in (choose_weight_on or ())]
    _refuse_overwriting_inputs(out, [fine, coarse, *valid_paths])
    mapping, hierarchy_name = _hierarchy(hierarchy)
    f, c = _load_pair(fine, coarse)
    parents = parent_index(f.classes, c.classes, mapping, hierarchy_name=hierarchy_name, coarse_name=str(coarse))
    unused = [k for i, k in enumerate(c.classes) if i not in set(parents.tolist())]
    if unused:
        log.warning("%s: coarse class(es) %s have no fine class in %s", coarse, ", ".join(unused), hierarchy_name)
    scenes = _fine_scenes(f, c)
    devices = _merge_meta(f, [c], "devices")
    summary: dict[str, Any] = {"out": str(out), "clips": len(f)}
    attrs: dict[str, Any] = {
        "method": "two-stage",
        "fine": str(fine),
        "coarse": str(coarse),
        "hierarchy": json.dumps({k: mapping[k] for k in f.classes}),
    }
    if choose_weight_on is not None:
        _refuse_same_files(valid_paths, [fine, coarse], "the coarse weight")
        vf, vc = _load_pair(*valid_paths)
        check_same_classes(f.classes, vf.classes, fine, vf.path)
        check_same_classes(c.classes, vc.classes, coarse, vc.path)
        _refuse_shared_ids([vf, vc], [f, c], "the coarse weight")
        v_ref = reference_indices(_fine_scenes(vf, vc), vf.classes, vf.path)
        if v_ref is None:
            raise ConfigError(f"{vf.path}: validation scores have no reference labels to choose the weight on")
        grid = _parse_grid(DEFAULT_WEIGHT_GRID if weight_grid is None else weight_grid)
        weight, table = select_coarse_weight(vf.scores, vc.scores, parents, v_ref, grid)
        summary["weight_selection"] = {"fine": str(valid_paths[0]), "coarse": str(valid_paths[1]),
                                       "clips": len(vf), "grid": table, "chosen": weight}
        attrs["coarse_weight_selection"] = json.dumps(summary["weight_selection"])
        log.info("coarse weight %g chosen on %s", weight, valid_paths[0])
    else:
        weight = 1.0 if coarse_weight is None else _check_weight(coarse_weight)
    fused = fuse_probabilities(f.scores, c.scores, parents, weight)
    summary["coarse_weight"] = weight
    attrs["coarse_weight"] = weight
    reference = reference_indices(scenes, f.classes, fine)
    if reference is not None:
        summary["accuracy"] = {
            "fine": accuracy(reference, f.scores.argmax(axis=1)),
            "coarse": accuracy(parents[reference], c.scores.argmax(axis=1)),
            "fused": accuracy(reference, fused.argmax(axis=1)),
            "oracle_gating": accuracy(reference, oracle_gating(f.scores, parents, reference)),
        }
        summary["log_loss"] = {"fine": log_loss(reference, f.scores), "fused": log_loss(reference, fused)}
    write_scores(out, ids=f.ids, scores=fused, classes=f.classes, scenes=scenes, devices=devices,
                 inputs=[fine, coarse, *valid_paths], extra_attrs=attrs)
    log.info("wrote %s (two-stage fusion, coarse weight %g, %d clips)", out, weight, len(f))
    return summary
