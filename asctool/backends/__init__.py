"""Back-ends: scikit-learn classifiers on clip vectors or on a trained model's codes, stored without pickle.

See :mod:`asctool.backends.core` for the registry, the stored linear model
(``RUN/model.json``, ``asctool train --model logreg``) and the clip vectors;
:mod:`asctool.backends.codes` for a model's codes (``asctool backend svm``); and
``docs/shallow.md``, ``docs/tag_fusion.md``. A new back-end is one module
registering its fitting function with :func:`asctool.backends.core.register`,
plus its name in the import line below.
"""
from __future__ import annotations

from . import logreg, svm  # noqa: F401, I001  (each registers one back-end, in this order)
from .core import (FITS_ON, MODEL_FORMAT, SUMMARIES, LinearModel, available, check_options,  # noqa: F401
                   clip_summaries, read_code_backend, register, spec, summary_table)

__all__ = ["available", "spec", "register", "check_options", "read_code_backend", "summary_table", "LinearModel",
           "clip_summaries", "SUMMARIES", "MODEL_FORMAT", "FITS_ON"]
