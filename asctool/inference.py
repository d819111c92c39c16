"""Prediction (not implemented yet: owned by issue 3)."""
from __future__ import annotations

from .errors import NotImplementedYet


def _not_yet(*args, **kwargs):
    raise NotImplementedYet("asctool predict is not implemented yet")

predict = _not_yet
