"""Tests of asctool.embeddings.openl3: the L3-Net audio model as published, its front end, its weight files.

The architecture facts come from marl/openl3 ``openl3/models.py`` (docs/embed.md
lists them with their lines); the front end is checked against a NumPy
computation of kapre 0.3's STFT, magnitude, mel filterbank and openl3's
decibel scaling; weight files are written here in the published Keras 2 HDF5
layout from random values (the tests never download).
"""
from __future__ import annotations

import gzip
import shutil

from pathlib import Path

import h5py
import numpy as np
import pytest

from asctool.embeddings import openl3
from asctool.errors import ArtifactError, ConfigError

#: the published model's layer names, in order (the spectrogram layer removed in v0.4.0, as its
#: tests/migration/remove_layers.py does); the layers with weights are the BN and conv layers
OFFICIAL_LAYERS = ["input_1", "batch_normalization_1"] + [
    name for block in range(1, 5) for name in (
        [f"conv2d_{2 * block - 1}", f"batch_normalization_{2 * block}", f"activation_{2 * block - 1}"]
        + ([f"conv2d_{2 * block}", f"batch_normalization_{2 * block + 1}", f"activation_{2 * block}",
            f"max_pooling2d_{block}"] if block < 4 else ["audio_embedding_layer"]))]


def write_weight_file(path: Path, *, seed: int = 0, gz: bool = False, drop: int = 0, bad_shape: bool = False,
                      saved_model: bool = False) -> list[list[np.ndarray]]:
    """An OpenL3 audio weight file in the published layout (Keras 2 ``save_weights``), random values.

    Returns the arrays of the 16 weighted layers in order. ``drop`` leaves out
    the last weighted layers; ``bad_shape`` gives conv2d_3 a wrong kernel.
    """
    rng = np.random.default_rng(seed)
    shapes = iter(openl3.expected_shapes())
    arrays = []
    target = path.with_suffix("") if gz else path
    with h5py.File(target, "w") as handle:
        root = handle.create_group("model_weights") if saved_model else handle
        root.attrs["backend"] = b"tensorflow"
        root.attrs["keras_version"] = b"2.2.4"
        names = []
        for layer in OFFICIAL_LAYERS:
            group = root.create_group(layer)
            weighted = layer.startswith(("batch_normalization", "conv2d", "audio_embedding"))
            if not weighted:
                group.attrs["weight_names"] = np.array([], dtype="S1")
                names.append(layer)
                continue
            wanted = next(shapes)
            if len(arrays) >= 16 - drop:
                del root[layer]
                continue
            names.append(layer)
            kinds = (["gamma", "beta", "moving_mean", "moving_variance"] if layer.startswith("batch")
                     else ["kernel", "bias"])
            values = []
            for kind, shape in zip(kinds, wanted):
                if bad_shape and layer == "conv2d_3" and kind == "kernel":
                    shape = (3, 3, 32, 128)
                value = rng.standard_normal(shape).astype(np.float32) * 0.05
                if kind == "moving_variance":
                    value = np.abs(value) + 0.5
                sub = group.create_group(layer) if layer not in group else group[layer]
                sub.create_dataset(f"{kind}:0", data=value)
                values.append(value)
            group.attrs["weight_names"] = np.array([f"{layer}/{k}:0".encode() for k in kinds])
            arrays.append(values)
        root.attrs["layer_names"] = np.array([n.encode() for n in names])
    if gz:
        with open(target, "rb") as source, gzip.open(path, "wb") as out:
            shutil.copyfileobj(source, out)
        target.unlink()
    return arrays


# --------------------------------------------------------------------------
# architecture facts
# --------------------------------------------------------------------------
@pytest.mark.parametrize("input_repr, spec_shape, final_map",
                         [("linear", (257, 197), (32, 24)), ("mel128", (128, 199), (16, 24)),
                          ("mel256", (256, 199), (32, 24))])
