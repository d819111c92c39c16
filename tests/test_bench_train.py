"""benchmarks/train.py (the convergence part), benchmarks/cpu_profile.py and their shared helpers."""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def bench():
    return _load("train")


@pytest.fixture(scope="module")
def common(bench):  # train.py puts benchmarks/ on sys.path
    import _common

    return _common


def test_groups_are_the_packaged_dcase_groups(common):
    assert common.GROUPS == {"A": ("a",), "B&C": ("b", "c"), "s1-s3": ("s1", "s2", "s3"),
                             "s4-s6": ("s4", "s5", "s6")}


def test_group_accuracies_by_hand(common):
    correct = np.array([1, 0, 1, 1, 0, 0, 1], dtype=bool)
    devices = ["a", "a", "b", "c", "s1", "s4", "s5"]
    got = common.group_accuracies(correct, devices)
    assert got == {"all": 4 / 7, "A": 0.5, "B&C": 1.0, "s1-s3": 0.0, "s4-s6": 0.5}
    assert "s4-s6" not in common.group_accuracies(correct[:5], devices[:5])


def test_mean_std_formats_sample_std_and_drops_missing(common):
    assert common.mean_std([0.5, 0.6, 0.7]) == "60.0 ± 10.0"
    assert common.mean_std([0.25]) == "25.0"
    assert common.mean_std([0.5, float("nan"), None, 0.7]) == "60.0 ± 14.1"
    assert common.mean_std([]) == "-"
    assert common.mean_std([10, 20], scale=1, digits=0) == "15 ± 7"


def test_timed_measures_child_cpu_and_names_a_failure(common):
    spin = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.3: pass\nprint('done')"
    got = common.timed([sys.executable, "-c", spin])
    assert got["stdout"] == "done\n"
    assert got["cpu_s"] >= 0.28 and got["wall_s"] >= got["cpu_s"] * 0.5
    with pytest.raises(common.ChildFailed, match=r"exited 3:\nboom"):
        common.timed([sys.executable, "-c", "import sys; sys.stderr.write('boom'); sys.exit(3)"])


def test_clip_statistics_and_the_logmel_probe(common, tmp_path):
    import h5py
    from helpers import CLASSES, make_features

    train = make_features(tmp_path / "train.h5", 40, seed=0)
    evaluate = make_features(tmp_path / "evaluate.h5", 20, seed=1)
    stats, scenes, devices = common.clip_statistics(train)
    with h5py.File(train, "r") as f:
        x = f["features"][()][..., 0].astype(np.float32)
    assert stats.shape == (40, 64) and list(scenes[:4]) == list(CLASSES) and set(devices) == {"a"}
    assert np.allclose(stats, np.concatenate([x.mean(axis=2), x.std(axis=2)], axis=1), atol=1e-5)
    assert common.logmel_probe(train, evaluate) == {"all": 1.0, "A": 1.0}
    # without any training clip of "tram" the probe cannot name it: 5 of the 20 clips are wrong
    trams = {f"tram-lyon-{i % 5}-0{i}-a" for i in range(3, 40, 4)}
    assert common.logmel_probe(train, evaluate, exclude_ids=trams) == {"all": 0.75, "A": 0.75}


def test_recipe_demo_options_follow_the_conf(bench, tmp_path):
    conf = tmp_path / "system.yaml"
    conf.write_text("preset: 1a\ndemo:\n  batch_size: 8   # a comment\n  crop: 96\n  epochs: 10\n"
                    "  clips_per_class: 5\npaper:\n  clips_per_class: 12\n")
    assert bench.recipe_demo_options(conf) == (["--batch-size", "8", "--crop", "96", "--epochs", "10"], 5)
    options, clips = bench.recipe_demo_options()  # the shipped conf has a demo section
    assert clips >= 2 and len(options) % 2 == 0


def test_effective_options_keep_the_last_value(bench):
    assert bench.effective_options(["--profile", "demo", "--epochs", "14", "--crop", "128", "--epochs", "1"]) \
        == ["--profile", "demo", "--epochs", "1", "--crop", "128"]


def test_epoch_seconds_from_train_log(bench, tmp_path):
    log = tmp_path / "train.log"
    log.write_text(
        "2026-11-29 22:56:10,721 INFO asctool.training.trainer: train fcnn on 34 clips\n"
        "2026-11-29 22:56:22,602 INFO asctool.training.trainer: epoch 1/2 lr 0.10000 loss 2.3142 accuracy 0.1562 "
        "val_loss 2.3087 val_accuracy 0.0769 (10.2 s)\n"
        "2026-11-29 22:56:24,225 INFO asctool.training.trainer: epoch 2/2 lr 0.05001 loss 2.3114 accuracy 0.0938 "
        "val_loss 2.3254 val_accuracy 0.0385 (best) (1.4 s)\n")
    assert bench._epoch_seconds(log) == {1: 10.2, 2: 1.4}
    assert bench._epoch_seconds(tmp_path / "none.log") == {}


def _row(system, seed, acc, wall, cpu, epochs=None):
    row = {"system": system, "seed": seed, "options": [], "accuracy": {"all": acc, "A": acc + 0.1},
           "train": {"wall_s": wall, "cpu_s": cpu, "load_start": 1.0, "load_end": 2.0},
           "predict": {"wall_s": 1.0, "cpu_s": 1.0, "load_start": 1.0, "load_end": 1.0}}
    if epochs:
        row.update(epochs_run=epochs[0], model_epoch=epochs[1], max_epochs=epochs[2], wall_to_model_epoch_s=wall / 2)
    return row


