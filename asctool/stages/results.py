"""``asctool results``: a recipe's RESULTS.md from the reports of ``asctool score --json``.

Reads the reports (and, when given, the fusion summary and the ``size.json``
files of quantised models), builds the table with
:func:`asctool.reporting.results_markdown` and writes it atomically. With
``--folds``, each report path holds ``{fold}``, read once per fold, and the
table gives mean ± standard deviation over the folds
(:func:`asctool.reporting.fold_statistics`, :func:`asctool.reporting.folds_markdown`).
"""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Sequence

from ..errors import ArtifactError, ConfigError
from ..io import atomic_path, check_name, claim_outputs, locked_outputs
from ..reporting import fold_statistics, folds_markdown, results_markdown, size_bytes

__all__ = ["run", "parse_named", "parse_folds"]

#: What a report path holds in place of the fold's name with ``--folds``.
FOLD_FIELD = "{fold}"

log = logging.getLogger(__name__)


def parse_named(items: Sequence[str], what: str) -> list[tuple[str, Path]]:
    """``NAME=FILE`` arguments -> (name, path) pairs, in order.

    Raises
    ------
    ConfigError
        An item is not ``NAME=FILE`` or a name repeats.
    """
    pairs: list[tuple[str, Path]] = []
    for item in items:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise ConfigError(f"{what}: expected NAME=FILE, got {item!r}")
        if name in dict(pairs):
            raise ConfigError(f"{what}: name {name!r} given twice")
        pairs.append((name, Path(path)))
    return pairs


def parse_folds(text: str | Sequence[str]) -> list[str]:
    """``--folds 1,2,3`` -> ``["1", "2", "3"]``: distinct names that can be part of a path.

    Raises
    ------
    ConfigError
        An empty list or name, a name given twice, a name that cannot be part
        of a file name (:func:`asctool.io.check_name`).
    """
    folds = [f.strip() for f in text.split(",")] if isinstance(text, str) else [str(f) for f in text]
    if not folds or any(not f for f in folds):
        raise ConfigError(f"--folds: expected comma-separated fold names like 1,2,3, got {text!r}")
    for fold in folds:
        check_name(fold, what="fold", where="--folds", error=ConfigError)
        if folds.count(fold) > 1:
            raise ConfigError(f"--folds: fold {fold!r} given twice")
    return folds


def _fold_paths(path: Path, folds: Sequence[str]) -> list[Path]:
    text = str(path)
    if FOLD_FIELD not in text:
        raise ConfigError(f"{path}: with --folds, a report path holds {FOLD_FIELD} (e.g. exp/fold{FOLD_FIELD}/"
                          "sys/report.json), filled in with each fold")
    return [Path(text.replace(FOLD_FIELD, fold)) for fold in folds]


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ArtifactError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArtifactError(f"{path}: not a readable JSON file ({exc})") from None


