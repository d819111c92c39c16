"""asctool synth (the stage): files, layout, determinism, the command line."""
from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from asctool.audio import audio_info, read_audio
from asctool.cli import cli
from asctool.errors import AsctoolError
from asctool.labels import SCENES
from asctool.manifest import parse_stem, read_csv_rows, read_manifest
from asctool.stages.prepare import run as prepare
from asctool.stages.synth import run as synthesize
from asctool.synth.scenes import SCENE_RECIPES
from asctool.synth import DEVICES


def _digests(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_same_seed_byte_identical(tmp_path):
    kwargs = dict(clips_per_class=1, duration=1.0, devices="a,b,s4")
    synthesize(tmp_path / "one", seed=3, **kwargs)
    synthesize(tmp_path / "two", seed=3, nj=2, **kwargs)  # workers do not change the files
    synthesize(tmp_path / "other", seed=4, **kwargs)
    one, two, other = (_digests(tmp_path / n) for n in ("one", "two", "other"))
    assert one == two and len(one) == 5 + 10 * (2 + 3)
    wavs = [k for k in one if k.endswith(".wav")]
    assert all(one[k] != other[k] for k in wavs)


def test_layout_counts_and_prepare(demo_dataset, demo_manifests):
    root = demo_dataset
    assert (root / "meta.csv").is_file() and (root / "asctool_synth.json").is_file()
    header, meta = read_csv_rows(root / "meta.csv")
    assert header == ["filename", "scene_label", "identifier", "source_label", "tags"]
    events = {}
    for row in meta:
        parts = parse_stem(Path(row["filename"]).stem)
        assert parts["scene"] == row["scene_label"] and parts["device"] == row["source_label"]
        assert row["identifier"] == parts["location"].split("-", 1)[1]
        # event labels: the sources the location mixes in, the same for every clip of the location
        assert events.setdefault(parts["location"], row["tags"]) == row["tags"]
        names = row["tags"].split(";")
        assert names == sorted(names) and set(names) <= set(SCENE_RECIPES[row["scene_label"]].levels)
    train = read_manifest(demo_manifests["train"])
    evaluate = read_manifest(demo_manifests["evaluate"])
    assert all(c.get("tags") == events[c.location] for c in list(train) + list(evaluate))
    assert Counter(c.device for c in train) == {"a": 20, "b": 10, "c": 10, "s1": 10, "s2": 10, "s3": 10}
    assert Counter(c.device for c in evaluate) == {d: 10 for d in DEVICES}
    assert Counter(c.scene for c in train) == {s: 7 for s in SCENES}
    assert not {c.location for c in train} & {c.location for c in evaluate}
    # parallel recordings: every non-a clip has the device-a clip of its segment
    ids = {c.id for c in train} | {c.id for c in evaluate}
    for clip in list(train) + list(evaluate):
        assert clip.id.rsplit("-", 1)[0] + "-a" in ids
    info = audio_info(train.audio_path(train.clips[0]))
    assert (info.samplerate, info.channels, info.frames, info.subtype) == (44100, 1, 441000, "PCM_24")
    assert json.loads((demo_manifests["train"].parent / "fold1_info.json").read_text())["dataset"].startswith("asctool synth")


def test_refuses_non_empty_folder(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "keep.txt").write_text("mine")
    with pytest.raises(AsctoolError, match="not empty"):
        synthesize(tmp_path / "x", clips_per_class=1, duration=1.0, devices="a")
    result = CliRunner().invoke(cli, ["synth", "--out-dir", str(tmp_path / "x"), "--duration", "1"])
    assert result.exit_code == 1 and "not empty (use --force" in result.output
    assert sorted(p.name for p in (tmp_path / "x").iterdir()) == ["keep.txt"]
    synthesize(tmp_path / "x", clips_per_class=1, duration=1.0, devices="a", force=True)
    assert (tmp_path / "x" / "keep.txt").read_text() == "mine"


def test_stereo_48k_cli(tmp_path):
    result = CliRunner().invoke(cli, ["-q", "synth", "--out-dir", str(tmp_path / "d"), "--clips-per-class", "2",
                                      "--duration", "1", "--sr", "48000", "--channels", "2", "--devices", "a"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["clips"] == 10 * (2 + 1)
    summary = prepare(tmp_path / "d", tmp_path / "m")
    clip = read_manifest(tmp_path / "m" / "fold1_train.tsv").clips[0]
    y, sr = read_audio(tmp_path / "m" / clip.path)
    assert sr == 48000 and y.shape == (2, 48000)
    assert 0.1 < np.corrcoef(y[0], y[1])[0, 1] < 0.999  # two channels, not a copy
    assert summary["devices"]["evaluate"] == {"a": 10}


# --------------------------------------------------------------------------
# options checked before anything is written (issue 9, items 15, 16)
# --------------------------------------------------------------------------
def test_a_negative_seed_is_a_usage_error_and_writes_nothing(tmp_path):
    """The issue's example: a ValueError traceback, files left, and the rerun refused."""
    result = CliRunner().invoke(cli, ["synth", "--out-dir", str(tmp_path / "d"), "--seed", "-1", "--duration", "1"])
    assert result.exit_code == 2 and "--seed" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "d").exists()
    with pytest.raises(AsctoolError, match="--seed -1: must be >= 0"):
        synthesize(tmp_path / "d", clips_per_class=1, duration=1.0, devices="a", seed=-1)
    assert not (tmp_path / "d").exists()
    result = CliRunner().invoke(cli, ["-q", "synth", "--out-dir", str(tmp_path / "d"), "--clips-per-class", "2",
                                      "--duration", "1", "--devices", "a"])
    assert result.exit_code == 0, result.output


def test_an_unknown_device_and_an_out_dir_below_a_file_write_nothing(tmp_path, one_line_error, tree):
    (tmp_path / "notes.txt").write_text("x")
    before = tree(tmp_path)
    one_line_error(CliRunner().invoke(cli, ["synth", "--out-dir", str(tmp_path / "d"), "--devices", "a,../x"]),
                   "unknown device(s) ../x")
    one_line_error(CliRunner().invoke(cli, ["synth", "--out-dir", str(tmp_path / "notes.txt" / "db")]),
                   "notes.txt/db: cannot be written:", "notes.txt is not a folder")
    assert tree(tmp_path) == before
