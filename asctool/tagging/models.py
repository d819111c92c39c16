"""Taggers ``keras``, ``tflite`` (any user model with sigmoid outputs) and ``asctool`` (a run folder).

The model's output (``--layer`` to read another layer or tensor) gives a value
per tag and window; ``--labels FILE`` names the outputs, one per line (a
YAMNet or PANNs export with its class list, for example). A model without
asctool metadata takes raw waveform windows (``--sample-rate``, ``--window``,
``--hop``); one with asctool metadata gets its own front end. The model
loading and windows are those of the embedding extractors
(:mod:`asctool.embeddings.keras_model`).

``asctool``: a tagger trained by ``asctool train --task tagging``: the run
folder's ``model.keras`` (sigmoid outputs), its tag names and front end from
the model's metadata.
"""
from __future__ import annotations

import os
from pathlib import Path

from ..embeddings.keras_model import ModelLayerExtractor
from ..errors import ConfigError
from ..runs import read_model_metadata
from .registry import Tagger, read_tag_list, register

__all__ = ["keras_tagger", "tflite_tagger", "asctool_tagger"]


def _user_tagger(kind: str, model, labels, layer, sample_rate, window, hop, activation, pooling) -> Tagger:
    extractor = ModelLayerExtractor(kind, model, layer, sample_rate, window, hop, output_default=True)
    if labels is None:
        raise ConfigError(f"tagger {kind} needs --labels FILE (the names of the model's outputs, one per line)")
    names = read_tag_list(labels, "label list")
    options = {"model": model, "labels": labels, "layer": layer, "sample_rate": sample_rate, "window": window,
               "hop": hop}
    tagger = Tagger(kind, extractor, names, activation=activation, pooling=pooling, weights=extractor.path,
                    options=options)
    tagger.extra_inputs = (Path(labels),)
    return tagger


@register("keras", "any Keras model with sigmoid outputs (--model FILE.keras --labels FILE)")
def keras_tagger(*, model: str | os.PathLike | None = None, labels: str | os.PathLike | None = None,
                 layer: str | None = None, sample_rate: int | None = None, window: float | None = None,
                 hop: float | None = None, activation: str = "none", pooling: str = "mean") -> Tagger:
    """A Keras model's output (or ``layer``) as tag probabilities, named by ``labels``."""
    return _user_tagger("keras", model, labels, layer, sample_rate, window, hop, activation, pooling)


@register("tflite", "any TensorFlow Lite model with sigmoid outputs (--model FILE.tflite --labels FILE)")
def tflite_tagger(*, model: str | os.PathLike | None = None, labels: str | os.PathLike | None = None,
                  layer: str | None = None, sample_rate: int | None = None, window: float | None = None,
                  hop: float | None = None, activation: str = "none", pooling: str = "mean") -> Tagger:
    """A TensorFlow Lite model's output (or tensor ``layer``) as tag probabilities, named by ``labels``."""
    return _user_tagger("tflite", model, labels, layer, sample_rate, window, hop, activation, pooling)


@register("asctool", "a tagger trained by asctool train --task tagging (--run RUN)")
def asctool_tagger(*, run: str | os.PathLike | None = None, hop: float | None = None,
                   pooling: str = "mean") -> Tagger:
    """``RUN/model.keras`` of a tagging run: its tag names and front end from the model's metadata.

    Raises
    ------
    ConfigError
        No ``--run``, no ``model.keras`` in it, or a model not trained for tagging.
    """
    if run is None:
        raise ConfigError("tagger asctool needs --run RUN (a run folder of asctool train --task tagging)")
    path = Path(run) / "model.keras"
    if not path.is_file():
        raise ConfigError(f"{path}: not found (--run takes a run folder of asctool train --task tagging)")
    metadata = read_model_metadata(path)
    if metadata.get("task") != "tagging":
        raise ConfigError(f"{path}: not a tagger (trained with --task {metadata.get('task', 'scene')}); "
                          "train one with asctool train --task tagging")
    extractor = ModelLayerExtractor("keras", path, None, None, None, hop, output_default=True)
    return Tagger("asctool", extractor, metadata["classes"], activation="none", pooling=pooling, weights=path,
                  options={"run": str(run), "model": metadata["model"], "hop": hop})
