"""Back-ends: the registry, the stored linear model and the clip summaries it reads.

A back-end is a classifier from scikit-learn fitted on one vector per clip and
stored as plain numbers (no pickle). Each registry entry says what it is fitted
on (``fits_on``):

- ``"clips"``: clip vectors of a features or embeddings file (below);
  ``asctool train --model NAME`` fits it, ``asctool predict --model RUN/model.json``
  applies it (``logreg``);
- ``"codes"``: a trained model's codes (:mod:`asctool.backends.codes`);
  ``asctool backend NAME`` fits it into a file of its own artifact ``kind``,
  ``asctool predict --model RUN/model.keras --backend FILE`` applies it (``svm``).

A linear back-end is stored in ``RUN/model.json``: the class
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

__all__ = ["BackendSpec", "REGISTRY", "FITS_ON", "register", "available", "spec", "read_code_backend",
           "summary_table", "LinearModel", "clip_summaries", "SUMMARIES", "MODEL_FORMAT"]

#: The ``format`` field of ``RUN/model.json``.
MODEL_FORMAT = "asctool linear model"
#: What :func:`clip_summaries` computes, by the kind of the input file (stored in the model).
SUMMARIES = {
    "embeddings": "mean of the clip's embedding frames",
    "features": "mean and std over time of every band, per channel (linear probe)",
}


#: What a back-end is fitted on (``BackendSpec.fits_on``), as ``asctool models`` says it.
FITS_ON = {
    "clips": "clip vectors (asctool train --model NAME)",
    "codes": "a trained model's codes (asctool backend NAME)",
}


@dataclass(frozen=True)
class BackendSpec:
    """One registry entry.

    Attributes
    ----------
    fit : callable
        ``fits_on="clips"``: ``fit(x, y, n_classes, *, seed, **options) -> (coef, intercept, mean, scale, info)``;
        ``fits_on="codes"``: ``fit(train_codes, train_labels, valid_codes, valid_labels, classes, *, seed,
        model_sha256, **options)`` -> a fitted back-end (``classes``, ``model_sha256``, ``info``,
        ``predict_proba(codes)``) that ``write(path, backend, inputs=..., extra=...)`` stores.
    defaults : dict
        Option name -> default (``--option`` values are converted to its type).
    choices : dict
        Option name -> the values it accepts.
    fits_on : {"clips", "codes"}
    kind : str or None
        ``codes``: the ``asctool_kind`` of its file, which ``read(path)`` reads back.
    """

    name: str
    fit: Callable[..., Any]
    description: str
    defaults: dict = field(default_factory=dict)
    choices: dict = field(default_factory=dict)
    fits_on: str = "clips"
    kind: str | None = None
    read: Callable[..., Any] | None = None
    write: Callable[..., Any] | None = None


#: name -> :class:`BackendSpec`.
REGISTRY: Registry[BackendSpec] = Registry("back-end")


def register(name: str, description: str, *, defaults: Mapping[str, Any] | None = None,
             choices: Mapping[str, Any] | None = None, fits_on: str = "clips", kind: str | None = None,
             read: Callable[..., Any] | None = None, write: Callable[..., Any] | None = None):
    """Decorator adding a fitting function to the back-end registry under ``name`` (see :class:`BackendSpec`).

    Raises
    ------
    ValueError
        ``fits_on`` unknown, or a ``codes`` back-end without its file ``kind``, ``read`` and ``write``.
    """
    if fits_on not in FITS_ON:
        raise ValueError(f"back-end {name!r}: fits_on={fits_on!r}, choose {' or '.join(FITS_ON)}")
    if fits_on == "codes" and (kind is None or read is None or write is None):
        raise ValueError(f"back-end {name!r}: a back-end on codes needs its file kind, read and write")

    def decorate(fit):
        REGISTRY.add(name, BackendSpec(name, fit, description, dict(defaults or {}),
                                       {k: tuple(v) for k, v in (choices or {}).items()}, fits_on, kind, read, write))
        return fit
    return decorate


def available(fits_on: str | None = None) -> list[str]:
    """The registered back-ends' names (only those fitted on ``fits_on``, ``"clips"`` or ``"codes"``, if given)."""
    return [name for name, entry in REGISTRY.items() if fits_on is None or entry.fits_on == fits_on]


spec = REGISTRY.get


def read_code_backend(path: str | os.PathLike):
    """The fitted back-end in ``path``, read by the ``codes`` back-end whose file kind it has.

    Raises
    ------
    ArtifactError
        Not a readable HDF5 file, or not a back-end file (its kind is named).
    """
    from ..artifacts import read_kind

    kind = read_kind(path)
    for entry in REGISTRY.values():
        if entry.fits_on == "codes" and entry.kind == kind:
            return entry.read(path)
    raise ArtifactError(f"{path}: not a back-end file (kind {kind!r}; asctool backend "
                        f"{'|'.join(available('codes'))} writes one)")


def summary_table() -> str:
    """The back-end registry as text: a title line, a header and one row per back-end (name, fitted on, description)."""
    rows = [(name, FITS_ON[entry.fits_on], entry.description) for name, entry in REGISTRY.items()]
    header = ("back-end", "fitted on", "description")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(2)]
    lines = ["# back-ends: scikit-learn classifiers stored without pickle (docs/shallow.md, docs/tag_fusion.md)"]
    lines += ["  ".join([r[0].ljust(widths[0]), r[1].ljust(widths[1]), r[2]]).rstrip() for r in [header, *rows]]
    return "\n".join(lines)


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
        if key in entry.choices and out[key] not in entry.choices[key]:
            raise ConfigError(f"--{key} {out[key]!r}: choose {' or '.join(map(str, entry.choices[key]))}")
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
