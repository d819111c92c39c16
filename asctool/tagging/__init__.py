"""Audio taggers: a tag vector (the probability of each of C sound events) per clip (``asctool tag``; docs/tag.md).

Each tagger is one module that registers itself in
:data:`asctool.tagging.registry.TAGGERS`; TensorFlow is imported only when a
tagger loads its model.
"""
from __future__ import annotations

from .registry import TAGGERS, Tagger, TaggerSpec, make_tagger, read_tag_list, register, sigmoid

from . import models, birdnet  # noqa: F401, E402, I001  (each registers its taggers, in CLI order)

__all__ = ["TAGGERS", "Tagger", "TaggerSpec", "make_tagger", "read_tag_list", "register", "sigmoid"]
