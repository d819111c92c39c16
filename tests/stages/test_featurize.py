"""Tests of ``asctool featurize`` (asctool.stages.featurize): the stage, through Python and the command line.

The front end's numbers are checked against an independent computation in
tests/test_frontend.py; here the stage must write exactly what
:class:`asctool.frontend.FrontEnd` computes, with every --nj, shard and start
method, and handle bad audio, configs and interruptions.
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

from asctool import parallel
from asctool.artifacts import open_features
from asctool.audio import read_audio, write_audio
from asctool.cli import cli
from asctool.frontend import FrontEnd, fit_duration, match_channels, preset_config, resolve_config
from asctool.manifest import Clip, write_manifest
from asctool.stages.featurize import run as featurize
from asctool.stages.featurize import shard_range


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------
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
        clips.append(Clip(id=stem, path=f"{stem}.wav", scene=("bus", "park")[i % 2], device="a", location=f"loc{i}"))
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
# configuration and real recordings
# --------------------------------------------------------------------------
def test_bad_config_via_cli_is_a_one_line_error(tmp_path):
    manifest = _manifest(tmp_path, {"x": (_tone(1.0, 8000), 8000)})
    (tmp_path / "bad.yaml").write_text("n_mels: 0\n")
    result = _invoke("--manifest", manifest, "--out", tmp_path / "f.h5", "--config", tmp_path / "bad.yaml")
    _one_line_error(result, "bad.yaml", "n_mels")
    _no_leftovers(tmp_path, "f.h5")


def test_preset_1a_on_a_real_recording(shared_data, tmp_path):
    path = shared_data / "recordings" / "acoustic_scene.wav"  # 16-bit stereo 44.1 kHz, 10 s
    write_manifest(tmp_path / "m.tsv", [Clip(id="scene", path=str(path))])
    summary = featurize(tmp_path / "m.tsv", tmp_path / "f.h5", preset="1a", dtype="float32")
    assert summary["downmixed"] == 1
    front = FrontEnd(preset_config("1a"))
    y, sr = read_audio(path)
    mono, _ = match_channels(y, 1, downmix=True)
    expected = front(fit_duration(mono, front.n_samples, pad_tolerance=0.1, sr=sr)[0])
    with open_features(tmp_path / "f.h5") as f:
        assert f.dtype == np.float32 and f.shape == (1, 128, 423, 3)
        got = f.features[0]
    assert expected.shape == got.shape
    np.testing.assert_array_equal(got, expected)  # and FrontEnd matches the reference (tests/test_frontend.py)


def test_preset_1b_on_real_stereo_recordings(shared_data, tmp_path):
    folder = shared_data / "recordings" / "tut2018"  # 24-bit stereo 48 kHz, 10 s
    names = ["airport", "park", "tram"]
    write_manifest(tmp_path / "m.tsv", [Clip(id=n, path=str(folder / f"{n}.wav")) for n in names])
    featurize(tmp_path / "m.tsv", tmp_path / "f.h5", preset="1b", dtype="float32")
    front = FrontEnd(preset_config("1b"))
    with open_features(tmp_path / "f.h5") as f:
        assert f.shape == (3, 128, 461, 6) and list(f.ids) == names
        for i, name in enumerate(names):
            y, _ = read_audio(folder / f"{name}.wav")
            np.testing.assert_array_equal(f.features[i], front(y))  # [L, R, dL, dR, ddL, ddR]


# --------------------------------------------------------------------------
# the stage, through the command line
# --------------------------------------------------------------------------
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
        assert list(f.ids) == [f"c{i}" for i in range(7)] and f.scenes[1] == "park" and f.locations[2] == "loc2"
        assert f.config == preset_config("1a")
        front = FrontEnd(preset_config("1a"))
        y, _ = sf.read(tmp_path / "c3.wav", dtype="float32", always_2d=True)
        np.testing.assert_array_equal(f.features[3], front(y.T).astype(np.float16))
    again = _invoke("--manifest", clips_1a, "--out", tmp_path / "f.h5")
    _one_line_error(again, "f.h5", "already exists")
    assert _invoke("--manifest", clips_1a, "--out", tmp_path / "f.h5", "--force").exit_code == 0


@pytest.mark.parametrize("start", ["fork", "forkserver"])
def test_nj2_is_byte_identical_to_nj1(clips_1a, tmp_path, monkeypatch, start):
    if start == "forkserver":  # as where the loaded BLAS cannot be pinned from inside a forked worker
        monkeypatch.setattr(parallel, "_blas_thread_setters", lambda: None)
    elif parallel.start_method() != "fork":
        pytest.skip("no BLAS thread setter found here: workers come from the fork server")
    assert parallel.start_method() == start
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
    assert resampled.stderr.count("of 2 clips: 1 resampled from 48000 Hz to 44100 Hz") == 1

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
    lines = [line for line in result.stderr.splitlines() if line.startswith("WARNING")]
    assert len(lines) == 1, result.stderr   # one line for the run, whatever the number of clips
    assert lines[0].endswith("m.tsv: of 5 clips: 3 downmixed to mono, 1 zero-padded to 10 s, 1 cut to 10 s"), lines
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


# --------------------------------------------------------------------------
# bad manifest rows and impossible outputs (issue 9, items 16 and 17)
# --------------------------------------------------------------------------
@pytest.mark.parametrize("cell, needle", [
    ('"c1.wav', "m.tsv:3: stray quote in column 'path'"),   # the example
    ("", "m.tsv:3: clip 'c1' has an empty path"),            # the example
    ("c1.wav\t\"park", "m.tsv:3: stray quote in column 'scene'"),
])
def test_bad_manifest_rows_name_the_manifest_and_line(tmp_path, one_line_error, tree, cell, needle):
    manifest = _manifest(tmp_path, {"c0": (_tone(10.0, 44100), 44100), "c1": (_tone(10.0, 44100, seed=1), 44100)})
    lines = manifest.read_text().splitlines()
    fields = lines[2].split("\t")
    lines[2] = "\t".join([fields[0], cell] + ([] if "\t" in cell else fields[2:3]))
    manifest.write_text("\n".join(lines) + "\n")
    before = tree(tmp_path)
    one_line_error(_invoke("--manifest", manifest, "--out", tmp_path / "f.h5"), str(tmp_path / needle))
    assert tree(tmp_path) == before


@pytest.mark.parametrize("out", ["some.tsv/x.h5", "some.tsv/deeper/x.h5"])
def test_an_output_below_a_file_is_one_line(clips_1a, tmp_path, one_line_error, tree, out):
    (tmp_path / "some.tsv").write_text("id\tpath\n")
    before = tree(tmp_path)
    one_line_error(_invoke("--manifest", clips_1a, "--out", tmp_path / out),
                   f"{tmp_path / out}: cannot be written: {tmp_path / 'some.tsv'} is not a folder")
    assert tree(tmp_path) == before


def test_an_output_in_a_read_only_folder_is_one_line(clips_1a, read_only_dir, one_line_error):
    one_line_error(_invoke("--manifest", clips_1a, "--out", read_only_dir / "x.h5"),
                   "x.h5: cannot be written: no permission to write in")
    one_line_error(_invoke("--out", read_only_dir / "sub" / "all.h5", "--combine", clips_1a),
                   "all.h5: cannot be written: no permission to write in")


# --------------------------------------------------------------------------
# labels outside the known classes (issue 9 item 5)
# --------------------------------------------------------------------------
def test_a_typo_scene_in_one_row_is_refused_naming_the_line(tmp_path):
    """``airprot`` in one row would train an 11-class model."""
    files = {f"c{i}": (_tone(1.0, 8000, seed=i), 8000) for i in range(3)}
    manifest = _manifest(tmp_path, files)
    lines = manifest.read_text().splitlines()
    lines[2] = lines[2].replace("\tpark\t", "\tairprot\t")
    manifest.write_text("\n".join([lines[0], "", *lines[1:]]) + "\n")   # a blank line: the typo is on line 4
    (tmp_path / "fe.yaml").write_text("sr: 8000\nduration: 1.0\nn_fft: 256\nwin_length: 256\nhop_length: 128\nn_mels: 16\n")
    result = _invoke("--manifest", manifest, "--out", tmp_path / "f.h5", "--config", tmp_path / "fe.yaml")
    _one_line_error(result, "m.tsv:4: unknown label 'airprot'", "--classes FILE")
    _no_leftovers(tmp_path, "f.h5")


def test_own_classes_are_declared_once_and_recorded(tmp_path):
    files = {f"c{i}": (_tone(1.0, 8000, seed=i), 8000) for i in range(3)}
    manifest = _manifest(tmp_path, files)
    manifest.write_text(manifest.read_text().replace("\tbus\t", "\tbeach\t").replace("\tpark\t", "\tcave\t"))
    (tmp_path / "fe.yaml").write_text("sr: 8000\nduration: 1.0\nn_fft: 256\nwin_length: 256\nhop_length: 128\nn_mels: 16\n")
    (tmp_path / "classes.txt").write_text("beach\ncave\nforest\n")
    common = ("--manifest", manifest, "--config", tmp_path / "fe.yaml")
    _one_line_error(_invoke(*common, "--out", tmp_path / "f.h5"), "m.tsv:2: unknown label 'beach'")
    result = _invoke(*common, "--out", tmp_path / "f.h5", "--classes", tmp_path / "classes.txt")
    assert result.exit_code == 0, result.output
    with open_features(tmp_path / "f.h5") as f:
        assert f.classes == ["beach", "cave", "forest"] and list(f.scenes) == ["beach", "cave", "beach"]
    # the shards keep the declared classes through --combine
    for k in (1, 2):
        result = _invoke(*common, "--out", tmp_path / f"s{k}.h5", "--classes", tmp_path / "classes.txt",
                         "--shard", f"{k}/2")
        assert result.exit_code == 0, result.output
    result = _invoke("--combine", tmp_path / "s1.h5", "--combine", tmp_path / "s2.h5", "--out", tmp_path / "all.h5")
    assert result.exit_code == 0, result.output
    with open_features(tmp_path / "all.h5") as f:
        assert f.classes == ["beach", "cave", "forest"]


# --------------------------------------------------------------------------
# any clip length and rate: --duration SECONDS|auto, --resample [HZ]
# --------------------------------------------------------------------------
def _frames(seconds: float, sr: int, hop: int = 1024, delta_width: int = 2) -> int:
    """Time frames of the model input: centred STFT frames (1 + samples // hop) less 2 x 2N for the deltas."""
    return 1 + round(seconds * sr) // hop - 4 * delta_width


def _warnings(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("WARNING")]


def test_duration_5_and_resample_to_the_preset_rate(tmp_path):
    files = {"a16": (_tone(5.0, 16000, seed=1), 16000), "b22": (_tone(5.0, 22050, seed=2), 22050),
             "c16": (_tone(5.0, 16000, seed=3), 16000)}
    manifest = _manifest(tmp_path, files)
    result = _invoke("--manifest", manifest, "--out", tmp_path / "f.h5", "--duration", "5", "--resample",
                     "--dtype", "float32")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert _frames(5, 44100) == 208
    assert summary["feature_shape"] == [128, 208, 3] and (summary["duration"], summary["sr"]) == (5.0, 44100)
    assert (summary["resampled"], summary["padded"], summary["cut"]) == (3, 0, 0)
    assert _warnings(result) == [f"WARNING asctool.stages.featurize: {manifest}: of 3 clips: "
                                 "3 resampled from 16000/22050 Hz to 44100 Hz"]
    config = dict(preset_config("1a"), duration=5.0)
    with open_features(tmp_path / "f.h5") as f:
        assert f.shape == (3, 128, 208, 3) and f.config == config
        y, _ = read_audio(tmp_path / "b22.wav", sr=44100, resample_to=True)
        assert y.shape == (1, 220500)
        np.testing.assert_array_equal(f.features[1], FrontEnd(config)(y))


def test_duration_auto_and_resample_to_16khz(tmp_path):
    files = {"a": (_tone(4.0, 16000, seed=1), 16000), "b": (_tone(4.0, 22050, seed=2), 22050),
             "c": (_tone(4.0, 16000, seed=3), 16000), "d": (_tone(4.0, 16000, seed=4), 16000)}
    manifest = _manifest(tmp_path, files)
    result = _invoke("--manifest", manifest, "--out", tmp_path / "f.h5", "--duration", "auto", "--resample", "16000")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["feature_shape"] == [128, _frames(4, 16000), 3] == [128, 55, 3]
    assert (summary["duration"], summary["sr"], summary["resampled"]) == (4.0, 16000, 1)
    assert _warnings(result) == [f"WARNING asctool.stages.featurize: {manifest}: of 4 clips: "
                                 "1 resampled from 22050 Hz to 16000 Hz"]
    with open_features(tmp_path / "f.h5") as f:
        assert f.config["sr"] == 16000 and f.config["fmax"] == 8000.0 and f.config["duration"] == 4.0
        assert f.shape == (4, 128, 55, 3)
    # shards take the length of the whole manifest, and combine into the same file
    for k in (1, 2):
        shard = _invoke("--manifest", manifest, "--out", tmp_path / f"s{k}.h5", "--duration", "auto",
                        "--resample", "16000", "--shard", f"{k}/2")
        assert shard.exit_code == 0, shard.output
    combined = _invoke("--manifest", manifest, "--out", tmp_path / "c.h5", "--combine", tmp_path / "s1.h5",
                       "--combine", tmp_path / "s2.h5")
    assert combined.exit_code == 0, combined.output
    with open_features(tmp_path / "c.h5") as c, open_features(tmp_path / "f.h5") as f:
        np.testing.assert_array_equal(c.features[:], f.features[:])


def test_duration_cuts_and_pads_and_counts_them_on_one_line(tmp_path):
    files = {"five": (_tone(5.0, 16000, seed=1), 16000), "four": (_tone(4.0, 16000, seed=2), 16000),
             "more": (_tone(5.0, 16000, seed=3), 16000)}
    manifest = _manifest(tmp_path, files)
    result = _invoke("--manifest", manifest, "--out", tmp_path / "f.h5", "--duration", "4.2",
                     "--resample", "16000", "--dtype", "float32")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert (summary["padded"], summary["cut"], summary["resampled"]) == (1, 2, 0)
    assert summary["feature_shape"] == [128, _frames(4.2, 16000), 3]
    assert _warnings(result) == [f"WARNING asctool.stages.featurize: {manifest}: of 3 clips: "
                                 "1 zero-padded to 4.2 s, 2 cut to 4.2 s"]
    config = resolve_config("1a", overrides={"duration": 4.2, "sr": 16000})
    front = FrontEnd(config)
    y, _ = read_audio(tmp_path / "four.wav")
    padded = np.zeros((1, 67200), np.float32)
    padded[:, :64000] = y
    with open_features(tmp_path / "f.h5") as f:
        np.testing.assert_array_equal(f.features[1], front(padded))
        y, _ = read_audio(tmp_path / "five.wav")
        np.testing.assert_array_equal(f.features[0], front(y[:, :67200]))


def test_duration_auto_refuses_clips_of_two_lengths(tmp_path):
    files = {"a": (_tone(5.0, 22050), 22050), "b": (_tone(5.0, 22050), 22050), "c": (_tone(4.0, 22050), 22050)}
    manifest = _manifest(tmp_path, files)
    result = _invoke("--manifest", manifest, "--out", tmp_path / "f.h5", "--duration", "auto", "--resample")
    _one_line_error(result, "m.tsv", "--duration auto needs clips of one length", "from 4.000 s (",
                    "c.wav) to 5.000 s (", "a.wav)", "give --duration SECONDS",
                    "e.g. --duration 5 --pad-tolerance 1 pads every clip; give every manifest of the data set the same")
    _no_leftovers(tmp_path, "f.h5")


def test_duration_auto_names_the_shortest_and_longest_clip_of_all(tmp_path):
    """(found on UrbanSound8K-style data) the message gives the range over every clip, not the first two."""
    files = {"a": (_tone(4.0, 22050), 22050), "b": (_tone(3.5, 22050), 22050), "c": (_tone(1.25, 22050), 22050),
             "d": (_tone(4.0, 22050), 22050)}
    manifest = _manifest(tmp_path, files)
    result = _invoke("--manifest", manifest, "--out", tmp_path / "f.h5", "--duration", "auto")
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        f"Error: {manifest}: --duration auto needs clips of one length, but they last from 1.250 s "
        f"({tmp_path / 'c.wav'}) to 4.000 s ({tmp_path / 'a.wav'}) (give --duration SECONDS: longer clips are cut, "
        "shorter ones zero-padded when they lack at most --pad-tolerance of it; e.g. --duration 4 "
        "--pad-tolerance 1 pads every clip; give every manifest of the data set the same)")
    files = {"a": (_tone(6.912, 16000), 16000), "b": (_tone(2.5, 16000), 16000)}   # a whole number of seconds
    result = _invoke("--manifest", _manifest(tmp_path, files, name="n.tsv"), "--out", tmp_path / "f.h5",
                     "--duration", "auto")
    assert result.exit_code == 1 and "e.g. --duration 7 --pad-tolerance 1" in result.stderr


