"""Tests of the front end (asctool.features) and of ``asctool featurize``.

The reference features are computed here, independently of asctool, from the
formulas of REFERENCE.md section 2 (numpy framing + float64 FFT + an HTK mel
matrix written out below), on real recordings from ../shared/data.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import h5py
import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from asctool.artifacts import open_features
from asctool.audio import write_audio
from asctool.cli import cli
from asctool.errors import AudioError, ConfigError
from asctool.features import (
    CONFIG_KEYS,
    FrontEnd,
    featurize,
    fit_duration,
    frame_count,
    frame_segments,
    frame_view,
    load_config,
    match_channels,
    mel_filterbank,
    preset_config,
    regression_delta,
    shard_range,
    windowed_frames,
)
from asctool.manifest import Clip, write_manifest


# --------------------------------------------------------------------------
# an independent implementation of REFERENCE.md section 2 (float64)
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
# helpers
# --------------------------------------------------------------------------
def _tone(seconds: float, sr: int, channels: int = 1, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(round(seconds * sr))) / sr
    rows = [0.3 * np.sin(2 * np.pi * (300 + 200 * c + 50 * seed) * t) + 0.05 * rng.standard_normal(t.size)
            for c in range(channels)]
    return np.asarray(rows, dtype=np.float32)


def _manifest(folder: Path, files: dict[str, tuple[np.ndarray, int]], name: str = "m.tsv", **write) -> Path:
    clips = []
    for i, (stem, (y, sr)) in enumerate(files.items()):
        write_audio(folder / f"{stem}.wav", y, sr, **write)
        clips.append(Clip(id=stem, path=f"{stem}.wav", scene=f"s{i % 2}", device="a", location=f"loc{i}"))
    return write_manifest(folder / name, clips)


def _invoke(*args: str):
    return CliRunner().invoke(cli, ["featurize", *map(str, args)])


def _one_line_error(result, *needles: str) -> None:
    assert result.exit_code == 1, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("Error:")]
    assert len(errors) == 1 and "Traceback" not in result.output, result.output
    for needle in needles:
        assert needle in errors[0], errors[0]


def _no_leftovers(folder: Path, name: str) -> None:
    assert not (folder / name).exists()
    assert not [p for p in folder.iterdir() if ".tmp-" in p.name]


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


def test_bad_config_via_cli_is_a_one_line_error(tmp_path):
    manifest = _manifest(tmp_path, {"x": (_tone(1.0, 8000), 8000)})
    (tmp_path / "bad.yaml").write_text("n_mels: 0\n")
    result = _invoke("--manifest", manifest, "--out", tmp_path / "f.h5", "--config", tmp_path / "bad.yaml")
    _one_line_error(result, "bad.yaml", "n_mels")
    _no_leftovers(tmp_path, "f.h5")


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


def test_windowed_frames_match_padded_framing():
    rng = np.random.default_rng(1)
    for n_fft, hop, n, mode in [(2048, 1024, 44100, "reflect"), (64, 7, 300, "constant"), (33, 50, 40, "edge")]:
        y = rng.standard_normal((2, n)).astype(np.float32)
        window = rng.random(n_fft).astype(np.float32)
        padded = np.pad(y, ((0, 0), (n_fft // 2, n_fft // 2)), mode=mode)
        count = frame_count(n, n_fft=n_fft, hop_length=hop)
        expected = np.stack([padded[:, t * hop:t * hop + n_fft] for t in range(count)], axis=1) * window
        np.testing.assert_array_equal(windowed_frames(y, window, hop_length=hop, pad_mode=mode), expected)


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
def test_preset_1a_matches_reference_on_a_real_recording(shared_data, tmp_path):
    path = shared_data / "recordings" / "acoustic_scene.wav"  # 16-bit stereo 44.1 kHz, 10 s
    write_manifest(tmp_path / "m.tsv", [Clip(id="scene", path=str(path))])
    summary = featurize(tmp_path / "m.tsv", tmp_path / "f.h5", preset="1a", dtype="float32")
    assert summary["downmixed"] == 1
    y, sr = sf.read(path, dtype="float64", always_2d=True)
    expected = _reference_features(y.T.mean(axis=0, keepdims=True)[:, :441000], sr)
    with open_features(tmp_path / "f.h5") as f:
        assert f.dtype == np.float32 and f.shape == (1, 128, 423, 3)
        got = f.features[0]
    assert expected.shape == got.shape
    np.testing.assert_allclose(got, expected, atol=1e-4, rtol=0)
    assert got[..., 0].min() < 1e-3 and got[..., 0].max() > 0.999  # min-max scaled static channel


def test_preset_1b_matches_reference_on_real_stereo_recordings(shared_data, tmp_path):
    folder = shared_data / "recordings" / "tut2018"  # 24-bit stereo 48 kHz, 10 s
    names = ["airport", "park", "tram"]
    write_manifest(tmp_path / "m.tsv", [Clip(id=n, path=str(folder / f"{n}.wav")) for n in names])
    featurize(tmp_path / "m.tsv", tmp_path / "f.h5", preset="1b", dtype="float32")
    with open_features(tmp_path / "f.h5") as f:
        assert f.shape == (3, 128, 461, 6) and list(f.ids) == names
        for i, name in enumerate(names):
            y, sr = sf.read(folder / f"{name}.wav", dtype="float64", always_2d=True)
            expected = _reference_features(y.T, sr)  # [L, R, dL, dR, ddL, ddR]
            np.testing.assert_allclose(f.features[i], expected, atol=1e-4, rtol=0)
            static = f.features[i][..., :2]
            assert static.min() < 1e-3 and static.max() > 0.999  # jointly scaled over both channels


# --------------------------------------------------------------------------
# the stage, through the command line
# --------------------------------------------------------------------------
@pytest.fixture()
def clips_1a(tmp_path):
    files = {f"c{i}": (_tone(10.0, 44100, seed=i), 44100) for i in range(7)}
    return _manifest(tmp_path, files)


def test_featurize_writes_float16_model_input(clips_1a, tmp_path):
    result = _invoke("--manifest", clips_1a, "--out", tmp_path / "f.h5", "--preset", "1a")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["clips"] == 7 and summary["feature_shape"] == [128, 423, 3]
    with open_features(tmp_path / "f.h5") as f:
        assert f.dtype == np.float16 and f.shape == (7, 128, 423, 3)
        assert f.features.chunks == (1, 128, 423, 3)
        assert list(f.ids) == [f"c{i}" for i in range(7)] and f.scenes[1] == "s1" and f.locations[2] == "loc2"
        assert f.config == preset_config("1a")
        front = FrontEnd(preset_config("1a"))
        y, _ = sf.read(tmp_path / "c3.wav", dtype="float32", always_2d=True)
        np.testing.assert_array_equal(f.features[3], front(y.T).astype(np.float16))
    again = _invoke("--manifest", clips_1a, "--out", tmp_path / "f.h5")
    _one_line_error(again, "f.h5", "already exists")
    assert _invoke("--manifest", clips_1a, "--out", tmp_path / "f.h5", "--force").exit_code == 0


@pytest.mark.parametrize("start", ["fork", "forkserver"])
def test_nj2_is_byte_identical_to_nj1(clips_1a, tmp_path, monkeypatch, start):
    from asctool import features

    if start == "forkserver":  # as where the loaded BLAS cannot be pinned from inside a forked worker
        monkeypatch.setattr(features, "_blas_thread_setters", lambda: None)
    elif features._blas_thread_setters() is None:
        pytest.skip("no BLAS thread setter found here: workers come from the fork server")
    assert features._worker_context()[0].get_start_method() == start
    featurize(clips_1a, tmp_path / "one.h5", nj=1)
    featurize(clips_1a, tmp_path / "two.h5", nj=2)
    with open_features(tmp_path / "one.h5") as a, open_features(tmp_path / "two.h5") as b:
        assert list(a.ids) == list(b.ids)
        assert a.features[()].tobytes() == b.features[()].tobytes()


def test_same_input_gives_byte_identical_files_apart_from_created(clips_1a, tmp_path):
    blobs = []
    for name in ("a.h5", "b.h5"):
        featurize(clips_1a, tmp_path / name)
        with h5py.File(tmp_path / name, "r") as handle:
            created = handle.attrs["created"]
        blobs.append((tmp_path / name).read_bytes().replace(created.encode(), b"X" * len(created)))
    assert blobs[0] == blobs[1]


def test_shards_combined_equal_one_run(clips_1a, tmp_path):
    featurize(clips_1a, tmp_path / "all.h5")
    assert [len(shard_range(7, k, 3)) for k in (1, 2, 3)] == [2, 2, 3]
    shards = []
    for k in (1, 2, 3):
        summary = featurize(clips_1a, tmp_path / "shards" / f"s{k}.h5", shard=f"{k}/3")
        assert summary["shard"] == f"{k}/3"
        shards.append(tmp_path / "shards" / f"s{k}.h5")
    result = _invoke("--out", tmp_path / "combined.h5", "--manifest", clips_1a,
                     *[arg for s in shards for arg in ("--combine", s)])
    assert result.exit_code == 0, result.output
    cwd = os.getcwd()
    os.chdir(shards[0].parent)  # the virtual dataset resolves its shards relative to the combined file
    try:
        with open_features(tmp_path / "all.h5") as one, open_features(tmp_path / "combined.h5") as both:
            assert both.features.is_virtual
            assert list(one.ids) == list(both.ids) and list(one.scenes) == list(both.scenes)
            assert one.features[()].tobytes() == both.features[()].tobytes()
            assert one.config == both.config
    finally:
        os.chdir(cwd)
    wrong = _invoke("--out", tmp_path / "partial.h5", "--manifest", clips_1a, "--combine", shards[0])
    _one_line_error(wrong, "m.tsv", "do not hold exactly its clips")
    _no_leftovers(tmp_path, "partial.h5")


def test_bad_shard_is_a_usage_error(clips_1a, tmp_path):
    assert _invoke("--manifest", clips_1a, "--out", tmp_path / "f.h5", "--shard", "4/3").exit_code == 2
    assert _invoke("--manifest", clips_1a, "--out", tmp_path / "f.h5", "--shard", "x").exit_code == 2
    assert _invoke("--out", tmp_path / "f.h5").exit_code == 2  # neither --manifest nor --combine


@pytest.mark.parametrize("nj", [1, 2])
def test_corrupt_clip_midway_leaves_no_output(tmp_path, nj):
    files = {f"c{i}": (_tone(10.0, 44100, seed=i), 44100) for i in range(9)}
    manifest = _manifest(tmp_path, files)
    (tmp_path / "c5.wav").write_bytes((tmp_path / "c5.wav").read_bytes()[:50000])  # truncated
    result = _invoke("--manifest", manifest, "--out", tmp_path / "f.h5", "--nj", nj)
    _one_line_error(result, "c5.wav", "truncated")
    _no_leftovers(tmp_path, "f.h5")


def test_audio_rules_via_cli(tmp_path):
    sr = 44100
    cases = {
        "rate": (_tone(10.0, 48000), 48000, {}),
        "short": (_tone(8.5, sr), sr, {}),
        "nan": (np.where(np.arange(sr * 10) == 5, np.nan, 0.1).astype(np.float32)[None], sr, {"subtype": "FLOAT"}),
    }
    for stem, (y, rate, write) in cases.items():
        folder = tmp_path / stem
        folder.mkdir()
        manifest = _manifest(folder, {"ok": (_tone(10.0, sr), sr), stem: (y, rate)}, **write)
        result = _invoke("--manifest", manifest, "--out", folder / "f.h5")
        needle = {"rate": "sample rate 48000 Hz, expected 44100 Hz", "short": "8.500 s long",
                  "nan": "NaN or Inf"}[stem]
        _one_line_error(result, f"{stem}.wav", needle)
        _no_leftovers(folder, "f.h5")
    resampled = _invoke("--manifest", tmp_path / "rate" / "m.tsv", "--out", tmp_path / "rate" / "f.h5", "--resample")
    assert resampled.exit_code == 0, resampled.output
    assert json.loads(resampled.stdout)["resampled"] == 1
    assert resampled.stderr.count("resampling 48000 Hz to 44100 Hz") == 1

    (tmp_path / "junk.wav").write_bytes(b"RIFF not really audio")
    write_manifest(tmp_path / "junk.tsv", [Clip(id="junk", path="junk.wav"), Clip(id="gone", path="gone.wav")])
    _one_line_error(_invoke("--manifest", tmp_path / "junk.tsv", "--out", tmp_path / "j.h5"), "junk.wav", "unreadable")
    write_manifest(tmp_path / "gone.tsv", [Clip(id="gone", path="gone.wav")])
    _one_line_error(_invoke("--manifest", tmp_path / "gone.tsv", "--out", tmp_path / "g.h5"), "gone.wav", "not found")
    (tmp_path / "empty.tsv").write_text("id\tpath\n")
    _one_line_error(_invoke("--manifest", tmp_path / "empty.tsv", "--out", tmp_path / "e.h5"), "empty.tsv", "no clips")


def test_1b_needs_two_channels(tmp_path):
    manifest = _manifest(tmp_path, {"mono": (_tone(10.0, 48000), 48000)})
    result = _invoke("--manifest", manifest, "--out", tmp_path / "f.h5", "--preset", "1b")
    _one_line_error(result, "mono.wav", "1 channel, the front end needs 2")


def test_stereo_downmix_warns_once_and_short_clips_are_padded(tmp_path):
    files = {f"st{i}": (_tone(10.0, 44100, channels=2, seed=i), 44100) for i in range(3)}
    files["short"] = (_tone(9.5, 44100), 44100)
    files["long"] = (_tone(10.5, 44100), 44100)
    manifest = _manifest(tmp_path, files)
    result = _invoke("--manifest", manifest, "--out", tmp_path / "f.h5", "--dtype", "float32")
    assert result.exit_code == 0, result.output
    assert result.stderr.count("averaging the channels to mono") == 1
    summary = json.loads(result.stdout)
    assert (summary["downmixed"], summary["padded"], summary["cut"]) == (3, 1, 1)
    front = FrontEnd(preset_config("1a"))
    with open_features(tmp_path / "f.h5") as f:
        assert f.dtype == np.float32
        short, _ = sf.read(tmp_path / "short.wav", dtype="float32")
        padded = np.zeros((1, front.n_samples), np.float32)
        padded[0, :short.size] = short
        np.testing.assert_array_equal(f.features[3], front(padded))
        long, _ = sf.read(tmp_path / "long.wav", dtype="float32")
        np.testing.assert_array_equal(f.features[4], front(long[None, :front.n_samples]))


@pytest.mark.parametrize("signal_name", ["SIGINT", "SIGKILL"])
def test_killed_run_leaves_nothing_under_the_final_name(tmp_path, signal_name):
    import signal
    import subprocess
    import sys
    import time

    files = {f"c{i}": (_tone(10.0, 44100, seed=i), 44100) for i in range(3)}
    manifest = _manifest(tmp_path, files)
    os.mkfifo(tmp_path / "c9.wav")  # reading it blocks: the run hangs midway, after c0..c2
    with open(manifest, "a", encoding="utf-8") as handle:
        handle.write("c9\tc9.wav\t\t\t\t\n")
    out = tmp_path / "f.h5"
    process = subprocess.Popen([sys.executable, "-m", "asctool.cli", "featurize", "--manifest", str(manifest),
                                "--out", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while not list(tmp_path.glob("f.tmp-*.h5")) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert list(tmp_path.glob("f.tmp-*.h5")), "the run never started writing"
        time.sleep(0.3)
        process.send_signal(getattr(signal, signal_name))
        process.wait(timeout=30)
    finally:
        process.kill()
        process.communicate()
    assert process.returncode != 0 and not out.exists()
    if signal_name == "SIGINT":  # an interrupted run also removes its temporary file
        assert not list(tmp_path.glob("f.tmp-*"))


def _blas_threads() -> list[int]:
    """Thread counts of the OpenBLAS libraries loaded in this process."""
    import ctypes

    counts = []
    for line in Path("/proc/self/maps").read_text().splitlines():
        fields = line.split(maxsplit=5)
        if len(fields) == 6 and "openblas" in fields[5].lower() and fields[5] not in {c[0] for c in counts}:
            library = ctypes.CDLL(fields[5])
            for symbol in ("openblas_get_num_threads", "openblas_get_num_threads64_",
                           "scipy_openblas_get_num_threads", "scipy_openblas_get_num_threads64_"):
                if hasattr(library, symbol):
                    counts.append((fields[5], getattr(library, symbol)()))
                    break
    return [n for _, n in counts]


def _threads_in_worker(_):
    from asctool import features

    assert features._WORKER is not None
    return _blas_threads(), os.environ.get("OMP_NUM_THREADS")


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="needs Linux /proc")
def test_workers_run_single_threaded_blas():
    from concurrent.futures import ProcessPoolExecutor

    from asctool import features

    if not _blas_threads():
        pytest.skip("numpy does not use OpenBLAS here")
    context, pin = features._worker_context()
    with features._single_threaded_children():
        executor = ProcessPoolExecutor(1, mp_context=context, initializer=features._init_worker,
                                       initargs=(preset_config("1a"), False, "float16", pin))
    with executor:
        counts, omp = executor.submit(_threads_in_worker, None).result()
    assert counts and set(counts) == {1} and omp == "1"


def test_features_writer_write_block(tmp_path):
    from asctool.artifacts import ArtifactError, FeaturesWriter

    block = np.arange(3 * 2 * 4 * 1, dtype=np.float32).reshape(3, 2, 4, 1)
    with FeaturesWriter(tmp_path / "w.h5", n=4, feature_shape=(2, 4, 1), config={}, ids=list("abcd")) as writer:
        writer.write_block(1, block)
        with pytest.raises(ArtifactError, match="does not fit"):
            writer.write_block(2, block)
        writer.write(0, np.zeros((2, 4, 1)))
    with open_features(tmp_path / "w.h5") as f:
        np.testing.assert_array_equal(f.features[1:], block.astype(np.float16))
