"""The tagger registry: name -> :class:`TaggerSpec` (``asctool tag --tagger NAME``).

A tagger gives each window of a clip a tag vector: the probability of each of
C sound events (Jung et al., "Acoustic scene classification using audio
tagging", Interspeech 2020, section 2). It is an embedding extractor
(:class:`asctool.embeddings.Extractor`: the windows, the sample rate, the
model loading) whose output is a probability per tag, with the tag names, an
optional sigmoid on the model's output and how a clip's windows are pooled.
Like the extractors, a tagger loads its model only in :meth:`Tagger.load`,
in the process that computes.
"""
from __future__ import annotations

import inspect
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from ..embeddings.registry import Extractor, file_sha256
from ..errors import ArtifactError, ConfigError
from ..registry import Registry
from ..tagsfile import POOLINGS

__all__ = ["TAGGERS", "TaggerSpec", "Tagger", "register", "make_tagger", "read_tag_list", "sigmoid",
           "ACTIVATIONS"]

#: Every tagger, in registration order.
TAGGERS: "Registry[TaggerSpec]" = Registry("tagger")
#: What turns a model's output into probabilities: nothing (already sigmoid outputs) or the logistic sigmoid.
ACTIVATIONS = ("none", "sigmoid")


@dataclass(frozen=True)
class TaggerSpec:
    """One registered tagger: its factory, a one-line description, its licence and its options."""

    name: str
    factory: Callable[..., "Tagger"]
    description: str
    licence: str = ""
    options: tuple[str, ...] = field(default=())


def register(name: str, description: str, *, licence: str = "") -> Callable:
    """Decorator: register ``factory(**options) -> Tagger`` as tagger ``name``.

    The factory's keyword-only parameters are the options ``asctool tag``
    accepts for it (``model``, ``labels``, ``run``, ...); ``pooling`` and
    ``tag_subset`` are common to every tagger and handled by :func:`make_tagger`.
    """
    def decorate(factory: Callable[..., "Tagger"]) -> Callable[..., "Tagger"]:
        params = tuple(p.name for p in inspect.signature(factory).parameters.values()
                       if p.kind == inspect.Parameter.KEYWORD_ONLY)
        TAGGERS.add(name, TaggerSpec(name, factory, description, licence, params))
        return factory
    return decorate


def sigmoid(x: np.ndarray) -> np.ndarray:
    """The logistic function ``1 / (1 + exp(-x))`` in float32, without overflow warnings."""
    x = np.asarray(x, dtype=np.float64)
    return (0.5 * (1.0 + np.tanh(0.5 * x))).astype(np.float32)  # the same function, finite for every x


def read_tag_list(path: str | os.PathLike, what: str = "tag list") -> list[str]:
    """Names one per line (blank lines and surrounding spaces ignored); one line naming the file on a problem.

    Raises
    ------
    ConfigError
        Missing or unreadable file, no name, a name given twice (``FILE:LINE``).
    """
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise ConfigError(f"{path}: {what} file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: unreadable {what} ({exc})") from None
    names: list[str] = []
    seen: dict[str, int] = {}
    for number, line in enumerate(lines, 1):
        name = line.strip()
        if not name:
            continue
        if name in seen:
            raise ConfigError(f"{path}:{number}: {name!r} is listed twice (first on line {seen[name]})")
        seen[name] = number
        names.append(name)
    if not names:
        raise ConfigError(f"{path}: {what} holds no names")
    return names


