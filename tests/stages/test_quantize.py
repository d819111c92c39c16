"""asctool quantize: TensorFlow Lite conversion, size budget, metadata inside the file."""
from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
from click.testing import CliRunner

from asctool.artifacts import FeaturesWriter
from asctool.cli import cli
from asctool.errors import AsctoolError
from asctool.inference import load_runner
from asctool.runs import read_model_metadata
from asctool.stages.quantize import run as quantize

INPUT_SHAPE = (32, 24, 3)
CLASSES = ["indoor", "outdoor", "transportation"]
FRONTEND = {"name": "test-frontend", "n_mels": 32}


def _make_features(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Clips whose class is a bright band of frequency bins, plus noise."""
    labels = np.arange(n) % len(CLASSES)
    x = rng.uniform(0.0, 0.4, size=(n, *INPUT_SHAPE)).astype(np.float32)
    band = INPUT_SHAPE[0] // len(CLASSES)
    for i, k in enumerate(labels):
        x[i, k * band:(k + 1) * band] += 0.6
    return x, labels


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """A tiny FCNN trained for a few seconds on separable features, saved as a run."""
    import keras

    from asctool.models import build

    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    root = tmp_path_factory.mktemp("quantize")
    run = root / "run"
    run.mkdir()
    x, y = _make_features(60, rng)
    model = build("fcnn", len(CLASSES), INPUT_SHAPE, width=1 / 24)
    for layer in model.layers:  # moving statistics that settle within a few dozen steps
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = 0.5
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy")
    model.fit(x, y, epochs=5, batch_size=12, verbose=0)
    model.save(run / "model.keras")
    config = {"model": "fcnn", "classes": CLASSES, "labels": "coarse",
              "frontend_config": FRONTEND, "input_shape": list(INPUT_SHAPE)}
    (run / "config.json").write_text(json.dumps(config))

    x_test, _ = _make_features(120, np.random.default_rng(1))
    feats = root / "feats.h5"
    ids = [f"clip{i:03d}" for i in range(len(x_test))]
    with FeaturesWriter(feats, n=len(ids), feature_shape=INPUT_SHAPE, config=FRONTEND, ids=ids,
                        dtype="float32") as writer:
        for i, clip in enumerate(x_test):
            writer.write(i, clip)
    expected = model.predict(x_test, verbose=0)
    return {"run": run, "feats": feats, "x": x_test, "expected": expected, "model": model}


def test_dynamic_quantisation_agrees_with_keras(trained_run, tmp_path):
    out = tmp_path / "q" / "model.tflite"
    summary = quantize(trained_run["run"] / "model.keras", out)
    assert out.is_file() and summary["bytes"] == out.stat().st_size
    assert summary["mode"] == "dynamic"
    assert summary["parameters"] == trained_run["model"].count_params()
    size = json.loads((out.parent / "size.json").read_text())
    assert size["bytes"] == out.stat().st_size and size["file"] == "model.tflite"
    assert size["parameter_bytes"] == size["parameters"]  # 8 bits per parameter (DCASE rule)
    # the metadata travels inside the .tflite (no config.json beside it), so predict
    # knows the classes and front end wherever the file is copied
    assert not (out.parent / "config.json").exists()
    metadata = read_model_metadata(out)
    assert metadata["classes"] == CLASSES and metadata["frontend_config"] == FRONTEND
    assert size["sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()

    got = load_runner(out)(trained_run["x"])   # the path predict takes
    expected = trained_run["expected"]
    assert got.shape == expected.shape
    np.testing.assert_allclose(got.sum(axis=1), 1.0, atol=1e-4)
    agreement = float((got.argmax(axis=1) == expected.argmax(axis=1)).mean())
    assert agreement >= 0.99
    # the model learned something, so the agreement is not between two constant outputs
    assert len(np.unique(expected.argmax(axis=1))) == len(CLASSES)


def test_max_bytes_failure_leaves_nothing(trained_run, tmp_path):
    out = tmp_path / "small" / "model.tflite"
    result = CliRunner().invoke(cli, ["quantize", "--model", str(trained_run["run"] / "model.keras"),
                                      "--out", str(out), "--max-bytes", "100"])
    assert result.exit_code == 1
    assert "over --max-bytes 100" in result.output
    assert not out.exists() and not (out.parent / "size.json").exists()
    assert not list(out.parent.glob("*.tmp-*")) if out.parent.exists() else True


@pytest.mark.slow
def test_int8_needs_matching_calibration(trained_run, tmp_path):
    with pytest.raises(AsctoolError, match="needs --calibration"):
        quantize(trained_run["run"] / "model.keras", tmp_path / "a.tflite", mode="int8")
    with pytest.raises(AsctoolError, match="only used with --mode int8"):
        quantize(trained_run["run"] / "model.keras", tmp_path / "a.tflite", calibration=trained_run["feats"])
    out = tmp_path / "int8" / "model.tflite"
    quantize(trained_run["run"] / "model.keras", out, mode="int8", calibration=trained_run["feats"])
    got = load_runner(out)(trained_run["x"][:30])
    agreement = float((got.argmax(axis=1) == trained_run["expected"][:30].argmax(axis=1)).mean())
    assert agreement >= 0.9


def test_shared_folder_with_another_config_and_existing_output(trained_run, tmp_path):
    # another model's config.json in the output folder does not matter: the metadata is embedded
    folder = tmp_path / "other"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"classes": ["x", "y"]}))
    quantize(trained_run["run"] / "model.keras", folder / "m.tflite", mode="float16")
    assert read_model_metadata(folder / "m.tflite")["classes"] == CLASSES
    assert json.loads((folder / "config.json").read_text()) == {"classes": ["x", "y"]}

    out = tmp_path / "f16" / "m.tflite"
    out.parent.mkdir()
    out.write_bytes(b"an earlier result")
    with pytest.raises(AsctoolError, match="already exists"):
        quantize(trained_run["run"] / "model.keras", out, mode="float16")


def test_bad_inputs_are_one_line_errors(tmp_path):
    runner = CliRunner()
    missing = runner.invoke(cli, ["quantize", "--model", str(tmp_path / "none.keras"), "--out", str(tmp_path / "x.tflite")])
    assert missing.exit_code == 1 and "model file not found" in missing.output
    suffix = runner.invoke(cli, ["quantize", "--model", str(tmp_path / "none.keras"), "--out", str(tmp_path / "x.bin")])
    assert suffix.exit_code == 1 and ".tflite" in suffix.output


def test_conversion_failure_is_one_line(trained_run, tmp_path, monkeypatch):
    import asctool.stages.quantize as quantize_module

    def refuse(*args, **kwargs):
        raise RuntimeError("\nloc(fused['x']): error: 'tf.Foo' op is neither a custom op nor a flex op\nmore details")

    monkeypatch.setattr(quantize_module, "convert", refuse)
    out = tmp_path / "bad" / "m.tflite"
    with pytest.raises(AsctoolError) as info:
        quantize_module.run(trained_run["run"] / "model.keras", out)
    message = str(info.value)
    assert "\n" not in message and "cannot be quantised" in message and "tf.Foo" in message
    assert not out.exists()


def test_text_model_and_impossible_outputs_are_one_line(tmp_path, one_line_error, tree):
    """(issue 9, items 16, 17) a text file named model.keras is not a Keras archive; an --out below a
    file is refused before the model is even read."""
    fake = tmp_path / "run" / "model.keras"
    fake.parent.mkdir()
    fake.write_text("not a model\n")
    before = tree(tmp_path)
    one_line_error(CliRunner().invoke(cli, ["quantize", "--model", str(fake), "--out", str(tmp_path / "m.tflite")]),
                   f"{fake}: not a Keras archive")
    one_line_error(CliRunner().invoke(cli, ["quantize", "--model", str(fake), "--out",
                                            str(fake / "m.tflite")]), f"{fake} is not a folder")
    assert tree(tmp_path) == before


def test_linear_back_end_has_nothing_to_quantise(tmp_path, one_line_error, tree):
    """A linear back-end (RUN/model.json) holds no Keras graph: one line naming the file, nothing written."""
    import numpy as np

    from asctool.backends import LinearModel

    model = tmp_path / "probe" / "model.json"
    model.parent.mkdir()
    LinearModel(np.eye(3, 4), np.zeros(3), np.zeros(4), np.ones(4),
                {"backend": "logreg", "classes": ["a", "b", "c"], "inputs": "features", "frontend_config": {},
                 "input_shape": [4, 5, 1]}).save(model)
    before = tree(tmp_path)
    one_line_error(CliRunner().invoke(cli, ["quantize", "--model", str(model), "--out", str(tmp_path / "probe" / "m.tflite")]),
                   f"{model}: logreg back-ends are not Keras models: nothing to quantise "
                   f"(asctool predict --model {model} applies it as it is)")
    assert tree(tmp_path) == before
    model.write_text('{"format": "something else"}\n')
    one_line_error(CliRunner().invoke(cli, ["quantize", "--model", str(model), "--out", str(tmp_path / "m.tflite")]),
                   f"{model}: not an asctool linear model")


def test_one_size_json_per_folder_unless_its_file_is_gone(trained_run, tmp_path):
    folder = tmp_path / "deploy"
    quantize(trained_run["run"] / "model.keras", folder / "a.tflite", mode="float16")
    with pytest.raises(AsctoolError, match=r"size\.json: already describes a\.tflite"):
        quantize(trained_run["run"] / "model.keras", folder / "b.tflite", mode="float16")
    assert not (folder / "b.tflite").exists()
    (folder / "a.tflite").unlink()   # a stale size.json no longer blocks the folder
    quantize(trained_run["run"] / "model.keras", folder / "b.tflite", mode="float16")
    assert json.loads((folder / "size.json").read_text())["file"] == "b.tflite"


def test_calibration_features_with_nan_anywhere_are_refused(trained_run, tmp_path):
    """Only the first calibration clip was checked: a NaN further on went into the int8 ranges."""
    import shutil

    from helpers import poke

    feats = poke(shutil.copyfile(trained_run["feats"], tmp_path / "calib.h5"), "features", (77, 3, 4, 1), np.nan)
    out = tmp_path / "int8" / "model.tflite"
    with pytest.raises(AsctoolError, match=r"calib\.h5: features of clip clip077 \(row 77\) contain NaN or Inf"):
        quantize(trained_run["run"] / "model.keras", out, mode="int8", calibration=feats)
    assert not out.parent.exists() or not list(out.parent.iterdir())
