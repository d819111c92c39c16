"""Ensembles and two-stage fusion (not implemented yet: owned by issue 5)."""
from __future__ import annotations

from .errors import NotImplementedYet


def _not_yet(*args, **kwargs):
    raise NotImplementedYet("asctool ensemble/fuse is not implemented yet")

ensemble = _not_yet
fuse = _not_yet
