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
    lone = tmp_path / "lone.tsv"
    lone.write_text("id\tpath\tscene\nclip1\ta.wav\tbus\n")
    with pytest.raises(ConfigError, match="lone.tsv: no class has two clips to split"):
        run(lone, tmp_path / "t2.tsv", tmp_path / "v2.tsv")
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


# --------------------------------------------------------------------------
# clips without recording locations (issue 14: ESC-50 / UrbanSound8K style data)
# --------------------------------------------------------------------------
def _no_location_manifest(path: Path, per_class=(10, 6, 4), extra: bool = True) -> Path:
    """Clips with no location and ids off the TAU pattern; a ``fold`` and a ``source`` column."""
    rows = ["id\tpath\tscene\tfold\tsource" if extra else "id\tpath\tscene"]
    for c, n in zip(("dog", "rain", "siren"), per_class):
        for i in range(n):
            rows.append(f"{c}{i}\taudio/{c}{i}.wav\t{c}" + (f"\t{i % 2 + 1}\t{c}-rec{i // 2}" if extra else ""))
    path.write_text("\r\n".join(rows) + "\r\n")
    return path


def test_split_without_locations_falls_back_to_a_stratified_split_said_once(tmp_path, caplog):
    """(issue 14) `asctool split` refused clips without a recording location; now stratified by class."""
    src = _no_location_manifest(tmp_path / "in.tsv", extra=False)
    (tmp_path / "classes.txt").write_text("dog\nrain\nsiren\n")
    with caplog.at_level("WARNING"):
        summary = run(src, tmp_path / "t.tsv", tmp_path / "v.tsv", valid_split=0.25,
                      classes_path=tmp_path / "classes.txt")
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and "no clip has a recording location" in warnings[0]
    assert "stratified by class" in warnings[0] and "--group-column" in warnings[0]
    assert summary["split"] == "stratified" and summary["valid_locations"] == []
    valid = read_manifest(tmp_path / "v.tsv")
    train = read_manifest(tmp_path / "t.tsv")
    per_class = {c: sum(v.scene == c for v in valid) for c in ("dog", "rain", "siren")}
    assert per_class == {"dog": round(0.25 * 10), "rain": round(0.25 * 6), "siren": 1}   # at least one, never all
    assert set(valid.ids) | set(train.ids) == set(read_manifest(src).ids)
    assert not set(valid.ids) & set(train.ids)


def test_split_by_a_group_column_keeps_groups_whole_and_extra_columns(tmp_path):
    src = _no_location_manifest(tmp_path / "in.tsv")
    (tmp_path / "classes.txt").write_text("dog\nrain\nsiren\n")
    summary = run(src, tmp_path / "t.tsv", tmp_path / "v.tsv", valid_split=0.4, group_column="source",
                  classes_path=tmp_path / "classes.txt", seed=2)
    assert summary["split"] == "group" and summary["group_column"] == "source"
    valid, train = read_manifest(tmp_path / "v.tsv"), read_manifest(tmp_path / "t.tsv")
    held = {c.extra["source"] for c in valid}
    assert held == set(summary["valid_groups"]) and not held & {c.extra["source"] for c in train}
    # dog has 5 recordings (2 clips each), rain 3, siren 2: round(0.4 * n), at least one, never all
    assert sorted(sum(g.startswith(c) for g in held) for c in ("dog", "rain", "siren")) == [1, 1, 2]
    assert valid.clips[0].extra.keys() == {"fold", "source"}                 # the extra columns travel
    assert (tmp_path / "v.tsv").read_text().splitlines()[0] == "id\tpath\tscene\tdevice\tcity\tlocation\tfold\tsource"
    with pytest.raises(ConfigError, match=r"--group-column take: .*in.tsv: no column 'take'"):
        run(src, tmp_path / "t2.tsv", tmp_path / "v2.tsv", group_column="take", classes_path=tmp_path / "classes.txt")
    cli_args = ["split", "--manifest", str(src), "--out-train", str(tmp_path / "t3.tsv"), "--out-valid",
                str(tmp_path / "v3.tsv"), "--group-column", "fold", "--valid-split", "0.5",
                "--classes", str(tmp_path / "classes.txt")]
    done = CliRunner().invoke(cli, cli_args)
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["valid_groups"] in (["1"], ["2"])           # one of the two folds, whole


def test_training_side_without_locations_is_stratified(tmp_path):
    """(issue 14) `train --valid-split` refused clips without a recording location (clip_locations raised)."""
    src = _no_location_manifest(tmp_path / "in.tsv", extra=False)
    clips = list(read_manifest(src))
    source = SourceInfo(src, len(clips), (1, 1, 1), np.dtype(np.float16), {},
                        np.array([c.id for c in clips], dtype=object), np.array([c.scene for c in clips], dtype=object),
                        np.array(["" for _ in clips], dtype=object))
    clip_set, classes = make_clip_set([source], None, None, labels_name="scene", known=["dog", "rain", "siren"])
    locations = clip_locations(source)
    assert list(locations) == [""] * len(clips)
    mask, held = hold_out_locations(clip_set, locations, 0.25, 0)
    assert held == [] and int(mask.sum()) == 2 + 2 + 1                        # round(2.5), round(1.5), 1
    assert np.bincount(clip_set.labels[mask], minlength=3).tolist() == [2, 2, 1]
    (tmp_path / "classes.txt").write_text("dog\nrain\nsiren\n")
    stage = run(src, tmp_path / "t.tsv", tmp_path / "v.tsv", valid_split=0.25, classes_path=tmp_path / "classes.txt")
    assert set(read_manifest(tmp_path / "v.tsv").ids) == {clips[i].id for i in np.flatnonzero(mask)}  # same draw
    assert stage["split"] == "stratified"
