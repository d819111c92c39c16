"""Tests of the model registry: parameter counts, options, errors, save/load, CLI."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from asctool import models  # noqa: E402
from asctool.errors import AsctoolError, ConfigError  # noqa: E402

REPO = Path(__file__).resolve().parents[1]

# (name, classes, input shape, options, Keras count_params of the reference system)
REFERENCE_COUNTS = [
    ("fcnn", 10, (128, 423, 3), {}, 11_786_711),
    ("fcnn", 3, (128, 423, 3), {}, 11_782_546),
    ("fsfcnn", 10, (128, 423, 3), {}, 16_539_703),
    ("resnet", 10, (128, 423, 3), {}, 12_980_492),
    ("resnet", 3, (128, 423, 3), {"base_filters": 24}, 3_247_758),
    ("mobnet", 3, (128, 461, 6), {}, 152_838),
    ("small_fcnn", 3, (128, 461, 6), {}, 350_470),
    # asctool's own design (docs/models.md): pinned so that changes are deliberate
    ("fsfcnn_s", 10, (128, 423, 3), {}, 10_936_771),
]

# small, fast variants of every model for the save/load round trip
SMALL = {
    "fcnn": ((32, 40, 3), {"width": 0.05}),
    "small_fcnn": ((32, 40, 6), {"width": 0.1}),
    "fsfcnn": ((32, 40, 3), {"width": 0.03}),
    "fsfcnn_s": ((32, 40, 3), {"width": 0.05}),
    "resnet": ((32, 40, 3), {"width": 0.1}),
    "mobnet": ((32, 40, 6), {"width": 0.25}),
    "rawnet": ((2, 12 * 81, 1), {"width": 0.05}),
}


@pytest.fixture(autouse=True)
def _fresh_session():
    yield
    keras.backend.clear_session()


@pytest.mark.parametrize("name,classes,shape,options,expected", REFERENCE_COUNTS)
def test_reference_parameter_counts(name, classes, shape, options, expected):
    model = models.build(name, classes, shape, **options)
    assert model.count_params() == expected
    assert model.output.shape == (None, classes)
    assert model.get_layer("features_out").output.shape[-1] > 0


# models of embedding frames (inputs="embeddings"): built for (dims,)
FRAME_MODELS = {"mlp"}


def _feature_models():
    return [name for name in models.available() if models.spec(name).inputs == "features"]


def test_available_lists_every_model():
    assert set(SMALL) == set(_feature_models())
    assert set(models.available()) - set(SMALL) == FRAME_MODELS
    assert models.available() == sorted(models.available())


@pytest.mark.parametrize("dims,classes", [(512, 10), (6144, 10), (1024, 3)])
def test_mlp_layers_and_parameter_count(dims, classes):
    """Cramer et al. 2019, section 4.2: 512 and 128 ReLU units, softmax; plus the stored standardisation."""
    model = models.build("mlp", classes, (dims,))
    dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    assert [(layer.units, layer.activation.__name__) for layer in dense] == [
        (512, "relu"), (128, "relu"), (classes, "linear")]
    weights = dims * 512 + 512 + 512 * 128 + 128 + 128 * classes + classes
    assert sum(int(np.prod(w.shape)) for w in model.trainable_weights) == weights
    assert model.count_params() == weights + 2 * dims + 1  # mean, variance and count of "standardise"
    assert model.layers[-1].name == "softmax" and model.output.shape == (None, classes)
    x = np.random.default_rng(0).normal(3, 2, (4, dims)).astype("float32")
    np.testing.assert_allclose(np.asarray(model(x)).sum(axis=1), 1.0, rtol=1e-5)


def test_mlp_input_shape_and_l2():
    assert models.build("mlp", 3, 16).input_shape == (None, 16)
    assert models.build("mlp", 3, "16").input_shape == (None, 16)
    with pytest.raises(ConfigError, match=r"'mlp'.*not an embedding size"):
        models.build("mlp", 3, (128, 423, 3))
    model = models.build("mlp", 3, (16,), l2=1e-4, hidden=(8, 4))
    regs = [layer.kernel_regularizer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    assert [layer.units for layer in model.layers if isinstance(layer, keras.layers.Dense)] == [8, 4, 3]
    assert all(float(r.get_config()["l2"]) == pytest.approx(1e-4) for r in regs)


def test_unknown_model_lists_known_names():
    with pytest.raises(AsctoolError, match="known models: .*fcnn"):
        models.build("vgg", 10, (128, 423, 3))


def test_unknown_option_is_config_error():
    with pytest.raises(ConfigError, match="unknown option.*colour.*known options: .*width"):
        models.build("fcnn", 10, (128, 423, 3), colour=3)


@pytest.mark.parametrize("kwargs,pattern", [
    ({"num_classes": 1}, "at least 2"),
    ({"input_shape": (128, 423)}, "three positive integers"),
    ({"input_shape": "128xfoox3"}, "FREQxTIMExCHANNELS"),
    ({"width": 0}, "width"),
    ({"width": "abc"}, "not a valid float"),
])
def test_bad_arguments_are_config_errors(kwargs, pattern):
    args = {"num_classes": 10, "input_shape": (64, 40, 3), "width": 0.05, **kwargs}
    with pytest.raises(ConfigError, match=pattern):
        models.build("fcnn", **args)


def test_width_scales_filters_and_string_options_are_coerced():
    small = models.build("fcnn", 10, "64x40x3", width="0.05")
    smaller = models.build("fcnn", 10, (64, 40, 3), width=0.025)
    assert small.get_layer("block3_conv4_conv").filters == round(576 * 0.05)
    assert smaller.count_params() < small.count_params()


def test_variable_time_length():
    model = models.build("fcnn", 10, (64, None, 3), width=0.05)
    for frames in (40, 57):
        out = model(np.zeros((2, 64, frames, 3), "float32"), training=False)
        np.testing.assert_allclose(np.sum(np.asarray(out), axis=1), 1.0, rtol=1e-5)


def _randomise(model, rng):
    """Give every weight (BN statistics included) non-initial random values."""
    model.set_weights([
        rng.uniform(0.5, 1.5, w.shape).astype(w.dtype) if "variance" in v.path
        else rng.normal(0, 0.2, w.shape).astype(w.dtype)
        for v, w in zip(model.weights, model.get_weights())
    ])


def test_save_load_round_trip_in_fresh_process(tmp_path):
    """Every architecture saved as .keras loads in a new interpreter with only
    ``import asctool.models`` and gives identical outputs."""
    rng = np.random.default_rng(0)
    expected = {}
    for name in _feature_models():
        shape, options = SMALL[name]
        model = models.build(name, 3, shape, **options)
        _randomise(model, rng)
        x = rng.random((2, *shape), dtype=np.float32)
        expected[name] = np.asarray(model(x, training=False))
        assert not any(isinstance(layer, keras.layers.Lambda) for layer in model.layers), name
        assert model.layers[-1].name == "softmax"
        assert model.get_layer("features_out").output.shape[1] > 1  # frequency axis kept
        model.save(tmp_path / f"{name}.keras")
        np.save(tmp_path / f"{name}_x.npy", x)
        keras.backend.clear_session()
    # the convenience loader, in this process
    x = np.load(tmp_path / "fcnn_x.npy")
    again = models.load_model(tmp_path / "fcnn.keras")
    np.testing.assert_allclose(np.asarray(again(x, training=False)), expected["fcnn"], rtol=1e-5, atol=1e-6)
    script = textwrap.dedent("""
        import sys
        from pathlib import Path
        import numpy as np
        import asctool.models
        import keras
        folder = Path(sys.argv[1])
        for name in sys.argv[2:]:
            model = keras.saving.load_model(folder / f"{name}.keras")
            model.get_layer("features_out")
            x = np.load(folder / f"{name}_x.npy")
            np.save(folder / f"{name}_y.npy", np.asarray(model(x, training=False)))
    """)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": "",
           "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path), *expected],
        env=env, cwd=tmp_path, capture_output=True, text=True,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    for name, value in expected.items():
        assert np.all(np.isfinite(value)) and np.ptp(value) > 0, name
        np.testing.assert_allclose(np.load(tmp_path / f"{name}_y.npy"), value, rtol=1e-5, atol=1e-6,
                                   err_msg=name)


def test_load_model_errors(tmp_path):
    from asctool.errors import ArtifactError

    with pytest.raises(ArtifactError, match="not found"):
        models.load_model(tmp_path / "missing.keras")
    bad = tmp_path / "bad.keras"
    bad.write_bytes(b"not a zip")
    with pytest.raises(ArtifactError, match="bad.keras"):
        models.load_model(bad)


def _conv_regularisation(model):
    """{conv layer name: L2 weight or None} for every (depthwise) conv."""
    out = {}
    for layer in model.layers:
        if isinstance(layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D)):
            reg = getattr(layer, "kernel_regularizer", None) or getattr(layer, "depthwise_regularizer", None)
            out[layer.name] = None if reg is None else float(reg.get_config()["l2"])
    return out


@pytest.mark.parametrize("name,expected", [
    ("fcnn", {}), ("fsfcnn", {}), ("fsfcnn_s", {}), ("small_fcnn", {}),
    ("resnet", "all"), ("mobnet", {"head_1_conv", "head_2_conv"}),
])
def test_l2_as_in_reference(name, expected):
    shape, options = SMALL[name]
    regs = _conv_regularisation(models.build(name, 3, shape, **options))
    assert regs
    with_l2 = {k for k, v in regs.items() if v is not None}
    if expected == "all":
        assert with_l2 == set(regs)
    else:
        assert with_l2 == set(expected)
    assert all(v == pytest.approx(1e-3) for v in regs.values() if v is not None)


def test_l2_option_overrides_default():
    shape, options = SMALL["resnet"]
    regs = _conv_regularisation(models.build("resnet", 3, shape, l2=0, **options))
    assert all(v is None for v in regs.values())
    shape, options = SMALL["fcnn"]
    regs = _conv_regularisation(models.build("fcnn", 3, shape, l2=1e-4, **options))
    assert all(v == pytest.approx(1e-4) for v in regs.values())


def test_frequency_split_layers():
    model = models.build("resnet", 3, (32, 40, 3), width=0.1, split=12)
    assert model.get_layer("low_split").output.shape[1] == 12
    assert model.get_layer("high_split").output.shape[1] == 20
    with pytest.raises(ConfigError, match="split"):
        models.build("mobnet", 3, (32, 40, 6), split=40)


def test_channel_attention_parameters_and_values():
    from asctool.models.layers import ChannelAttention

    layer = ChannelAttention(2)
    x = np.random.default_rng(0).random((2, 4, 5, 10), dtype=np.float32)
    y = np.asarray(layer(x))
    assert layer.count_params() == 115
    w1, b1, w2, b2 = (np.asarray(w) for w in layer.weights)

    def mlp(v):
        return np.maximum(v @ w1 + b1, 0) @ w2 + b2

    s = 1 / (1 + np.exp(-(mlp(x.mean(axis=(1, 2))) + mlp(x.max(axis=(1, 2))))))
    np.testing.assert_allclose(y, x * s[:, None, None, :], rtol=1e-5, atol=1e-6)


def test_channel_pad():
    from asctool.models.layers import ChannelPad

    x = np.ones((1, 2, 3, 4), "float32")
    y = np.asarray(ChannelPad(6)(x))
    assert y.shape == (1, 2, 3, 6)
    np.testing.assert_array_equal(y[..., :4], 1)
    np.testing.assert_array_equal(y[..., 4:], 0)


def test_complexity_small_model():
    model = models.build("fcnn", 3, (32, 40, 3), width=0.05)
    info = models.complexity(model)
    assert info["params"] == model.count_params()
    assert info["float32_bytes"] == 4 * info["params"]
    first = model.get_layer("block1_conv1_conv")
    # 5x5 stride 2 on 36x44 padded input -> 16x20 map
    assert info["macs"] > 16 * 20 * first.filters * 5 * 5 * 3
    assert models.complexity(models.build("fcnn", 3, (32, None, 3), width=0.05))["macs"] is None


def test_cli_models_table():
    from click.testing import CliRunner

    from asctool.cli import cli

    result = CliRunner().invoke(cli, ["models", "--classes", "3", "--input", "128x461x6"])
    assert result.exit_code == 0, result.output
    model_part, backend_part = result.output.split("\n\n")
    rows = {line.split()[0]: line.split() for line in model_part.splitlines()[2:]}
    assert set(rows) == set(models.available())
    assert rows["mobnet"][1] == "152,838"
    assert rows["mlp"][1] == "329,732"  # for 512-d frames: 512*512+512 + 512*128+128 + 128*3+3 + 2*512+1
    assert rows["small_fcnn"][1] == "350,470"
    assert "3 classes, input 128x461x6" in result.output.splitlines()[0]
    # then the back-ends, with what each is fitted on
    lines = backend_part.splitlines()
    assert lines[0].startswith("# back-ends") and lines[1].split()[:2] == ["back-end", "fitted"]
    assert [line.split()[0] for line in lines[2:]] == ["logreg", "svm"]
    assert "clip vectors (asctool train --model NAME)" in lines[2]
    assert "a trained model's codes (asctool backend NAME)" in lines[3]


def test_cli_models_bad_input():
    from click.testing import CliRunner

    from asctool.cli import cli

    result = CliRunner().invoke(cli, ["models", "--input", "128x423"])
    assert result.exit_code == 2  # a usage error like 128xbx3 (was 1, from the library), nothing built
    assert "three positive integers" in result.output
    result = CliRunner().invoke(cli, ["models", "--input", "128xbx3"])
    assert result.exit_code == 2
