"""Metrics, device groups, reports, submission text and confusion plots (the library).

The functions take arrays and return numbers, text or PNG bytes;
:func:`format_report` renders a report as the table ``asctool score`` prints.
The stage that reads scores files and writes the outputs is
:mod:`asctool.stages.score`.

Conventions
-----------
- *accuracy* is the micro accuracy: correct clips / all clips.
- *macro accuracy* is the class-averaged accuracy: the mean of the per-class
  accuracies over the classes that occur in the reference labels. The DCASE
  challenge ranks by it; the reference code reports the micro one.
- *log loss* is the multi-class log loss computed on normalised
  probabilities: rows are divided by their sum first, then clipped to
  ``[1e-15, 1]`` (docs/reference.md 7.2: clipping before normalising hides
  unnormalised scores).
- the confusion matrix has one row per reference class and one column per
  predicted class, both in the class order of the scores file.
"""
from __future__ import annotations

import io
import json
import os
from importlib import resources
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from .errors import ConfigError, MismatchError
from .labels import map_labels, packaged_hierarchy

__all__ = [
    "EPS",
    "normalise_rows",
    "accuracy",
    "macro_accuracy",
    "log_loss",
    "confusion_matrix",
    "per_class_accuracy",
    "read_groups",
    "packaged_groups",
    "reference_indices",
    "carried_label_map",
    "label_map_for",
    "compute_report",
    "submission_text",
    "confusion_png",
    "format_report",
]

#: Lower clipping bound of probabilities in the log loss.
EPS = 1e-15


# --------------------------------------------------------------------------
# pure metric functions
# --------------------------------------------------------------------------
def normalise_rows(probs: np.ndarray) -> np.ndarray:
    """Divide each row by its sum.

    Parameters
    ----------
    probs : np.ndarray [shape=(n, k)]
        Non-negative scores.

    Returns
    -------
    np.ndarray [shape=(n, k)], float64
        Rows summing to 1. A row summing to 0 becomes uniform.
    """
    probs = np.asarray(probs, dtype=np.float64)
    sums = probs.sum(axis=1, keepdims=True)
    k = probs.shape[1] if probs.ndim == 2 else 1
    return np.divide(probs, sums, out=np.full_like(probs, 1.0 / max(k, 1)), where=sums > 0)


def accuracy(reference: np.ndarray, predicted: np.ndarray) -> float:
    """Micro accuracy: the fraction of clips whose predicted class is the reference.

    Parameters
    ----------
    reference, predicted : np.ndarray [shape=(n,)]
        Class indices.

    Returns
    -------
    float in [0, 1], NaN when ``n`` is 0.
    """
    reference = np.asarray(reference)
    if reference.size == 0:
        return float("nan")
    return float(np.mean(reference == np.asarray(predicted)))


