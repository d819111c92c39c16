"""asctool split: whole recording locations held out, the same draw as asctool train --valid-split."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from asctool.cli import cli
from asctool.errors import AsctoolError, ConfigError
from asctool.labels import SCENES, resolve_label_map
from asctool.manifest import read_manifest
from asctool.stages.split import run
from asctool.training.data import SourceInfo, clip_locations, hold_out_locations, make_clip_set


def write_manifest(path: Path, scenes=("bus", "park"), locations: int = 5, segments: int = 2,
                   *, with_location: bool = True) -> Path:
    """TAU-like rows: scene s, location k, segment j, device a; audio under ../audio/ of path's folder."""
    header = "id\tpath\tscene\tdevice\tcity\tlocation" if with_location else "id\tpath\tscene\tdevice\tcity"
    rows = [header]
    for scene in scenes:
        for loc in range(locations):
            for seg in range(segments):
                row = f"{scene}-x-{loc}-{seg}-a\taudio/{scene}-{loc}-{seg}.wav\t{scene}\ta\tx"
                rows.append(row + (f"\t{scene}-x-{loc}" if with_location else ""))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(rows) + "\n")
    return path


def _locations(path: Path) -> set[str]:
    return {clip.location for clip in read_manifest(path, allow_empty=True)}


def test_split_by_location_keeps_rows_and_paths(tmp_path):
    """(from tests/test_recipes.py, split_manifest.py) 1 of 5 locations per scene; paths stay valid."""
    src = write_manifest(tmp_path / "in.tsv")
    summary = run(src, tmp_path / "sub" / "train.tsv", tmp_path / "sub" / "valid.tsv", valid_split=0.2)
    train = (tmp_path / "sub" / "train.tsv").read_text().splitlines()[1:]
    valid = (tmp_path / "sub" / "valid.tsv").read_text().splitlines()[1:]
    assert len(train) == 16 and len(valid) == 4
    assert summary["train"]["clips"] == 16 and summary["valid"]["clips"] == 4
    locations = lambda lines: {line.split("\t")[5] for line in lines}  # noqa: E731
    assert not locations(train) & locations(valid)
    assert valid[0].split("\t")[1].startswith("../audio/")  # paths stay valid from the new folder
    assert set(summary["valid_locations"]) == locations(valid)
    beside = run(src, tmp_path / "t.tsv", tmp_path / "v.tsv", valid_split=0.2)
    assert (tmp_path / "v.tsv").read_text().splitlines()[1].split("\t")[1].startswith("audio/")
    assert beside["valid_locations"] == summary["valid_locations"]


@pytest.mark.parametrize("fraction, per_class", [(0.1, 1), (0.3, 3), (0.5, 5), (0.99, 9)])
def test_split_honours_the_fraction_and_never_shares_a_location(tmp_path, fraction, per_class):
    src = write_manifest(tmp_path / "in.tsv", scenes=SCENES[:4], locations=10)
    summary = run(src, tmp_path / "t.tsv", tmp_path / "v.tsv", valid_split=fraction, seed=3)
    held = summary["valid_locations"]
    assert len(held) == 4 * per_class
    for scene in SCENES[:4]:
        assert sum(loc.startswith(f"{scene}-") for loc in held) == per_class   # per class, never all
    assert not _locations(tmp_path / "t.tsv") & _locations(tmp_path / "v.tsv")
    assert _locations(tmp_path / "v.tsv") == set(held)
    assert summary["valid"]["clips"] == 2 * len(held)


def test_same_seed_same_split(tmp_path):
    src = write_manifest(tmp_path / "in.tsv", scenes=SCENES, locations=6)
    first = run(src, tmp_path / "a" / "t.tsv", tmp_path / "a" / "v.tsv", seed=7)
    again = run(src, tmp_path / "b" / "t.tsv", tmp_path / "b" / "v.tsv", seed=7)
    other = run(src, tmp_path / "c" / "t.tsv", tmp_path / "c" / "v.tsv", seed=8)
    assert first["valid_locations"] == again["valid_locations"] != other["valid_locations"]
    assert (tmp_path / "a" / "v.tsv").read_bytes() == (tmp_path / "b" / "v.tsv").read_bytes()


