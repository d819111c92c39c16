"""Helpers shared by test modules: a small learnable features file and one trained run.

``tests/conftest.py`` puts this folder on ``sys.path``, so test modules in any
subfolder ``from helpers import ...``.
"""
from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np

import math

from asctool import artifacts
from asctool.artifacts import FeaturesWriter, write_scores

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


EXTRACTOR = {"name": "test", "sample_rate": 48000, "window": 1.0, "hop": 0.5, "weights_sha256": "0" * 64}


def make_embeddings(path: Path, n: int = 40, *, frames: int = 5, dim: int = 16, seed: int = 0,
                    classes=CLASSES, city: str = "lyon", scenes=None, devices=None, values=None,
                    extractor=None, ids=None) -> Path:
    """A small learnable embeddings file in the layout of docs/artifacts.md (written with h5py,
    as ``asctool embed`` writes it): class k adds 1.5 to dimension k of every frame, on top of
    N(0, 1) noise around a per-dimension offset of 3 (so standardisation matters).

    ``values`` (n, frames, dim) replaces the random values. Ids and locations follow
    :func:`make_features`; devices default to ``a``.
    """
    rng = np.random.default_rng(seed)
    scenes = list(scenes) if scenes is not None else [classes[i % len(classes)] for i in range(n)]
    ids = list(ids) if ids is not None else [f"{s}-{city}-{i % 5}-{seed}{i}-a" for i, s in enumerate(scenes)]
    if values is None:
        values = rng.normal(3.0, 1.0, (n, frames, dim))
        for i, scene in enumerate(scenes):
            values[i, :, (classes.index(scene) if scene in classes else 0) % dim] += 1.5
    with h5py.File(path, "w") as handle:
        for key, value in artifacts.provenance_attrs(artifacts.KIND_EMBEDDINGS).items():
            handle.attrs[key] = value
        handle.attrs["extractor"] = json.dumps(extractor or EXTRACTOR)
        handle.create_dataset("embeddings", data=np.asarray(values, dtype=np.float32))
        handle.create_dataset("window_times", data=np.arange(np.shape(values)[1]) * 0.5)
        string = h5py.string_dtype("utf-8")
        for name, column in (("id", ids), ("scene", scenes), ("device", devices or ["a"] * n),
                             ("location", [f"{s}-{city}-{i % 5}" for i, s in enumerate(scenes)])):
            handle.create_dataset(name, data=np.array(column, dtype=object), dtype=string)
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


# --------------------------------------------------------------------------
# a hand-computed scores example (tests/test_scoring.py, tests/stages/test_score.py)
# --------------------------------------------------------------------------
# Six clips, three classes, devices a, b, s1.
#   clip ref   device probs               predicted
#   c1   bus   a      .70 .20 .10         bus   right
#   c2   bus   a      .20 .50 .30         park  wrong
#   c3   park  a      .10 .80 .10         park  right
#   c4   park  b      .25 .50 .25         park  right
#   c5   park  b      .60 .10 .30         bus   wrong
#   c6   tram  s1     .10 .10 .80         tram  right
SCORE_CLASSES = ["bus", "park", "tram"]
IDS = ["c1", "c2", "c3", "c4", "c5", "c6"]
SCENES = ["bus", "bus", "park", "park", "park", "tram"]
DEVICES = ["a", "a", "a", "b", "b", "s1"]
PROBS = np.array([
    [0.70, 0.20, 0.10],
    [0.20, 0.50, 0.30],
    [0.10, 0.80, 0.10],
    [0.25, 0.50, 0.25],
    [0.60, 0.10, 0.30],
    [0.10, 0.10, 0.80],
])
REFERENCE = np.array([0, 0, 1, 1, 1, 2])
# probability of the reference class, clip by clip
P_TRUE = [0.7, 0.2, 0.8, 0.5, 0.1, 0.8]


def expected_log_loss(values):
    return -sum(math.log(v) for v in values) / len(values)