class Tagger:
    """Windows of audio in, a tag vector per window out.

    Parameters
    ----------
    name : registry name
    extractor : the :class:`~asctool.embeddings.Extractor` whose output per window is one
        value per tag (it fixes the sample rate, windows, channels and model files)
    tag_names : the C names of its outputs, in order
    activation : ``"none"`` (outputs are probabilities already) or ``"sigmoid"`` (logits)
    pooling : ``"mean"`` or ``"max"`` over a clip's windows
    weights : the file whose SHA-256 identifies the tagger's weights
    options : the options it was made with (recorded in the tags file)
    """

    def __init__(self, name: str, extractor: Extractor, tag_names: Sequence[str], *, activation: str,
                 pooling: str, weights: str | os.PathLike, options: Mapping[str, Any]) -> None:
        if activation not in ACTIVATIONS:
            raise ConfigError(f"--activation {activation!r}: must be one of {', '.join(ACTIVATIONS)}")
        if pooling not in POOLINGS:
            raise ConfigError(f"--pooling {pooling!r}: must be one of {', '.join(POOLINGS)}")
        self.name = name
        self.extractor = extractor
        self.all_names = [str(n) for n in tag_names]
        self.tag_names = list(self.all_names)
        self.keep: np.ndarray | None = None  # columns kept by --tag-subset
        self.activation = activation
        self.pooling = pooling
        self.weights = Path(weights)
        self.sha256 = file_sha256(self.weights)
        self.extra_inputs: tuple = ()  # further files it reads (a label list), recorded in provenance
        self.options = {k: (str(v) if isinstance(v, os.PathLike) else v) for k, v in options.items()
                        if v is not None}

    # the extractor's window geometry, as the stage reads it
    sample_rate = property(lambda self: self.extractor.sample_rate)
    window = property(lambda self: self.extractor.window)
    hop = property(lambda self: self.extractor.hop)
    center = property(lambda self: self.extractor.center)
    min_tail = property(lambda self: self.extractor.min_tail)
    channels = property(lambda self: self.extractor.channels)

    @property
    def input_files(self) -> tuple:
        return tuple(dict.fromkeys([*self.extractor.input_files, self.weights, *self.extra_inputs]))

    def select(self, path: str | os.PathLike) -> None:
        """Keep only the tags named in ``path`` (``--tag-subset FILE``), in the file's order.

        A line names a tag by its full name or, for names ``SCIENTIFIC_COMMON``
        (BirdNET's labels), by the part after the first ``_`` when that is unique.

        Raises
        ------
        ConfigError
            A name the tagger does not have (``FILE:LINE``), a common name shared
            by several tags, or an unreadable file.
        """
        wanted = read_tag_list(path, "tag subset")
        lines = {name: number for number, name in
                 ((i, line.strip()) for i, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1))
                 if name}
        index = {name: i for i, name in enumerate(self.all_names)}
        common: dict[str, list[int]] = {}
        for i, name in enumerate(self.all_names):
            if "_" in name:
                common.setdefault(name.split("_", 1)[1], []).append(i)
        keep = []
        for name in wanted:
            if name in index:
                keep.append(index[name])
            elif len(common.get(name, [])) == 1:
                keep.append(common[name][0])
            elif name in common:
                raise ConfigError(f"{path}:{lines[name]}: {name!r} is the common name of {len(common[name])} tags "
                                  f"of tagger {self.name}; give the full name")
            else:
                raise ConfigError(f"{path}:{lines[name]}: tagger {self.name} has no tag {name!r}")
        if len(set(keep)) != len(keep):
            raise ConfigError(f"{path}: names the same tag twice")
        self.keep = np.asarray(keep, dtype=np.int64)
        self.tag_names = [self.all_names[i] for i in keep]
        self.options["tag_subset"] = self.tag_names

    def describe(self) -> dict[str, Any]:
        """The tags file's ``tagger`` record: name, options, weights SHA-256 and pooling."""
        options = {**self.options, "activation": self.activation,
                   "extractor": self.extractor.describe()}
        return {"name": self.name, "options": options, "sha256": self.sha256, "pooling": self.pooling}

    def load(self) -> None:
        """Load the model (in the process that computes)."""
        self.extractor.load()

    def tag(self, windows: np.ndarray, where: str = "") -> np.ndarray:
        """Tag probabilities ``(B, C)`` float32 of windows ``(B, [channels,] samples)``.

        Raises
        ------
        ArtifactError
            The model gives other than ``len(all_names)`` outputs, NaN or Inf, or
            (``activation="none"``) values outside [0, 1], naming ``where``.
        """
        out = np.asarray(self.extractor.embed(windows), dtype=np.float32).reshape(len(windows), -1)
        if out.shape[1] != len(self.all_names):
            raise ArtifactError(f"{where}: tagger {self.name} gives {out.shape[1]} outputs per window but its "
                                f"label list names {len(self.all_names)} tags")
        if not np.isfinite(out).all():
            raise ArtifactError(f"{where}: tagger {self.name} gave NaN or Inf outputs")
        if self.activation == "sigmoid":
            out = sigmoid(out)
        elif out.min() < -1e-6 or out.max() > 1 + 1e-6:
            raise ArtifactError(f"{where}: tagger {self.name} gave values outside [0, 1] ({out.min():g} .. "
                                f"{out.max():g}): not sigmoid outputs; give --activation sigmoid for a model "
                                "that outputs logits")
        out = np.clip(out, 0.0, 1.0)
        return out if self.keep is None else out[:, self.keep]

    def pool(self, per_window: np.ndarray) -> np.ndarray:
        """One tag vector per clip from ``(T, C)`` window probabilities: their mean or maximum over T."""
        return per_window.max(axis=0) if self.pooling == "max" else per_window.mean(axis=0, dtype=np.float64
                                                                                     ).astype(np.float32)


def make_tagger(name: str, options: Mapping[str, Any]) -> Tagger:
    """The tagger ``name`` with ``options`` (None values take the defaults).

    ``pooling`` (default ``"mean"``) and ``tag_subset`` (a file) apply to every
    tagger; the other options are the factory's.

    Raises
    ------
    ConfigError
        An unknown tagger (listing the known ones), an option it does not take
        (listing those it takes), a bad option value or file.
    """
    spec = TAGGERS.get(name)
    given = {k: v for k, v in options.items() if v is not None}
    pooling = given.pop("pooling", "mean")
    subset = given.pop("tag_subset", None)
    unknown = sorted(set(given) - set(spec.options))
    if unknown:
        takes = ", ".join("--" + o.replace("_", "-") for o in spec.options) or "none"
        raise ConfigError(f"tagger {name} takes no --{unknown[0].replace('_', '-')} (its options: {takes})")
    tagger = spec.factory(pooling=pooling, **given)
    if subset is not None:
        tagger.select(subset)
    return tagger