def _training_side(manifest: Path, labels: str, fraction: float, seed: int) -> list[str]:
    """What asctool train --valid-split holds out of features with these clips (metadata only)."""
    clips = list(read_manifest(manifest))
    source = SourceInfo(manifest, len(clips), (1, 1, 1), np.dtype(np.float16), {},
                        np.array([c.id for c in clips], dtype=object), np.array([c.scene for c in clips], dtype=object),
                        np.array(["" for _ in clips], dtype=object))   # locations parsed from the TAU ids
    clip_set, _ = make_clip_set([source], resolve_label_map(labels), None, labels_name=labels)
    _, held = hold_out_locations(clip_set, clip_locations(source), fraction, seed)
    return held


@pytest.mark.parametrize("labels", ["scene", "coarse"])
def test_training_side_and_stage_hold_out_the_same_locations(tmp_path, labels):
    src = write_manifest(tmp_path / "in.tsv", scenes=SCENES, locations=7)
    for seed in range(4):
        for fraction in (0.1, 0.25):
            stage = run(src, tmp_path / "t.tsv", tmp_path / "v.tsv", valid_split=fraction, labels=labels,
                        seed=seed, force=True)
            assert stage["valid_locations"] == _training_side(src, labels, fraction, seed)


def test_locations_from_tau_ids_and_errors(tmp_path):
    src = write_manifest(tmp_path / "in.tsv", with_location=False)
    assert len(run(src, tmp_path / "t.tsv", tmp_path / "v.tsv", valid_split=0.2)["valid_locations"]) == 2
    with pytest.raises(AsctoolError, match="already exists"):
        run(src, tmp_path / "t.tsv", tmp_path / "v.tsv", valid_split=0.2)
    bad = tmp_path / "bad.tsv"
    bad.write_text("id\tpath\tscene\nclip1\ta.wav\tbus\nclip2\tb.wav\tbus\n")
    with pytest.raises(ConfigError, match="clip1 has no location"):
        run(bad, tmp_path / "t2.tsv", tmp_path / "v2.tsv")
    single = write_manifest(tmp_path / "one.tsv", locations=1)
    with pytest.raises(ConfigError, match="no class has two recording locations"):
        run(single, tmp_path / "t3.tsv", tmp_path / "v3.tsv")
    with pytest.raises(AsctoolError, match="cave not in the label map"):
        run(write_manifest(tmp_path / "odd.tsv", scenes=("cave",)), tmp_path / "t4.tsv", tmp_path / "v4.tsv",
            labels="coarse")
    assert not (tmp_path / "t2.tsv").exists() and not (tmp_path / "t3.tsv").exists()


def test_split_command_line(tmp_path):
    src = write_manifest(tmp_path / "in.tsv")
    args = ["split", "--manifest", str(src), "--out-train", str(tmp_path / "t.tsv"), "--out-valid",
            str(tmp_path / "v.tsv"), "--valid-split", "0.2", "--seed", "1"]
    done = CliRunner().invoke(cli, args)
    assert done.exit_code == 0, done.output
    assert len(json.loads(done.stdout)["valid_locations"]) == 2
    assert CliRunner().invoke(cli, args).exit_code == 1                      # outputs exist
    assert CliRunner().invoke(cli, [*args, "--force"]).exit_code == 0
    assert CliRunner().invoke(cli, [*args[:-4], "--valid-split", "1", "--force"]).exit_code == 2


def test_bad_seed_and_impossible_outputs_write_nothing(tmp_path, one_line_error, tree):
    """(issue 9, items 15, 16) a usage error for --seed -1; one line for an output below a file or an input."""
    src = write_manifest(tmp_path / "in.tsv")
    before = tree(tmp_path)
    base = ["split", "--manifest", str(src), "--out-valid", str(tmp_path / "v.tsv")]
    one_line_error(CliRunner().invoke(cli, [*base, "--out-train", str(tmp_path / "t.tsv"), "--seed", "-1"]),
                   "--seed", code=2)
    one_line_error(CliRunner().invoke(cli, [*base, "--out-train", str(src / "t.tsv")]),
                   f"{src / 't.tsv'}: cannot be written: {src} is not a folder")
    one_line_error(CliRunner().invoke(cli, [*base, "--out-train", str(src), "--force"]), "in.tsv: is also an input")
    assert tree(tmp_path) == before
