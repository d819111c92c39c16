"""Combining scores: ensembles within a stage and two-stage (coarse -> fine) fusion.

A pure library (arrays in, arrays out; the stages ``asctool ensemble`` and
``asctool fuse`` in :mod:`asctool.stages` read and write the files), one
module per concern:

- :mod:`.core`: the registries of ensemble and fusion methods, filled by the
  decorators :func:`ensemble_method` and :func:`fusion_method`; member and
  coarse weights, the choice of the coarse weight on validation scores
  (:func:`select_coarse_weight`), the class hierarchy (:func:`parent_index`)
  and the oracle gating;
- :mod:`.joins`: the joins every combination makes, by clip id, never by row
  order, and the guards against fitting on the scores being combined;
- one module per method: :mod:`.mean` (ensemble ``mean``, the weighted mean of
  the members' probabilities), :mod:`.logreg` (ensemble ``logreg``, a
  multinomial logistic regression on their stacked log-probabilities, fitted
  on validation scores), :mod:`.two_stage` (fusion ``two-stage``, p(fine)
  proportional to p_fine(fine) * p_coarse(parent(fine)) ** w).

A new method is one module here, importing its decorator from :mod:`.core`,
plus its name in the import line below (``docs/extending.md``). This package
re-exports the public names, so ``from asctool.fusion import ...`` reaches
all of them.
"""
from __future__ import annotations

from . import mean, logreg, two_stage  # noqa: F401, I001  (each registers its method, in CLI order)
from . import core, joins
from .core import (DEFAULT_WEIGHT_GRID, ENSEMBLE_METHODS, FUSION_METHODS, LOG_FLOOR, EnsembleMethod, FusionMethod,
                   check_weight, ensemble_method, ensemble_methods, fusion_method, fusion_methods,
                   get_ensemble_method, get_fusion_method, oracle_gating, parent_index, parse_weight_grid,
                   parse_weights, select_coarse_weight)
from .joins import (join_all, join_scores, merge_meta, refuse_overwriting_inputs, refuse_same_files,
                    refuse_shared_ids)
from .logreg import LogReg, fit_logreg, logreg_features, predict_logreg
from .mean import mean_ensemble
from .two_stage import fuse_probabilities

#: the public names of the modules: the machinery, the joins and each method
__all__ = [*core.__all__, *joins.__all__, *mean.__all__, *logreg.__all__, *two_stage.__all__]