def test_summary_pairs_each_seed_with_its_probe(bench):
    rows = [_row("cpu", 0, 0.60, 100, 150, (30, 14, 30)), _row("logreg", 0, 0.50, 5, 4),
            _row("cpu", 1, 0.70, 120, 170, (14, 6, 30)), _row("logreg", 1, 0.52, 5, 4)]
    summary = bench.summarise_convergence(rows)
    assert np.allclose(summary["cpu"]["minus_probe"], [0.10, 0.18])
    assert summary["logreg"]["minus_probe"] == []
    assert summary["cpu"]["epochs"] == [[30, 14, 30], [14, 6, 30]]
    settings = {"systems": {"cpu": ["--model", "MODEL", "--profile", "cpu"], "logreg": ["--model", "logreg"]}}
    table = bench.render_convergence(summary, settings).splitlines()
    assert len(table) == 4
    cpu = [c.strip() for c in table[2].split("|")[1:-1]]
    # micro 60, 70 -> 65 ± 7.1; A 70, 80; minus probe 10, 18 -> 14 ± 5.7; wall 100, 120; CPU 150, 170
    assert cpu == ["cpu: `--profile cpu`", "2", "65.0 ± 7.1", "75.0 ± 7.1", "-", "-", "-", "14.0 ± 5.7",
                   "30 (14) of 30, 14 (6) of 30", "110 ± 14", "160 ± 14", "55 ± 7"]
    probe = [c.strip() for c in table[3].split("|")[1:-1]]
    assert probe[:3] == ["linear probe (`--model logreg`)", "2", "51.0 ± 1.4"] and probe[-4:-1] == ["-", "5 ± 0", "4 ± 0"]


def test_unknown_parts_and_systems_are_refused(bench):
    with pytest.raises(SystemExit, match="--only: unknown nope"):
        bench.main(["--only", "nope"])
    with pytest.raises(SystemExit, match="--systems: unknown svm; known: cpu, demo, recipe-demo, logreg"):
        bench.main(["--only", "convergence", "--systems", "cpu,svm"])


def test_extra_systems_and_quick_settings(bench):
    args = bench.parse_args(["--only", "convergence", "--quick", "--systems", "cpu,logreg",
                             "--extra", "cpu-62=--profile cpu --max-epochs 62"])
    settings = bench.convergence_settings(args)
    assert settings["seeds"] == [0] and settings["data"]["synth"] == bench.QUICK_SYNTH
    assert settings["systems"] == {"cpu": ["--model", "MODEL", "--profile", "cpu", "--max-epochs", "2"],
                                   "logreg": ["--model", "logreg"],
                                   "cpu-62": ["--model", "MODEL", "--profile", "cpu", "--max-epochs", "62"]}
    for bad in ("cpu=--width 0.5", "../x=--width 0.5", "w=--width", "nothing"):
        with pytest.raises(SystemExit, match="--extra"):
            bench.convergence_settings(bench.parse_args(["--extra", bad]))


def test_cpu_profile_table_after_the_move_to_common():
    cpu_profile = _load("cpu_profile")
    pick = {"epochs_run": 30, "model_epoch": 14, "cnn": {"all": 0.5, "s4-s6": 0.4}, "seconds": 100.0}
    rows = [{"variant": "base", "seed": s, "epochs": 30, "probe": {"all": 0.4 + 0.02 * s},
             "selection": {rule: {str(p): pick for p in cpu_profile.PATIENCES} for rule in ("cycle_ends", "any_epoch")}}
            for s in (0, 1)]
    base = cpu_profile.table(rows).splitlines()[2]
    assert base == "| base | 2 | 50.0 ± 0.0 | 41.0 ± 1.4 | 9.0 ± 1.4 | 40.0 ± 0.0 | 30 (14), 30 (14) | 100 |"


@pytest.mark.slow
def test_convergence_quick_end_to_end(tmp_path):
    """The smoke test: --quick on tiny synthesized data, as a user runs it; a rerun reuses every run."""
    from asctool.artifacts import read_scores

    work = tmp_path / "work"
    command = [sys.executable, str(BENCH / "train.py"), "--only", "convergence", "--quick", "--systems",
               "cpu,logreg", "--work-dir", str(work)]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads((work / "convergence.json").read_text())
    assert [(r["system"], r["seed"]) for r in result["runs"]] == [("cpu", 0), ("logreg", 0)]
    for row in result["runs"]:
        assert set(row["accuracy"]) == {"all", "A", "B&C", "s1-s3", "s4-s6"}
        assert row["train"]["wall_s"] > 0 and row["train"]["cpu_s"] > 0
        scores = read_scores(work / "seed0" / row["system"] / "scores_evaluate.h5")
        predicted = np.asarray(scores.classes)[scores.scores.argmax(axis=1)]
        assert row["accuracy"]["all"] == pytest.approx(np.mean(predicted == np.asarray(scores.scenes).astype(str)))
    cpu = result["runs"][0]
    assert (cpu["epochs_run"], cpu["model_epoch"], cpu["max_epochs"]) == (2, 2, 2)
    assert cpu["n_train"] + cpu["n_valid"] == 60 and cpu["n_valid"] > 0  # 10 scenes x 6 training clips
    assert "epochs_run" not in result["runs"][1]
    table = (work / "convergence.md").read_text()
    assert table.startswith("| system | seeds | micro % |") and "| cpu: `--profile cpu --max-epochs 2` | 1 |" in table
    assert table in done.stdout
    lines = (work / "convergence.jsonl").read_text()
    again = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    assert again.returncode == 0 and (work / "convergence.jsonl").read_text() == lines
    assert "seed 0 cpu" not in again.stderr