@pytest.mark.parametrize("size", [6144, 512])
def test_six_variants_shapes_parameters_and_sizes(input_repr, spec_shape, final_map, size):
    model = openl3.build_model(input_repr, size)
    assert model.input_shape == (None, 48000)
    assert tuple(model.get_layer("spectrogram").output.shape) == (None, *spec_shape, 1)
    assert tuple(model.get_layer("audio_embedding_layer").output.shape) == (None, *final_map, 512)
    assert model.output_shape == (None, size)
    assert model.count_params() == 4_689_860  # the same for every front end (kapre 0.3 layers hold no weights)
    pool = model.get_layer("embedding_pool")
    assert pool.pool_size == openl3.POOL_SIZES[input_repr][size]
    assert pool.padding == "same"
    # pooled map x 512 channels = the embedding size
    rows, cols = (-(-final_map[0] // pool.pool_size[0]), -(-final_map[1] // pool.pool_size[1]))
    assert rows * cols * 512 == size


def test_block_structure_as_published():
    model = openl3.build_model("mel256", 6144)
    convs = [layer for layer in model.layers if layer.__class__.__name__ == "Conv2D"]
    assert [c.filters for c in convs] == [64, 64, 128, 128, 256, 256, 512, 512]
    assert all(c.kernel_size == (3, 3) and c.padding == "same" for c in convs)
    assert convs[-1].name == "audio_embedding_layer"
    names = [layer.name for layer in model.layers]
    # the last conv has no BN or ReLU after it: the embedding pool follows at once
    assert names[names.index("audio_embedding_layer") + 1] == "embedding_pool"
    bns = [layer for layer in model.layers if layer.__class__.__name__ == "BatchNormalization"]
    assert len(bns) == 8 and names.index(bns[0].name) == names.index("spectrogram") + 1  # the input BN
    pools = [layer for layer in model.layers if layer.__class__.__name__ == "MaxPooling2D"][:-1]
    assert [(p.pool_size, p.strides) for p in pools] == [((2, 2), (2, 2))] * 3
    assert sum(int(np.prod(w.shape)) for w in model.weights) == 4_689_860
    assert [layer.name for layer in openl3.weight_layers(model)] == [
        n for n in OFFICIAL_LAYERS if n.startswith(("batch", "conv", "audio_emb"))]


def _numpy_front_end(x: np.ndarray, input_repr: str) -> np.ndarray:
    """kapre 0.3 STFT (tf.signal.stft, periodic Hann) + |.| + librosa Slaney mel + openl3's decibels, in NumPy."""
    import librosa

    fe = openl3.FRONT_ENDS[input_repr]
    n_fft, hop = fe["n_fft"], fe["hop"]
    if fe["pad_end"]:
        frames = -(-len(x) // hop)
        x = np.pad(x, (0, (frames - 1) * hop + n_fft - len(x)))
    else:
        frames = 1 + (len(x) - n_fft) // hop
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)
    spec = np.abs(np.fft.rfft(np.stack([x[i * hop:i * hop + n_fft] * window for i in range(frames)]), axis=1))
    if fe["n_mels"]:
        spec = spec @ librosa.filters.mel(sr=48000, n_fft=n_fft, n_mels=fe["n_mels"], norm="slaney").T
    db = 10 * np.log10(np.maximum(spec, 1e-10))
    return np.maximum(db - db.max(), -80.0).T  # (freq, time)


@pytest.mark.parametrize("input_repr", openl3.INPUT_REPRS)
def test_front_end_matches_numpy(input_repr):
    import keras

    rng = np.random.default_rng(1)
    t = np.arange(48000) / 48000
    x = (0.3 * np.sin(2 * np.pi * 440 * t) + 0.01 * rng.standard_normal(48000)).astype(np.float32)
    x[:4000] = 0  # a quiet start reaches the -80 dB floor
    layer = openl3.build_model(input_repr, 512).get_layer("spectrogram")
    got = keras.ops.convert_to_numpy(layer(x[None]))[0, :, :, 0]
    want = _numpy_front_end(x.astype(np.float64), input_repr)
    assert got.shape == want.shape == openl3.spectrogram_shape(input_repr)
    assert got.max() == pytest.approx(0.0, abs=1e-6) and got.min() == pytest.approx(-80.0)
    np.testing.assert_allclose(got, want, atol=2e-3)


# --------------------------------------------------------------------------
# weight files
# --------------------------------------------------------------------------
@pytest.mark.parametrize("gz, saved_model", [(False, False), (True, False), (False, True)])
def test_weights_load_into_the_exact_layers(tmp_path, gz, saved_model):
    path = tmp_path / ("openl3_audio_mel256_music-v0_4_0.h5" + (".gz" if gz else ""))
    arrays = write_weight_file(path, seed=3, gz=gz, saved_model=saved_model)
    model = openl3.build_model("mel256", 512)
    openl3.load_weights(model, path)
    layers = {layer.name: layer for layer in model.layers}
    weighted = [n for n in OFFICIAL_LAYERS if n.startswith(("batch", "conv", "audio_emb"))]
    for name, values in zip(weighted, arrays):
        got = layers[name].get_weights()
        assert len(got) == len(values)
        for a, b in zip(got, values):
            np.testing.assert_array_equal(a, b)


def test_bad_weight_files_are_one_line_errors(tmp_path):
    missing = tmp_path / "none.h5"
    with pytest.raises(ArtifactError, match=r"none\.h5: OpenL3 weight file not found"):
        openl3.read_weight_file(missing)
    good = tmp_path / "w.h5.gz"
    write_weight_file(good, gz=True)
    truncated = tmp_path / "cut.h5.gz"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(ArtifactError, match=r"cut\.h5\.gz: truncated or corrupt gzip file"):
        openl3.read_weight_file(truncated)
    plain = tmp_path / "w.h5"
    write_weight_file(plain)
    cut = tmp_path / "cut.h5"
    cut.write_bytes(plain.read_bytes()[:5000])
    with pytest.raises(ArtifactError, match=r"cut\.h5: not a readable HDF5 weight file"):
        openl3.read_weight_file(cut)
    short = tmp_path / "short.h5"
    write_weight_file(short, drop=2)
    with pytest.raises(ArtifactError, match=r"short\.h5: holds weights for 14 layers, the OpenL3 audio model has 16"):
        openl3.read_weight_file(short)
    wrong = tmp_path / "wrong.h5"
    write_weight_file(wrong, bad_shape=True)
    with pytest.raises(ArtifactError, match=r"wrong\.h5: layer conv2d_3 holds weights of shapes"):
        openl3.read_weight_file(wrong)
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as handle:
        handle["x"] = 1
    with pytest.raises(ArtifactError, match=r"other\.h5: not a Keras HDF5 weight file"):
        openl3.read_weight_file(other)


def test_extractor_options_are_checked(tmp_path):
    weights = tmp_path / "openl3_audio_mel256_music-v0_4_0.h5"
    write_weight_file(weights)
    with pytest.raises(ConfigError, match=r"openl3 takes 48000 Hz input .*--sample-rate 44100 is not possible"):
        openl3.openl3_extractor(weights=str(weights), sample_rate=44100)
    with pytest.raises(ConfigError, match=r"needs --weights FILE: get openl3_audio_mel128_env-v0_4_0\.h5\.gz with "
                                          r"`asctool download openl3 --input-repr mel128 --content-type env"):
        openl3.openl3_extractor(input_repr="mel128", content_type="env")
    with pytest.raises(ConfigError, match=r"the file name says mel256/music, the options ask for --input-repr linear"):
        openl3.openl3_extractor(weights=str(weights), input_repr="linear")
    ex = openl3.openl3_extractor(weights=str(weights), embedding_size=512)
    described = ex.describe()
    assert described["sample_rate"] == 48000 and described["window"] == 1.0 and described["hop"] == 0.1
    assert described["weights_sha256"] == __import__("hashlib").sha256(weights.read_bytes()).hexdigest()
    assert described["embedding_size"] == 512 and "CC BY 4.0" in described["licence"]


def test_extractor_embeds_windows(tmp_path):
    weights = tmp_path / "w.h5"
    write_weight_file(weights, seed=5)
    ex = openl3.openl3_extractor(weights=str(weights), input_repr="mel128", embedding_size=6144)
    rng = np.random.default_rng(0)
    windows = (0.1 * rng.standard_normal((3, 48000))).astype(np.float32)
    out = ex.embed(windows)
    assert out.shape == (3, 6144) and out.dtype == np.float32
    # the same as the model itself, window by window
    np.testing.assert_allclose(out[1:2], ex.embed(windows[1:2]), rtol=1e-4, atol=1e-5)