def per_class_accuracy(reference: np.ndarray, predicted: np.ndarray, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Number of clips and accuracy of each reference class.

    Returns
    -------
    counts : np.ndarray [shape=(n_classes,)], int
    accuracies : np.ndarray [shape=(n_classes,)], float; NaN for a class with no clips
    """
    cm = confusion_matrix(reference, predicted, n_classes)
    counts = cm.sum(axis=1)
    correct = np.diag(cm).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        acc = np.where(counts > 0, correct / np.maximum(counts, 1), np.nan)
    return counts, acc


def macro_accuracy(reference: np.ndarray, predicted: np.ndarray, n_classes: int) -> float:
    """Class-averaged accuracy over the classes present in ``reference``.

    Returns
    -------
    float in [0, 1], NaN when ``reference`` is empty.
    """
    counts, acc = per_class_accuracy(reference, predicted, n_classes)
    if not (counts > 0).any():
        return float("nan")
    return float(np.mean(acc[counts > 0]))


def log_loss(reference: np.ndarray, probs: np.ndarray, *, eps: float = EPS) -> float:
    """Multi-class log loss (mean negative log probability of the reference class).

    Rows are normalised first, then clipped to ``[eps, 1]``.

    Parameters
    ----------
    reference : np.ndarray [shape=(n,)]
        Reference class indices.
    probs : np.ndarray [shape=(n, k)]
        Class probabilities (or any non-negative scores).

    Returns
    -------
    float (nats), NaN when ``n`` is 0.
    """
    reference = np.asarray(reference, dtype=np.int64)
    if reference.size == 0:
        return float("nan")
    p = np.clip(normalise_rows(probs), eps, 1.0)
    return float(-np.mean(np.log(p[np.arange(reference.size), reference])))


def confusion_matrix(reference: np.ndarray, predicted: np.ndarray, n_classes: int) -> np.ndarray:
    """Counts of (reference, predicted) pairs.

    Returns
    -------
    np.ndarray [shape=(n_classes, n_classes)], int64
        Rows are reference classes, columns predicted classes.
    """
    reference = np.asarray(reference, dtype=np.int64)
    predicted = np.asarray(predicted, dtype=np.int64)
    flat = np.bincount(reference * n_classes + predicted, minlength=n_classes * n_classes)
    return flat.reshape(n_classes, n_classes)


# --------------------------------------------------------------------------
# groups and label maps
# --------------------------------------------------------------------------
def _check_groups(data: Any, where: str) -> dict[str, list[str]]:
    if not isinstance(data, Mapping) or not data:
        raise ConfigError(f"{where}: device groups must be a mapping 'group: [device, ...]'")
    groups: dict[str, list[str]] = {}
    for name, devices in data.items():
        if isinstance(devices, str):
            devices = [devices]
        if not isinstance(devices, list) or not devices or not all(isinstance(d, (str, int)) for d in devices):
            raise ConfigError(f"{where}: group {name!r} must list device names, got {devices!r}")
        groups[str(name)] = [str(d) for d in devices]
    return groups


def read_groups(path: str | os.PathLike) -> dict[str, list[str]]:
    """Read a YAML file of device groups ``name: [device, ...]`` (order kept)."""
    import yaml

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read device groups ({str(exc).splitlines()[0]})") from None
    return _check_groups(data, str(path))


def packaged_groups() -> dict[str, list[str]]:
    """The DCASE 2020 Task 1a evaluation groups shipped with asctool."""
    ref = resources.files("asctool") / "conf" / "device_groups.yaml"
    with resources.as_file(ref) as path:
        return read_groups(path)


def reference_indices(
    scenes: Sequence[str] | None,
    classes: Sequence[str],
    where: str | os.PathLike,
    label_map: Mapping[str, str] | None = None,
) -> np.ndarray | None:
    """Class index of each clip's reference label, or None for an unlabelled file.

    Raises
    ------
    MismatchError
        when only some clips are labelled, or a label is not in ``classes``.
    """
    if scenes is None:
        return None
    scenes = [str(s) for s in scenes]
    labelled = [bool(s) for s in scenes]
    if not any(labelled):
        return None
    if not all(labelled):
        raise MismatchError(
            f"{where}: {labelled.count(False)} of {len(scenes)} clips have no reference label"
        )
    if label_map is not None:
        scenes = list(map_labels(scenes, label_map, where))
    position = {c: i for i, c in enumerate(classes)}
    unknown = sorted({s for s in scenes if s not in position})
    if unknown:
        hint = ""
        if label_map is None:
            hierarchy = packaged_hierarchy()
            if all(s in hierarchy for s in unknown) and set(classes) <= set(hierarchy.values()):
                hint = " (use --labels coarse to map scenes to the coarse classes)"
            else:
                hint = (" (for scores of coarser classes than the labels, give the map from labels to classes "
                        "with --labels MAP.tsv, one 'label<TAB>class' per line)")
        raise MismatchError(
            f"{where}: reference label {unknown[0]!r} is not in the class list "
            f"[{', '.join(classes)}]: the class list of the scores does not match its labels{hint}"
        )
    return np.asarray([position[s] for s in scenes], dtype=np.int64)


def carried_label_map(attrs: Mapping[str, Any], where: str | os.PathLike) -> dict[str, str] | None:
    """The label map a scores file carries (attribute ``label_map``: the map its model was trained with).

    ``asctool predict`` records the model's map (``train --labels``) and
    ``asctool ensemble`` keeps it when every member has the same one, so that
    ``score`` maps the reference labels without ``--labels``.

    Returns
    -------
    dict (label -> class) or None when the file carries none.

    Raises
    ------
    ConfigError
        The attribute is not a JSON object of strings.
    """
    raw = attrs.get("label_map")
    if raw is None:
        return None
    try:
        value = json.loads(raw)
    except (TypeError, ValueError):
        value = raw
    if value is None:
        return None
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise ConfigError(f"{where}: attribute 'label_map' is not a JSON object of label -> class")
    return value


def label_map_for(scenes: Sequence[str] | None, carried: Mapping[str, str] | None) -> dict[str, str] | None:
    """The carried map (:func:`carried_label_map`) when it maps every non-empty reference label, else None.

    Scores whose clips are already labelled with their classes (e.g. the
    3Class data set) are then scored as they are.
    """
    if carried is None or scenes is None:
        return None
    labels = [str(v) for v in scenes if str(v)]
    return dict(carried) if labels and all(v in carried for v in labels) else None


# --------------------------------------------------------------------------
# the report
# --------------------------------------------------------------------------
def _metrics(reference: np.ndarray, probs: np.ndarray) -> dict[str, Any]:
    predicted = probs.argmax(axis=1)
    return {
        "n": int(reference.size),
        "accuracy": accuracy(reference, predicted),
        "log_loss": log_loss(reference, probs),
    }


def compute_report(
    probs: np.ndarray,
    classes: Sequence[str],
    reference: np.ndarray | None,
    devices: Sequence[str] | None = None,
    groups: Mapping[str, Sequence[str]] | None = None,
) -> dict[str, Any]:
    """All metrics of one evaluation, as the dict written to the JSON report.

    Parameters
    ----------
    probs : np.ndarray [shape=(n, k)]
        Class probabilities.
    classes : list of k class names, in column order
    reference : np.ndarray [shape=(n,)] or None
        Reference class indices; None for an unlabelled set (only the counts of
        predicted classes are reported).
    devices : n device names or None ("" = unknown: left out of the per-device
        and per-group figures)
    groups : ``{group: [device, ...]}``; a group is reported when at least one
        of its devices occurs in ``devices`` and the clips come from two or
        more devices (with one device, or none, a group would only repeat the
        overall figures: a data set without device information is reported
        per class).

    Returns
    -------
    dict
        ``n``, ``labelled``, ``class_order``, ``overall`` (``accuracy`` = micro,
        ``macro_accuracy`` = class-averaged, ``log_loss``), ``devices``,
        ``groups``, ``classes`` (per class ``n`` and ``accuracy``, in class
        order), ``confusion`` (rows reference, columns predicted). Accuracies
        are fractions; NaN becomes None.
    """
    probs = np.asarray(probs, dtype=np.float64)
    classes = [str(c) for c in classes]
    k = len(classes)
    predicted = probs.argmax(axis=1) if len(probs) else np.zeros(0, dtype=np.int64)
    report: dict[str, Any] = {"n": int(len(probs)), "labelled": reference is not None, "class_order": classes}
    pred_counts = np.bincount(predicted, minlength=k)
    report["predicted"] = {c: int(n) for c, n in zip(classes, pred_counts)}
    if reference is None:
        return report
    reference = np.asarray(reference, dtype=np.int64)
    overall = _metrics(reference, probs)
    report["overall"] = {
        "accuracy": overall["accuracy"],
        "macro_accuracy": macro_accuracy(reference, predicted, k),
        "log_loss": overall["log_loss"],
    }
    device_arr = None if devices is None else np.asarray([str(d) for d in devices], dtype=object)
    report["devices"] = {}
    report["groups"] = {}
    if device_arr is not None:
        present = sorted({d for d in device_arr if d}, key=_device_key)
        for device in present:
            rows = device_arr == device
            report["devices"][device] = _metrics(reference[rows], probs[rows])
        for name, members in (groups or {}).items() if len(present) >= 2 else ():
            rows = np.isin(device_arr, [str(m) for m in members])
            if rows.any():
                entry = _metrics(reference[rows], probs[rows])
                entry["devices"] = [d for d in members if d in report["devices"]]
                report["groups"][name] = entry
    counts, accs = per_class_accuracy(reference, predicted, k)
    report["classes"] = {
        c: {"n": int(n), "accuracy": None if np.isnan(a) else float(a)} for c, n, a in zip(classes, counts, accs)
    }
    report["confusion"] = confusion_matrix(reference, predicted, k).tolist()
    return _nan_to_none(report)


def _device_key(device: str) -> tuple:
    """Order devices a, b, c, d, s1, s2, ..., s10 (numbers compared as numbers)."""
    head = device.rstrip("0123456789")
    tail = device[len(head):]
    return (head, int(tail) if tail else -1, device)


def _nan_to_none(value: Any) -> Any:
    if isinstance(value, float) and np.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _nan_to_none(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_nan_to_none(v) for v in value]
    return value


# --------------------------------------------------------------------------
# submission text and confusion plot
# --------------------------------------------------------------------------
def submission_text(ids: Sequence[str], probs: np.ndarray, classes: Sequence[str],
                    filenames: Mapping[str, str] | None = None) -> str:
    """The DCASE output format: tab-separated, header ``filename scene_label <classes>``.

    One row per clip, in the given order: its file name, the predicted class,
    then the class probabilities (6 decimals). The file name is
    ``filenames[id]`` (the data set's own path, from a manifest) when given,
    else ``audio/<id>.wav`` (the DCASE layout).

    Raises
    ------
    MismatchError
        ``filenames`` is given and lacks a clip.
    """
    probs = np.asarray(probs, dtype=np.float64)
    classes = [str(c) for c in classes]
    if filenames is not None:
        missing = [str(c) for c in ids if str(c) not in filenames]
        if missing:
            raise MismatchError(f"{len(missing)} of {len(ids)} clips are not in the manifest (e.g. {missing[0]}); "
                                "give the manifest the scores were made from")
    lines = ["\t".join(["filename", "scene_label", *classes])]
    for clip, row in zip(ids, probs):
        name = filenames[str(clip)] if filenames is not None else f"audio/{clip}.wav"
        lines.append("\t".join([name, classes[int(row.argmax())], *(f"{p:.6f}" for p in row)]))
    return "\n".join(lines) + "\n"


def confusion_png(confusion: np.ndarray, classes: Sequence[str], *, title: str = "") -> bytes:
    """A confusion-matrix PNG image (colour = row-normalised fraction, text = count).

    Parameters
    ----------
    confusion : np.ndarray [shape=(K, K)]
        Counts, rows = reference class, columns = predicted class.
    classes : sequence of str
        The K class names.
    title : str

    Returns
    -------
    bytes
        The PNG file content (100 dpi).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    cm = np.asarray(confusion, dtype=np.int64)
    k = len(classes)
    rows = cm.sum(axis=1, keepdims=True)
    frac = np.divide(cm, rows, out=np.zeros(cm.shape), where=rows > 0)
    size = 2.5 + 0.55 * k
    fig = Figure(figsize=(size + 1.0, size))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    image = ax.imshow(frac, cmap="Blues", vmin=0.0, vmax=1.0)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="fraction of the reference class")
    ax.set_xticks(range(k), labels=list(classes), rotation=45, ha="right")
    ax.set_yticks(range(k), labels=list(classes))
    ax.set_xlabel("predicted")
    ax.set_ylabel("reference")
    if title:
        ax.set_title(title)
    for i in range(k):
        for j in range(k):
            ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=8,
                    color="white" if frac[i, j] > 0.5 else "black")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100.0 * value:6.2f} %"


