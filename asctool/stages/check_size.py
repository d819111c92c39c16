"""``asctool check-size``: do the quantised models fit a size budget together?

Reads the ``size.json`` files of ``asctool quantize`` and adds up, per model,
the size under the chosen rule (:data:`asctool.reporting.SIZE_RULES`: ``dcase``
counts parameters x the nominal bits of the quantisation mode, the DCASE 2020
Task 1b rule; ``file`` the ``.tflite`` bytes). A gate for recipes: the total
over the budget is an error (exit 1).
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Sequence

from ..errors import ArtifactError, AsctoolError
from ..reporting import format_size_budget, size_budget

__all__ = ["run"]


def run(size_paths: Sequence[str | os.PathLike], *, budget_kb: float, rule: str = "dcase") -> dict:
    """Check that the models of ``size_paths`` fit ``budget_kb`` together.

    Parameters
    ----------
    size_paths : sequence of path
        ``size.json`` files written by ``asctool quantize``.
    budget_kb : float
        The budget of all the models together, in KB of 1024 bytes.
    rule : {'dcase', 'file'}
        What is counted (see :data:`asctool.reporting.SIZE_RULES`).

    Returns
    -------
    dict
        The :func:`asctool.reporting.size_budget` summary (per model, the
        total, the budget, ``within``: true).

    Raises
    ------
    ArtifactError
        A file is missing, not JSON, or lacks the value the rule counts.
    AsctoolError
        The total is over the budget (the message gives every model's size).
    """
    infos = {}
    for raw in size_paths:
        path = Path(raw)
        try:
            infos[str(path)] = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ArtifactError(f"{path}: file not found") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ArtifactError(f"{path}: not a readable size.json ({exc})") from None
        if not isinstance(infos[str(path)], dict):
            raise ArtifactError(f"{path}: not a size.json of asctool quantize (a JSON object)")
    if not infos:
        raise ArtifactError("no size.json given")
    summary = size_budget(infos, budget_kb=budget_kb, rule=rule)
    if not summary["within"]:
        raise AsctoolError(format_size_budget(summary).replace("\n", "; "))
    return summary
