"""``asctool ensemble``: combine the scores of several models of one stage, joined by clip id.

Reads the members' scores files (and, for a fitted method, their validation
scores), combines them with a registered ensemble method
(:func:`asctool.fusion.ensemble_method`: ``mean``, ``logreg``, ...) and writes
one scores file. See ``docs/ensemble.md``.
"""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..artifacts import Scores, check_same_classes, read_scores, write_scores
from ..errors import ConfigError
from ..fusion import (ENSEMBLE_METHODS, get_ensemble_method, join_all, merge_meta, parse_weights,
                      refuse_overwriting_inputs, refuse_same_files, refuse_shared_ids)
from ..io import claim_outputs, locked_outputs
from ..labels import resolve_label_map
from ..scoring import accuracy, carried_label_map, label_map_for, log_loss, reference_indices

__all__ = ["run"]

log = logging.getLogger(__name__)


def _load_joined(paths: Sequence[Path]) -> list[Scores]:
    """Read scores files with one class list, every one in the id order of the first."""
    return join_all([read_scores(p) for p in paths])


def _check_options(method: str, members: Sequence[Path], weights, fit_paths: Sequence[Path]) -> None:
    entry = get_ensemble_method(method)
    if not members:
        raise ConfigError("ensemble: no member scores given")
    if entry.fit is None and fit_paths:
        fitted = ", ".join(n for n, e in ENSEMBLE_METHODS.items() if e.fit is not None)
        raise ConfigError(f"--fit is only used by methods fitted on validation scores ({fitted}), "
                          f"not by --method {method}")
    if not entry.weighted and weights is not None:
        weighted = ", ".join(n for n, e in ENSEMBLE_METHODS.items() if e.weighted)
        raise ConfigError(f"--weights is only used by weighted methods ({weighted}), not by --method {method}"
                          + (" (it learns its own)" if entry.fit is not None else ""))
    if entry.fit is not None and len(fit_paths) != len(members):
        raise ConfigError(
            f"--method {method} needs one --fit validation scores file per member, in the same order: "
            f"got {len(fit_paths)} for {len(members)} members"
        )


@locked_outputs("out")  # one writer per output (docs/reliability.md)
def run(
    members: Sequence[str | os.PathLike],
    out: str | os.PathLike,
    *,
    method: str = "mean",
    weights: str | Sequence[float] | None = None,
    fit_paths: Sequence[str | os.PathLike] = (),
    labels: str | os.PathLike | None = None,
    force: bool = False,
) -> dict[str, Any]:
    """Combine the scores of several models of one stage into one scores file.

    Parameters
    ----------
    members : scores files with the same clips and class list, joined by id;
        the output lists the clips in the order of the first
    out : scores file to write
    method : a registered ensemble method (``mean``: weighted mean of the
        probabilities; ``logreg``: multinomial logistic regression on the
        members' log-probabilities)
    weights : member weights of a weighted method (``mean``; comma-separated
        or a sequence; normalised); equal weights when None
    fit_paths : fitted methods (``logreg``) only: labelled validation scores
        of each member, in the same order as ``members``; they may share no
        clip with ``members``
    labels : ``coarse`` or a TSV ``scene<TAB>label`` mapping the reference
        scenes to the class list (e.g. for a 3-class stage)
    force : overwrite an existing ``out``

    Returns
    -------
    dict
        ``out``, ``method``, ``clips``, ``members``, ``weights`` and, when the
        members are labelled, the accuracy of each member and of the ensemble;
        for a fitted method also ``fit``, ``fit_clips``, ``fit_accuracy``,
        ``fit_log_loss`` and what the fitted state reports.

    Raises
    ------
    ConfigError
        Bad options, an unknown method, fitting on the combined scores.
    MismatchError
        Members with different clips, classes or labels.
    """
    out = Path(out)
    members = [Path(m) for m in members]
    fit_paths = [Path(f) for f in fit_paths]
    _check_options(method, members, weights, fit_paths)
    entry = get_ensemble_method(method)
    refuse_overwriting_inputs(out, [*members, *fit_paths])
    claim_outputs([out], force=force)
    label_map = resolve_label_map(labels)
    joined = _load_joined(members)
    carried = {json.dumps(carried_label_map(m.attrs, m.path), sort_keys=True) for m in joined}
    carried_map = json.loads(carried.pop()) if len(carried) == 1 else None  # the members' common training map
    if labels is None:
        label_map = label_map_for(joined[0].scenes, carried_map)
    classes = joined[0].classes
    scenes = merge_meta(joined[0], joined[1:], "scenes")
    devices = merge_meta(joined[0], joined[1:], "devices")
    probs = [s.scores.astype(np.float64) for s in joined]
    attrs: dict[str, Any] = {"method": method, "members": json.dumps([str(m) for m in members])}
    if carried_map is not None:
        attrs["label_map"] = json.dumps(carried_map)
    summary: dict[str, Any] = {"out": str(out), "method": method, "clips": len(joined[0]),
                               "members": [str(m) for m in members]}
    if entry.fit is None:
        w = parse_weights(weights, len(members)) if entry.weighted else None
        combined = entry.combine(probs, weights=w, fitted=None)
        attrs["weights"] = json.dumps(None if w is None else w.tolist())
        summary["weights"] = None if w is None else w.tolist()
    else:
        refuse_same_files(fit_paths, members, entry.title)
        fit = _load_joined(fit_paths)
        for f, m in zip(fit, joined):
            check_same_classes(m.classes, f.classes, m.path, f.path)
        refuse_shared_ids(fit, joined, entry.title)
        fit_scenes = merge_meta(fit[0], fit[1:], "scenes")
        y = reference_indices(fit_scenes, classes, fit[0].path, label_map)
        if y is None:
            raise ConfigError(f"{fit[0].path}: validation scores have no reference labels to fit on")
        fit_probs = [f.scores for f in fit]
        fitted = entry.fit(fit_probs, y, len(classes))
        combined = entry.combine(probs, weights=None, fitted=fitted)
        attrs["weights"] = json.dumps(None)
        attrs["fit"] = json.dumps([str(f) for f in fit_paths])
        attrs[method] = fitted.to_json()
        on_fit = entry.combine(fit_probs, weights=None, fitted=fitted)
        summary.update(weights=None, fit=[str(f) for f in fit_paths], fit_clips=len(fit[0]),
                       fit_accuracy=accuracy(y, on_fit.argmax(axis=1)), fit_log_loss=log_loss(y, on_fit),
                       **(fitted.summary() if hasattr(fitted, "summary") else {}))
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
