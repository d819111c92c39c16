"""Helpers shared by test modules: a small learnable features file and one trained run.

``tests/conftest.py`` puts this folder on ``sys.path``, so test modules in any
subfolder ``from helpers import ...``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from asctool.artifacts import FeaturesWriter

CLASSES = ("airport", "bus", "park", "tram")
SHAPE = (32, 40, 3)   # 32 bins: the reference masks (up to 12 bins) leave the class bands learnable
CONFIG = {"preset": "test", "n_mels": 32}


def make_features(path: Path, n: int = 40, *, shape=SHAPE, seed: int = 0, config=None,
                  classes=CLASSES, dtype: str = "float16", city: str = "lyon",
                  scenes=None) -> Path:
    """A small learnable features file: class k has a bright frequency band k.

    Clip i of scene s is recorded at location ``s-city-(i % 5)``; ids follow
    the TAU pattern.
    """
    rng = np.random.default_rng(seed)
    scenes = list(scenes) if scenes is not None else [classes[i % len(classes)] for i in range(n)]
    ids = [f"{s}-{city}-{i % 5}-{seed}{i}-a" for i, s in enumerate(scenes)]
    locations = [f"{s}-{city}-{i % 5}" for i, s in enumerate(scenes)]
    band = shape[0] // len(classes)
    with FeaturesWriter(path, n=n, feature_shape=shape, config=config or CONFIG, ids=ids, scenes=scenes,
                        devices=["a"] * n, locations=locations, dtype=dtype) as writer:
        for i, scene in enumerate(scenes):
            x = rng.normal(0.3, 0.15, shape)
            k = classes.index(scene) if scene in classes else 0
            x[k * band:(k + 1) * band] += 0.6
            writer.write(i, x)
    return path


# --------------------------------------------------------------------------
# one shared trained run per session (test_training.py, stages/test_predict.py)
# --------------------------------------------------------------------------
_CACHE: dict[str, dict] = {}
TRAIN_KW = dict(profile="demo", epochs=6, batch_size=8, valid_split=0.25, seed=3, augment="specaugment,mixup")


def trained_run(tmp_path_factory) -> dict:
    """Train the demo FCNN once per session on 96 learnable clips; also a held-out file."""
    if "run" not in _CACHE:
        from asctool.stages.train import run as train

        root = tmp_path_factory.mktemp("trained")
        data = make_features(root / "train.h5", 96, seed=0)
        held_out = make_features(root / "test.h5", 40, seed=1, city="paris")
        summary = train([data], "fcnn", root / "run", **TRAIN_KW)
        _CACHE["run"] = {"root": root, "data": data, "test": held_out, "run": root / "run", "summary": summary}
    return _CACHE["run"]
