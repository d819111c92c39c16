"""The ``asctool score`` stage: metrics of a scores file, and the files a user asks for.

Computes the report with :func:`asctool.scoring.compute_report` (accuracy per
device, device group and class, normalised log loss, confusion matrix) and
writes, when asked, the JSON report, the DCASE submission file and the
confusion-matrix PNG. Everything is checked before anything is written.
"""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..artifacts import read_scores
from ..errors import ArtifactError, ConfigError, MismatchError
from ..io import atomic_path, claim_outputs, locked_outputs
from ..labels import resolve_label_map
from ..manifest import read_manifest
from ..scoring import (carried_label_map, compute_report, label_map_for, confusion_png, packaged_groups, read_groups,
                       reference_indices, submission_text)

__all__ = ["run"]

log = logging.getLogger(__name__)


def _write(path: str | os.PathLike, content: str | bytes) -> str:
    with atomic_path(path) as tmp:
        if isinstance(content, bytes):
            tmp.write_bytes(content)
        else:
            tmp.write_text(content, encoding="utf-8")
    return str(path)


@locked_outputs("json_path", "submission", "plot")  # one writer per output (docs/reliability.md)
def run(
    scores_path: str | os.PathLike,
    *,
    json_path: str | os.PathLike | None = None,
    submission: str | os.PathLike | None = None,
    groups: str | os.PathLike | None = None,
    labels: str | os.PathLike | None = None,
    plot: str | os.PathLike | None = None,
    force: bool = False,
    manifest: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """Evaluate a scores file; optionally write the report, a submission and a plot.

    Parameters
    ----------
    scores_path : scores file (HDF5)
    json_path : where to write the report as JSON
    submission : where to write the DCASE submission file
    groups : YAML of device groups (default: the packaged DCASE 2020 groups)
    labels : ``coarse`` or a TSV ``scene<TAB>label``: map the reference scenes
        before scoring (e.g. 3-class scores of 10-scene-labelled clips).
        None: the map the scores carry (their model's ``train --labels``,
        recorded by ``predict``) when every reference label is in it.
    plot : where to write the confusion-matrix PNG (needs labels)
    force : overwrite existing output files
    manifest : the manifest the scores were made from: the submission lists
        each clip by the data set's file name (its ``filename`` column, else
        its ``path``) instead of ``audio/<id>.wav``

    Returns
    -------
    dict
        The report (see :func:`compute_report`) plus ``scores`` (the path) and
        the paths written. Everything is checked before anything is written.
    """
    scores_path = Path(scores_path)
    claim_outputs([json_path, submission, plot], force=force, inputs=[scores_path, groups, manifest])
    s = read_scores(scores_path)
    group_map = packaged_groups() if groups is None else read_groups(groups)
    if manifest is not None and submission is None:
        raise ConfigError("--manifest names the submission's file names; give --submission FILE too")
    filenames = None
    if manifest is not None:
        rows = read_manifest(manifest)
        filenames = {c.id: c.extra.get("filename") or c.path for c in rows}
    label_map = resolve_label_map(labels)
    if labels is None and label_map_for(s.scenes, carried_label_map(s.attrs, scores_path)) is not None:
        label_map = label_map_for(s.scenes, carried_label_map(s.attrs, scores_path))
        labels = "the map the scores carry (their model's --labels)"
    reference = reference_indices(s.scenes, s.classes, scores_path, label_map)
    if plot is not None and reference is None:
        raise ArtifactError(f"{scores_path}: no reference labels, so no confusion matrix to plot")
    report = {"scores": str(scores_path)}
    if labels is not None:
        report["labels"] = str(labels)
    report.update(compute_report(s.scores, s.classes, reference, s.devices, group_map))
    if reference is None:
        log.warning("%s: no reference labels; only the predicted classes are counted", scores_path)
    outputs = {}
    if submission is not None:
        try:
            text = submission_text(s.ids, s.scores, s.classes, filenames)
        except MismatchError as exc:
            raise MismatchError(f"{scores_path}: {exc} ({manifest})") from None
        outputs["submission"] = _write(submission, text)
        log.info("wrote submission %s", submission)
    if plot is not None:
        outputs["plot"] = _write(plot, confusion_png(np.asarray(report["confusion"]), s.classes,
                                                     title=scores_path.name))
        log.info("wrote confusion matrix %s", plot)
    if json_path is not None:
        outputs["json"] = str(json_path)
    report["outputs"] = outputs
    if json_path is not None:
        _write(json_path, json.dumps(report, indent=2) + "\n")
        log.info("wrote report %s", json_path)
    return report
