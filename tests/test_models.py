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
]

# small, fast variants of every model for the save/load round trip
SMALL = {
    "fcnn": ((32, 40, 3), {"width": 0.05}),
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


def test_available_lists_every_small_variant():
    assert set(SMALL) <= set(models.available())
    assert models.available() == sorted(models.available())


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


@pytest.mark.parametrize("name", sorted(SMALL))
def test_save_load_round_trip_in_fresh_process(name, tmp_path):
    shape, options = SMALL[name]
    model = models.build(name, 3, shape, **options)
    rng = np.random.default_rng(0)
    x = rng.random((2, *shape), dtype=np.float32)
    # one training step so that the BN statistics and weights are not the initial ones
    model.compile(optimizer="sgd", loss="categorical_crossentropy")
    model.fit(x, np.eye(3, dtype="float32")[[0, 1]], epochs=1, verbose=0)
    expected = np.asarray(model(x, training=False))
    path = tmp_path / f"{name}.keras"
    model.save(path)
    np.save(tmp_path / "x.npy", x)
    script = textwrap.dedent(f"""
        import sys
        import numpy as np
        import asctool.models
        import keras
        model = keras.saving.load_model(sys.argv[1])
        assert model.get_layer("features_out") is not None
        np.save(sys.argv[3], np.asarray(model(np.load(sys.argv[2]), training=False)))
    """)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": "",
           "PYTHONPATH": str(REPO)}
    subprocess.run(
        [sys.executable, "-c", script, str(path), str(tmp_path / "x.npy"), str(tmp_path / "y.npy")],
        check=True, env=env, cwd=tmp_path, capture_output=True,
    )
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), expected, rtol=1e-5, atol=1e-6)
    # and through the convenience loader in this process
    again = models.load_model(path)
    np.testing.assert_allclose(np.asarray(again(x, training=False)), expected, rtol=1e-5, atol=1e-6)


def test_load_model_errors(tmp_path):
    from asctool.errors import ArtifactError

    with pytest.raises(ArtifactError, match="not found"):
        models.load_model(tmp_path / "missing.keras")
    bad = tmp_path / "bad.keras"
    bad.write_bytes(b"not a zip")
    with pytest.raises(ArtifactError, match="bad.keras"):
        models.load_model(bad)
