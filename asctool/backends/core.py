"""Linear back-ends: the registry, the stored model and the clip summaries they read.

A linear back-end (``asctool train --model logreg``) is fitted on one vector per
clip and stored as plain numbers in ``RUN/model.json`` (no pickle): the class
list, the standardisation (``mean``, ``scale``) and the weights (``coef``,
``intercept``), so that ``p = softmax(((x - mean) / scale) @ coef.T + intercept)``.
``asctool predict --model RUN/model.json`` applies it.

The clip vector (:func:`clip_summaries`):

- embeddings ``(T, D)``: the mean of the clip's frames, ``(D,)`` (mean pooling);
- features ``(freq, time, channels)``: the **linear probe**, the mean and the
  standard deviation over time of every band, channel by channel,
  ``(2 * freq * channels,)`` (``[mean_c0, std_c0, mean_c1, std_c1, ...]``), the
  clip statistics of ``benchmarks/synth_learnability.py``.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from ..errors import ArtifactError, ConfigError
from ..io import atomic_path
from ..registry import Registry

__all__ = ["BackendSpec", "REGISTRY", "register", "available", "spec", "LinearModel", "clip_summaries",
           "SUMMARIES", "MODEL_FORMAT"]

#: The ``format`` field of ``RUN/model.json``.
MODEL_FORMAT = "asctool linear model"
#: What :func:`clip_summaries` computes, by the kind of the input file (stored in the model).
SUMMARIES = {
    "embeddings": "mean of the clip's embedding frames",
    "features": "mean and std over time of every band, per channel (linear probe)",
}


@dataclass(frozen=True)
class BackendSpec:
    """One registry entry: ``fit(x, y, n_classes, *, seed, **options) -> (coef, intercept, mean, scale, info)``."""

    name: str
    fit: Callable[..., Any]
    description: str
    defaults: dict = field(default_factory=dict)


#: name -> :class:`BackendSpec`.
REGISTRY: Registry[BackendSpec] = Registry("linear back-end")


def register(name: str, description: str, *, defaults: Mapping[str, Any] | None = None):
    """Decorator adding a fitting function to the linear back-end registry under ``name``."""
    def decorate(fit):
        REGISTRY.add(name, BackendSpec(name, fit, description, dict(defaults or {})))
        return fit
    return decorate


available = REGISTRY.names
spec = REGISTRY.get


def check_options(name: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """``--option`` values of back-end ``name`` converted to its defaults' types.

    Raises
    ------
    ConfigError
        An unknown option or a value that does not convert.
    """
    entry = spec(name)
    unknown = sorted(set(options) - set(entry.defaults))
    if unknown:
        raise ConfigError(f"back-end {name!r}: unknown option(s) {', '.join(unknown)}; "
                          f"known options: {', '.join(sorted(entry.defaults))}")
    out = {}
    for key, value in options.items():
        kind = type(entry.defaults[key])
        try:
            out[key] = kind(float(value)) if kind is int else kind(value)
        except (TypeError, ValueError):
            raise ConfigError(f"back-end {name!r}: option {key}={value!r} is not a valid {kind.__name__}") from None
    return out


def clip_summaries(f, kind: str, *, batch: int = 64, progress=None) -> np.ndarray:
    """One vector per clip of an open features or embeddings file (see the module docstring).

    Parameters
    ----------
    f : FeaturesFile or EmbeddingsFile
        Read ``batch`` clips at a time through ``f.batches`` (NaN/Inf refused, naming the clip).
    kind : {"embeddings", "features"}
    progress : callable, optional
        Called with the number of clips of each batch.

    Returns
    -------
    np.ndarray [shape=(N, D)] or [shape=(N, 2 * freq * channels)], float64
    """
    rows = []
    for _, view in f.batches(batch):
        x = view.astype(np.float64)
        if kind == "embeddings":  # (n, T, D) -> (n, D)
            rows.append(x.mean(axis=1))
        else:  # (n, freq, time, channels) -> per channel [mean over time, std over time]
            stats = np.concatenate([x.mean(axis=2), x.std(axis=2)], axis=1)  # (n, 2 * freq, channels)
            rows.append(stats.transpose(0, 2, 1).reshape(len(x), -1))
        if progress is not None:
            progress(len(x))
    width = 0 if not rows else rows[0].shape[1]
    return np.concatenate(rows) if rows else np.zeros((0, width))


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


@dataclass
class LinearModel:
    """A fitted linear back-end: ``p = softmax(((x - mean) / scale) @ coef.T + intercept)``.

    Attributes
    ----------
    coef : np.ndarray [shape=(K, d)]
    intercept : np.ndarray [shape=(K,)]
    mean, scale : np.ndarray [shape=(d,)]
        Standardisation from the training clips (scale > 0).
    metadata : dict
        ``backend``, ``inputs`` (``features`` or ``embeddings``), ``summary``,
        ``classes``, ``labels``, ``label_map``, ``frontend_config`` (the front
        end or the extractor of the training file), ``input_shape`` (the
        per-clip shape of the training file) and the fit's ``options`` and ``info``.
    """

    coef: np.ndarray
    intercept: np.ndarray
    mean: np.ndarray
    scale: np.ndarray
    metadata: dict

    @property
    def classes(self) -> list[str]:
        return list(self.metadata["classes"])

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Probabilities ``(n, K)`` of clip vectors ``x`` ``(n, d)``."""
        z = ((np.asarray(x, dtype=np.float64) - self.mean) / self.scale) @ self.coef.T + self.intercept
        return _softmax(z)

    def save(self, path: str | os.PathLike) -> None:
        """Write ``path`` (JSON) atomically."""
        record = {"format": MODEL_FORMAT, "version": 1, **self.metadata, "coef": self.coef.tolist(),
                  "intercept": self.intercept.tolist(), "mean": self.mean.tolist(), "scale": self.scale.tolist()}
        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps(record, sort_keys=True) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: str | os.PathLike) -> "LinearModel":
        """Read a model written by :meth:`save`.

        Raises
        ------
        ArtifactError
            Missing or unreadable file, not an asctool linear model, or arrays
            whose shapes do not agree with each other and the class list.
        """
        path = Path(path)
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ArtifactError(f"{path}: model file not found") from None
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise ArtifactError(f"{path}: not a readable JSON file ({exc})") from None
        if not isinstance(record, dict) or record.get("format") != MODEL_FORMAT:
            raise ArtifactError(f"{path}: not an asctool linear model (no \"format\": \"{MODEL_FORMAT}\")")
        missing = [k for k in ("coef", "intercept", "mean", "scale", "classes", "inputs", "frontend_config",
                               "input_shape") if k not in record]
        if missing:
            raise ArtifactError(f"{path}: linear model lacks {', '.join(missing)}")
        try:
            arrays = [np.asarray(record.pop(k), dtype=np.float64) for k in ("coef", "intercept", "mean", "scale")]
        except (TypeError, ValueError) as exc:
            raise ArtifactError(f"{path}: a linear model's weights are not numeric arrays ({exc})") from None
        classes, inputs = record["classes"], record["inputs"]
        coef, intercept, mean, scale = arrays
        k = len(classes) if isinstance(classes, list) else -1
        if (inputs not in SUMMARIES or k < 2 or coef.ndim != 2 or coef.shape[0] != k
                or intercept.shape != (k,) or mean.shape != (coef.shape[1],) or scale.shape != mean.shape
                or not np.all(np.isfinite(coef)) or not np.all(scale > 0)):
            raise ArtifactError(f"{path}: inconsistent linear model (coef {coef.shape}, intercept {intercept.shape}, "
                                f"mean {mean.shape}, scale {scale.shape}, {k} classes, inputs {inputs!r})")
        for key in ("format", "version"):
            record.pop(key, None)
        return cls(coef, intercept, mean, scale, record)