def test_pad_tolerance_pads_short_clips_without_a_yaml_file(tmp_path):
    """(found on UrbanSound8K-style data: slices shorter than 4 s) --pad-tolerance 1 pads any shorter clip."""
    files = {"long": (_tone(4.0, 22050, seed=1), 22050), "short": (_tone(1.25, 22050, seed=2), 22050)}
    manifest = _manifest(tmp_path, files)
    result = _invoke("--manifest", manifest, "--out", tmp_path / "f.h5", "--duration", "4", "--resample")
    _one_line_error(result, "short.wav: 1.250 s long, the front end needs 4 s",
                    "--pad-tolerance 1 pads any shorter clip")
    result = _invoke("--manifest", manifest, "--out", tmp_path / "f.h5", "--duration", "4", "--pad-tolerance",
                     "0.5", "--resample")
    _one_line_error(result, "short.wav: 1.250 s long", "down to 2.000 s, pad_tolerance 0.5")
    _no_leftovers(tmp_path, "f.h5")
    result = _invoke("--manifest", manifest, "--out", tmp_path / "f.h5", "--duration", "4", "--pad-tolerance", "1",
                     "--resample", "--dtype", "float32")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert (summary["padded"], summary["cut"], summary["resampled"]) == (1, 0, 2)
    with open_features(tmp_path / "f.h5") as f:
        assert f.config["pad_tolerance"] == 1.0 and f.config["duration"] == 4.0
        config = f.config
        got = f.features[1]
    front = FrontEnd(config)
    y, _ = read_audio(tmp_path / "short.wav", sr=44100, resample_to=True)
    padded = np.zeros((1, 4 * 44100), np.float32)
    padded[:, :y.shape[1]] = y
    np.testing.assert_array_equal(got, front(padded))
    for value, needle in [("1.5", "a number from 0 to 1, got '1.5'"), ("x", "a number from 0 to 1")]:
        result = _invoke("--manifest", manifest, "--out", tmp_path / "g.h5", "--pad-tolerance", value)
        assert result.exit_code == 2 and needle in result.stderr, result.output
    result = _invoke("--out", tmp_path / "c.h5", "--combine", tmp_path / "x.h5", "--pad-tolerance", "1")
    _one_line_error(result, "--combine keeps their front end")