def write_example_scores(path, scenes=SCENES, devices=DEVICES, probs=PROBS, classes=SCORE_CLASSES, ids=IDS):
    return write_scores(path, ids=ids, scores=probs, classes=classes, scenes=scenes, devices=devices)


def write_tiny_features(path, ids, config=None, value=None, dtype="float16"):
    config = config or {"sr": 44100, "n_mels": 4}
    with artifacts.FeaturesWriter(
        path, n=len(ids), feature_shape=(4, 5, 3), config=config, ids=ids,
        scenes=["bus"] * len(ids), devices=["a"] * len(ids), locations=["bus-x-1"] * len(ids), dtype=dtype,
    ) as writer:
        for i in range(len(ids)):
            writer.write(i, np.full((4, 5, 3), i if value is None else value, dtype=np.float32))
    return path



# --------------------------------------------------------------------------
# a hand-computed two-stage example (tests/test_fusion.py, tests/stages/test_fuse.py)
# --------------------------------------------------------------------------
# fine a1 a2 (parent A), b1 b2 (parent B)
#   clip ref  p_fine                 p_coarse  fine alone  fused (w=1)
#   f1   a1   .40 .10 .30 .20        .2 .8     a1 right    .16 .04 .48 .32 -> b1 wrong
#   f2   b2   .10 .20 .30 .40        .9 .1     b2 right    .09 .18 .03 .04 -> a2 wrong
#   f3   b2   .30 .35 .05 .30        .1 .9     a2 wrong    .03 .035 .045 .27 -> b2 right
#   f4   a1   .50 .20 .20 .10        .6 .4     a1 right    .30 .12 .08 .04 -> a1 right
# coarse stage: f1 B (ref A) wrong, f2 A (ref B) wrong, f3 B right, f4 A right
# oracle gating: f1 a1, f2 b2, f3 b2, f4 a1: all right
FINE = ["a1", "a2", "b1", "b2"]
COARSE = ["A", "B"]
FUSE_IDS = ["f1", "f2", "f3", "f4"]
FUSE_REF = ["a1", "b2", "b2", "a1"]
P_FINE = np.array([[0.4, 0.1, 0.3, 0.2], [0.1, 0.2, 0.3, 0.4], [0.3, 0.35, 0.05, 0.3], [0.5, 0.2, 0.2, 0.1]])
P_COARSE = np.array([[0.2, 0.8], [0.9, 0.1], [0.1, 0.9], [0.6, 0.4]])


def write_probs(path, ids, probs, classes, scenes=None, devices=None):
    """A scores file of ``probs`` (devices ``a`` unless given)."""
    return write_scores(path, ids=ids, scores=np.asarray(probs), classes=classes, scenes=scenes,
                        devices=devices if devices is not None else ["a"] * len(ids))


# --------------------------------------------------------------------------
# files written with h5py directly, as a user's script would (no asctool checks)
# --------------------------------------------------------------------------
def write_raw_scores(path, ids, probs, classes, *, scenes=None, classes_attr=None):
    """A scores file that bypasses ``write_scores``: duplicate ids, NaN, 0 clips or an
    HDF5 string array as ``classes`` (``classes_attr``) go in as given."""
    with h5py.File(path, "w") as handle:
        for key, value in artifacts.provenance_attrs(artifacts.KIND_SCORES).items():
            handle.attrs[key] = value
        handle.attrs["classes"] = json.dumps(list(classes)) if classes_attr is None else classes_attr
        handle.create_dataset("scores", data=np.asarray(probs, dtype=np.float32).reshape(len(ids), len(classes)))
        handle.create_dataset("id", data=list(ids), dtype=h5py.string_dtype())
        if scenes is not None:
            handle.create_dataset("scene", data=list(scenes), dtype=h5py.string_dtype())
    return path


def poke(path, dataset, index, value):
    """Overwrite one element of a dataset of an HDF5 file in place (a corrupted value)."""
    with h5py.File(path, "r+") as handle:
        handle[dataset][index] = value
    return path


