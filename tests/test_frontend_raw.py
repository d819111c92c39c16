"""featurize --preset raw: the pre-emphasised waveform (1, samples, channels) of Jung et al. 2020."""
from __future__ import annotations


import numpy as np
import pytest
import soundfile as sf

from asctool.artifacts import open_features
from asctool.audio import write_audio
from asctool.errors import ConfigError
from asctool.frontend import FrontEnd, load_config, preset_config
from asctool.manifest import Clip, write_manifest


def test_raw_preset_and_pre_emphasis_by_hand():
    config = preset_config("raw")
    assert config == {"frontend": "raw", "sr": 48000, "channels": 2, "downmix": False, "duration": 10.0,
                      "pad_tolerance": 0.1, "preemphasis": 0.97}
    front = FrontEnd(config)
    assert front.feature_shape == (1, 480000, 2)
    y = np.random.default_rng(0).uniform(-1, 1, (2, 480000)).astype(np.float32)
    out = front(y)
    expected = np.empty((480000, 2), dtype=np.float64)
    for c in range(2):
        expected[0, c] = y[c, 0]
        for n in (1, 2, 479999):
            expected[n, c] = float(y[c, n]) - 0.97 * float(y[c, n - 1])
    for n in (0, 1, 2, 479999):
        np.testing.assert_allclose(out[0, n], expected[n], rtol=1e-6, atol=1e-7)


def test_raw_config_file_with_another_rate(tmp_path):
    path = tmp_path / "raw16k.yaml"
    path.write_text("base: raw\nsr: 16000\nchannels: 1\ndownmix: true\npreemphasis: 0.0\n")
    config = load_config(path)
    assert FrontEnd(config).feature_shape == (1, 160000, 1)
    y = np.random.default_rng(1).normal(size=(1, 160000)).astype(np.float32)
    np.testing.assert_array_equal(FrontEnd(config)(y)[0, :, 0], y[0])   # a = 0: the waveform itself
    path.write_text("base: raw\nn_mels: 64\n")
    with pytest.raises(ConfigError, match=r"raw16k\.yaml: unknown key 'n_mels' \(known keys: base, frontend"):
        load_config(path)
    path.write_text("base: raw\npreemphasis: 1.5\n")
    with pytest.raises(ConfigError, match=r"raw16k\.yaml: key 'preemphasis'"):
        load_config(path)


def test_featurize_raw_writes_waveforms(tmp_path):
    from asctool.stages.featurize import run as featurize

    base = tmp_path / "raw.yaml"
    base.write_text("base: raw\nsr: 8000\nduration: 1.0\n")
    rng = np.random.default_rng(2)
    clips = []
    for i in range(3):
        write_audio(tmp_path / f"c{i}.wav", rng.uniform(-0.5, 0.5, (2, 8000)).astype(np.float32), 8000)
        clips.append(Clip(id=f"c{i}", path=f"c{i}.wav", scene="bus", device="a", location=f"l{i}"))
    manifest = write_manifest(tmp_path / "m.tsv", clips)
    summary = featurize(manifest, tmp_path / "f.h5", config_path=base, dtype="float32")
    assert summary["feature_shape"] == [1, 8000, 2]
    y, _ = sf.read(tmp_path / "c1.wav", dtype="float32", always_2d=True)
    with open_features(tmp_path / "f.h5") as f:
        x = np.asarray(f.features[1])
    np.testing.assert_allclose(x[0, 1:], y[1:] - 0.97 * y[:-1], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(x[0, 0], y[0], rtol=1e-6)