def test_duration_and_resample_usage_errors(tmp_path):
    manifest = _manifest(tmp_path, {"a": (_tone(4.0, 16000), 16000)})
    for args, needle in [(["--duration", "abc"], "positive number of seconds or auto"),
                         (["--duration", "0"], "positive number"),
                         (["--resample", "12"], "rate in Hz >= 1000")]:
        result = _invoke("--manifest", manifest, "--out", tmp_path / "f.h5", *args)
        assert result.exit_code == 2 and needle in result.stderr, result.output
    # a length the front end cannot use: one line naming the override
    result = _invoke("--manifest", manifest, "--out", tmp_path / "f.h5", "--duration", "0.3", "--resample", "16000")
    _one_line_error(result, "preset 1a with sr 16000, duration 0.3", "key 'delta_width'")
    result = _invoke("--out", tmp_path / "c.h5", "--combine", tmp_path / "x.h5", "--duration", "4")
    _one_line_error(result, "--combine keeps their front end")
    _no_leftovers(tmp_path, "f.h5")


def test_train_and_predict_on_4s_16khz_features(tmp_path):
    from asctool.stages.predict import run as predict
    from asctool.stages.train import run as train

    classes = ("bus", "park")
    files = {f"c{i}": (_tone(4.0, 16000, seed=i % 2), 16000) for i in range(12)}
    manifest = _manifest(tmp_path, files)  # scenes alternate bus, park; one location per clip
    summary = featurize(manifest, tmp_path / "f.h5", duration="auto", resample=16000)
    assert summary["feature_shape"] == [128, 55, 3]
    run = train([tmp_path / "f.h5"], "fcnn", tmp_path / "run", profile="demo", epochs=1, batch_size=4,
                valid_split=0.25, seed=0)
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["input_shape"] == [128, 55, 3] and run  # the model takes the features' shape
    scores = predict(tmp_path / "run" / "model.keras", tmp_path / "f.h5", tmp_path / "s.h5")
    assert scores["clips"] == 12
    from asctool.artifacts import read_scores

    s = read_scores(tmp_path / "s.h5")
    assert s.scores.shape == (12, 2) and tuple(s.classes) == classes
    np.testing.assert_allclose(s.scores.sum(axis=1), 1.0, rtol=1e-5)
