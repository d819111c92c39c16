"""The *codes* of a trained model, which back-ends of ``fits_on="codes"`` are fitted on and applied to.

The code of a clip is the input of the model's last (output) layer: the 64-d
dense code of ``rawnet``, the fused code of a tag-conditioned model, the pooled
features of the other backbones. A back-end file records the SHA-256 of the
model file whose codes it was fitted on (:func:`check_backend_model`).
"""
from __future__ import annotations

import os
from typing import Any

import numpy as np

from ..errors import MismatchError
from ..provenance import file_sha256

__all__ = ["code_model", "features_codes", "check_backend_model"]


def code_model(model):
    """The sub-model from ``model``'s inputs to its code (the input of its last layer)."""
    import keras

    return keras.Model(model.inputs, model.layers[-1].input)


def features_codes(model_path: str | os.PathLike, features_path: str | os.PathLike, metadata: dict[str, Any],
                   tags_path: str | os.PathLike | None = None, batch_size: int = 64):
    """Codes ``(N, d)`` of every clip of a features file, with ids, scenes and devices.

    A tag-conditioned model (``metadata["tag_fusion"]``) needs the tags file of its
    tagger (checked) holding every clip (joined by id).

    Raises
    ------
    ConfigError
        Tags missing for a tag-conditioned model, or given for another.
    MismatchError
        Another tagger; a clip without tags; front-end config that differs from the model's.
    """
    from ..artifacts import check_same_config, open_features
    from ..errors import ConfigError
    from ..models import load_model

    fusion = metadata.get("tag_fusion")
    if (fusion is None) != (tags_path is None):
        raise ConfigError(f"{model_path}: " + ("was trained with tags: give --tags" if fusion
                                               else "was trained without tags: --tags does not apply"))
    coder = code_model(load_model(model_path))
    with open_features(features_path) as f:
        check_same_config(metadata["frontend_config"], f.config, f"{model_path} (its metadata)", features_path)
        clip_tags = None
        if fusion is not None:
            from ..tagsfile import check_same_tagger, read_tags
            from ..training.data import join_tags

            tags = read_tags(tags_path)
            check_same_tagger(fusion, tags.identity, model_path, tags_path)
            clip_tags = join_tags(tags, f.ids, features_path)
        parts = []
        for start, view in f.batches(batch_size):
            x = view.astype(np.float32)
            inputs = x if clip_tags is None else [x, clip_tags[start:start + len(view)]]
            parts.append(np.asarray(coder.predict_on_batch(inputs), dtype=np.float64).reshape(len(view), -1))
        return np.concatenate(parts), np.asarray(f.ids), np.asarray(f.scenes), np.asarray(f.devices)


def check_backend_model(backend, model_path: str | os.PathLike, backend_path) -> None:
    """Refuse a back-end (its ``model_sha256``) fitted on the codes of another model file (SHA-256)."""
    digest = file_sha256(model_path)
    if digest != backend.model_sha256:
        raise MismatchError(f"{backend_path}: fitted on the codes of another model (SHA-256 "
                            f"{backend.model_sha256[:16]}...), not {model_path} ({digest[:16]}...)")
