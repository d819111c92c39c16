"""Demo dataset generator (not implemented yet: owned by issue 2)."""
from __future__ import annotations

from .errors import NotImplementedYet


def _not_yet(*args, **kwargs):
    raise NotImplementedYet("asctool synth is not implemented yet")

synthesize = _not_yet
