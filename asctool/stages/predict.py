"""The ``asctool predict`` stage: class probabilities of every clip of a features file.

Reads a model (``RUN/model.keras``, or a ``.tflite`` file written by
``asctool quantize``) and its metadata (classes, front-end configuration,
input shape: :func:`asctool.runs.read_model_metadata`), streams the features
in batches at full length (the models are fully convolutional) and writes a
scores file.
"""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..artifacts import KIND_EMBEDDINGS, check_same_config, first_nonfinite, open_features, read_kind, write_scores
from ..errors import ArtifactError, ConfigError, MismatchError
from ..inference import check_tflite_checksum, load_runner
from ..io import claim_outputs, locked_outputs
from ..runs import read_model_metadata

__all__ = ["run"]

log = logging.getLogger(__name__)


@locked_outputs("out")  # one writer per output (docs/reliability.md)
def run(
    model_path: str | os.PathLike,
    features_path: str | os.PathLike,
    out: str | os.PathLike,
    *,
    batch_size: int = 64,
    force: bool = False,
    tags_path: str | os.PathLike | None = None,
    backend_path: str | os.PathLike | None = None,
    collapse: str = "sum",
) -> dict[str, Any]:
    """Score every clip of a features file and write a scores file.

    Parameters
    ----------
    model_path : path
        ``RUN/model.keras`` (or any ``.keras`` file of a run folder) or a
        ``.tflite`` file with a ``config.json`` beside it.
    features_path : path
        Features file made with the front-end config the model was trained on.
    out : path
        Scores file to write (``id``, ``scene`` and ``device`` where known,
        ``classes`` from the model's config).
    batch_size : int
        Clips per forward pass; features are read one batch at a time.
    force : bool
        Overwrite an existing ``out``.
    tags_path : path, optional
        Tags file holding every clip (joined by id): required by, and only by,
        a tag-conditioned model (``train --tags``), from the same tagger.
    backend_path : path, optional
        An SVM back-end (``asctool backend svm``) fitted on this model's codes:
        it gives the scores instead of the model's own output layer.
    collapse : {"sum", "mean", "max"}
        For an embeddings file: how a clip's frame probabilities become one row
        (:func:`asctool.training.frames.collapse`). A ``RUN/model.json`` (a
        linear back-end) scores a features or embeddings file clip by clip.

    Returns
    -------
    dict
        ``out``, ``clips``, ``classes`` and, when the features are labelled
        with classes of the model, ``accuracy`` (micro, over those clips).

    Raises
    ------
    ArtifactError
        Missing or unreadable model, config.json or features; an empty features file;
        NaN or Inf features or scores; a ``.tflite`` whose SHA-256 differs from its ``size.json``.
    AsctoolError
        ``out`` exists (without ``force``), is a folder or cannot be written.
    MismatchError
        The features' front-end config or shape differs from the model's; tags from
        another tagger (or other tag names) than the model's; a clip without tags.
    """
    model_path, features_path, out = Path(model_path), Path(features_path), Path(out)
    if batch_size < 1:
        raise ArtifactError(f"--batch-size {batch_size}: must be positive")
    claim_outputs([out], force=force, inputs=[model_path, features_path, tags_path, backend_path])
    if model_path.suffix == ".json" or (features_path.is_file() and read_kind(features_path) == KIND_EMBEDDINGS):
        if tags_path is not None or backend_path is not None:
            raise ConfigError(f"{model_path}: --tags and --backend apply to CNNs on features files, "
                              "not to linear back-ends or embeddings")
        from ..training.frames import shallow_scores

        config, ids, scores, scenes, devices, extra = shallow_scores(model_path, features_path, batch_size=batch_size,
                                                                     collapse_method=collapse)
        return _write(out, config, ids, scores, scenes, devices, [model_path, features_path], extra)
    check_tflite_checksum(model_path)  # a corrupted .tflite still runs: check it against size.json
    config = read_model_metadata(model_path)
    if config.get("inputs") == "embeddings":
        raise MismatchError(f"{features_path}: a features file; {model_path} was trained on embeddings")
    fusion, tags = config.get("tag_fusion"), None
    if (fusion is None) != (tags_path is None):
        raise ConfigError(f"{model_path}: " + ("was trained with tags: give --tags" if fusion
                                               else "was trained without tags: --tags does not apply"))
    if fusion is not None:
        from ..tagsfile import check_same_tagger, read_tags

        if model_path.suffix != ".keras":
            raise ConfigError(f"{model_path}: a tag-conditioned model runs from its .keras file")
        tags = read_tags(tags_path)
        check_same_tagger(fusion, tags.identity, model_path, tags_path)
    backend = None
    if backend_path is not None:   # a back-end on the model's codes (asctool backend svm)
        from ..backends import read_code_backend
        from ..backends.codes import check_backend_model

        backend = read_code_backend(backend_path)
        check_backend_model(backend, model_path, backend_path)
        if backend.classes != [str(c) for c in config["classes"]]:
            raise MismatchError(f"{backend_path}: classes {backend.classes} differ from {model_path}'s {config['classes']}")
    classes = [str(c) for c in config["classes"]]
    with open_features(features_path) as f:
        check_same_config(config["frontend_config"], f.config,
                          f"{model_path} (its metadata)", features_path)
        freq, _, channels = config["input_shape"]
        shape = f.feature_shape
        if len(shape) != 3 or shape[0] != freq or shape[2] != channels:
            raise MismatchError(
                f"{features_path}: features of shape {shape} do not fit {model_path}, "
                f"trained on {tuple(config['input_shape'])}"
            )
        n = len(f)
        if n == 0:
            raise ArtifactError(f"{features_path}: features file holds no clips")
        run = load_runner(model_path)
        if backend is not None:
            from ..models import load_model
            from ..backends.codes import code_model

            coder = code_model(load_model(model_path))
            run = lambda inputs: backend.predict_proba(np.asarray(coder.predict_on_batch(inputs)).reshape(  # noqa: E731
                len(inputs[0] if isinstance(inputs, list) else inputs), -1))
        if tags is not None:
            from ..training.data import join_tags

            clip_tags = join_tags(tags, f.ids, features_path)
        from ..console import progress

        scores = np.empty((n, len(classes)), dtype=np.float32)
        log.info("predict %d clips of %s with %s", n, features_path, model_path)
        with progress(n, "predicting") as advance:
            for start, view in f.batches(batch_size):
                stop = start + len(view)
                x = view.astype(np.float32)
                probs = run(x if tags is None else [x, clip_tags[start:stop]])
                bad = first_nonfinite(probs)
                if bad is not None:
                    raise ArtifactError(f"{model_path}: gives NaN or Inf scores for clip {f.ids[start + bad]} "
                                        f"of {features_path} (are its weights finite?)")
                if probs.shape != (stop - start, len(classes)):
                    raise MismatchError(
                        f"{model_path}: outputs {probs.shape[1:]} classes, its metadata lists {len(classes)}"
                    )
                scores[start:stop] = probs
                advance(stop - start)
        ids = list(f.ids)
        scenes = list(f.scenes) if any(f.scenes) else None
        devices = list(f.devices) if any(f.devices) else None
    return _write(out, config, ids, scores, scenes, devices, [model_path, features_path],
                  {"model": str(model_path), "model_name": str(config["model"])})


def _write(out: Path, config, ids, scores, scenes, devices, inputs, extra) -> dict[str, Any]:
    """Write the scores file (rows renormalised) and return the summary (accuracy where labelled)."""
    classes, n = [str(c) for c in config["classes"]], len(ids)
    scores = np.clip(scores, 0.0, None)
    scores /= np.maximum(scores.sum(axis=1, keepdims=True), 1e-12)
    write_scores(out, ids=ids, scores=scores, classes=classes, scenes=scenes, devices=devices,
                 inputs=inputs,
                 extra_attrs={**extra, **({"label_map": json.dumps(config["label_map"])} if config.get("label_map") else {})})
    summary: dict[str, Any] = {"out": str(out), "clips": n, "classes": classes}
    if scenes is not None:
        mapping = config.get("label_map") or {}
        truth = np.array([mapping.get(s, s) for s in scenes], dtype=object)
        known = np.isin(truth, classes)
        if known.any():
            predicted = np.asarray(classes, dtype=object)[scores.argmax(axis=1)]
            summary["accuracy"] = float(np.mean(predicted[known] == truth[known]))
            summary["labelled_clips"] = int(known.sum())
    log.info("wrote %s", out)
    return summary
