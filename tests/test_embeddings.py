"""Tests of asctool.embeddings: the registry, the window rules, the artifact writer, the keras/tflite extractors."""
from __future__ import annotations

import json
import math

import h5py
import numpy as np
import pytest

from asctool.embeddings import EXTRACTORS, make_extractor
from asctool.embeddings.artifact import EmbeddingsWriter
from asctool.embeddings.windows import cut_windows, window_starts, window_times
from asctool.errors import ArtifactError, ConfigError


# --------------------------------------------------------------------------
# registry
# --------------------------------------------------------------------------
def test_registry_lists_the_extractors_and_refuses_unknown_names():
    assert EXTRACTORS.names()[:2] == ["openl3", "birdnet"] or EXTRACTORS.names()[:1] == ["openl3"]
    assert {"openl3", "keras", "tflite"} <= set(EXTRACTORS.names())
    with pytest.raises(ConfigError, match=r"^unknown extractor 'vggish'; known: openl3, .*keras, tflite$"):
        make_extractor("vggish", {})
    with pytest.raises(ConfigError, match=r"^extractor keras takes no --weights \(its options: --model, --layer, "
                                          r"--sample-rate, --window, --hop\)$"):
        make_extractor("keras", {"weights": "w.h5"})


# --------------------------------------------------------------------------
# window timing
# --------------------------------------------------------------------------
def _openl3_count(audio_len, frame_len, hop_len):
    """openl3/core.py _get_num_windows(center=True), written out."""
    audio_len += int(frame_len / 2.0)
    return 1 if audio_len <= frame_len else 1 + int(np.ceil((audio_len - frame_len) / float(hop_len)))


@pytest.mark.parametrize("seconds", [0.3, 1.0, 2.5, 10.0, 10.04])
@pytest.mark.parametrize("hop", [0.1, 0.25, 0.5])
def test_centred_windows_follow_openl3(seconds, hop):
    n = int(round(seconds * 48000))
    starts = window_starts(n, sr=48000, window=1.0, hop=hop, center=True, min_tail=None)
    assert len(starts) == _openl3_count(n, 48000, int(hop * 48000))
    np.testing.assert_allclose(window_times(starts, sr=48000, window=1.0, center=True),
                               np.arange(len(starts)) * int(hop * 48000) / 48000)
    # 10 s at hop 0.1 s: 96 windows (OpenL3's timestamps 0.0 .. 9.5 s)
    if seconds == 10.0 and hop == 0.1:
        assert len(starts) == 96


def test_centred_windows_hold_the_audio_in_place():
    sr, y = 1000, np.arange(1, 2401, dtype=np.float32)  # 2.4 s at 1 kHz
    starts = window_starts(len(y), sr=sr, window=1.0, hop=0.5, center=True, min_tail=None)
    w = cut_windows(y, starts, sr=sr, window=1.0, center=True)
    assert w.shape == (len(starts), 1000)
    assert np.all(w[0, :500] == 0) and w[0, 500] == 1  # half a window of zeros, then the clip
    for i, s in enumerate(starts):  # window i is centred on sample i * hop of the clip
        assert w[i, 500] == (y[s] if s < len(y) else 0)
    assert w[-1, -1] == 0  # zero-padded at the end


def _birdnetlib_starts(n, rate, seconds=3.0, overlap=0.0, minlen=1.5):
    """birdnetlib RecordingBase.process_audio_data's loop, written out."""
    starts = []
    for i in range(0, n, int((seconds - overlap) * rate)):
        if len(range(i, min(n, i + int(seconds * rate)))) < int(minlen * rate):
            break
        starts.append(i)
    return starts


@pytest.mark.parametrize("seconds", [2.0, 3.0, 10.0, 10.5, 11.0])
@pytest.mark.parametrize("hop", [3.0, 1.5, 1.0])
def test_start_windows_follow_birdnet_analyzer(seconds, hop):
    n = int(seconds * 48000)
    starts = window_starts(n, sr=48000, window=3.0, hop=hop, center=False, min_tail=1.5)
    assert starts.tolist() == _birdnetlib_starts(n, 48000, overlap=3.0 - hop)
    np.testing.assert_allclose(window_times(starts, sr=48000, window=3.0, center=False), starts / 48000 + 1.5)


