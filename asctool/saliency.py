"""Class activation maps (not implemented yet: owned by issue 5)."""
from __future__ import annotations

from .errors import NotImplementedYet


def _not_yet(*args, **kwargs):
    raise NotImplementedYet("asctool cam is not implemented yet")

cam = _not_yet
