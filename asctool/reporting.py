"""Recipe reports: the RESULTS.md table and the size budget of quantised models.

Pure functions on already-read JSON (the reports of ``asctool score --json``,
the summary ``asctool fuse`` prints, the ``size.json`` of ``asctool quantize``);
the ``asctool results`` and ``asctool check-size`` stages read the files and
call them.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

from .errors import ArtifactError, ConfigError

__all__ = ["GROUPS", "SIZE_RULES", "PUBLISHED", "size_bytes", "size_budget", "format_size_budget",
           "results_markdown", "mean_std", "fold_statistics", "folds_markdown"]

#: The device groups of the table, in column order (DCASE 2020 Task 1a).
GROUPS = ("A", "B&C", "s1-s3", "s4-s6")

#: What a size rule counts, by the ``size.json`` key it reads: ``dcase`` the
#: parameters x the nominal bits of the quantisation mode / 8 (the DCASE 2020
#: Task 1b rule, under which Hu et al. report their pair under 500 KB), ``file``
#: the bytes of the ``.tflite`` files (which also hold the graph and keep small
#: tensors in float32).
SIZE_RULES = {"dcase": "parameter_bytes", "file": "bytes"}

_PUBLISHED_1A = [
    ("DCASE 2020 baseline (OpenL3 + MLP)", "70.6", "61.6", "53.3", "44.3", "54.1"),
    ("Resnet", "83.0", "76.1", "73.6", "71.0", "74.6"),
    ("FCNN", "87.3", "79.5", "75.7", "73.0", "76.9"),
    ("fsFCNN", "83.9", "78.6", "75.4", "72.8", "76.2"),
    ("ensemble of the three", "87.0", "81.5", "78.0", "76.9", "79.4"),
    ("3-class ensemble (3 classes)", "", "", "", "", "93.2"),
    ("two-stage ensemble, as published (row-order artifact, see docs/results.md)",
     "87.9", "84.1", "80.4", "79.9", "81.9"),
]

#: The published figures (docs/reference.md section 6) that close RESULTS.md, by task.
PUBLISHED: dict[str, list[str]] = {
    "1a": ["", "Published figures (docs/reference.md section 6; fold 1, micro accuracy, %):", "",
           "| system | A | B&C | s1-s3 | s4-s6 | all |", "|---|---|---|---|---|---|"]
          + ["| " + " | ".join(row) + " |" for row in _PUBLISHED_1A],
    "1b": ["", "Published (docs/reference.md section 6): Mobnet 95.2 % -> 94.8 % quantised; "
           "small-FCNN 96.4 % -> 96.3 %; fused pair 96.7 % under 500 KB."],
    # Jung et al., Interspeech 2020 (docs/reference.md section 8): DCASE 2019 Task 1a, one device, no groups
    "jung2020": ["", "Published (Jung et al., Interspeech 2020; docs/reference.md section 8; DCASE 2019 Task 1a "
                 "fold 1, one device, micro accuracy, %; the baseline is a raw-waveform ResNet with an SVM "
                 "back-end):", "",
                 "| system | all |", "|---|---|", "| baseline (backbone alone) | 73.63 |",
                 "| concatenation (3 tag layers) | 75.66 |", "| multi-head attention (2 heads, 1 layer) | 76.58 |",
                 "| both (shared, 4 heads, 3 layers) | 76.75 |"],
    "dcase2020-baseline": ["", "Published (docs/reference.md section 8; fold 1, micro accuracy, %):", "",
                           "| system | A | B&C | s1-s3 | s4-s6 | all |", "|---|---|---|---|---|---|",
                           "| " + " | ".join(_PUBLISHED_1A[0]) + " |"],
}


def size_bytes(info: Mapping[str, Any], rule: str, *, where: str = "size.json") -> int:
    """The size of one quantised model under ``rule``, in bytes.

    Parameters
    ----------
    info : mapping
        A ``size.json`` of ``asctool quantize`` (``bytes``, ``parameter_bytes``, ...).
    rule : {'dcase', 'file'}
        See :data:`SIZE_RULES`.
    where : str
        The file name, for messages.

    Raises
    ------
    ConfigError
        An unknown rule.
    ArtifactError
        ``info`` has no readable value for the rule.
    """
    if rule not in SIZE_RULES:
        raise ConfigError(f"size rule must be one of {', '.join(SIZE_RULES)}, not {rule!r}")
    key = SIZE_RULES[rule]
    try:
        return int(info[key])
    except (KeyError, TypeError, ValueError) as exc:
        raise ArtifactError(f"{where}: no readable '{key}' ({exc!r})") from None


def size_budget(infos: Mapping[str, Mapping[str, Any]], *, budget_kb: float, rule: str = "dcase") -> dict:
    """Add up the sizes of quantised models and compare them with a budget.

    Parameters
    ----------
    infos : mapping of name -> size.json content
    budget_kb : float
        The budget of all the models together, in KB of 1024 bytes.
    rule : {'dcase', 'file'}
        See :data:`SIZE_RULES`.

    Returns
    -------
    dict
        ``models`` (per model: ``name``, ``bytes`` under the rule, ``file_bytes``,
        ``parameters``, ``mode``), ``total_bytes``, ``budget_kb``, ``budget_bytes``,
        ``rule`` and ``within`` (bool).
    """
    if not float(budget_kb) > 0:
        raise ConfigError(f"the size budget must be positive, not {budget_kb} KB")
    models = [{"name": name, "bytes": size_bytes(info, rule, where=name), "file_bytes": info.get("bytes"),
               "parameters": info.get("parameters"), "mode": info.get("mode")} for name, info in infos.items()]
    total = sum(m["bytes"] for m in models)
    budget = float(budget_kb) * 1024
    return {"models": models, "total_bytes": total, "budget_kb": float(budget_kb), "budget_bytes": budget,
            "rule": rule, "within": total <= budget}


def format_size_budget(summary: Mapping[str, Any]) -> str:
    """Text of a :func:`size_budget` summary: one line per model, then the total and the verdict."""
    rule = summary["rule"]
    lines = [f"{m['name']}: {m['bytes']} bytes ({m['bytes'] / 1024:.1f} KB, rule {rule}; file {m['file_bytes']} "
             f"bytes, {m['parameters']} parameters, {m['mode']})" for m in summary["models"]]
    total = summary["total_bytes"]
    verdict = "within" if summary["within"] else "OVER"
    lines.append(f"total: {total} bytes ({total / 1024:.1f} KB), {verdict} the budget of "
                 f"{summary['budget_kb']:g} KB (rule {rule})")
    return "\n".join(lines)


def _pct(value) -> str:
    return "" if value is None else f"{100.0 * float(value):.1f}"


def _fmt(value) -> str:
    if isinstance(value, float) and 0.0 <= value <= 1.0:
        return f"{100.0 * value:.1f} %"
    return str(value)


def _find(obj, word: str) -> dict:
    """Depth-first search of a JSON object for keys containing ``word``."""
    found = {}
    if isinstance(obj, dict):
        for key, value in obj.items():
            if word in str(key).lower():
                found[key] = value
            elif isinstance(value, (dict, list)):
                for sub_key, sub_value in _find(value, word).items():
                    found[f"{key}.{sub_key}"] = sub_value
    return found


def _mapped_note(labels: Sequence[Any]) -> str:
    """The table note on systems scored against mapped labels (reports' ``labels``), or "" when there are none."""
    if "coarse" in labels:
        return " 3-class systems are scored against the coarse labels."
    if any(labels):
        return " Systems trained with a label map (--labels FILE) are scored against the labels it maps to."
    return ""


def _oracle_line(summary: Mapping[str, Any]) -> str:
    """A readable line from the oracle-gating figures of a fuse summary."""
    acc = summary.get("accuracy")
    if isinstance(acc, dict) and "oracle_gating" in acc:
        parts = [f"{name} {_fmt(acc[name])}" for name in ("fine", "coarse", "fused") if name in acc]
        return ("Two-stage fusion (micro accuracy): " + ", ".join(parts)
                + "; oracle gating (the true coarse class given, the ceiling of a perfect 3-class stage) "
                + f"{_fmt(acc['oracle_gating'])}.")
    oracle = _find(summary, "oracle")
    if not oracle:
        return "Oracle gating: not reported by asctool fuse."
    parts = []
    for key, value in oracle.items():
        if isinstance(value, dict):
            for sub_key, sub_value in value.items():
                parts.append(f"{key}.{sub_key} {_fmt(sub_value)}")
        else:
            parts.append(f"{key} {_fmt(value)}")
    return "Oracle gating (true coarse class given to the fusion): " + ", ".join(parts) + "."


def results_markdown(rows: Sequence[tuple[str, Mapping[str, Any]]], *, title: str,
                     fusion_summary: Mapping[str, Any] | None = None,
                     sizes: Mapping[str, Mapping[str, Any]] | None = None, published: str | None = None,
                     budget_kb: float | None = None, size_rule: str = "dcase") -> str:
    """The Markdown text of a recipe's RESULTS.md.

    Parameters
    ----------
    rows : sequence of (name, report)
        One table row per ``asctool score --json`` report, in this order:
        device-group accuracies (:data:`GROUPS`, where present; no group
        columns when no report has a group), overall micro
        and macro accuracy (%), the normalised log loss and the clip count.
    title : str
    fusion_summary : mapping, optional
        What ``asctool fuse`` prints; adds its oracle-gating line.
    sizes : mapping of name -> size.json content, optional
        Adds two columns (file KB, parameters x bits KB) to the rows of those
        names, and a line with the total of all the models.
    published : {'1a', '1b'} or None
        Close with the published figures of that task (:data:`PUBLISHED`).
    budget_kb : float, optional
        With ``sizes``: say whether the total is within this budget.
    size_rule : {'dcase', 'file'}
        With ``sizes``: what the total counts (:data:`SIZE_RULES`).

    Returns
    -------
    str
        The text, ending with a newline.
    """
    if published is not None and published not in PUBLISHED:
        raise ConfigError(f"published figures exist for {', '.join(PUBLISHED)}, not {published!r}")
    sizes = dict(sizes or {})
    lines = [f"# {title}", ""]
    # no device group in any report (a data set without devices): no empty group columns
    groups_shown = GROUPS if any(report.get("groups") for _, report in rows) else ()
    head = ["system", "classes", *groups_shown, "all (micro)", "all (macro)", "log loss", "n"]
    if sizes:
        head += ["file (KB)", "params x bits (KB)"]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "---|" * len(head))
    for name, report in rows:
        groups = report.get("groups", {})
        overall = report.get("overall", {})
        cells = [name, str(len(report.get("classes", [])))]
        cells += [_pct(groups.get(g, {}).get("accuracy")) for g in groups_shown]
        cells += [_pct(overall.get("accuracy")), _pct(overall.get("macro_accuracy"))]
        log_loss = overall.get("log_loss")
        cells += ["" if log_loss is None else f"{float(log_loss):.3f}", str(report.get("n", ""))]
        if sizes:
            size = sizes.get(name)
            cells.append(f"{size['bytes'] / 1024:.1f}" if size else "")
            cells.append(f"{size['parameter_bytes'] / 1024:.1f}" if size and "parameter_bytes" in size else "")
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Accuracies in %: micro = fraction of clips right, macro = mean of the per-class "
              "accuracies (the DCASE ranking metric); log loss normalised (rows sum to 1)."
              + _mapped_note([report.get("labels") for _, report in rows])]
    if sizes:
        total = sum(size_bytes(info, size_rule, where=name) for name, info in sizes.items())
        files = sum(int(info["bytes"]) for info in sizes.values())
        line = (f"Sizes in KB of 1024 bytes: the .tflite files, and parameters x the nominal bits of the "
                f"quantisation (the DCASE 2020 rule). All quantised models together: files {files} bytes "
                f"({files / 1024:.1f} KB)")
        if size_rule == "dcase":
            line += f", parameters x bits {total} bytes ({total / 1024:.1f} KB)"
        if budget_kb is not None:
            verdict = "within" if total <= budget_kb * 1024 else "OVER"
            line += f"; {verdict} the budget of {budget_kb:g} KB (rule {size_rule})"
        lines += ["", line + "."]
    if fusion_summary is not None:
        lines += ["", _oracle_line(fusion_summary)]
    if published is not None:
        lines += PUBLISHED[published]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------
