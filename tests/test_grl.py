"""The gradient reversal layer: identity forward, -alpha times the gradient backward, saved and loaded."""
from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")

from asctool.models import load_model  # noqa: E402
from asctool.models.grl import GradientReversal, dann_ramp  # noqa: E402


@pytest.mark.parametrize("alpha", [0.0, 0.3, 2.5])
def test_gradient_is_minus_alpha_times_upstream(alpha):
    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(size=(3, 4, 5, 2)).astype("float32"))
    upstream = rng.normal(size=(3, 4, 5, 2)).astype("float32")
    layer = GradientReversal(alpha)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x)
        loss = tf.reduce_sum(y * upstream)    # dloss/dy = upstream
    np.testing.assert_array_equal(y.numpy(), x.numpy())
    np.testing.assert_allclose(tape.gradient(loss, x).numpy(), -alpha * upstream, rtol=1e-6, atol=1e-7)


def test_alpha_variable_changes_the_gradient():
    layer = GradientReversal(1.0)
    x = tf.constant([[1.0, -2.0]])
    layer.alpha.assign(0.25)
    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = tf.reduce_sum(layer(x) * 4.0)
    np.testing.assert_allclose(tape.gradient(loss, x).numpy(), [[-1.0, -1.0]])


def test_survives_keras_save_and_load(tmp_path):
    inputs = keras.Input(shape=(4,))
    hidden = GradientReversal(0.7, name="grl")(keras.layers.Dense(3, name="dense")(inputs))
    model = keras.Model(inputs, keras.layers.Dense(2, name="head")(hidden))
    model.get_layer("grl").alpha.assign(0.4)   # a ramp moved it
    model.save(tmp_path / "m.keras")
    loaded = load_model(tmp_path / "m.keras")
    grl = loaded.get_layer("grl")
    assert isinstance(grl, GradientReversal)
    assert float(grl.alpha.numpy()) == pytest.approx(0.4)
    assert grl.get_config()["alpha"] == pytest.approx(0.7)
    x = np.random.default_rng(1).normal(size=(5, 4)).astype("float32")
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6)
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        loss = tf.reduce_sum(loaded.get_layer("dense")(xt) * 0 + grl(loaded.get_layer("dense")(xt)))
    kernel = loaded.get_layer("dense").kernel.numpy()
    np.testing.assert_allclose(tape.gradient(loss, xt).numpy(), np.tile(-0.4 * kernel.sum(axis=1), (5, 1)),
                               rtol=1e-5)


def test_negative_alpha_is_refused():
    with pytest.raises(ValueError, match="alpha must be >= 0"):
        GradientReversal(-1.0)


def test_dann_ramp():
    assert dann_ramp(0.0, 1.0) == 0.0
    assert dann_ramp(1.0, 0.5) == pytest.approx(0.5 * (2 / (1 + np.exp(-10)) - 1))
    assert dann_ramp(0.5, 1.0) == pytest.approx(2 / (1 + np.exp(-5)) - 1)
    assert dann_ramp(3.0, 1.0) == dann_ramp(1.0, 1.0)
