"""The extractor registry: name -> :class:`ExtractorSpec` (``asctool embed --extractor NAME``).

An extractor turns fixed-length windows of a waveform into one embedding
vector each. Its module registers a factory with :func:`register`; the
factory takes the extractor's options as keywords and returns an
:class:`Extractor`, a light object that only loads its model (TensorFlow,
TensorFlow Lite) in :meth:`Extractor.load`, in the process that computes
(so the stage can fork worker processes before any TensorFlow state exists).
"""
from __future__ import annotations

import inspect
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from ..errors import ConfigError
from ..provenance import file_sha256  # noqa: F401  (re-exported: the extractors and taggers import it from here)
from ..registry import Registry

__all__ = ["EXTRACTORS", "ExtractorSpec", "Extractor", "register", "make_extractor", "file_sha256"]

#: Every embedding extractor, in registration order.
EXTRACTORS: "Registry[ExtractorSpec]" = Registry("extractor")


@dataclass(frozen=True)
class ExtractorSpec:
    """One registered extractor: its factory, a one-line description and its licence."""

    name: str
    factory: Callable[..., "Extractor"]
    description: str
    licence: str = ""
    options: tuple[str, ...] = field(default=())  # the keyword options the factory takes


def register(name: str, description: str, *, licence: str = "") -> Callable:
    """Decorator: register ``factory(**options) -> Extractor`` as extractor ``name``.

    The factory's keyword parameters are the options ``asctool embed`` accepts
    for it (``hop``, ``weights``, ``model``, ...).
    """
    def decorate(factory: Callable[..., "Extractor"]) -> Callable[..., "Extractor"]:
        params = tuple(p.name for p in inspect.signature(factory).parameters.values()
                       if p.kind == inspect.Parameter.KEYWORD_ONLY)
        EXTRACTORS.add(name, ExtractorSpec(name, factory, description, licence, params))
        return factory
    return decorate


def make_extractor(name: str, options: Mapping[str, Any]) -> "Extractor":
    """The extractor ``name`` with ``options`` (None values are left at their defaults).

    Raises
    ------
    ConfigError
        An unknown extractor (the message lists the known ones), or an option
        the extractor does not take (the message lists those it takes).
    """
    spec = EXTRACTORS.get(name)
    given = {k: v for k, v in options.items() if v is not None}
    unknown = sorted(set(given) - set(spec.options))
    if unknown:
        takes = ", ".join("--" + o.replace("_", "-") for o in spec.options) or "none"
        raise ConfigError(f"extractor {name} takes no --{unknown[0].replace('_', '-')} (its options: {takes})")
    return spec.factory(**given)


class Extractor:
    """Windows of audio in, one embedding per window out.

    Attributes set by subclasses
    ----------------------------
    name : the registry name
    sample_rate : int, Hz: clips at other rates are resampled to it (soxr)
    window : float, seconds of audio per embedding
    hop : float, seconds between window starts
    center : bool, half a window of zeros before the clip (OpenL3's
        ``center=True``), so window ``i`` is centred on ``i * hop``
    min_tail : float or None, seconds: without ``center``, a window starting
        with less than this much audio left is not taken (BirdNET-Analyzer's
        1.5 s); None: every start up to the end of the clip
    channels : int or None: None downmixes every clip to mono; a number keeps
        that many channels (a model with an asctool front end)
    input_files : the files it reads (weights, model), recorded as inputs
    """

    name = ""
    sample_rate = 48000
    window = 1.0
    hop = 0.1
    center = False
    min_tail: float | None = None
    channels: int | None = None
    input_files: tuple = ()  # files the extractor reads (weights, model): recorded in provenance

    def describe(self) -> dict[str, Any]:
        """What the artifact's ``extractor`` attribute records (JSON-serialisable)."""
        return {"name": self.name, "sample_rate": self.sample_rate, "window": self.window, "hop": self.hop,
                "center": self.center}

    def load(self) -> None:
        """Load the model (in the process that computes)."""

    def frontend(self, windows: np.ndarray) -> np.ndarray:
        """Windows ``(B, [channels,] samples)`` to model input (default: unchanged)."""
        return windows

    def embed(self, windows: np.ndarray) -> np.ndarray:
        """Embeddings ``(B, D)`` float32 of windows ``(B, samples)`` (``(B, channels, samples)`` with ``channels``)."""
        raise NotImplementedError


def check_file(path: str | os.PathLike | None, what: str, option: str, error=ConfigError) -> Path:
    """``path`` as a Path when it is an existing file, else one line saying what is missing."""
    if path is None:
        raise error(f"{what} needs {option} FILE")
    path = Path(path)
    if not path.is_file():
        raise error(f"{path}: {what} file not found ({option})")
    return path
