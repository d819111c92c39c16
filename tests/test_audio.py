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


@pytest.mark.parametrize("subtype", ["PCM_16", "PCM_24", "PCM_32", "FLOAT", "PCM_U8", "DOUBLE"])
@pytest.mark.parametrize("fmt", ["WAV", "WAVEX"])
def test_fast_wav_reader_gives_libsndfile_values(tmp_path, subtype, fmt):
    import soundfile as sf

    rng = np.random.default_rng(0)
    y = np.clip(0.4 * rng.standard_normal((2000, 2)), -1, 1)
    y[0], y[1] = 1.0, -1.0
    for channels in (1, 2):
        path = tmp_path / f"x{channels}.wav"
        sf.write(path, y[:, :channels], 8000, subtype=subtype, format=fmt)
        for dtype in ("float32", "float64"):
            got, sr = read_audio(path, dtype=dtype)
            expected = sf.read(path, dtype=dtype, always_2d=True)[0].T
            assert sr == 8000 and got.dtype == expected.dtype and got.flags.c_contiguous
            np.testing.assert_array_equal(got, expected)


def test_fast_reader_skips_extra_chunks_and_checks_truncation(tmp_path):
    import struct

    y = (0.5 * np.sin(np.arange(3000) / 7.0)).astype(np.float32)[None]
    path = write_audio(tmp_path / "x.wav", y, 16000, subtype="PCM_24")
    data = path.read_bytes()
    at = data.index(b"data")
    extra = b"LIST" + struct.pack("<I", 5) + b"abcde" + b"\0"  # odd-sized chunk, padded
    riff = struct.pack("<I", len(data) - 8 + len(extra))
    (tmp_path / "list.wav").write_bytes(data[:4] + riff + data[8:at] + extra + data[at:])
    back, _ = read_audio(tmp_path / "list.wav")
    np.testing.assert_allclose(back, y, atol=2**-22)
    (tmp_path / "cut.wav").write_bytes(data[:-300])
    with pytest.raises(AudioError, match=r"cut\.wav: truncated file \(2900 of 3000 frames"):
        read_audio(tmp_path / "cut.wav")
    empty = write_audio(tmp_path / "empty.wav", np.zeros((1, 0), np.float32), 16000)
    with pytest.raises(AudioError, match="holds no samples"):
        read_audio(empty)