# --------------------------------------------------------------------------
# tags files (tests/stages/test_train_tags.py): tag vectors that carry the class
# --------------------------------------------------------------------------
TAGGER = {"name": "asctool", "options": {"run": "tagger"}, "sha256": "ab" * 32, "pooling": "mean"}


def write_tags_for(path, features_paths, *, names=("dog", "engine", "bird"), seed=0, shuffle=True, drop=(),
                   tagger=TAGGER):
    """A tags file for every clip of ``features_paths`` (rows shuffled; clips in ``drop`` left out)."""
    from asctool.tagsfile import write_tags

    ids = []
    for features in features_paths:
        with artifacts.open_features(features) as f:
            ids += [str(i) for i in f.ids]
    ids = [i for i in ids if i not in set(drop)]
    rng = np.random.default_rng(seed)
    if shuffle:
        ids = list(rng.permutation(ids))
    tags = rng.uniform(0, 1, (len(ids), len(names))).astype(np.float32)
    return write_tags(path, ids=ids, tags=tags, tag_names=list(names), tagger=tagger)


# --------------------------------------------------------------------------
# recipes run with a stand-in asctool (tests/test_recipes.py, tests/test_recipe_folds.py)
# --------------------------------------------------------------------------
RECIPES = Path(__file__).resolve().parents[1] / "recipes"
RECIPE_1A_STAGES = "synth prepare augment featurize train predict combine score results cam"


def toy_recipe(tmp_path: Path, conf: str, stages: str) -> Path:
    """A copy of the recipes in ``tmp_path/recipes`` with a third system ``toy``: 1a's thin script
    with ``stages`` and ``conf`` as ``conf/toy.yaml``; returns ``recipes/toy.sh``."""
    import shutil

    recipes = tmp_path / "recipes"
    shutil.copytree(RECIPES, recipes)
    script = (recipes / "dcase2020_1a.sh").read_text().replace("system=dcase2020_1a", "system=toy")
    script = script.replace(f'stages="{RECIPE_1A_STAGES}"', f'stages="{stages}"')
    (recipes / "toy.sh").write_text(script)
    (recipes / "conf" / "toy.yaml").write_text(conf)
    return recipes / "toy.sh"


#: The start of a stand-in ``asctool`` for :func:`run_with_fake_asctool`: records the command line in
#: ``$FAKE_CALLS``, sets ``cmd`` (the subcommand) and ``opt[--name]`` (each option's value); the
#: caller's text continues with ``case "$cmd" in ...``.
FAKE_PRELUDE = r"""#!/usr/bin/env bash
echo "$*" >> "$FAKE_CALLS"
cmd="$1"; shift
declare -A opt=()
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  case "${args[$i]}" in --*) opt[${args[$i]}]="${args[$((i + 1))]:-}" ;; esac
done
"""


def run_with_fake_asctool(tmp_path: Path, recipe: Path, fake: str, *args: str, env: dict | None = None,
                          timeout: int = 120):
    """Run ``bash recipe args`` in ``tmp_path`` with ``fake`` (a bash script) as the ``asctool`` on PATH.

    The stand-in is written once to ``tmp_path/bin/asctool``; it appends each command line to the
    file ``$FAKE_CALLS``. Returns ``(CompletedProcess, the recorded command lines)``.
    """
    import os
    import subprocess

    stand_in = tmp_path / "bin" / "asctool"
    if not stand_in.exists():
        stand_in.parent.mkdir()
        stand_in.write_text(fake)
        stand_in.chmod(0o755)
    calls = tmp_path / "calls.txt"
    calls.unlink(missing_ok=True)
    environ = {**os.environ, "PATH": f"{stand_in.parent}:{os.environ['PATH']}", "FAKE_CALLS": str(calls),
               **(env or {})}
    done = subprocess.run(["bash", str(recipe), *args], cwd=tmp_path, env=environ, capture_output=True, text=True,
                          timeout=timeout)
    return done, calls.read_text().splitlines() if calls.exists() else []
