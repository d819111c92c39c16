"""training.adversarial: domain labels, joint targets, the orthogonality penalty, adversarial runs."""
from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from asctool.artifacts import FeaturesWriter
from asctool.errors import ArtifactError, ConfigError
from asctool.training import adversarial as adv

from helpers import CONFIG, SHAPE, make_features  # noqa: E402

ADV_KW = dict(profile="demo", epochs=3, batch_size=8, valid_split=0.25, seed=1, augment="specaugment,mixup")


def write_unlabelled(path, n=24, devices=("s4", "b"), scenes=None, locations=None, seed=5):
    rng = np.random.default_rng(seed)
    with FeaturesWriter(path, n=n, feature_shape=SHAPE, config=CONFIG, ids=[f"u{seed}-{i}" for i in range(n)],
                        scenes=scenes, devices=[devices[i % len(devices)] for i in range(n)],
                        locations=locations) as writer:
        for i in range(n):
            writer.write(i, rng.normal(0.3, 0.15, SHAPE))
    return path


# --------------------------------------------------------------------------
# domain labels and joint targets
# --------------------------------------------------------------------------
def test_domain_labels_of_each_kind():
    lab, unl = ["a", "b", "a", "s1"], ["s4", "b", ""]
    labels, names = adv.domain_labels("set", lab, unl)
    assert names == ["labelled", "unlabelled"] and labels.tolist() == [0, 0, 0, 0, 1, 1, 1]
    with pytest.raises(ConfigError, match="1 clip.*no device"):
        adv.domain_labels("device", lab, unl)
    labels, names = adv.domain_labels("device", lab, ["s4", "b"])
    assert names == ["a", "b", "s1", "s4"] and labels.tolist() == [0, 1, 0, 2, 3, 1]
    labels, names = adv.domain_labels("source", lab, ["s4", "b"])
    assert names == ["a", "other"] and labels.tolist() == [0, 1, 0, 1, 1, 1]


def test_joint_labels_split_back_into_class_and_domain_targets():
    classes, domains, c, k = np.array([2, 0, -1, 1]), np.array([1, 0, 2, 2]), 3, 3
    joint = adv.joint_labels(classes, domains, c)
    assert joint.tolist() == [1 * 4 + 2, 0, 2 * 4 + 3, 2 * 4 + 1]
    y = np.eye(k * (c + 1), dtype="float32")[joint]
    y = 0.75 * y + 0.25 * y[::-1]   # a mixup of clip i with clip 3-i
    y_class, y_domain = (np.asarray(t) for t in adv.split_joint(y, c, k))
    onehot_c = np.vstack([np.eye(c)[2], np.eye(c)[0], np.zeros(c), np.eye(c)[1]])
    np.testing.assert_allclose(y_class, 0.75 * onehot_c + 0.25 * onehot_c[::-1], atol=1e-6)
    onehot_d = np.eye(k)[domains]
    np.testing.assert_allclose(y_domain, 0.75 * onehot_d + 0.25 * onehot_d[::-1], atol=1e-6)