def _loss(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def format_report(report: Mapping[str, Any]) -> str:
    """Render a report (from :func:`score`) as the plain-text table ``asctool score`` prints."""
    classes = list(report.get("class_order", []))
    head = f"{report.get('scores', 'scores')}: {report['n']} clips, {len(classes)} classes"
    if report.get("labels"):
        head += f" (reference labels mapped through {report['labels']})"
    lines = [head]
    if not report.get("labelled"):
        lines.append("no reference labels: nothing to score")
        lines.append("predicted classes: " + ", ".join(f"{c} {n}" for c, n in report.get("predicted", {}).items()))
        for name, path in report.get("outputs", {}).items():
            lines.append(f"wrote {name}: {path}")
        return "\n".join(lines)
    overall = report["overall"]
    lines += [
        "",
        f"accuracy, micro (share of all clips)        {_pct(overall['accuracy']):>8}",
        f"accuracy, macro (mean of class accuracies)  {_pct(overall['macro_accuracy']):>8}",
        f"log loss (normalised probabilities)         {_loss(overall['log_loss']):>8}",
    ]
    width = max([len(n) for n in list(report["devices"]) + list(report["groups"]) + ["device", "group"]])
    if len(report["devices"]) < 2:  # no device information, or one device: the overall figures are its figures
        only = next(iter(report["devices"]), None)
        lines += ["", "no device information: figures per class below" if only is None
                  else f"one device ({only}): its figures are the overall ones; per class below"]
    for title, table in (("device", report["devices"]), ("group", report["groups"])):
        if len(report["devices"]) < 2 or not table:
            continue
        lines += ["", f"{title:<{width}}  {'n':>6}  {'accuracy':>8}  {'log loss':>8}"]
        for name, m in table.items():
            lines.append(f"{name:<{width}}  {m['n']:>6d}  {_pct(m['accuracy']):>8}  {_loss(m['log_loss']):>8}")
    cwidth = max(len(c) for c in classes + ["class"])
    lines += ["", f"{'class':<{cwidth}}  {'n':>6}  {'accuracy':>8}"]
    for name, m in report["classes"].items():
        lines.append(f"{name:<{cwidth}}  {m['n']:>6d}  {_pct(m['accuracy']):>8}")
    cm = report["confusion"]
    cell = max(4, len(str(max((max(r) for r in cm), default=0))) + 1)
    lines += ["", "confusion matrix (rows: reference, columns: predicted, numbered as the rows)"]
    lines.append(" " * (cwidth + 4) + "".join(f"{j:>{cell}d}" for j in range(len(classes))))
    for i, (name, row) in enumerate(zip(classes, cm)):
        lines.append(f"{i:>2d} {name:<{cwidth}} " + "".join(f"{v:>{cell}d}" for v in row))
    if report.get("outputs"):
        lines.append("")
        for name, path in report["outputs"].items():
            lines.append(f"wrote {name}: {path}")
    return "\n".join(lines)