def _read_report(path: Path) -> dict:
    """A report of ``asctool score --json``: a JSON object whose ``overall`` and ``groups`` are objects."""
    report = _read_json(path)
    groups = report.get("groups", {}) if isinstance(report, dict) else None
    if (not isinstance(report, dict) or not isinstance(report.get("overall", {}), dict)
            or not isinstance(groups, dict) or not all(isinstance(g, dict) for g in groups.values())):
        raise ArtifactError(f"{path}: not a report of asctool score --json (a JSON object with 'overall' "
                            "and 'groups' objects)")
    for where, figures in [("overall", report.get("overall", {})), *((f"groups.{k}", g) for k, g in groups.items())]:
        for key in ("accuracy", "macro_accuracy", "log_loss"):
            value = figures.get(key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
                raise ArtifactError(f"{path}: {where}.{key} is {value!r}, not a number")
    return report


def _read_size(path: Path, rule: str) -> dict:
    """A ``size.json`` of ``asctool quantize``: a JSON object with the file's bytes and what ``rule`` counts."""
    info = _read_json(path)
    if not isinstance(info, dict):
        raise ArtifactError(f"{path}: not a size.json of asctool quantize (a JSON object)")
    for what in ("file", rule):
        size_bytes(info, what, where=path)
    return info


def _read_object(path: Path) -> dict:
    info = _read_json(path)
    if not isinstance(info, dict):
        raise ArtifactError(f"{path}: expected a JSON object (what asctool fuse prints)")
    return info


@locked_outputs("out")  # one writer per output (docs/reliability.md)
def run(reports: Sequence[str], out: str | os.PathLike, *, title: str = "Results",
        fusion_summary: str | os.PathLike | None = None, sizes: Sequence[str] = (),
        published: str | None = None, budget_kb: float | None = None, size_rule: str = "dcase",
        folds: str | Sequence[str] | None = None, force: bool = False) -> dict:
    """Write RESULTS.md: one row per report, in the order given.

    Parameters
    ----------
    reports : sequence of str
        ``NAME=REPORT.json`` (the row's name, then its ``asctool score --json`` report).
    out : path
        The Markdown file to write.
    title : str
    fusion_summary : path, optional
        The JSON ``asctool fuse`` printed; its oracle-gating line is added. A
        file that does not exist is skipped with a warning.
    sizes : sequence of str
        ``NAME=size.json`` of quantised models (NAME as in ``reports``): a size
        column and the total.
    published : {'1a', '1b'} or None
        Close with the published figures of that task.
    budget_kb : float, optional
        With ``sizes``: compare the total with this budget (KB of 1024 bytes).
    size_rule : {'dcase', 'file'}
        With ``sizes``: what the total counts.
    folds : str or sequence of str, optional
        Cross-validation (``--folds 1,2,3``): each report path holds
        ``{fold}``, replaced by each fold's name; the table gives the mean ±
        sample standard deviation over the folds of each figure, then each
        fold's micro accuracy. Not with ``sizes`` or ``fusion_summary``.
    force : bool
        Overwrite an existing ``out``.

    Returns
    -------
    dict
        ``out`` and the number of ``rows``; with ``folds`` also ``folds`` and
        per system the ``accuracy`` and ``macro_accuracy`` mean and std (fractions).
    """
    named_reports, named_sizes = parse_named(reports, "reports"), parse_named(sizes, "--size")
    if folds is not None:
        return _run_folds(named_reports, out, parse_folds(folds), title=title, force=force,
                          extras=[what for what, given in (("--size", sizes), ("--fusion-summary", fusion_summary),
                                                          ("--published", published)) if given])
    claim_outputs([out], force=force, inputs=[p for _, p in named_reports + named_sizes] + [fusion_summary])
    rows = [(name, _read_report(path)) for name, path in named_reports]
    size_infos = {name: _read_size(path, size_rule) for name, path in named_sizes}
    summary = None
    if fusion_summary is not None:
        if Path(fusion_summary).is_file():
            summary = _read_object(Path(fusion_summary))
        else:
            log.warning("%s: no fusion summary; the oracle-gating line is left out", fusion_summary)
    text = results_markdown(rows, title=title, fusion_summary=summary, sizes=size_infos, published=published,
                            budget_kb=budget_kb, size_rule=size_rule)
    with atomic_path(out) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return {"out": str(out), "rows": len(rows)}


def _run_folds(named_reports: Sequence[tuple[str, Path]], out: str | os.PathLike, folds: Sequence[str], *,
               title: str, force: bool, extras: Sequence[str]) -> dict:
    """RESULTS.md of a cross-validation: every report read once per fold."""
    if extras:
        raise ConfigError(f"{', '.join(extras)}: not with --folds (the table summarises the folds' reports)")
    per_system = [(name, _fold_paths(path, folds)) for name, path in named_reports]
    claim_outputs([out], force=force, inputs=[p for _, paths in per_system for p in paths])
    stats = fold_statistics([(name, [_read_report(p) for p in paths]) for name, paths in per_system], folds)
    with atomic_path(out) as tmp:
        tmp.write_text(folds_markdown(stats, folds, title=title), encoding="utf-8")
    for name, entry in stats.items():
        if "accuracy" in entry:
            acc = entry["accuracy"]
            log.info("%s: micro accuracy %.1f%s %% over %d folds", name, 100 * acc["mean"],
                     "" if acc["std"] is None else f" ± {100 * acc['std']:.1f}", len(folds))
    systems = {name: {key: {"mean": entry[key]["mean"], "std": entry[key]["std"]}
                      for key in ("accuracy", "macro_accuracy") if key in entry} for name, entry in stats.items()}
    return {"out": str(out), "rows": len(stats), "folds": list(folds), "systems": systems}