def test_attach_reads_the_device_column(tmp_path):
    from asctool.training.data import make_clip_set, read_sources

    lab = make_features(tmp_path / "lab.h5", 8)    # devices "a"; ids end in -a, locations name no device
    unl = write_unlabelled(tmp_path / "unl.h5", 6, devices=("s5", "b", "c"), locations=["x-a"] * 6)
    sources = read_sources([lab], "training")
    clips, classes = make_clip_set(sources, None, None, labels_name="scene")
    joint, info = adv.attach_unlabelled(clips, sources, [unl], num_classes=len(classes), adversarial="time",
                                        domain="device")
    assert info["domains"] == ["a", "b", "c", "s5"] and info["n_unlabelled"] == 6
    assert len(joint) == 14 and joint.file_index.tolist() == [0] * 8 + [1] * 6
    c = len(classes)
    assert (joint.labels[:8] == clips.labels).all()                      # domain 0 (a): j = class
    assert (joint.labels[8:] // (c + 1)).tolist() == [3, 1, 2, 3, 1, 2]   # s5, b, c, ...
    assert (joint.labels[8:] % (c + 1) == c).all()                       # no class
    joint, info = adv.attach_unlabelled(clips, sources, [unl], num_classes=c, adversarial="time", domain="source")
    assert (joint.labels // (c + 1)).tolist() == [0] * 8 + [1] * 6


def test_unlabelled_file_with_labels_is_refused(tmp_path):
    from asctool.training.data import make_clip_set, read_sources

    lab = make_features(tmp_path / "lab.h5", 8)
    unl = make_features(tmp_path / "unl.h5", 8, city="oslo", seed=2)
    sources = read_sources([lab], "training")
    clips, classes = make_clip_set(sources, None, None, labels_name="scene")
    with pytest.raises(ArtifactError, match=r"unl\.h5: --unlabelled file holds scene labels \(8 clip"):
        adv.attach_unlabelled(clips, sources, [unl], num_classes=4, adversarial="whole", domain="set")


def test_cli_errors_are_one_line_and_write_nothing(tmp_path):
    from asctool.cli import cli

    lab = make_features(tmp_path / "lab.h5", 16)
    labelled_unl = make_features(tmp_path / "labelled.h5", 8, city="oslo", seed=2)
    no_device = write_unlabelled(tmp_path / "nodev.h5", 8, devices=("",))
    base = ["train", "--train", str(lab), "--model", "fcnn", "--profile", "demo", "--epochs", "1"]
    cases = [
        (["--unlabelled", str(labelled_unl), "--adversarial", "whole"], "labelled.h5: --unlabelled file holds scene labels"),
        (["--unlabelled", str(no_device), "--adversarial", "time", "--domain", "device"],
         "nodev.h5: clip row 0 has no device; --domain device needs the device column"),
        (["--adversarial", "time", "--domain", "set"], "--domain set needs --unlabelled"),
        (["--unlabelled", str(no_device)], "--unlabelled needs --adversarial"),
    ]
    for extra, needle in cases:
        result = CliRunner().invoke(cli, [*base, *extra, "--out-dir", str(tmp_path / "run")])
        assert result.exit_code == 1, result.output
        errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
        assert len(errors) == 1 and needle in errors[0] and "Traceback" not in result.output, result.output
        assert not (tmp_path / "run").exists()


# --------------------------------------------------------------------------
# the orthogonality penalty
# --------------------------------------------------------------------------
def test_orthogonality_penalty_matches_numpy():
    rng = np.random.default_rng(0)
    w1, w2 = rng.normal(size=(12, 5)), rng.normal(size=(12, 5))
    expected = 0.0
    n1, n2 = np.sqrt((w1 ** 2).sum()), np.sqrt((w2 ** 2).sum())
    for i in range(5):
        for j in range(5):
            expected += abs(sum(w1[k, i] * w2[k, j] for k in range(12)) / (n1 * n2))
    got = float(np.asarray(adv.orthogonality_penalty(w1.astype("float32"), w2.astype("float32"))))
    assert got == pytest.approx(expected, rel=1e-5)
    assert float(np.asarray(adv.orthogonality_penalty(np.eye(4, 2), np.eye(4, 2)[:, ::-1] * 0 + np.eye(4)[:, 2:]))) == 0.0


# --------------------------------------------------------------------------
# every backbone declares its feature map
# --------------------------------------------------------------------------
def test_every_registered_model_declares_a_4d_feature_map():
    from asctool.models import available, build, spec

    for name in available():
        if spec(name).inputs != "features":  # the mlp takes embedding frames: no feature map
            continue
        model = build(name, 3, (32, None, 3), width=0.125) if "width" in spec(name).defaults else build(name, 3, (32, None, 3))
        layer = model.get_layer(spec(name).feature_map)
        assert len(layer.output.shape) == 4, name


# --------------------------------------------------------------------------
# adversarial runs
# --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def adv_run(tmp_path_factory):
    from asctool.stages.train import run as train

    root = tmp_path_factory.mktemp("adv")
    lab = make_features(root / "lab.h5", 48, seed=0)
    unl = write_unlabelled(root / "unl.h5", 24)
    kw = dict(unlabelled_paths=[unl], adversarial="time", domain="device", grl_ramp=True, tri_training=True,
              orthogonality=1.0, **ADV_KW)
    summary = train([lab], "fcnn", root / "run", **kw)
    return {"root": root, "lab": lab, "unl": unl, "kw": kw, "summary": summary, "run": root / "run"}


def test_adversarial_run_writes_the_classifier_alone(adv_run):
    from asctool.models import load_model

    run = adv_run["run"]
    config = json.loads((run / "config.json").read_text())
    assert config["adversarial"]["domains"] == ["a", "b", "s4"] and config["adversarial"]["n_unlabelled"] == 24
    assert config["train_targets"] == 3 * 5 and config["n_train"] == config["adversarial"]["n_labelled"] + 24 == 63
    model = load_model(run / "model.keras")
    names = [layer.name for layer in model.layers]
    assert not any(n.startswith(("grl", "domain", "labeller")) for n in names)
    assert model.output.shape[-1] == 4 and len(model.outputs) == 1
    labellers = load_model(run / "labellers.keras")
    assert len(labellers.outputs) == 3 and (run / "labellers-last.keras").is_file()
    x = np.random.default_rng(0).normal(0.3, 0.15, (2, *SHAPE)).astype("float32")
    np.testing.assert_allclose(labellers.predict(x, verbose=0)[0], model.predict(x, verbose=0), rtol=1e-5)
    history = (run / "history.tsv").read_text().splitlines()
    assert len(history) == 4


@pytest.mark.slow
def test_quantize_converts_the_deployable_model(adv_run, tmp_path):
    from asctool.stages.quantize import run as quantize

    summary = quantize(adv_run["run"] / "model.keras", tmp_path / "m.tflite")
    assert (tmp_path / "m.tflite").stat().st_size > 0, summary


@pytest.mark.slow
def test_adversarial_resume_after_kill_matches(adv_run, tmp_path):
    from asctool.models import load_model
    from asctool.stages.train import run as train
    from asctool.training.trainer import SimulatedKill

    spe = adv_run["summary"]["steps_per_epoch"]
    with pytest.raises(SimulatedKill):
        train([adv_run["lab"]], "fcnn", tmp_path / "k", _interrupt_at_step=spe + 1, **adv_run["kw"])
    train([adv_run["lab"]], "fcnn", tmp_path / "k", resume=True, **adv_run["kw"])
    assert (tmp_path / "k" / "history.tsv").read_text() == (adv_run["run"] / "history.tsv").read_text()
    for name in ("last.keras", "labellers.keras"):
        for a, b in zip(load_model(adv_run["run"] / name).get_weights(), load_model(tmp_path / "k" / name).get_weights()):
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)


def test_feature_map_output_names_a_missing_or_flat_layer():
    """The one lookup that the domain classifier and the tag fusions attach to (models.feature_map_output)."""
    import keras

    from asctool.models import build, feature_map_output

    model = build("fcnn", 3, (16, None, 3), width=0.125)
    assert feature_map_output(model, "fcnn").shape[-1] == model.get_layer("features_out").output.shape[-1]
    inputs = keras.Input((4,))
    flat = keras.Model(inputs, keras.layers.Dense(2, name="features_out")(inputs))
    with pytest.raises(ConfigError, match=r"^model 'fcnn': feature map 'features_out' has shape \(None, 2\), "
                                          r"expected \(batch, freq, time, channels\)$"):
        feature_map_output(flat, "fcnn")
    plain = keras.Model(inputs, keras.layers.Dense(2, name="other")(inputs))
    with pytest.raises(ConfigError, match=r"^model 'fcnn': its registry entry names the feature map layer "
                                          r"'features_out', which the model does not have$"):
        feature_map_output(plain, "fcnn")
