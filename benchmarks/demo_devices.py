"""The device gap of the demo data and how much of it the device augmentations close.

Runs on the features of a finished demo recipe run (``make demo`` or
``recipes/dcase2020_1a.sh --work-dir DIR``): ``DIR/data/feats/{train,evaluate}.h5``
and the augmented sets ``DIR/data/feats/aug_METHOD.h5``. For every variant (the
training set alone, plus each augmented set, plus all of them) and seed it trains
one 10-class model with ``asctool train`` (the recipe's demo settings), predicts
the evaluation set with ``asctool predict`` and reports the accuracy per device
group (A; B&C: the real devices b, c; s1-s3: simulated devices seen in training;
s4-s6: unseen simulated devices), as mean +- standard deviation over the seeds.
Every variant is trained for the same number of SGD steps (the variant with all
augmented sets runs ``--epochs`` epochs; the others proportionally more), so the
comparison is of the data, not of the training time. A linear probe (logistic
regression on each clip's mean and std over time of the 128-band log-mel,
scikit-learn) on the same split is printed as the first row.

Usage::

    python benchmarks/demo_devices.py --work-dir demo --seeds 0,1,2 [--model resnet]

Prints a Markdown table. scikit-learn is used here only (a librosa dependency).
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Sequence

import numpy as np

GROUPS = {"A": ("a",), "B&C": ("b", "c"), "s1-s3": ("s1", "s2", "s3"), "s4-s6": ("s4", "s5", "s6")}
COLUMNS = [*GROUPS, "all"]

__all__ = ["group_accuracy", "probe", "main"]


def group_accuracy(predicted: Sequence[str], truth: Sequence[str], devices: Sequence[str]) -> dict[str, float]:
    """Accuracy (in [0, 1]) per device group of :data:`GROUPS` and over all clips."""
    correct = np.asarray(predicted) == np.asarray(truth)
    devices = np.asarray(devices)
    result = {name: float(correct[np.isin(devices, group)].mean()) for name, group in GROUPS.items()
              if np.isin(devices, group).any()}
    result["all"] = float(correct.mean())
    return result


def _clip_statistics(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean and std over time of channel 0 per band, scenes, devices) of a features file."""
    from asctool.artifacts import open_features

    features = open_features(path)
    try:
        rows = []
        for _, batch in features.batches(64):
            logmel = batch[..., 0].astype(np.float32)   # (clips, bands, frames)
            rows.append(np.concatenate([logmel.mean(axis=2), logmel.std(axis=2)], axis=1))
        return (np.concatenate(rows), np.array([str(s) for s in features.scenes]),
                np.array([str(d) for d in features.devices]))
    finally:
        features.close()


def probe(train: Path, evaluate: Path) -> dict[str, float]:
    """The linear probe: standardised clip statistics, multinomial logistic regression (C=0.1)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x_train, y_train, _ = _clip_statistics(train)
    x_eval, y_eval, devices = _clip_statistics(evaluate)
    model = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=3000)).fit(x_train, y_train)
    return group_accuracy(model.predict(x_eval), y_eval, devices)


def _count(path: Path) -> int:
    from asctool.artifacts import open_features

    features = open_features(path)
    try:
        return len(features)
    finally:
        features.close()


def _train_and_score(inputs: list[Path], evaluate: Path, run: Path, *, model: str, epochs: int, seed: int,
                     extra: Sequence[str]) -> dict[str, float]:
    from asctool.artifacts import read_scores

    train = [arg for path in inputs for arg in ("--train", str(path))]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    subprocess.run(["asctool", "-q", "train", *train, "--model", model, "--labels", "scene", "--out-dir", str(run),
                    "--profile", "demo", "--epochs", str(epochs), "--seed", str(seed), "--force", *extra],
                   check=True, env=env, stdout=subprocess.DEVNULL)
    scores = run / "scores_evaluate.h5"
    subprocess.run(["asctool", "-q", "predict", "--model", str(run / "model.keras"), "--features", str(evaluate),
                    "--out", str(scores), "--force"], check=True, env=env, stdout=subprocess.DEVNULL)
    s = read_scores(scores)
    predicted = [s.classes[i] for i in s.scores.argmax(axis=1)]
    return group_accuracy(predicted, [str(x) for x in s.scenes], [str(x) for x in s.devices])


def _cell(values: list[float]) -> str:
    values = [100 * v for v in values]
    if len(values) == 1:
        return f"{values[0]:.1f}"
    return f"{np.mean(values):.1f} ± {np.std(values, ddof=1):.1f}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work-dir", type=Path, required=True, help="a finished demo recipe run")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--model", default="resnet")
    parser.add_argument("--epochs", type=int, default=30,
                        help="epochs of the variant with every augmented set (the demo's fine_epochs)")
    parser.add_argument("--methods", default="spectrum-correction,reverb-drc",
                        help="augmented sets (aug_METHOD.h5) to compare")
    parser.add_argument("--train-option", action="append", default=["--batch-size=8", "--crop=128",
                                                                     "--valid-split=0.1"],
                        help="more asctool train options (repeatable)")
    parser.add_argument("--runs-dir", type=Path, default=None)
    args = parser.parse_args(argv)
    feats = args.work_dir / "data" / "feats"
    train, evaluate = feats / "train.h5", feats / "evaluate.h5"
    methods = [m for m in args.methods.split(",") if m]
    variants: dict[str, list[Path]] = {"no augmentation": [train]}
    for method in methods:
        variants[f"+ {method}"] = [train, feats / f"aug_{method}.h5"]
    if len(methods) > 1:
        variants["+ " + " + ".join(methods)] = [train, *(feats / f"aug_{m}.h5" for m in methods)]
    for paths in variants.values():
        for path in paths:
            if not path.is_file():
                sys.exit(f"{path}: not found (run the demo recipe with these augmentations first)")
    largest = max(sum(_count(p) for p in paths) for paths in variants.values())
    runs = args.runs_dir or Path(tempfile.mkdtemp(prefix="demo_devices_"))
    seeds = [int(s) for s in args.seeds.split(",")]
    print(f"| {args.model} trained on | epochs | {' | '.join(COLUMNS)} |")
    print("|---|---|" + "---|" * len(COLUMNS))
    p = probe(train, evaluate)
    print("| linear probe (clip mean/std of the log-mel), training set | - | "
          + " | ".join(_cell([p[c]]) for c in COLUMNS) + " |", flush=True)
    for name, paths in variants.items():
        epochs = max(1, round(args.epochs * largest / sum(_count(p) for p in paths)))
        results, start = [], time.perf_counter()
        for seed in seeds:
            run = runs / f"{name.replace(' ', '').replace('+', 'plus_')}-seed{seed}"
            results.append(_train_and_score(paths, evaluate, run, model=args.model, epochs=epochs, seed=seed,
                                            extra=args.train_option))
        print(f"| {name} | {epochs} | " + " | ".join(_cell([r[c] for r in results]) for c in COLUMNS)
              + f" |  <!-- {time.perf_counter() - start:.0f} s -->", flush=True)


if __name__ == "__main__":
    main()
