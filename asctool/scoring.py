"""Metrics and reports (not implemented yet: owned by issue 2)."""
from __future__ import annotations

from .errors import NotImplementedYet


def _not_yet(*args, **kwargs):
    raise NotImplementedYet("asctool score is not implemented yet")

score = _not_yet
format_report = _not_yet
