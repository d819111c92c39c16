"""Tests of the front end (asctool.frontend): configuration and signal processing.

The reference features are computed here, independently of asctool, from the
formulas of the DCASE 2020 reference system (docs/featurize.md: numpy framing +
float64 FFT + an HTK mel matrix written out below), on real recordings from
../shared/data. ``asctool featurize`` itself is tested in tests/stages/test_featurize.py.
"""
from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from asctool.errors import AudioError, ConfigError
from asctool.frontend import (
    CONFIG_KEYS,
    FrontEnd,
    fit_duration,
    frame_count,
    frame_segments,
    frame_view,
    load_config,
    match_channels,
    mel_filterbank,
    preset_config,
    resolve_config,
    regression_delta,
)


# --------------------------------------------------------------------------
# an independent implementation of docs/reference.md section 2 (float64)
# --------------------------------------------------------------------------
def _htk_mel_matrix(sr: int, n_fft: int, n_mels: int) -> np.ndarray:
    """128 triangles on the HTK mel scale from 0 Hz to sr/2, peak 1 (no normalisation)."""
    mel_max = 2595.0 * np.log10(1.0 + (sr / 2) / 700.0)
    edges_hz = 700.0 * (10.0 ** (np.linspace(0.0, mel_max, n_mels + 2) / 2595.0) - 1.0)
    freqs = np.arange(n_fft // 2 + 1) * sr / n_fft
    matrix = np.zeros((n_mels, freqs.size))
    for m in range(n_mels):
        left, centre, right = edges_hz[m], edges_hz[m + 1], edges_hz[m + 2]
        rising = (freqs - left) / (centre - left)
        falling = (right - freqs) / (right - centre)
        matrix[m] = np.clip(np.minimum(rising, falling), 0.0, None)
    return matrix


def _reference_logmel(y: np.ndarray, sr: int) -> np.ndarray:
    """(channels, samples) float64 -> scaled log-mel (channels, 128, frames)."""
    n_fft, hop = 2048, 1024
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)  # periodic Hann
    padded = np.pad(y, ((0, 0), (n_fft // 2, n_fft // 2)), mode="reflect")
    n_frames = 1 + (padded.shape[1] - n_fft) // hop
    frames = np.stack([padded[:, t * hop:t * hop + n_fft] for t in range(n_frames)], axis=1)
    power = np.abs(np.fft.rfft(frames * window, axis=-1)) ** 2  # (channels, frames, bins)
    mel = np.einsum("ctk,mk->cmt", power, _htk_mel_matrix(sr, n_fft, 128))
    logmel = np.log(mel + 1e-8)
    return (logmel - logmel.min()) / (logmel.max() - logmel.min())  # jointly over channels


def _reference_features(y: np.ndarray, sr: int) -> np.ndarray:
    x = _reference_logmel(y, sr)

    def delta(a):
        return (a[..., 3:-1] - a[..., 1:-3]) / 10 + (a[..., 4:] - a[..., :-4]) / 5

    d = delta(x)
    dd = delta(d)
    parts = [x[..., 4:-4], d[..., 2:-2], dd]  # each (channels, 128, frames - 8)
    return np.concatenate([p.transpose(1, 2, 0) for p in parts], axis=-1)


# --------------------------------------------------------------------------
# configuration
# --------------------------------------------------------------------------
# --------------------------------------------------------------------------
# configuration
# --------------------------------------------------------------------------
def test_presets_give_the_reference_shapes():
    a, b = preset_config("1a"), preset_config("1b")
    assert list(a) == list(CONFIG_KEYS) and a["fmax"] == 22050.0 and b["fmax"] == 24000.0
    assert FrontEnd(a).feature_shape == (128, 423, 3)
    assert FrontEnd(b).feature_shape == (128, 461, 6)
    assert FrontEnd(a).n_frames == 431 and FrontEnd(b).n_frames == 469


def test_yaml_config_overrides_its_base(tmp_path):
    path = tmp_path / "fe.yaml"
    path.write_text("base: 1b\nn_mels: 64\ndeltas: false\nduration: 2.0\n")
    config = load_config(path)
    assert config["sr"] == 48000 and config["n_mels"] == 64 and config["fmax"] == 24000.0
    assert FrontEnd(config).feature_shape == (64, frame_count(96000, n_fft=2048, hop_length=1024), 2)


@pytest.mark.parametrize(
    "text, needle",
    [
        ("n_fft: 2048\nhop_lenght: 512\n", "unknown key 'hop_lenght'"),
        ("n_fft: -4\n", "key 'n_fft' must be an integer >= 16"),
        ("window: kaiser\n", "key 'window' must be one of"),
        ("fmax: 30000\n", "key 'fmax' must be <= sr / 2"),
        ("win_length: 4096\n", "key 'win_length' must be <= n_fft"),
        ("deltas: 'yes'\n", "key 'deltas' must be true or false"),
        ("duration: 0.02\n", "key 'duration' must give at least n_fft"),
        ("duration: 0.1\n", "key 'delta_width' leaves no frames"),
        ("pad_tolerance: 1.5\n", "key 'pad_tolerance'"),
        ("base: 2c\n", "key 'base' must be one of 1a, 1b"),
        ("n_mels: [1, 2\n", "not valid YAML"),
        ("- 1\n- 2\n", "must be a mapping"),
    ],
)
def test_bad_configs_name_the_file_and_key(tmp_path, text, needle):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value).startswith(f"{path}:") and needle in str(info.value)


def test_more_mel_bands_than_the_fft_resolves_are_refused(tmp_path):
    """Issue 9 item 9: empty mel filters would give constant feature rows, silently."""
    path = tmp_path / "fe.yaml"
    path.write_text("n_fft: 512\nwin_length: 512\nn_mels: 256\n")
    with pytest.raises(ConfigError, match=r"fe\.yaml: key 'n_mels' is too many for n_fft 512 .*"
                                          r"55 of the 256 mel filters .* empty"):
        load_config(path)
    # another instance: the default FFT, but 128 bands squeezed below 1 kHz (bins are 21.5 Hz apart)
    path.write_text("fmax: 1000\n")
    with pytest.raises(ConfigError, match=r"key 'n_mels' is too many for n_fft 2048 at sr 44100 \(0-1000 Hz\)"):
        load_config(path)
    path.write_text("fmax: 1000\nn_mels: 16\n")
    assert load_config(path)["n_mels"] == 16


# --------------------------------------------------------------------------
# pure functions
# --------------------------------------------------------------------------
def test_mel_filterbank_is_htk_without_normalisation():
    ours = mel_filterbank(sr=44100, n_fft=2048, n_mels=128, fmin=0.0, fmax=22050.0, htk=True, norm=None)
    np.testing.assert_allclose(ours, _htk_mel_matrix(44100, 2048, 128), atol=1e-9)
    assert (ours.max(axis=1)[64:] > 0.9).all()  # wide triangles peak at (almost) 1: not normalised


@pytest.mark.slow  # importing librosa takes seconds
def test_mel_filterbank_matches_librosa():
    librosa = pytest.importorskip("librosa")
    ours = mel_filterbank(sr=44100, n_fft=2048, n_mels=128, fmin=0.0, fmax=22050.0, htk=True, norm=None)
    theirs = librosa.filters.mel(sr=44100, n_fft=2048, n_mels=128, fmin=0.0, fmax=22050.0, htk=True, norm=None)
    np.testing.assert_allclose(ours, theirs, atol=1e-6)
    slaney = mel_filterbank(sr=22050, n_fft=1024, n_mels=40, fmin=30.0, fmax=8000.0, htk=False, norm="slaney")
    np.testing.assert_allclose(
        slaney, librosa.filters.mel(sr=22050, n_fft=1024, n_mels=40, fmin=30.0, fmax=8000.0), atol=1e-6
    )


def test_regression_delta_is_the_valid_n2_formula():
    x = np.random.default_rng(0).standard_normal((3, 20))
    expected = (x[:, 3:-1] - x[:, 1:-3]) / 10 + (x[:, 4:] - x[:, :-4]) / 5
    np.testing.assert_allclose(regression_delta(x, width=2), expected, rtol=1e-12)
    assert regression_delta(x, width=1).shape == (3, 18)


def test_frame_view_matches_padded_framing():
    rng = np.random.default_rng(1)
    for n_fft, hop, n, mode in [(2048, 1024, 44100, "reflect"), (64, 7, 300, "constant"), (33, 50, 40, "edge")]:
        y = rng.standard_normal((2, n)).astype(np.float32)
        window = rng.random(n_fft).astype(np.float32)
        padded = np.pad(y, ((0, 0), (n_fft // 2, n_fft // 2)), mode=mode)
        count = frame_count(n, n_fft=n_fft, hop_length=hop)
        expected = np.stack([padded[:, t * hop:t * hop + n_fft] for t in range(count)], axis=1) * window
        np.testing.assert_array_equal(frame_view(y, n_fft, hop_length=hop, pad_mode=mode) * window, expected)


@pytest.mark.parametrize("mode", ["reflect", "constant", "edge"])
def test_frame_segments_equal_frame_view(mode):
    rng = np.random.default_rng(2)
    for n_fft, hop in [(2048, 1024), (16, 4), (16, 5), (8, 8), (7, 2)]:
        for n in [*range(n_fft // 2 + 1, 3 * n_fft), 441000]:
            y = rng.standard_normal((2, n)).astype(np.float32)
            segments = frame_segments(y, n_fft, hop_length=hop, pad_mode=mode)
            expected = frame_view(y, n_fft, hop_length=hop, pad_mode=mode)
            np.testing.assert_array_equal(np.concatenate(segments, axis=1), expected)
            if n > 2 * n_fft:  # only the frames reaching into the padding are copies
                copied = sum(s.shape[1] for s in segments if not np.shares_memory(s, y))
                assert copied <= 2 * -(-(n_fft // 2) // hop)


def test_short_clips_are_padded_within_tolerance_and_long_ones_cut():
    y = np.ones((1, 950), np.float32)
    padded, change = fit_duration(y, 1000, pad_tolerance=0.1, sr=100)
    assert padded.shape == (1, 1000) and change == 50 and padded[0, 949] == 1 and padded[0, 950:].max() == 0
    cut, change = fit_duration(np.ones((1, 1200), np.float32), 1000, pad_tolerance=0.1, sr=100)
    assert cut.shape == (1, 1000) and change == -200
    with pytest.raises(AudioError, match=r"clip\.wav: 8\.990 s long"):
        fit_duration(np.ones((1, 899), np.float32), 1000, pad_tolerance=0.1, sr=100, path="clip.wav")
    # pad_tolerance 1 (featurize --pad-tolerance 1): any shorter clip is padded
    short, change = fit_duration(np.ones((1, 3), np.float32), 1000, pad_tolerance=1.0, sr=100)
    assert short.shape == (1, 1000) and change == 997 and short[0, :3].min() == 1 and short[0, 3:].max() == 0
    assert resolve_config("1a", overrides={"pad_tolerance": 1.0})["pad_tolerance"] == 1.0


def test_channel_rules():
    stereo = np.stack([np.ones(10, np.float32), 3 * np.ones(10, np.float32)])
    mono, downmixed = match_channels(stereo, 1, downmix=True)
    assert downmixed and mono.shape == (1, 10) and np.all(mono == 2)
    with pytest.raises(AudioError, match=r"x\.wav: 1 channel, the front end needs 2"):
        match_channels(stereo[:1], 2, downmix=True, path="x.wav")
    with pytest.raises(AudioError, match="downmix"):
        match_channels(stereo, 1, downmix=False, path="x.wav")


def test_silence_scales_to_zeros_not_nan():
    front = FrontEnd(preset_config("1a"))
    features = front(np.zeros((1, front.n_samples), np.float32))
    assert features.shape == (128, 423, 3) and not features.any()


# --------------------------------------------------------------------------
# the front end against the independent computation, on real recordings
# --------------------------------------------------------------------------
def test_preset_1a_matches_reference_on_a_real_recording(shared_data):
    path = shared_data / "recordings" / "acoustic_scene.wav"  # 16-bit stereo 44.1 kHz, 10 s
    front = FrontEnd(preset_config("1a"))
    y32, sr = sf.read(path, dtype="float32", always_2d=True)
    mono, downmixed = match_channels(y32.T, 1, downmix=True)
    assert downmixed and sr == front.sr
    got = front(fit_duration(mono, front.n_samples, pad_tolerance=0.1, sr=sr)[0])
    y, _ = sf.read(path, dtype="float64", always_2d=True)
    expected = _reference_features(y.T.mean(axis=0, keepdims=True)[:, :441000], sr)
    assert got.dtype == np.float32 and got.shape == (128, 423, 3)
    assert expected.shape == got.shape
    np.testing.assert_allclose(got, expected, atol=1e-4, rtol=0)
    assert got[..., 0].min() < 1e-3 and got[..., 0].max() > 0.999  # min-max scaled static channel


def test_preset_1b_matches_reference_on_real_stereo_recordings(shared_data):
    folder = shared_data / "recordings" / "tut2018"  # 24-bit stereo 48 kHz, 10 s
    front = FrontEnd(preset_config("1b"))
    for name in ["airport", "park", "tram"]:
        y, sr = sf.read(folder / f"{name}.wav", dtype="float64", always_2d=True)
        got = front(y.T.astype(np.float32))
        assert got.shape == (128, 461, 6)
        expected = _reference_features(y.T, sr)  # [L, R, dL, dR, ddL, ddR]
        np.testing.assert_allclose(got, expected, atol=1e-4, rtol=0)
        static = got[..., :2]
        assert static.min() < 1e-3 and static.max() > 0.999  # jointly scaled over both channels
