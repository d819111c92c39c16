"""Pretrained audio embedding extractors (``asctool embed``; docs/embed.md).

Each extractor is one module that registers itself in
:data:`asctool.embeddings.registry.EXTRACTORS`; TensorFlow is imported only
when an extractor loads its model.
"""
from __future__ import annotations

from .registry import EXTRACTORS, Extractor, ExtractorSpec, make_extractor, register

from . import openl3, birdnet, keras_model  # noqa: F401, E402, I001  (each registers its extractors, in CLI order)

__all__ = ["EXTRACTORS", "Extractor", "ExtractorSpec", "make_extractor", "register"]
