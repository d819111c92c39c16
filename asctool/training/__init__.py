"""Training engine (not implemented yet: owned by issue 3)."""
from __future__ import annotations

from ..errors import NotImplementedYet


def _not_yet(*args, **kwargs):
    raise NotImplementedYet("asctool train is not implemented yet")

train = _not_yet