# cross-validation: the same systems scored on several folds
# --------------------------------------------------------------------------
def mean_std(values: Sequence[float]) -> tuple[float, float | None]:
    """Mean and sample standard deviation of the per-fold figures.

    ``std = sqrt(sum((x - mean)^2) / (K - 1))`` over the K folds (the unbiased
    variance, Bessel's correction: the folds are a sample of the splits one
    could draw); None for a single fold.
    """
    k = len(values)
    if k == 0:
        raise ValueError("no values")
    mean = sum(values) / k
    if k == 1:
        return mean, None
    return mean, (sum((v - mean) ** 2 for v in values) / (k - 1)) ** 0.5


#: The figures of a report that the cross-validation table summarises: (key, where in the report).
_CV_FIGURES = (("accuracy", "overall"), ("macro_accuracy", "overall"), ("log_loss", "overall"))


def fold_statistics(reports: Sequence[tuple[str, Sequence[Mapping[str, Any]]]],
                    folds: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Per system and figure: the per-fold values, their mean and standard deviation.

    Parameters
    ----------
    reports : sequence of (name, per-fold reports)
        The ``asctool score --json`` reports of one system, one per fold in
        the order of ``folds``.
    folds : sequence of str
        The fold names (for messages).

    Returns
    -------
    dict
        ``{name: {"classes": K, "n": clips over all folds, FIGURE: {"folds": [...],
        "mean": m, "std": s}}}`` for ``accuracy``, ``macro_accuracy`` and
        ``log_loss`` (overall) and ``group GROUP`` (the accuracy of each device
        group every fold reports); a figure some fold lacks is left out. See
        :func:`mean_std`.
    """
    stats: dict[str, dict[str, Any]] = {}
    for name, per_fold in reports:
        if len(per_fold) != len(folds):
            raise ConfigError(f"{name}: {len(per_fold)} reports for {len(folds)} folds")
        entry: dict[str, Any] = {"classes": len(per_fold[0].get("classes", [])),
                                 "n": sum(int(r.get("n", 0) or 0) for r in per_fold)}
        if per_fold[0].get("labels"):
            entry["labels"] = per_fold[0]["labels"]
        figures = [(key, lambda r, key=key, where=where: r.get(where, {}).get(key)) for key, where in _CV_FIGURES]
        groups = [g for g in GROUPS if all(g in r.get("groups", {}) for r in per_fold)]
        figures += [(f"group {g}", lambda r, g=g: r["groups"][g].get("accuracy")) for g in groups]
        for key, get in figures:
            values = [get(r) for r in per_fold]
            if any(v is None for v in values):
                continue
            mean, std = mean_std([float(v) for v in values])
            entry[key] = {"folds": [float(v) for v in values], "mean": mean, "std": std}
        stats[name] = entry
    return stats


def _pm(figure: Mapping[str, Any] | None, scale: float = 100.0, digits: int = 1) -> str:
    if not figure:
        return ""
    text = f"{scale * figure['mean']:.{digits}f}"
    return text if figure["std"] is None else f"{text} ± {scale * figure['std']:.{digits}f}"


def folds_markdown(stats: Mapping[str, Mapping[str, Any]], folds: Sequence[str], *, title: str) -> str:
    """The Markdown text of a cross-validation RESULTS.md.

    Parameters
    ----------
    stats : mapping
        :func:`fold_statistics`' result, systems in row order.
    folds : sequence of str
    title : str

    Returns
    -------
    str
        A table of mean ± standard deviation over the folds (device groups
        reported by every fold, micro and macro accuracy in %, log loss),
        then the micro accuracy of each fold; ends with a newline.
    """
    groups = [g for g in GROUPS if any(f"group {g}" in e for e in stats.values())]
    head = ["system", "classes", *groups, "all (micro)", "all (macro)", "log loss", "n"]
    lines = [f"# {title}", "", f"Cross-validation over {len(folds)} folds ({', '.join(folds)}): mean ± standard "
             "deviation over the folds (sample, K - 1).", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, entry in stats.items():
        cells = [name, str(entry["classes"])] + [_pm(entry.get(f"group {g}")) for g in groups]
        cells += [_pm(entry.get("accuracy")), _pm(entry.get("macro_accuracy")),
                  _pm(entry.get("log_loss"), scale=1.0, digits=3), str(entry["n"])]
        lines.append("| " + " | ".join(cells) + " |")
    head = ["system", *(f"fold {f}" for f in folds)]
    lines += ["", "Micro accuracy (%) per fold:", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, entry in stats.items():
        values = entry.get("accuracy", {}).get("folds", [])
        lines.append("| " + " | ".join([name, *(f"{100 * v:.1f}" for v in values)]) + " |")
    lines += ["", "Accuracies in %: micro = fraction of clips right, macro = mean of the per-class accuracies; "
              "log loss normalised (rows sum to 1); n = clips over all folds."
              + _mapped_note([entry.get("labels") for entry in stats.values()])]
    return "\n".join(lines) + "\n"
