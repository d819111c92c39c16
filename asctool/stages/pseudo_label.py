"""The ``asctool pseudo-label`` stage: tri-training's agreed labels for unlabelled clips.

Reads a run trained with ``--tri-training`` (its ``labellers.keras``: the
input to the class probabilities of Ft, F1 and F2, see
:mod:`asctool.training.adversarial`), scores every clip of a features file
with F1 and F2 and keeps the clips where both give the same class with a
probability above the threshold (:func:`asctool.training.adversarial.select_pseudo_labels`;
Park et al., DCASE 2019 workshop, section 2.3). The output is a features file
of the kept clips whose ``scene`` is the pseudo-label, with the datasets
``confidence1`` and ``confidence2`` (each labeller's probability of that
class) and ``reference_scene`` (the input's scene, "" when it had none): phase
2 trains on it with ``asctool train --train LABELLED.h5 --train PSEUDO.h5``.
"""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..artifacts import FeaturesWriter, check_same_config, first_nonfinite, open_features
from ..errors import ArtifactError, ConfigError, MismatchError
from ..io import claim_outputs, locked_outputs
from ..runs import read_model_metadata
from ..training.adversarial import LABELLERS_FILE, select_pseudo_labels

__all__ = ["run"]

log = logging.getLogger(__name__)


@locked_outputs("out")  # one writer per output (docs/reliability.md)
def run(model: str | os.PathLike, features_path: str | os.PathLike, out: str | os.PathLike, *,
        threshold: float = 0.5, batch_size: int = 64, force: bool = False) -> dict[str, Any]:
    """Pseudo-label the clips of a features file with a tri-training run's two labellers.

    Parameters
    ----------
    model : path
        A run folder trained with ``--tri-training`` (its ``labellers.keras``, the
        weights of ``model.keras``; ``labellers-last.keras`` when the run had no
        validation and so no best epoch), or such a file.
    features_path : path
        Features of the unlabelled clips (same front end as the run). Scenes,
        where present, are kept as ``reference_scene`` and scored.
    out : path
        Features file to write: the kept clips, ``scene`` = pseudo-label.
    threshold : float
        Both labellers' probability of the agreed class must exceed it; in [0, 1).
    batch_size : int
    force : bool
        Overwrite ``out``.

    Returns
    -------
    dict
        ``out``, ``clips`` (input), ``kept``, ``coverage`` (kept / clips), the
        kept clips per class and per device and, when the input has scenes of
        the run's classes, ``precision`` (kept clips whose pseudo-label is the
        reference) overall and per device.

    Raises
    ------
    ConfigError
        A threshold outside [0, 1), a run without labellers.
    ArtifactError
        Unreadable model or features, no clip kept (nothing is written).
    MismatchError
        The features' front end or shape differs from the run's.
    """
    model, features_path, out = Path(model), Path(features_path), Path(out)
    if not 0.0 <= threshold < 1.0:
        raise ConfigError(f"--threshold {threshold}: must be in [0, 1)")
    if batch_size < 1:
        raise ConfigError(f"--batch-size {batch_size}: must be positive")
    path = model
    if model.is_dir():   # the labellers of model.keras; a run without validation has those of the last epoch
        path = model / LABELLERS_FILE
        if not path.is_file() and (model / "labellers-last.keras").is_file():
            path = model / "labellers-last.keras"
    if not path.is_file():
        raise ConfigError(f"{model}: no {LABELLERS_FILE}; pseudo-labels need a run trained with --tri-training")
    claim_outputs([out], force=force, inputs=[path, features_path])
    config = read_model_metadata(path)
    classes = [str(c) for c in config["classes"]]
    from ..models import load_model

    labellers = load_model(path)
    if len(labellers.outputs) != 3:
        raise ArtifactError(f"{path}: expected the three outputs Ft, F1, F2, found {len(labellers.outputs)}")
    with open_features(features_path) as f:
        check_same_config(config["frontend_config"], f.config, f"{path} (its metadata)", features_path)
        freq, _, channels = config["input_shape"]
        if len(f.feature_shape) != 3 or f.feature_shape[0] != freq or f.feature_shape[2] != channels:
            raise MismatchError(f"{features_path}: features of shape {f.feature_shape} do not fit {path}, "
                                f"trained on {tuple(config['input_shape'])}")
        n = len(f)
        if n == 0:
            raise ArtifactError(f"{features_path}: features file holds no clips")
        p1 = np.empty((n, len(classes)), np.float32)
        p2 = np.empty_like(p1)
        for start, view in f.batches(batch_size):
            _, s1, s2 = labellers.predict(view.astype(np.float32), verbose=0)
            bad = first_nonfinite(np.concatenate([s1, s2]))
            if bad is not None:
                raise ArtifactError(f"{path}: gives NaN or Inf scores on {features_path}")
            p1[start:start + len(view)], p2[start:start + len(view)] = s1, s2
        keep, labels = select_pseudo_labels(p1, p2, threshold)
        index = np.flatnonzero(keep)
        if index.size == 0:
            raise ArtifactError(f"{features_path}: the labellers agree above {threshold} on no clip; "
                                "nothing written (lower --threshold?)")
        ids, scenes = np.asarray(f.ids)[index], np.asarray(f.scenes, dtype=object).astype(str)
        devices = np.asarray(f.devices, dtype=object).astype(str)
        names = np.asarray(classes, dtype=object)[labels[index]]
        with FeaturesWriter(out, n=len(index), feature_shape=f.feature_shape, config=f.config, ids=ids,
                            scenes=names, devices=devices[index],
                            locations=np.asarray(f.locations, dtype=object)[index], dtype=str(f.dtype),
                            inputs=[path, features_path],
                            extra_attrs={"pseudo_label": json.dumps({"model": str(path), "threshold": threshold}),
                                         **({"classes": json.dumps(f.classes)} if f.classes else {})},
                            columns={"confidence1": p1[index, labels[index]],
                                     "confidence2": p2[index, labels[index]],
                                     "reference_scene": scenes[index].astype("S")}) as writer:
            for i, row in enumerate(index.tolist()):
                writer.write(i, f.features[row])
    summary: dict[str, Any] = {"out": str(out), "clips": n, "kept": int(index.size),
                               "coverage": float(index.size / n),
                               "kept_per_class": {c: int((names == c).sum()) for c in classes}}
    per_device = {}
    mapping = config.get("label_map") or {}
    truth = np.array([mapping.get(s, s) for s in scenes], dtype=object)
    scored = np.isin(truth, classes)
    for device in sorted(set(devices.tolist())):
        mask = devices == device
        row = {"clips": int(mask.sum()), "kept": int(keep[mask].sum())}
        both = keep & mask & scored
        if both.any():
            row["precision"] = float(np.mean(np.asarray(classes, dtype=object)[labels[both]] == truth[both]))
        per_device[device or "?"] = row
    summary["per_device"] = per_device
    if (keep & scored).any():
        both = keep & scored
        summary["precision"] = float(np.mean(np.asarray(classes, dtype=object)[labels[both]] == truth[both]))
    log.info("kept %d of %d clips (%.1f %%)%s; wrote %s", index.size, n, 100 * index.size / n,
             f", precision {summary['precision']:.3f}" if "precision" in summary else "", out)
    return summary
