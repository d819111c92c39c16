"""Linear back-ends on clip vectors (``asctool train --model logreg``), stored as JSON (``RUN/model.json``).

See :mod:`asctool.backends.core` for the stored model and the clip vectors, and
``docs/shallow.md``. A new back-end is one module registering its fitting
function with :func:`asctool.backends.core.register`, plus its name in the import line below.
"""
from __future__ import annotations

from . import logreg  # noqa: F401  (registers the back-end)
from .core import (MODEL_FORMAT, SUMMARIES, LinearModel, available, check_options, clip_summaries,  # noqa: F401
                   register, spec)

__all__ = ["available", "spec", "register", "check_options", "LinearModel", "clip_summaries", "SUMMARIES",
           "MODEL_FORMAT"]
