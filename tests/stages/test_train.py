"""The train stage: bad input refused before anything is written, the run folder, learning, resume."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from click.testing import CliRunner

from asctool.artifacts import FeaturesWriter
from asctool.cli import cli
from asctool.errors import ArtifactError, AsctoolError, ConfigError, MismatchError

from helpers import CLASSES, CONFIG, SHAPE, TRAIN_KW, make_features, poke, trained_run  # noqa: E402


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> dict:
    return trained_run(tmp_path_factory)


# --------------------------------------------------------------------------
# bad input: refused before anything is written
# --------------------------------------------------------------------------
def _train(*args, **kwargs):
    from asctool.stages.train import run as train

    return train(*args, **kwargs)


def test_refuses_features_with_different_configs(tmp_path):
    p1 = make_features(tmp_path / "a.h5", 8)
    p2 = make_features(tmp_path / "b.h5", 8, city="rome", config={"preset": "other", "n_mels": 16})
    with pytest.raises(MismatchError, match=r"a\.h5.*b\.h5.*preset"):
        _train([p1, p2], "fcnn", tmp_path / "run")
    p3 = make_features(tmp_path / "c.h5", 8, city="oslo", config={"preset": "other", "n_mels": 16})
    with pytest.raises(MismatchError, match="c.h5"):
        _train([p1], "fcnn", tmp_path / "run", valid_path=p3)
    assert not (tmp_path / "run").exists()


def test_refuses_labels_outside_the_map(tmp_path):
    path = make_features(tmp_path / "a.h5", 8)
    label_map = tmp_path / "map.tsv"
    label_map.write_text("airport\tindoor\nbus\ttransport\npark\toutdoor\n")
    with pytest.raises(ConfigError, match=r"a\.h5.*tram"):
        _train([path], "fcnn", tmp_path / "run", labels=str(label_map))
    odd = make_features(tmp_path / "odd.h5", 4, scenes=["airport", "cave", "bus", "park"], city="rome")
    with pytest.raises(ConfigError, match=r"odd\.h5.*cave.*coarse"):
        _train([odd], "fcnn", tmp_path / "run", labels="coarse")
    assert not (tmp_path / "run").exists()


def test_refuses_empty_features_and_unknown_model(tmp_path):
    empty = tmp_path / "empty.h5"
    with FeaturesWriter(empty, n=0, feature_shape=SHAPE, config=CONFIG, ids=[]):
        pass
    with pytest.raises(ArtifactError, match=r"empty\.h5.*no clips"):
        _train([empty], "fcnn", tmp_path / "run")
    path = make_features(tmp_path / "a.h5", 8)
    with pytest.raises(AsctoolError, match="no_such_net"):
        _train([path], "no_such_net", tmp_path / "run")
    with pytest.raises(ConfigError, match="valid-split"):
        _train([path], "fcnn", tmp_path / "run", valid_path=path, valid_split=0.2)
    assert not (tmp_path / "run").exists()


def test_valid_file_must_not_share_locations(tmp_path):
    p1 = make_features(tmp_path / "a.h5", 8)
    p2 = make_features(tmp_path / "b.h5", 8, seed=5)   # same city: same locations, other ids
    with pytest.raises(MismatchError, match="location"):
        _train([p1], "fcnn", tmp_path / "run", valid_path=p2)


# --------------------------------------------------------------------------
# training: learning, artifacts, resume, determinism
# --------------------------------------------------------------------------
def test_run_folder_and_learning(run):
    folder, summary = run["run"], run["summary"]
    for name in ("model.keras", "last.keras", "config.json", "history.tsv", "train.log", "state.json"):
        assert (folder / name).is_file(), name
    config = json.loads((folder / "config.json").read_text())
    for key in ("model", "classes", "labels", "frontend_config", "input_shape", "seed", "epochs",
                "batch_size", "width", "augment", "crop", "valid_locations"):
        assert key in config, key
    assert config["classes"] == list(CLASSES) and config["frontend_config"] == CONFIG
    assert config["input_shape"] == list(SHAPE) and config["epochs"] == 6 and config["width"] == 0.125
    assert config["augment"]["mixup"] and config["augment"]["specaugment"] and config["crop"] is None
    rows = [line.split("\t") for line in (folder / "history.tsv").read_text().splitlines()]
    assert rows[0] == ["epoch", "lr", "loss", "accuracy", "val_loss", "val_accuracy"] and len(rows) == 7
    assert float(rows[1][1]) == pytest.approx(0.1) and float(rows[3][1]) == pytest.approx(0.1)
    assert summary["steps"] == 6 * summary["steps_per_epoch"]
    # learning, not just running: validation (other locations) clearly above chance (0.25)
    assert summary["best_val_accuracy"] >= 0.6
    losses = [float(r[2]) for r in rows[1:]]
    assert min(losses[3:]) < losses[0]
    assert "epoch 6/6" in (folder / "train.log").read_text()


def test_resume_after_kill_matches_uninterrupted_run(run, tmp_path):
    """A run killed mid-epoch and resumed ends with the same steps, schedule and weights.

    The killed run is a fresh run with the same seed and data as the shared
    one, so weight equality also shows that training is deterministic.
    """
    from asctool.models import load_model
    from asctool.training.trainer import SimulatedKill

    spe = run["summary"]["steps_per_epoch"]
    folder = tmp_path / "killed"
    with pytest.raises(SimulatedKill):
        _train([run["data"]], "fcnn", folder, _interrupt_at_step=3 * spe + 2, **TRAIN_KW)
    state = json.loads((folder / "state.json").read_text())
    assert state["epoch"] == 3 and state["steps"] == 3 * spe
    with pytest.raises(ConfigError, match="already holds a run"):
        _train([run["data"]], "fcnn", folder, **TRAIN_KW)
    summary = _train([run["data"]], "fcnn", folder, resume=True, **TRAIN_KW)
    assert summary["steps"] == run["summary"]["steps"] == 6 * spe
    assert (folder / "history.tsv").read_text() == (run["run"] / "history.tsv").read_text()
    a = load_model(run["run"] / "last.keras").get_weights()
    b = load_model(folder / "last.keras").get_weights()
    assert len(a) == len(b)
    for x, y in zip(a, b):
        np.testing.assert_allclose(x, y, rtol=0, atol=1e-6)


def test_resume_refuses_a_different_config(run):
    with pytest.raises(MismatchError, match=r"config\.json.*seed"):
        _train([run["data"]], "fcnn", run["run"], resume=True, **{**TRAIN_KW, "seed": 4})
    with pytest.raises(MismatchError, match="epochs"):
        _train([run["data"]], "fcnn", run["run"], resume=True, **{**TRAIN_KW, "epochs": 7})


def test_cli_train_errors_are_one_line(tmp_path):

    path = make_features(tmp_path / "a.h5", 8)
    result = CliRunner().invoke(cli, ["train", "--train", str(path), "--model", "nope", "--out-dir",
                                      str(tmp_path / "run")])
    assert result.exit_code == 1 and "nope" in result.output and "Traceback" not in result.output


@pytest.mark.slow
def test_same_seed_same_weights(tmp_path):
    from asctool.models import load_model

    path = make_features(tmp_path / "a.h5", 32)
    kw = dict(profile="demo", epochs=2, batch_size=8, seed=11)
    _train([path], "fcnn", tmp_path / "r1", **kw)
    _train([path], "fcnn", tmp_path / "r2", **kw)
    for x, y in zip(load_model(tmp_path / "r1" / "model.keras").get_weights(),
                    load_model(tmp_path / "r2" / "model.keras").get_weights()):
        np.testing.assert_array_equal(x, y)


@pytest.mark.slow
def test_snapshot_average(tmp_path):
    path = make_features(tmp_path / "a.h5", 32)
    summary = _train([path], "fcnn", tmp_path / "r", profile="demo", epochs=6, batch_size=8, snapshots=2)
    assert summary["snapshots_averaged"] == ["epoch-0002.weights.h5", "epoch-0006.weights.h5"]
    from asctool.models import load_model

    model = load_model(tmp_path / "r" / "model.keras")
    averaged = model.get_weights()
    snaps = []
    for name in summary["snapshots_averaged"]:
        model.load_weights(tmp_path / "r" / "snapshots" / name)
        snaps.append(model.get_weights())
    for avg, a, b in zip(averaged, *snaps):
        np.testing.assert_allclose(avg, (a + b) / 2, rtol=1e-6, atol=1e-7)
    assert not np.array_equal(snaps[0][1], snaps[1][1])


@pytest.mark.slow
def test_mirrored_strategy_on_two_logical_cpus(tmp_path):
    path = make_features(tmp_path / "a.h5", 32)
    script = textwrap.dedent(f"""
        import json, tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()])
        from asctool.stages.train import run as train
        s = train([{str(path)!r}], "fcnn", {str(tmp_path / 'run')!r}, profile="demo", epochs=2,
                  batch_size=8, distribute="mirrored")
        print("SUMMARY", json.dumps(s))
    """)
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "TF_CPP_MIN_LOG_LEVEL": "2"}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout.split("SUMMARY", 1)[1])
    assert summary["steps"] == 8
    log_text = (tmp_path / "run" / "train.log").read_text()
    assert "MirroredStrategy over" in log_text and "CPU:1" in log_text


def test_cli_refuses_resume_with_other_seed(run):
    from click.testing import CliRunner

    from asctool.cli import cli

    args = ["train", "--train", str(run["data"]), "--model", "fcnn", "--out-dir", str(run["run"]),
            "--profile", "demo", "--epochs", "6", "--batch-size", "8", "--valid-split", "0.25",
            "--augment", "specaugment,mixup"]
    result = CliRunner().invoke(cli, args + ["--seed", "9", "--resume"])
    assert result.exit_code == 1 and "seed: 3 vs 9" in result.output
    result = CliRunner().invoke(cli, args + ["--seed", "3"])
    assert result.exit_code == 1 and "already holds a run" in result.output


def test_valid_file_and_coarse_labels(tmp_path):
    train_path = make_features(tmp_path / "a.h5", 16)
    valid_path = make_features(tmp_path / "v.h5", 8, seed=2, city="oslo")
    summary = _train([train_path], "fcnn", tmp_path / "run", labels="coarse", valid_path=valid_path,
                     profile="demo", epochs=1, batch_size=8)
    assert summary["classes"] == ["indoor", "outdoor", "transportation"]
    assert summary["n_valid"] == 8 and summary["steps"] == 2 and summary["best_epoch"] == 1
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["label_map"]["tram"] == "transportation" and config["valid"] == str(valid_path)
    row = (tmp_path / "run" / "history.tsv").read_text().splitlines()[1].split("\t")
    assert len(row) == 6 and row[4] and row[5]


# --------------------------------------------------------------------------
# options checked, outputs claimed, before anything is written (issue 9, items 15, 16)
# --------------------------------------------------------------------------
def _cli(*args):
    from click.testing import CliRunner

    from asctool.cli import cli

    return CliRunner().invoke(cli, ["train", *map(str, args)])


@pytest.mark.parametrize("option, value", [
    ("--seed", "-1"),         # the example: a ValueError traceback, files left, the rerun refused
    ("--epochs", "0"),
    ("--batch-size", "-8"),
    ("--valid-split", "0.95"),
    ("--width", "0"),
])
def test_bad_options_are_usage_errors_and_write_nothing(tmp_path, one_line_error, tree, option, value):
    path = make_features(tmp_path / "a.h5", 8)
    before = tree(tmp_path)
    one_line_error(_cli("--train", path, "--model", "fcnn", "--out-dir", tmp_path / "run", option, value),
                   option, code=2)
    assert tree(tmp_path) == before


def test_a_negative_seed_is_refused_by_the_stage_too(tmp_path):
    path = make_features(tmp_path / "a.h5", 8)
    with pytest.raises(ConfigError, match="--seed -1: must be >= 0"):
        _train([path], "fcnn", tmp_path / "run", seed=-1)
    assert not (tmp_path / "run").exists()


def test_a_run_folder_below_a_file_is_one_line(tmp_path, one_line_error, tree):
    path = make_features(tmp_path / "a.h5", 8)
    before = tree(tmp_path)
    one_line_error(_cli("--train", path, "--model", "fcnn", "--out-dir", path / "run"),
                   f"{path / 'run'}: cannot be written: {path} is not a folder")
    assert tree(tmp_path) == before


@pytest.mark.parametrize("option", ["base_filters=-3", "nosuch=1"])
def test_unknown_model_options_write_nothing(tmp_path, one_line_error, tree, option):
    """They failed in the builder after config.json was written, and the rerun was refused."""
    path = make_features(tmp_path / "a.h5", 8)
    before = tree(tmp_path)
    one_line_error(_cli("--train", path, "--model", "fcnn", "--out-dir", tmp_path / "run", "--option", option),
                   f"model 'fcnn': unknown option(s) {option.split('=')[0]}")
    assert tree(tmp_path) == before


# --------------------------------------------------------------------------
# silent wrong results refused (issue 9 items 4, 5, 6)
# --------------------------------------------------------------------------
def test_a_typo_scene_is_refused_naming_the_clip(tmp_path):
    """``airprot`` in one row trained an 11-class model."""
    scenes = [CLASSES[i % 4] for i in range(8)]
    scenes[5] = "airprot"
    path = make_features(tmp_path / "a.h5", 8, scenes=scenes)
    with pytest.raises(ConfigError, match=r"a\.h5: clip airprot-lyon-0-05-a \(row 5\): unknown label 'airprot', "
                                          r"not one of the DCASE scenes .*--classes FILE"):
        _train([path], "fcnn", tmp_path / "run")
    # another instance: the validation file, with a user's own classes declared
    (tmp_path / "classes.txt").write_text("\n".join(CLASSES) + "\n")
    good = make_features(tmp_path / "good.h5", 8, city="oslo")
    odd = make_features(tmp_path / "odd.h5", 4, city="rome", scenes=["bus", "tram", "metro", "park"])
    with pytest.raises(ConfigError, match=r"odd\.h5: clip metro-rome-2-02-a \(row 2\): unknown label 'metro', "
                                          r"not one of the classes of --classes \(airport, bus, park, tram\)$"):
        _train([good], "fcnn", tmp_path / "run", valid_path=odd, classes_path=tmp_path / "classes.txt")
    assert not (tmp_path / "run").exists()


def test_features_with_nan_or_duplicate_ids_are_refused(tmp_path):
    """One NaN in a features file trained NaN weights; a duplicated id is another clip's label."""
    path = poke(make_features(tmp_path / "a.h5", 8), "features", (6, 0, 0, 0), np.nan)
    with pytest.raises(ArtifactError, match=r"a\.h5: features of clip park-lyon-1-06-a \(row 6\) contain NaN"):
        _train([path], "fcnn", tmp_path / "run")
    dup = poke(make_features(tmp_path / "dup.h5", 8), "id", 3, "airport-lyon-0-00-a")
    with pytest.raises(ArtifactError, match=r"dup\.h5: duplicate ids: airport-lyon-0-00-a"):
        _train([dup], "fcnn", tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_a_non_finite_loss_stops_training_with_a_clear_error(tmp_path):
    """Finite but huge features overflow inside the model: the loss is NaN, nothing is saved as a model."""
    import h5py

    path = make_features(tmp_path / "a.h5", 16, dtype="float32")
    with h5py.File(path, "r+") as handle:
        handle["features"][3] = handle["features"][3] * 1e38
    result = CliRunner().invoke(cli, ["train", "--train", str(path), "--model", "fcnn", "--out-dir",
                                      str(tmp_path / "run"), "--profile", "demo", "--epochs", "2",
                                      "--batch-size", "8"])
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    assert "training loss became nan at epoch 1, step 1" in result.output
    assert not (tmp_path / "run" / "model.keras").exists() and not (tmp_path / "run" / "checkpoint").exists()
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["config.json", "train.log"]


def test_own_classes_recorded_by_featurize_are_known_to_train(tmp_path):
    own = ("beach", "cave")
    plain = make_features(tmp_path / "plain.h5", 8, classes=own)
    with pytest.raises(ConfigError, match=r"plain\.h5: clip beach-lyon-0-00-a \(row 0\): unknown label 'beach'"):
        _train([plain], "fcnn", tmp_path / "run")
    (tmp_path / "classes.txt").write_text("beach\ncave\n")
    summary = _train([plain], "fcnn", tmp_path / "run", classes_path=tmp_path / "classes.txt", profile="demo",
                     epochs=1, batch_size=8)
    assert summary["classes"] == ["beach", "cave"]
    assert json.loads((tmp_path / "run" / "config.json").read_text())["known_classes"] == ["beach", "cave"]


# --------------------------------------------------------------------------
# early stopping, the cpu profile (issue 14, item 1) and epoch numbering
# --------------------------------------------------------------------------
#: the validation accuracy each epoch reports (1-based), peaking at epoch 2
PEAK_AT_2 = {1: 0.5, 2: 0.75, 3: 0.25, 4: 0.5, 5: 0.625, 6: 0.5}


def _peak_at_epoch_2(monkeypatch):
    """Validation that peaks at epoch 2 of 6: the trainer's callback sees :data:`PEAK_AT_2`.

    Training, the checkpoints, the best-model export and the stopping rule run
    as they are; only the measured validation accuracy is replaced, so that
    the peak does not depend on how a tiny model happens to learn.
    """
    from asctool.training import trainer

    real = trainer._make_callback

    def make(**kwargs):
        callback = real(**kwargs)
        on_epoch_end = callback.on_epoch_end

        def patched(epoch, logs=None):
            return on_epoch_end(epoch, {**(logs or {}), "val_accuracy": PEAK_AT_2.get(epoch + 1, 0.0)})

        callback.on_epoch_end = patched
        return callback

    monkeypatch.setattr(trainer, "_make_callback", make)


EARLY_KW = dict(profile="cpu", epochs=14, patience=4, batch_size=8, seed=5, augment="none")


def _early_run(data, valid, folder, **kwargs):
    """A cpu-profile run of at most 14 epochs (cycle ends 2, 6, 14)."""
    return _train([data], "fcnn", folder, valid_path=valid, **{**EARLY_KW, **kwargs})


@pytest.fixture(scope="module")
def early(tmp_path_factory):
    root = tmp_path_factory.mktemp("early")
    data = make_features(root / "train.h5", 24, seed=0)
    valid = make_features(root / "valid.h5", 8, seed=1, city="oslo")
    return {"root": root, "data": data, "valid": valid}


def test_early_stopping_restores_the_best_epoch(early, monkeypatch):
    """A run whose validation peaks at epoch 2 of 6 saves epoch 2's weights (issue 14).

    It stops at the cycle end 6 (4 epochs after the best, patience 4) of at
    most 14; model.keras holds the weights after epoch 2, checked against the
    checkpoint of a second, identical run killed after epoch 2.
    """
    from asctool.models import load_model
    from asctool.training.trainer import SimulatedKill

    root = early["root"]
    _peak_at_epoch_2(monkeypatch)
    summary = _early_run(early["data"], early["valid"], root / "a")
    rows = [line.split("\t") for line in (root / "a" / "history.tsv").read_text().splitlines()[1:]]
    assert [int(r[0]) for r in rows] == [1, 2, 3, 4, 5, 6]
    val = [float(r[5]) for r in rows]
    assert val == [PEAK_AT_2[e] for e in range(1, 7)]
    assert summary["best_epoch"] == summary["model_epoch"] == 2 and summary["stopped_epoch"] == 6
    assert summary["epochs_run"] == 6 and summary["epochs"] == 14 and summary["steps"] == 6 * 3
    state = json.loads((root / "a" / "state.json").read_text())
    assert state["model_epoch"] == 2 and state["stopped_epoch"] == 6 and state["best_epoch"] == 2
    config = json.loads((root / "a" / "config.json").read_text())
    assert config["early_stopping"] is True and config["patience"] == 4 and config["epochs"] == 14
    assert "early stopping after epoch 6" in (root / "a" / "train.log").read_text()
    assert sorted(p.name for p in (root / "a" / "checkpoint").iterdir()) == ["epoch-0006.keras"]

    spe = summary["steps_per_epoch"]
    with pytest.raises(SimulatedKill):
        _early_run(early["data"], early["valid"], root / "b", _interrupt_at_step=2 * spe)
    # the checkpoint is numbered like history.tsv: epoch-0002 holds the epoch history numbers 2
    assert sorted(p.name for p in (root / "b" / "checkpoint").iterdir()) == ["epoch-0002.keras"]
    last_row = (root / "b" / "history.tsv").read_text().splitlines()[-1].split("\t")
    assert last_row[0] == "2" and float(last_row[5]) == val[1]
    best = load_model(root / "a" / "model.keras").get_weights()
    epoch2 = load_model(root / "b" / "checkpoint" / "epoch-0002.keras").get_weights()
    last = load_model(root / "a" / "last.keras").get_weights()
    assert len(best) == len(epoch2)
    for x, y in zip(best, epoch2):
        np.testing.assert_array_equal(x, y)
    assert any(not np.array_equal(x, y) for x, y in zip(best, last))


@pytest.mark.slow
def test_a_resumed_run_continues_the_early_stopping_state(early, monkeypatch):
    """Killed mid-epoch 4 and resumed: the same history, stop, best epoch and weights; a stopped run stays stopped."""
    from asctool.models import load_model
    from asctool.training.trainer import SimulatedKill

    root = early["root"]
    _peak_at_epoch_2(monkeypatch)
    if not (root / "a" / "model.keras").is_file():
        _early_run(early["data"], early["valid"], root / "a")
    reference = json.loads((root / "a" / "state.json").read_text())
    spe = reference["steps"] // reference["epoch"]
    with pytest.raises(SimulatedKill):
        _early_run(early["data"], early["valid"], root / "c", _interrupt_at_step=3 * spe + 2)
    assert json.loads((root / "c" / "state.json").read_text())["epoch"] == 3
    summary = _early_run(early["data"], early["valid"], root / "c", resume=True)
    assert summary["stopped_epoch"] == 6 and summary["model_epoch"] == 2
    assert (root / "c" / "history.tsv").read_text() == (root / "a" / "history.tsv").read_text()
    for name in ("model.keras", "last.keras"):
        for x, y in zip(load_model(root / "a" / name).get_weights(), load_model(root / "c" / name).get_weights()):
            np.testing.assert_array_equal(x, y)
    again = _early_run(early["data"], early["valid"], root / "c", resume=True)   # stopped: finalised only
    assert again["epochs_run"] == 6 and again["steps"] == summary["steps"]
    assert "stopped early after epoch 6; finalising" in (root / "c" / "train.log").read_text()


def test_cpu_profile_defaults_and_split_by_class(tmp_path, caplog):
    """Under --profile cpu: a validation split when none is given (by class without locations)."""
    path = tmp_path / "plain.h5"
    scenes = [CLASSES[i % 4] for i in range(40)]
    with FeaturesWriter(path, n=40, feature_shape=SHAPE, config=CONFIG, ids=[f"clip{i}" for i in range(40)],
                        scenes=scenes) as writer:
        rng = np.random.default_rng(0)
        for i, scene in enumerate(scenes):
            x = rng.normal(0.3, 0.15, SHAPE)
            x[CLASSES.index(scene) * 8:(CLASSES.index(scene) + 1) * 8] += 0.6
            writer.write(i, x)
    with caplog.at_level("WARNING", logger="asctool"):
        summary = _train([path], "fcnn", tmp_path / "run", profile="cpu", epochs=2, batch_size=8)
    assert sum("stratified by class" in r.getMessage() for r in caplog.records) == 1
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["valid_split"] == 0.2 and config["valid_split_by"] == "class" and summary["n_valid"] == 8
    assert config["early_stopping"] and config["width"] == 0.25 and config["schedule"]["end_epoch"] == 2
    assert config["augment"]["mixup"] and config["augment"]["mixup_alpha"] != 0.4 and config["crop"] is None
    assert summary["epochs_run"] == 2 and summary["model_epoch"] == summary["best_epoch"]


def test_early_stopping_options(tmp_path, one_line_error, tree):
    path = make_features(tmp_path / "a.h5", 16)
    before = tree(tmp_path)
    one_line_error(_cli("--train", path, "--model", "fcnn", "--out-dir", tmp_path / "run", "--profile", "cpu",
                        "--valid-split", "0"),
                   "early stopping needs validation data: give --valid FILE or --valid-split F")
    one_line_error(_cli("--train", path, "--model", "fcnn", "--out-dir", tmp_path / "run", "--early-stopping"),
                   "early stopping needs validation data")
    one_line_error(_cli("--train", path, "--model", "fcnn", "--out-dir", tmp_path / "run", "--patience", "-1"),
                   "--patience", code=2)
    assert tree(tmp_path) == before
    result = _cli("--train", path, "--model", "fcnn", "--out-dir", tmp_path / "run", "--profile", "cpu",
                  "--max-epochs", "1", "--no-early-stopping", "--valid-split", "0", "--batch-size", "8")
    assert result.exit_code == 0, result.output
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["epochs"] == 1 and config["early_stopping"] is False and config["n_valid"] == 0


@pytest.mark.slow
@pytest.mark.parametrize("name, channels, width", [("fcnn", 3, 0.05), ("small_fcnn", 6, 0.1), ("fsfcnn", 3, 0.03),
                                                   ("fsfcnn_s", 3, 0.05), ("resnet", 3, 0.1), ("mobnet", 6, 0.25)])
def test_every_model_trains_under_the_cpu_profile(tmp_path, name, channels, width):
    """Early stopping, the fitted schedule and the profile's augmentations work for every registry model."""
    from asctool.models import available

    assert name in available()
    shape = (SHAPE[0], SHAPE[1], channels)
    path = make_features(tmp_path / "a.h5", 32, shape=shape)
    summary = _train([path], name, tmp_path / "run", profile="cpu", epochs=14, patience=0, batch_size=8,
                     width=width)
    rows = [r.split("\t") for r in (tmp_path / "run" / "history.tsv").read_text().splitlines()[1:]]
    assert len(rows) == summary["epochs_run"] and summary["epochs_run"] in (6, 14)
    # only cycle ends (2, 6, 14) compete; patience 0: stop at 6 unless epoch 6 beat epoch 2
    assert summary["model_epoch"] == summary["best_epoch"] and summary["best_epoch"] in (2, 6, 14)
    assert (summary["stopped_epoch"] == 6) == (summary["best_epoch"] == 2)
    val = {int(r[0]): (float(r[5]), -float(r[4])) for r in rows}
    assert summary["best_epoch"] == max((e for e in (2, 6, 14) if e in val), key=lambda e: (val[e], -e))


# --------------------------------------------------------------------------
# mlp on embeddings, linear back-ends (asctool.training.frames)
# --------------------------------------------------------------------------
def test_cli_trains_mlp_and_logreg_on_embeddings(tmp_path):
    from helpers import make_embeddings

    emb = make_embeddings(tmp_path / "e.h5", 40, frames=3, dim=6)
    done = CliRunner().invoke(cli, ["train", "--train", str(emb), "--model", "mlp", "--epochs", "2",
                                    "--out-dir", str(tmp_path / "mlp"), "--profile", "dcase2020-baseline"])
    assert done.exit_code == 0, done.output
    config = json.loads((tmp_path / "mlp" / "config.json").read_text())
    assert (config["epochs"], config["batch_size"], config["patience"]) == (2, 64, None)
    assert {p.name for p in (tmp_path / "mlp").iterdir()} >= {"model.keras", "history.tsv", "config.json", "train.log"}
    done = CliRunner().invoke(cli, ["train", "--train", str(emb), "--model", "logreg", "--option", "c=1",
                                    "--out-dir", str(tmp_path / "lr")])
    assert done.exit_code == 0, done.output
    assert (tmp_path / "lr" / "model.json").is_file() and str(tmp_path / "lr" / "model.json") in done.output
    again = CliRunner().invoke(cli, ["train", "--train", str(emb), "--model", "logreg", "--out-dir", str(tmp_path / "lr")])
    assert again.exit_code == 1 and "already holds a run" in again.output
    forced = CliRunner().invoke(cli, ["train", "--train", str(emb), "--model", "logreg", "--out-dir",
                                      str(tmp_path / "lr"), "--force"])
    assert forced.exit_code == 0, forced.output


@pytest.mark.parametrize("model,data,extra,needle", [
    ("fcnn", "emb", [], "holds embeddings; model 'fcnn' reads features"),
    ("mlp", "feats", [], "model 'mlp' reads embedding frames (asctool embed), not a features file"),
    ("logreg", "emb", ["--grid"], "--grid: searches the mlp's learning rate and weight decay; logreg has none"),
    ("fcnn", "feats", ["--grid"], "--grid: only for the mlp on embeddings, not fcnn"),
    ("mlp", "emb", ["--snapshots", "2"], "not for mlp"),
    ("mlp", "emb", ["--option", "l2=1e-3", "--grid"], "--grid chooses the weight decay"),
    ("logreg", "emb", ["--option", "gamma=2"], "unknown option(s) gamma"),
])
def test_shallow_refusals_write_nothing(tmp_path, one_line_error, tree, model, data, extra, needle):
    from helpers import make_embeddings

    inputs = {"emb": make_embeddings(tmp_path / "e.h5", 24), "feats": make_features(tmp_path / "f.h5", 8)}
    before = tree(tmp_path)
    result = CliRunner().invoke(cli, ["train", "--train", str(inputs[data]), "--model", model,
                                      "--out-dir", str(tmp_path / "run"), *extra])
    one_line_error(result, needle)
    assert tree(tmp_path) == before


def test_cpu_profile_budget_in_steps_stretches_the_epochs_of_a_small_set(tmp_path, monkeypatch, caplog):
    """Without --epochs the cpu profile allows at least min_steps SGD steps; --epochs is taken as given."""
    from asctool.training import trainer

    monkeypatch.setitem(trainer.PROFILES["cpu"], "epochs", 2)
    monkeypatch.setitem(trainer.PROFILES["cpu"], "min_steps", 7)
    path = make_features(tmp_path / "a.h5", 16)
    with caplog.at_level("INFO", logger="asctool"):
        summary = _train([path], "fcnn", tmp_path / "run", profile="cpu", batch_size=4, valid_split=0.25,
                         early_stopping=False)
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert summary["steps_per_epoch"] == 3 and config["epochs"] == 3 == config["schedule"]["end_epoch"]
    assert summary["epochs_run"] == 3 and summary["steps"] == 9
    assert any("up to 3 epochs (at least 7 SGD steps" in r.getMessage() for r in caplog.records)
    assert config["patience"] is None   # early stopping off here; the stretched patience is checked below
    summary = _train([path], "fcnn", tmp_path / "run2", profile="cpu", batch_size=4, valid_split=0.25,
                     early_stopping=False, epochs=2)
    assert summary["epochs_run"] == 2


def test_cpu_profile_patience_stretches_with_the_budget(tmp_path, monkeypatch):
    """A budget stretched from 2 to 6 epochs stretches the profile's patience by the same factor (1 -> 3)."""
    from asctool.training import trainer

    monkeypatch.setitem(trainer.PROFILES["cpu"], "epochs", 2)
    monkeypatch.setitem(trainer.PROFILES["cpu"], "min_steps", 18)
    monkeypatch.setitem(trainer.PROFILES["cpu"], "patience", 1)
    path = make_features(tmp_path / "a.h5", 16)
    _train([path], "fcnn", tmp_path / "run", profile="cpu", batch_size=4, valid_split=0.25)
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["epochs"] == 6 and config["patience"] == 3
    _train([path], "fcnn", tmp_path / "run2", profile="cpu", batch_size=4, valid_split=0.25, patience=1)
    assert json.loads((tmp_path / "run2" / "config.json").read_text())["patience"] == 1   # as given
