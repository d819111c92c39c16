"""The ``asctool models`` stage: the model registry with parameter counts and complexity, then the back-ends."""
from __future__ import annotations

from typing import Sequence

__all__ = ["run"]


def run(*, num_classes: int, input_shape: Sequence[int]) -> str:
    """The table of every registered model built for ``num_classes`` and ``input_shape``, then the back-ends.

    Parameters
    ----------
    num_classes : int
    input_shape : (freq, time, channels)

    Returns
    -------
    str
        One row per model: parameters, MACs and bytes (see :mod:`asctool.models.complexity`);
        after a blank line, one row per back-end: what it is fitted on (:mod:`asctool.backends`).
    """
    from .. import backends
    from ..models import summary_table

    return summary_table(num_classes=num_classes, input_shape=tuple(input_shape)) + "\n\n" + backends.summary_table()
