"""Model registry (not implemented yet: owned by issue 3)."""
from __future__ import annotations

from ..errors import NotImplementedYet


def _not_yet(*args, **kwargs):
    raise NotImplementedYet("asctool models is not implemented yet")

summary_table = _not_yet
build = _not_yet
available = _not_yet
