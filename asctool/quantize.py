"""TFLite quantisation (not implemented yet: owned by issue 5)."""
from __future__ import annotations

from .errors import NotImplementedYet


def _not_yet(*args, **kwargs):
    raise NotImplementedYet("asctool quantize is not implemented yet")

quantize = _not_yet