def test_short_clip_still_gets_one_window():
    assert window_starts(100, sr=48000, window=3.0, hop=3.0, center=False, min_tail=1.5).tolist() == [0]
    with pytest.raises(ValueError, match="shorter than one sample"):
        window_starts(100, sr=1000, window=1.0, hop=0.0001, center=False, min_tail=None)


# --------------------------------------------------------------------------
# the artifact
# --------------------------------------------------------------------------
def test_writer_layout(tmp_path):
    out = tmp_path / "e.h5"
    data = np.random.default_rng(0).standard_normal((3, 4, 5)).astype(np.float32)
    with EmbeddingsWriter(out, n=3, window_times=[0.5, 1, 1.5, 2], dim=5, extractor={"name": "x", "hop": 0.5},
                          ids=["a", "b", "c"], scenes=["park", "bus", "park"], devices=["a", "b", "c"],
                          locations=["l1", "l2", "l3"]) as writer:
        writer.write_block(0, data[:2])
        writer.write_block(2, data[2:])
    with h5py.File(out) as f:
        assert f.attrs["asctool_kind"] == "embeddings" and f.attrs["schema_version"] == 1
        assert json.loads(f.attrs["extractor"]) == {"name": "x", "hop": 0.5}
        assert {"asctool_version", "created", "command", "inputs"} <= set(f.attrs)
        assert f["embeddings"].dtype == np.float32 and f["embeddings"].chunks == (1, 4, 5)
        np.testing.assert_array_equal(f["embeddings"][()], data)
        np.testing.assert_array_equal(f["window_times"][()], [0.5, 1, 1.5, 2])
        assert f["id"].asstr()[()].tolist() == ["a", "b", "c"]
        assert f["scene"].asstr()[()].tolist() == ["park", "bus", "park"]
        assert f["location"].asstr()[()].tolist() == ["l1", "l2", "l3"]


def test_writer_leaves_nothing_when_incomplete(tmp_path):
    out = tmp_path / "e.h5"
    with pytest.raises(ArtifactError, match=r"e\.h5: 1 of 2 clips were never written"):
        with EmbeddingsWriter(out, n=2, window_times=[0.5], dim=2, extractor={}, ids=["a", "b"]) as writer:
            writer.write_block(0, np.zeros((1, 1, 2), np.float32))
    with pytest.raises(ArtifactError, match="does not fit"):
        with EmbeddingsWriter(out, n=1, window_times=[0.5], dim=2, extractor={}, ids=["a"]) as writer:
            writer.write_block(0, np.zeros((1, 1, 3), np.float32))
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------
# keras / tflite: a user model's layer, an asctool CNN's penultimate layer
# --------------------------------------------------------------------------
def _asctool_cnn(tmp_path):
    """A small asctool FCNN with its metadata: 1 s at 16 kHz, 40 mel bands (a 1a-like front end)."""
    from asctool.frontend import FrontEnd, preset_config, validate_config
    from asctool.models import build
    from asctool.runs import embed_keras_metadata

    config = validate_config({**preset_config("1a"), "sr": 16000, "duration": 1.0, "n_mels": 40,
                              "n_fft": 512, "win_length": 512, "hop_length": 256, "fmax": None}, "test")
    front = FrontEnd(config)
    model = build("fcnn", 3, front.feature_shape, width=0.25)
    path = tmp_path / "model.keras"
    model.save(path)
    embed_keras_metadata(path, {"model": "fcnn", "classes": ["a", "b", "c"], "labels": "scene", "label_map": None,
                                "frontend_config": config, "input_shape": list(front.feature_shape)})
    return path, model, front


