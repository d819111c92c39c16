"""The inputs of a combination: joins by clip id, and guards against leakage.

Every ensemble and fusion joins its inputs by clip id, never by row order
(the published two-stage gain of the reference system came from multiplying
row i of one file with row i of another that listed the clips in a different
order), with differing id sets or class lists as errors; methods fitted on
validation scores refuse files or clips that are also being combined.
"""
from __future__ import annotations

import os
from typing import Sequence

import numpy as np

from ..artifacts import Scores, align_ids, check_same_classes
from ..errors import ConfigError, MismatchError

__all__ = [
    "join_scores",
    "join_all",
    "merge_meta",
    "refuse_same_files",
    "refuse_shared_ids",
    "refuse_overwriting_inputs",
]


def join_scores(reference: Scores, other: Scores) -> Scores:
    """``other`` with its rows in the order of ``reference``'s ids (same id set required).

    Raises
    ------
    MismatchError
        naming how many ids are only in each file, and the first few.
    """
    order = align_ids(reference.ids, other.ids, reference.path, other.path)
    pick = lambda a: None if a is None else a[order]  # noqa: E731
    return Scores(reference.ids.copy(), other.scores[order], list(other.classes), pick(other.scenes),
                  pick(other.devices), dict(other.attrs), other.path)


def join_all(loaded: Sequence[Scores]) -> list[Scores]:
    """Scores with one class list, every one reordered to the ids of the first."""
    first = loaded[0]
    joined = [first]
    for other in loaded[1:]:
        check_same_classes(first.classes, other.classes, first.path, other.path)
        joined.append(join_scores(first, other))
    return joined


def merge_meta(reference: Scores, others: Sequence[Scores], name: str) -> np.ndarray | None:
    """Per-clip ``scenes`` or ``devices`` of aligned scores; they must agree where known.

    Returns
    -------
    np.ndarray [shape=(n,)] of str (``""`` where no file knows), or None when
    no file has the field.
    """
    merged = None
    source = None
    for s in [reference, *others]:
        values = getattr(s, name)
        if values is None or not any(str(v) for v in values):
            continue
        values = np.asarray([str(v) for v in values], dtype=object)
        if merged is None:
            merged, source = values.copy(), s.path
            continue
        clash = np.flatnonzero((merged != "") & (values != "") & (merged != values))
        if clash.size:
            i = clash[0]
            raise MismatchError(
                f"{source} and {s.path} disagree on the {name.rstrip('s')} of clip {reference.ids[i]} "
                f"({merged[i]!r} vs {values[i]!r})"
            )
        merged = np.where(merged == "", values, merged)
    return merged


def _same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def refuse_same_files(fit: Sequence[str | os.PathLike], evaluated: Sequence[str | os.PathLike], what: str) -> None:
    """ConfigError when a file to fit ``what`` on is one of the evaluated files."""
    for f in fit:
        for e in evaluated:
            if _same_file(f, e):
                raise ConfigError(
                    f"{f}: is also an evaluated input; {what} must be fitted on validation "
                    f"scores, never on the scores it combines"
                )


def refuse_shared_ids(fit: Sequence[Scores], evaluated: Sequence[Scores], what: str) -> None:
    """ConfigError when scores to fit ``what`` on share any clip with the evaluated scores."""
    evaluated_ids = set(evaluated[0].ids)
    for f in fit:
        shared = evaluated_ids & set(f.ids)
        if shared:
            some = ", ".join(sorted(shared)[:3])
            kind = "the same clips as" if len(shared) == len(evaluated_ids) == len(f) else f"{len(shared)} clips with"
            raise ConfigError(
                f"{f.path}: shares {kind} the evaluated scores ({some}); {what} must be fitted on "
                f"validation scores, never on the scores it combines"
            )


def refuse_overwriting_inputs(out: str | os.PathLike, inputs: Sequence[str | os.PathLike]) -> None:
    """ConfigError when the output file is one of the inputs."""
    for p in inputs:
        if _same_file(out, p):
            raise ConfigError(f"{out}: is also an input; write the output to a new file")
