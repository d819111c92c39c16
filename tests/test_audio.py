from __future__ import annotations

import numpy as np
import pytest

from asctool.audio import read_audio, resample, write_audio
from asctool.errors import AudioError


def test_write_read_round_trip(tmp_path):
    y = (0.5 * np.sin(np.linspace(0, 100, 4410))).astype(np.float32)[None]
    for suffix in (".wav", ".flac"):
        path = write_audio(tmp_path / f"x{suffix}", y, 44100)
        back, sr = read_audio(path, sr=44100)
        assert sr == 44100 and back.shape == (1, 4410)
        np.testing.assert_allclose(back, y, atol=1e-6)


def test_wrong_rate_is_an_error_unless_resampling(tmp_path):
    path = write_audio(tmp_path / "x.wav", np.zeros((2, 4800), np.float32), 48000)
    with pytest.raises(AudioError, match=r"x\.wav: sample rate 48000 Hz, expected 44100 Hz"):
        read_audio(path, sr=44100)
    y, sr = read_audio(path, sr=44100, resample_to=True)
    assert sr == 44100 and y.shape == (2, 4410)


def test_truncated_and_missing_files(tmp_path):
    path = write_audio(tmp_path / "x.wav", np.zeros((1, 44100), np.float32), 44100)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(AudioError, match=r"x\.wav: truncated file"):
        read_audio(path)
    with pytest.raises(AudioError, match="audio file not found"):
        read_audio(tmp_path / "none.wav")
    (tmp_path / "junk.wav").write_bytes(b"not audio at all")
    with pytest.raises(AudioError, match=r"junk\.wav: unreadable audio"):
        read_audio(tmp_path / "junk.wav")


def test_nan_samples_rejected(tmp_path):
    y = np.zeros((1, 100), np.float32)
    y[0, 5] = np.nan
    path = write_audio(tmp_path / "x.wav", y, 8000, subtype="FLOAT")
    with pytest.raises(AudioError, match="NaN or Inf"):
        read_audio(path)


def test_resample_length():
    assert resample(np.ones((1, 48000), np.float32), 48000, 44100).shape == (1, 44100)