def test_keras_extractor_reads_an_asctool_cnn_layer(tmp_path):
    import keras

    path, model, front = _asctool_cnn(tmp_path)
    with pytest.raises(ConfigError, match=r"the model's front end takes 16000 Hz audio; --sample-rate 48000 differs"):
        make_extractor("keras", {"model": str(path), "layer": "features_out", "sample_rate": 48000})
    ex = make_extractor("keras", {"model": str(path), "layer": "features_out"})
    assert (ex.sample_rate, ex.window, ex.hop, ex.channels) == (16000, 1.0, 1.0, 1)
    rng = np.random.default_rng(0)
    windows = (0.1 * rng.standard_normal((2, 1, 16000))).astype(np.float32)
    got = ex.embed(windows)
    features = np.stack([front(w) for w in windows])
    want = keras.Model(model.inputs, model.get_layer("features_out").output).predict_on_batch(features)
    np.testing.assert_allclose(got, want.reshape(2, -1), rtol=1e-4, atol=1e-5)
    with pytest.raises(ConfigError, match=r"model\.keras: no layer named 'nope' \(its last layers: "):
        make_extractor("keras", {"model": str(path), "layer": "nope"}).load()


def test_tflite_extractor_reads_a_tensor(tmp_path):
    import keras
    import tensorflow as tf

    inputs = keras.Input((800,), batch_size=1)
    hidden = keras.layers.Dense(6, activation="tanh", name="hidden")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(hidden))
    path = tmp_path / "wave.tflite"
    path.write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
    with pytest.raises(ConfigError, match=r"wave\.tflite: a model without asctool metadata takes raw audio; give its "
                                          r"--sample-rate and --window"):
        make_extractor("tflite", {"model": str(path), "layer": "x"})
    ex = make_extractor("tflite", {"model": str(path), "layer": "x", "sample_rate": 8000, "window": 0.1})
    with pytest.raises(ConfigError, match=r"wave\.tflite: no tensor named 'x' \(the last of its"):
        ex.embed(np.zeros((1, 800), np.float32))
    from tensorflow.lite.tools import flatbuffer_utils

    names = [t.name.decode() for t in flatbuffer_utils.read_model(str(path)).subgraphs[0].tensors]
    layer = [n for n in names if "hidden" in n and "Tanh" in n][-1]  # the Dense layer's activation output
    ex = make_extractor("tflite", {"model": str(path), "layer": layer, "sample_rate": 8000, "window": 0.1})
    x = np.random.default_rng(1).standard_normal((1, 800)).astype(np.float32)
    got = ex.embed(x)
    want = keras.Model(model.inputs, model.get_layer("hidden").output).predict_on_batch(x)
    assert got.shape == (1, 6)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    assert math.isclose(ex.hop, 0.1)


@pytest.mark.parametrize("kind", ["keras", "tflite"])
def test_a_model_layer_embedding_needs_a_layer_and_a_tagger_reads_the_output(tmp_path, kind):
    """An embedding is a named layer: no --layer is refused before the model is read; the taggers'
    extractor (output_default) takes the model's output instead."""
    from asctool.embeddings.keras_model import ModelLayerExtractor

    path = tmp_path / f"m.{kind}"
    path.write_bytes(b"not read before the layer check")
    with pytest.raises(ConfigError, match=rf"^extractor {kind} needs --layer NAME \(the "
                                          rf"{'layer' if kind == 'keras' else 'tensor'} whose output is the embedding\)$"):
        ModelLayerExtractor(kind, path, None, 16000, 1.0, None)
    if kind == "keras":   # a real (tiny, metadata-free) model: its output per window
        import keras

        inputs = keras.Input((16000,))
        keras.Model(inputs, keras.layers.Dense(3, activation="sigmoid", name="tags")(inputs)).save(path)
        extractor = ModelLayerExtractor(kind, path, None, 16000, 1.0, None, output_default=True)
        assert extractor.layer is None and extractor.describe()["layer"] == "(output)"
        assert extractor.embed(np.zeros((2, 16000), np.float32)).shape == (2, 3)
