"""Tag-conditioned scene classifiers (asctool.models.tag_fusion): shapes, parameter counts, the
multi-head attention against NumPy (Jung et al., Interspeech 2020, sec. 3.2)."""
from __future__ import annotations

import numpy as np
import pytest

from asctool.errors import ConfigError
from asctool.models.tag_fusion import FusionMode, build_fusion_model, parse_fusion

SHAPE = (32, 40, 3)
CLASSES = 4
TAGS = 7
OPTS = {"width": 0.25}


def _trunk_params(model_name="small_fcnn"):
    """Parameters of the backbone up to its declared feature map, and its filter count f."""
    import keras

    from asctool.models import build, spec

    backbone = build(model_name, CLASSES, SHAPE, **OPTS)
    feature = backbone.get_layer(spec(model_name).feature_map).output
    return keras.Model(backbone.input, feature).count_params(), int(feature.shape[-1])


def _dense(n_in, n_out):
    return n_in * n_out + n_out


def _expected_head(mode: FusionMode, f: int, units: int = 64) -> int:
    """Head parameters counted by hand from the paper's description."""
    def stack(n_in, k):
        total, width = 0, n_in
        for _ in range(k):
            total += _dense(width, units)
            width = units
        return total, width

    code = _dense(f, units)
    if mode.kind == "codecat":
        return code + _dense(units + TAGS, CLASSES)
    if mode.kind == "concat":
        tag, width = stack(TAGS, mode.layers)
        return code + tag + _dense(units + width, units) + _dense(units, CLASSES)
    if mode.kind == "attention":
        hidden, width = stack(TAGS, mode.layers - 1)
        return hidden + _dense(width, f) + code + _dense(units, CLASSES)
    # both
    if mode.shared:
        tag, width = stack(TAGS, mode.layers)
        att = _dense(width, f)
    else:
        tag, width = stack(TAGS, mode.layers)
        hidden, w2 = stack(TAGS, mode.layers - 1)
        att = hidden + _dense(w2, f)
    return code + tag + att + _dense(units + width, units) + _dense(units, CLASSES)


@pytest.mark.parametrize("text", ["codecat", "concat", "concat:3", "attention:2,1", "attention:5,3",
                                  "both:5,3", "both:2,2,separate"])
def test_each_mode_shape_and_parameter_count(text):
    mode = parse_fusion(text)
    assert str(mode) == (text if text != "both:5,3" else "both:5,3,shared")
    trunk, f = _trunk_params()
    model = build_fusion_model("small_fcnn", CLASSES, (SHAPE[0], None, SHAPE[2]), TAGS, mode, **OPTS)
    x = np.random.default_rng(0).normal(size=(3, *SHAPE)).astype(np.float32)
    t = np.random.default_rng(1).uniform(size=(3, TAGS)).astype(np.float32)
    out = np.asarray(model.predict_on_batch([x, t]))
    assert out.shape == (3, CLASSES)
    np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-5)
    assert model.count_params() == trunk + _expected_head(mode, f)


def test_every_backbone_declares_a_usable_feature_map():
    from asctool.models import available, spec

    for name in available():
        if spec(name).inputs != "features":  # the mlp takes embedding frames: no feature map
            continue
        model = build_fusion_model(name, CLASSES, (SHAPE[0], None, SHAPE[2]), TAGS, "attention:1,1")
        assert model.output.shape[-1] == CLASSES, name


def test_multi_head_attention_equals_numpy():
    import keras

    from asctool.models import spec

    heads = 2
    model = build_fusion_model("small_fcnn", CLASSES, SHAPE, TAGS, f"attention:{heads},1", **OPTS)
    rng = np.random.default_rng(5)
    for layer in model.layers:   # non-trivial weights everywhere
        layer.set_weights([rng.normal(0, 0.5, w.shape).astype(np.float32) if w.ndim else w
                           for w in layer.get_weights()])
    x = rng.normal(size=(2, *SHAPE)).astype(np.float32)
    t = rng.uniform(size=(2, TAGS)).astype(np.float32)
    feature = keras.Model(model.inputs, model.get_layer(spec("small_fcnn").feature_map).output)
    fmap = np.asarray(feature.predict_on_batch([x, t]), dtype=np.float64)
    f = fmap.shape[-1]
    w, b = model.get_layer("att_dense1").get_weights()
    a = t @ w + b                                   # the K = 1 dense layer: f values
    a = a.reshape(2, heads, f // heads)
    a = np.exp(a - a.max(axis=-1, keepdims=True))
    a = (a / a.sum(axis=-1, keepdims=True)).reshape(2, 1, 1, f)   # softmax within each head
    a *= f / heads                                  # scaled to a mean of 1 (asctool's factor, see tag_fusion)
    np.testing.assert_allclose(a.mean(axis=-1), 1.0, rtol=1e-6)
    attended = fmap * a                             # every time and frequency step of the f filters
    got = keras.Model(model.inputs, model.get_layer("att_apply").output).predict_on_batch([x, t])
    np.testing.assert_allclose(got, attended, rtol=1e-4, atol=1e-6)
    wc, bc = model.get_layer("code").get_weights()
    ws, bs = model.get_layer("scene").get_weights()
    logits = (attended.mean(axis=(1, 2)) @ wc + bc) @ ws + bs
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(model.predict_on_batch([x, t]), probs, rtol=1e-3, atol=1e-5)


def test_a_uniform_attention_map_is_the_identity():
    """With equal attention logits (a zero last tag layer) the attended map is the feature map itself:
    a fused model starts from its backbone, not from a map shrunk by f/H."""
    import keras

    from asctool.models import spec

    model = build_fusion_model("small_fcnn", CLASSES, SHAPE, TAGS, "attention:2,1", **OPTS)
    layer = model.get_layer("att_dense1")
    layer.set_weights([np.zeros_like(w) for w in layer.get_weights()])
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, *SHAPE)).astype(np.float32)
    t = rng.uniform(size=(2, TAGS)).astype(np.float32)
    fmap = keras.Model(model.inputs, model.get_layer(spec("small_fcnn").feature_map).output).predict_on_batch([x, t])
    got = keras.Model(model.inputs, model.get_layer("att_apply").output).predict_on_batch([x, t])
    np.testing.assert_allclose(got, fmap, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("text", ["attention", "attention:0,1", "both:2", "concat:x", "sum"])
def test_bad_modes_refused(text):
    with pytest.raises(ConfigError, match="--tag-fusion"):
        parse_fusion(text)


def test_heads_must_divide_the_filters():
    _, f = _trunk_params()
    with pytest.raises(ConfigError, match=f"has {f} filters, not divisible into {f + 1} heads"):
        build_fusion_model("small_fcnn", CLASSES, SHAPE, TAGS, f"attention:{f + 1},1", **OPTS)
