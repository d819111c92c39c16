"""Waveform augmentations (not implemented yet: owned by issue 4)."""
from __future__ import annotations

from ..errors import NotImplementedYet


def _not_yet(*args, **kwargs):
    raise NotImplementedYet("asctool augment is not implemented yet")

run = _not_yet
