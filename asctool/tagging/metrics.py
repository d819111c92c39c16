"""Event labels and tagging metrics: multi-hot targets, mean average precision, per-tag ROC AUC.

Event labels are ``;``-separated sound event names per clip (a manifest's
``tags`` column, a features file's ``tags`` dataset). The metrics are those
of audio tagging (e.g. Kong et al., "PANNs", IEEE/ACM TASLP 2020, section
IV-B: mAP, the mean over classes of the average precision, and AUC); each
tag's average precision and AUC are scikit-learn's
(``average_precision_score``: the step-wise area ``sum_n (R_n - R_{n-1}) P_n``;
``roc_auc_score``).
"""
from __future__ import annotations

import os
from typing import Any, Mapping, Sequence

import numpy as np

from ..errors import ArtifactError

__all__ = ["split_tags", "tag_vocabulary", "multi_hot", "tagging_report", "mean_average_precision",
           "format_tagging_report"]


def split_tags(value: str) -> list[str]:
    """The event names of one clip's ``;``-separated label (spaces around names and empty names dropped)."""
    return [name.strip() for name in str(value).split(";") if name.strip()]


def tag_vocabulary(labels: Sequence[str]) -> list[str]:
    """The sorted set of event names over every clip's label."""
    return sorted({name for value in labels for name in split_tags(value)})


def multi_hot(labels: Sequence[str], names: Sequence[str], *, where: str | os.PathLike = "",
              ids: Sequence[str] | None = None) -> np.ndarray:
    """``(N, C)`` float32 targets: 1 where clip ``n`` lists event ``names[c]``.

    Raises
    ------
    ArtifactError
        A clip lists an event that is not in ``names`` (naming ``where`` and the clip).
    """
    index = {name: i for i, name in enumerate(names)}
    out = np.zeros((len(labels), len(names)), dtype=np.float32)
    for n, value in enumerate(labels):
        for name in split_tags(value):
            if name not in index:
                clip = ids[n] if ids is not None else f"row {n}"
                raise ArtifactError(f"{where}: clip {clip} lists event {name!r}, not one of the "
                                    f"{len(names)} tags ({', '.join(list(names)[:5])}...)")
            out[n, index[name]] = 1.0
    return out


def mean_average_precision(targets: np.ndarray, scores: np.ndarray) -> tuple[float | None, list[float | None]]:
    """mAP over the tags that have at least one positive clip, and each tag's AP (None without positives).

    Parameters
    ----------
    targets : (N, C) 0/1 array
    scores : (N, C) array, higher means more likely
    """
    from sklearn.metrics import average_precision_score

    targets, scores = np.asarray(targets), np.asarray(scores, dtype=np.float64)
    per_tag: list[float | None] = []
    for c in range(targets.shape[1]):
        per_tag.append(float(average_precision_score(targets[:, c], scores[:, c]))
                       if targets[:, c].any() else None)
    defined = [v for v in per_tag if v is not None]
    return (float(np.mean(defined)) if defined else None), per_tag


def tagging_report(targets: np.ndarray, scores: np.ndarray, names: Sequence[str]) -> dict[str, Any]:
    """mAP, mean AUC, and per tag: positives, AP and ROC AUC (None where undefined: no positive or no negative).

    Returns
    -------
    dict with ``clips``, ``tags``, ``mAP``, ``mean_auc`` (over the tags with both
    positives and negatives) and ``per_tag``: name -> {positives, ap, auc}.
    """
    from sklearn.metrics import roc_auc_score

    targets, scores = np.asarray(targets), np.asarray(scores, dtype=np.float64)
    mean_ap, aps = mean_average_precision(targets, scores)
    per_tag: dict[str, Any] = {}
    aucs = []
    for c, name in enumerate(names):
        positives = int(targets[:, c].sum())
        auc = (float(roc_auc_score(targets[:, c], scores[:, c]))
               if 0 < positives < len(targets) else None)
        if auc is not None:
            aucs.append(auc)
        per_tag[name] = {"positives": positives, "ap": aps[c], "auc": auc}
    return {"clips": int(len(targets)), "tags": len(names), "mAP": mean_ap,
            "mean_auc": float(np.mean(aucs)) if aucs else None, "per_tag": per_tag}


def format_tagging_report(report: Mapping[str, Any]) -> str:
    """The text ``asctool score`` prints for a tags file: mAP, mean AUC, then one line per tag."""
    pct = lambda v: "-" if v is None else f"{100 * v:.2f} %"  # noqa: E731
    lines = [f"{report.get('scores', '')}: {report['clips']} clips, {report['tags']} tags",
             f"mAP {pct(report['mAP'])}   mean AUC {pct(report['mean_auc'])}",
             f"{'tag':<24} {'positives':>9} {'AP':>9} {'AUC':>9}"]
    for name, row in report["per_tag"].items():
        lines.append(f"{name:<24} {row['positives']:>9} {pct(row['ap']):>9} {pct(row['auc']):>9}")
    return "\n".join(lines)
