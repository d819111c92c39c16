"""Is the demo data learnable but not trivial? A linear probe on clip statistics.

For each seed: synthesize a dataset (``asctool synth``, :func:`asctool.stages.synth.run`), run
``asctool prepare`` on it, compute a 128-band log-mel spectrogram
per clip (n_fft 2048, hop 1024, as the 1a front end), summarise each clip by
the mean and standard deviation of every band over time (256 numbers), fit a
multinomial logistic regression on the train split and report accuracy on
the evaluate split per device group (A, B&C, s1-s3, s4-s6) and overall, plus
the 3-class (coarse) accuracy of the same predictions, the fraction of
errors that stay within the right coarse class (about 0.26 if errors were
random) and the ratio of the mean distance between class centroids (of the
standardised training features) within a coarse class to that across coarse
classes (below 1: scenes of one coarse class are more alike).

Usage::

    python benchmarks/synth_learnability.py --clips-per-class 12 --seeds 0,1,2 --work-dir /tmp/synth_bench

Prints a Markdown table (one row per seed and the mean) and the synth time.
scikit-learn is used here only (it is a librosa dependency, not an asctool one).
"""
from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path

import librosa
import numpy as np

from asctool.audio import read_audio
from asctool.labels import packaged_hierarchy
from asctool.manifest import read_manifest
from asctool.stages.prepare import run as prepare
from asctool.stages.synth import run as synthesize

__all__ = ["clip_statistics", "evaluate_seed", "main"]

log = logging.getLogger("synth_learnability")

GROUPS = {"A": ("a",), "B&C": ("b", "c"), "s1-s3": ("s1", "s2", "s3"), "s4-s6": ("s4", "s5", "s6")}


def clip_statistics(y: np.ndarray, sr: int) -> np.ndarray:
    """Mean and std over time of the 128-band log-mel of mono audio ``y`` -> (256,)."""
    mel = librosa.feature.melspectrogram(
        y=y, sr=sr, n_fft=2048, hop_length=1024, n_mels=128, htk=True, norm=None, pad_mode="reflect")
    logmel = np.log(mel + 1e-8)
    return np.concatenate([logmel.mean(axis=1), logmel.std(axis=1)])


def _features(manifest_path: Path) -> tuple[np.ndarray, list[str], list[str]]:
    manifest = read_manifest(manifest_path)
    rows = []
    for clip in manifest:
        y, sr = read_audio(manifest.audio_path(clip))
        rows.append(clip_statistics(y.mean(axis=0), sr))
    return np.stack(rows), [c.scene for c in manifest], [c.device for c in manifest]


def evaluate_seed(seed: int, clips_per_class: int, work_dir: Path) -> dict[str, float]:
    """Synthesize, prepare, fit and score one seed; accuracies in [0, 1] and the synth time."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    root = work_dir / f"seed{seed}"
    start = time.perf_counter()
    summary = synthesize(root / "dataset", clips_per_class=clips_per_class, seed=seed, force=True)
    synth_seconds = time.perf_counter() - start
    manifests = prepare(root / "dataset", root / "data", force=True)["manifests"]
    x_train, y_train, _ = _features(Path(manifests["train"]))
    x_eval, y_eval, devices = _features(Path(manifests["evaluate"]))
    model = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=2000))
    model.fit(x_train, y_train)
    predicted = model.predict(x_eval)
    correct = np.asarray(predicted) == np.asarray(y_eval)
    devices = np.asarray(devices)
    hierarchy = packaged_hierarchy()
    coarse_ok = np.array([hierarchy[p] == hierarchy[t] for p, t in zip(predicted, y_eval)])
    result = {name: float(correct[np.isin(devices, group)].mean()) for name, group in GROUPS.items()}
    result["all"] = float(correct.mean())
    result["coarse"] = float(coarse_ok.mean())
    result["errors_within_coarse"] = float((coarse_ok & ~correct).sum() / max(1, (~correct).sum()))
    # hierarchy: distances between class centroids of the standardised training features
    scaled = model[0].transform(x_train)
    labels = np.asarray(y_train)
    classes = sorted(set(y_train))
    centroids = np.stack([scaled[labels == c].mean(axis=0) for c in classes])
    within, across = [], []
    for i, ci in enumerate(classes):
        for j in range(i + 1, len(classes)):
            d = float(np.linalg.norm(centroids[i] - centroids[j]))
            (within if hierarchy[ci] == hierarchy[classes[j]] else across).append(d)
    result["centroid_ratio"] = float(np.mean(within) / np.mean(across))
    result["train_clips"] = len(y_train)
    result["eval_clips"] = len(y_eval)
    result["synth_seconds"] = synth_seconds
    result["clips"] = summary["clips"]
    return result


def _fmt(value: float, column: str) -> str:
    return f"{value:.2f}" if column == "centroid_ratio" else f"{100 * value:.1f}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clips-per-class", type=int, default=12)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--work-dir", type=Path, default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="synth_bench_"))
    columns = ["A", "B&C", "s1-s3", "s4-s6", "all", "coarse", "errors_within_coarse", "centroid_ratio"]
    rows = []
    print(f"| seed | {' | '.join(columns)} | clips | synth s |")
    print("|" + "---|" * (len(columns) + 3))
    for seed in (int(s) for s in args.seeds.split(",")):
        r = evaluate_seed(seed, args.clips_per_class, work)
        rows.append(r)
        print(f"| {seed} | " + " | ".join(_fmt(r[c], c) for c in columns)
              + f" | {r['clips']} | {r['synth_seconds']:.1f} |", flush=True)
    mean = {c: np.mean([r[c] for r in rows]) for c in columns + ["synth_seconds"]}
    print("| mean | " + " | ".join(_fmt(mean[c], c) for c in columns)
          + f" | {rows[0]['clips']} | {mean['synth_seconds']:.1f} |")


if __name__ == "__main__":
    main()
