"""The front end (not implemented yet: owned by issue 2)."""
from __future__ import annotations

from .errors import NotImplementedYet


def _not_yet(*args, **kwargs):
    raise NotImplementedYet("asctool featurize is not implemented yet")

featurize = _not_yet
