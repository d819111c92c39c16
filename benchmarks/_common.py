"""Helpers shared by the benchmark scripts (not a benchmark: ``run_all.py`` skips ``_`` names).

- :data:`GROUPS`: the DCASE 2020 device groups (A, B&C, s1-s3, s4-s6) as packaged
  with asctool (``asctool/conf/device_groups.yaml``), the groups ``asctool score``
  reports;
- :func:`group_accuracies`: accuracy overall and per device group;
- :func:`clip_statistics`: the linear probe's input, each clip's mean and standard
  deviation over time of every band of channel 0 (the log-mel) of a features file,
  and :func:`logmel_probe`, the probe itself (scikit-learn);
- :func:`mean_std`: "mean ± std" (sample standard deviation) of fractions, in %;
- :func:`asctool_command` and :func:`timed`: run an ``asctool`` command in a child
  process, as a user would, and measure its wall and CPU time.

Scripts import this module as ``_common`` (their own folder is first on
``sys.path`` when run as ``python benchmarks/NAME.py``).
"""
from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Sequence

import numpy as np

__all__ = ["GROUPS", "group_accuracies", "clip_statistics", "logmel_probe", "read_all", "mean_std",
           "asctool_command", "timed", "ChildFailed"]


def _groups() -> dict[str, tuple[str, ...]]:
    from asctool.scoring import packaged_groups

    return {name: tuple(devices) for name, devices in packaged_groups().items()}


#: Device group -> devices (A, B&C, s1-s3, s4-s6), from asctool's packaged DCASE 2020 groups.
GROUPS: dict[str, tuple[str, ...]] = _groups()


def group_accuracies(correct: np.ndarray, devices: Sequence[str]) -> dict[str, float]:
    """Accuracy in [0, 1] over all clips (``all``) and per device group present.

    Parameters
    ----------
    correct : np.ndarray [shape=(n,)], bool
        Whether each clip's prediction is right.
    devices : sequence of str [length n]
        Each clip's recording device.
    """
    correct = np.asarray(correct, dtype=bool)
    devices = np.asarray([str(d) for d in devices])
    out = {"all": float(correct.mean())}
    for name, group in GROUPS.items():
        sel = np.isin(devices, group)
        if sel.any():
            out[name] = float(correct[sel].mean())
    return out


def read_all(path: Path) -> np.ndarray:
    """Every clip of a features file, as stored: (n, freq, time, channels)."""
    import h5py

    with h5py.File(path, "r") as handle:
        return handle["features"][()]


def clip_statistics(path: Path, mask: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(clip vectors (n, 2 * freq), scenes (n,), devices (n,)) of a features file.

    A clip's vector is the mean and the standard deviation over time of every
    band of channel 0 (the log-mel of the 1a/1b presets): the linear probe of
    ``benchmarks/synth_learnability.py``. ``mask`` (bool, one per clip) keeps a
    subset.
    """
    from asctool.artifacts import open_features

    x = read_all(path)[..., 0].astype(np.float32)
    with open_features(path) as f:
        scenes, devices = np.asarray(f.scenes).astype(str), np.asarray(f.devices).astype(str)
    stats = np.concatenate([x.mean(axis=2), x.std(axis=2)], axis=1)
    if mask is None:
        return stats, scenes, devices
    return stats[mask], scenes[mask], devices[mask]


def logmel_probe(train_path: Path, evaluate_path: Path, *, exclude_ids=frozenset(), c: float = 0.1) -> dict[str, float]:
    """The linear probe of issue 14: accuracy per device group (:func:`group_accuracies`) on ``evaluate_path``.

    A multinomial logistic regression (scikit-learn ``LogisticRegression``,
    L-BFGS, ``C = c``) on standardised :func:`clip_statistics` (log-mel band
    mean and std, channel 0 only), fitted on the clips of ``train_path`` whose
    id is not in ``exclude_ids`` (a validation split). ``asctool train --model
    logreg`` fits the same regression on the statistics of every channel (the
    deltas too).
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from asctool.artifacts import open_features

    with open_features(train_path) as f:
        keep = ~np.isin(np.asarray(f.ids).astype(str), sorted(exclude_ids))
    x_train, y_train, _ = clip_statistics(train_path, keep)
    x_eval, y_eval, devices = clip_statistics(evaluate_path)
    model = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=2000)).fit(x_train, y_train)
    return group_accuracies(model.predict(x_eval) == y_eval, devices)


def mean_std(values: Sequence[float], *, scale: float = 100.0, digits: int = 1) -> str:
    """``"m ± s"`` of ``values`` times ``scale`` (sample std, ddof 1); one value alone: ``"m"``; none: ``"-"``.

    NaN values (a group absent from a run) are left out.
    """
    arr = scale * np.asarray([v for v in values if v is not None], dtype=float)
    arr = arr[~np.isnan(arr)]
    if arr.size == 0:
        return "-"
    if arr.size == 1:
        return f"{arr[0]:.{digits}f}"
    return f"{arr.mean():.{digits}f} ± {arr.std(ddof=1):.{digits}f}"


def asctool_command(*args: str) -> list[str]:
    """The command line of ``asctool ARGS`` with this interpreter (the console script's entry point)."""
    return [sys.executable, "-m", "asctool.cli", *args]


class ChildFailed(RuntimeError):
    """An ``asctool`` child process exited with an error; the message ends with its stderr."""


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(command: Sequence[str], *, env: dict | None = None, cwd: Path | None = None) -> dict:
    """Run ``command`` to completion; its wall and CPU seconds (user + system, the child and its children).

    The CPU time is the growth of ``RUSAGE_CHILDREN`` over the call, so calls
    must not overlap (this module runs one child at a time). Also records the
    1-minute load average at the start and the end.

    Raises
    ------
    ChildFailed
        Non-zero exit; the message names the command and ends with the last
        2,000 characters of its stderr.
    """
    environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": "", **(env or {})}
    load_start = os.getloadavg()[0]
    cpu_start, start = _children_cpu(), time.perf_counter()
    done = subprocess.run(list(command), env=environment, cwd=cwd, capture_output=True, text=True, check=False)
    wall, cpu = time.perf_counter() - start, _children_cpu() - cpu_start
    if done.returncode != 0:
        raise ChildFailed(f"{' '.join(command)} exited {done.returncode}:\n{done.stderr[-2000:]}")
    return {"wall_s": round(wall, 2), "cpu_s": round(cpu, 2), "load_start": round(load_start, 2),
            "load_end": round(os.getloadavg()[0], 2), "stdout": done.stdout}
