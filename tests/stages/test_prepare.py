"""asctool prepare: TAU layouts -> manifests, on the real fold-1 split files."""
from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner

from asctool.cli import cli
from asctool.errors import ManifestError
from asctool.manifest import identify_dataset, read_csv_rows, read_manifest
from asctool.stages.prepare import run as prepare


def _fake_root(tmp_path: Path, shared_data: Path) -> Path:
    """A dataset root with the real fold-1 split files and no audio."""
    root = tmp_path / "TAU-urban-acoustic-scenes-2020-mobile-development"
    setup = root / "evaluation_setup"
    setup.mkdir(parents=True)
    for name in ("train", "evaluate", "test"):
        shutil.copyfile(shared_data / "tau2020_fold1" / f"fold1_{name}.csv", setup / f"fold1_{name}.csv")
    (root / "audio").mkdir()
    return root


def _touch_listed(root: Path, skip: int = 0) -> list[str]:
    """Create empty placeholder audio for every listed file but the first ``skip``; return the skipped."""
    names: dict[str, None] = {}
    for name in ("train", "evaluate", "test"):
        _, rows = read_csv_rows(root / "evaluation_setup" / f"fold1_{name}.csv")
        names.update(dict.fromkeys(r["filename"] for r in rows))
    listed = sorted(names)
    for filename in listed[skip:]:
        (root / filename).touch()
    return listed[:skip]


def test_real_fold1_split(tmp_path, shared_data):
    root = _fake_root(tmp_path, shared_data)
    # the real files: train LF without a final newline, evaluate/test CRLF
    assert not (root / "evaluation_setup/fold1_train.csv").read_bytes().endswith(b"\n")
    assert b"\r\n" in (root / "evaluation_setup/fold1_evaluate.csv").read_bytes()
    _touch_listed(root)
    out = tmp_path / "data"
    summary = prepare(root, out)
    assert summary["counts"] == {"train": 13965, "evaluate": 2970, "test": 2970}
    assert summary["version"] == "1.0" and "2020 Mobile" in summary["dataset"]
    assert summary["missing_audio"] == 0 and summary["locations"]["shared"] == 0
    info = json.loads((out / "fold1_info.json").read_text())
    assert info["version"] == "1.0" and info["counts"]["train"] == 13965

    train = read_manifest(out / "fold1_train.tsv")
    evaluate = read_manifest(out / "fold1_evaluate.tsv")
    test = read_manifest(out / "fold1_test.tsv")
    assert (len(train), len(evaluate), len(test)) == (13965, 2970, 2970)
    assert Counter(c.device for c in train) == {"a": 10215, "b": 750, "c": 750, "s1": 750, "s2": 750, "s3": 750}
    assert Counter(c.device for c in evaluate) == {d: 330 for d in ("a", "b", "c", "s1", "s2", "s3", "s4", "s5", "s6")}
    assert not {c.location for c in train} & {c.location for c in evaluate}
    assert len({c.scene for c in evaluate}) == 10 and all(c.scene for c in evaluate)
    assert all(c.scene == "" for c in test) and {c.id for c in test} == {c.id for c in evaluate}
    first = train.clips[0]
    assert first.id == "airport-lisbon-1000-40000-a" and first.city == "lisbon"
    assert first.location == "airport-lisbon-1000"
    assert train.audio_path(first).resolve() == (root / "audio" / f"{first.id}.wav").resolve()
    assert train.audio_path(first).is_file()


def test_missing_audio_one_message(tmp_path, shared_data):
    root = _fake_root(tmp_path, shared_data)
    skipped = _touch_listed(root, skip=7)
    with pytest.raises(ManifestError) as err:
        prepare(root, tmp_path / "data")
    message = str(err.value)
    assert "7 of 16935 listed audio files are missing" in message
    assert skipped[0] in message and skipped[4] in message and skipped[6] not in message
    assert "--no-check-audio" in message and "\n" not in message
    assert not (tmp_path / "data").exists()  # nothing written
    summary = prepare(root, tmp_path / "data", check_audio=False)
    assert summary["missing_audio"] == 7 and summary["counts"]["train"] == 13965


V2_REMOVED = ("airport-barcelona-1-87-c", "airport-barcelona-203-6132-b", "shopping_mall-london-131-3930-c",
              "public_square-barcelona-108-3109-b", "tram-barcelona-275-8394-c")


def test_real_split_as_v2(tmp_path, shared_data):
    """The v1.0 split minus the 5 files v2.0 removed is recognised as v2.0."""
    root = _fake_root(tmp_path, shared_data)
    for name in ("train", "evaluate", "test"):
        path = root / "evaluation_setup" / f"fold1_{name}.csv"
        lines = path.read_bytes().split(b"\n")
        path.write_bytes(b"\n".join(l for l in lines if not any(r.encode() in l for r in V2_REMOVED)))
    summary = prepare(root, tmp_path / "data", check_audio=False)
    assert summary["counts"] == {"train": 13962, "evaluate": 2968, "test": 2968}
    assert summary["version"] == "2.0"
    assert json.loads((tmp_path / "data" / "fold1_info.json").read_text())["version"] == "2.0"


def test_version_2_sizes_recognised():
    assert identify_dataset({"train": 13962, "evaluate": 2968, "test": 2968})["version"] == "2.0"
    assert identify_dataset({"train": 13965, "evaluate": 2970, "test": 2970})["version"] == "1.0"
    coarse = identify_dataset({"train": 9185, "evaluate": 4185, "test": 4185}, label_set="coarse")
    assert "3Class" in coarse["dataset"]
    assert identify_dataset({"train": 10, "evaluate": 5, "test": 5}) == {"dataset": "unknown", "version": "unknown"}


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def _tiny_root(tmp_path: Path, *, train=None, evaluate=None, test=None, meta=None) -> Path:
    root = tmp_path / "root"
    files = ["airport-lisbon-1-1-a", "bus-lyon-2-2-a", "park-paris-3-3-a", "park-paris-3-3-s4"]
    for stem in files:
        _write(root / "audio" / f"{stem}.wav", "")
    _write(root / "evaluation_setup/fold1_train.csv", train if train is not None else
           "filename\tscene_label\naudio/airport-lisbon-1-1-a.wav\tairport\naudio/bus-lyon-2-2-a.wav\tbus\n")
    _write(root / "evaluation_setup/fold1_evaluate.csv", evaluate if evaluate is not None else
           "filename\tscene_label\r\naudio/park-paris-3-3-a.wav\tpark\r\naudio/park-paris-3-3-s4.wav\tpark")
    _write(root / "evaluation_setup/fold1_test.csv", test if test is not None else
           "filename\r\naudio/park-paris-3-3-a.wav\r\naudio/park-paris-3-3-s4.wav\r\n")
    if meta is not None:
        _write(root / "meta.csv", meta)
    return root


def test_tiny_layout_and_meta(tmp_path):
    meta = "filename\tscene_label\tidentifier\tsource_label\r\n" + "".join(
        f"audio/{s}.wav\t{s.split('-')[0]}\t{s.split('-')[1]}-{s.split('-')[2]}\t{s.split('-')[-1]}\r\n"
        for s in ["airport-lisbon-1-1-a", "bus-lyon-2-2-a", "park-paris-3-3-a", "park-paris-3-3-s4"])
    root = _tiny_root(tmp_path, meta=meta)
    summary = prepare(root, tmp_path / "out", setup="fold1")
    assert summary["counts"] == {"train": 2, "evaluate": 2, "test": 2, "meta": 4}
    assert summary["dataset"] == "unknown"
    assert summary["devices"]["evaluate"] == {"a": 1, "s4": 1}
    meta_manifest = read_manifest(tmp_path / "out" / "meta.tsv")
    assert [c.scene for c in meta_manifest] == ["airport", "bus", "park", "park"]
    with pytest.raises(ManifestError, match="already exists"):
        prepare(root, tmp_path / "out")
    prepare(root, tmp_path / "out", force=True)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"train": "filename\tscene_label\tfoo\naudio/airport-lisbon-1-1-a.wav\tairport\tx\n"},
         r"fold1_train\.csv: unexpected column\(s\) foo"),
        ({"train": "file\tscene_label\naudio/airport-lisbon-1-1-a.wav\tairport\n"},
         r"fold1_train\.csv: missing column\(s\) filename"),
        ({"train": "filename\tscene_label\naudio/airport-lisbon-1-1-a.wav\tairprot\n"},
         r"fold1_train\.csv: line 2: unknown scene label 'airprot'"),
        ({"train": "filename\tscene_label\naudio/airport-lisbon-1-1-a.wav\tairport\naudio/airport-lisbon-1-1-a.wav\tairport\n"},
         r"fold1_train\.csv: duplicate clip 'airport-lisbon-1-1-a' on lines 2 and 3"),
        ({"train": "filename\tscene_label\naudio/airport-lisbon-1-1-a.wav\tbus\n"},
         r"labelled 'bus' but its file name says 'airport'"),
        ({"evaluate": "filename\tscene_label\naudio/airport-lisbon-1-1-a.wav\tairport\n"},
         r"fold1_evaluate\.csv: 1 clips are also in fold1_train\.csv"),
        ({"meta": "filename\tscene_label\tidentifier\tsource_label\naudio/airport-lisbon-1-1-a.wav\tairport\tlisbon-1\ta\n"
                  "audio/bus-lyon-2-2-a.wav\tbus\tlyon-2\ta\naudio/park-paris-3-3-a.wav\tpark\tparis-3\ta\n",
          "evaluate": "filename\tscene_label\naudio/park-paris-3-3-a.wav\tpark\n"},
         r"fold1_test\.csv: 1 of 2 files are not listed in meta\.csv: audio/park-paris-3-3-s4\.wav"),
    ],
)
def test_bad_inputs(tmp_path, kwargs, match):
    root = _tiny_root(tmp_path, **kwargs)
    with pytest.raises(ManifestError, match=match):
        prepare(root, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_missing_root_and_split_files(tmp_path):
    with pytest.raises(ManifestError, match="dataset root not found"):
        prepare(tmp_path / "nowhere", tmp_path / "out")
    root = _tiny_root(tmp_path)
    (root / "evaluation_setup/fold1_test.csv").unlink()
    with pytest.raises(ManifestError, match=r"missing split file\(s\) evaluation_setup/fold1_test\.csv"):
        prepare(root, tmp_path / "out")
    with pytest.raises(ManifestError, match=r"fold2_train\.csv"):
        prepare(root, tmp_path / "out", setup="fold2")


def test_cli_one_line_error_and_json(tmp_path):
    runner = CliRunner()
    result = runner.invoke(cli, ["-q", "prepare", "--dataset-root", str(tmp_path / "none"), "--out-dir", str(tmp_path / "o")])
    assert result.exit_code == 1 and "dataset root not found" in result.output
    root = _tiny_root(tmp_path)
    result = runner.invoke(cli, ["-q", "prepare", "--dataset-root", str(root), "--out-dir", str(tmp_path / "o")])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["counts"]["evaluate"] == 2


def test_3class_layout_from_real_2019_meta(tmp_path, shared_data):
    """TAU 2019 / 2020 3Class layout: real CRLF meta.csv; 3-class labels go into ``scene``."""
    from asctool.labels import packaged_hierarchy

    hierarchy = packaged_hierarchy()
    root = tmp_path / "tau2020_3class"
    _, rows = read_csv_rows(shared_data / "tau2019_dev" / "meta.csv")
    assert len(rows) == 14400
    (root / "evaluation_setup").mkdir(parents=True)
    meta = ["filename\tscene_label\tidentifier\tsource_label"]
    train, evaluate = ["filename\tscene_label"], ["filename\tscene_label"]
    for row in rows:
        label = hierarchy[row["scene_label"]]
        meta.append(f"{row['filename']}\t{label}\t{row['identifier']}\t{row['source_label']}")
        # a location-disjoint split (not the official one): by location id parity
        target = evaluate if int(row["identifier"].split("-")[1]) % 3 == 0 else train
        target.append(f"{row['filename']}\t{label}")
    (root / "meta.csv").write_text("\r\n".join(meta) + "\r\n")
    (root / "evaluation_setup/fold1_train.csv").write_text("\r\n".join(train))
    (root / "evaluation_setup/fold1_evaluate.csv").write_text("\r\n".join(evaluate) + "\r\n")
    (root / "evaluation_setup/fold1_test.csv").write_text("\r\n".join(["filename"] + [r.split("\t")[0] for r in evaluate[1:]]))
    summary = prepare(root, tmp_path / "out", check_audio=False)
    assert summary["label_set"] == "coarse" and summary["classes"] == ["indoor", "outdoor", "transportation"]
    assert summary["counts"]["meta"] == 14400
    assert summary["counts"]["train"] + summary["counts"]["evaluate"] == 14400
    assert summary["devices"]["train"] == {"a": summary["counts"]["train"]}
    clip = read_manifest(tmp_path / "out" / "fold1_train.tsv").clips[0]
    assert clip.scene in ("indoor", "outdoor", "transportation") and clip.location.count("-") == 2


# --------------------------------------------------------------------------
# names that become file names; outputs claimed before anything is written (issue 9, items 1, 16)
# --------------------------------------------------------------------------
@pytest.mark.parametrize("filename, problem", [
    ("audio/-rf.wav", "starts with '-'"),
    ("audio/x\x1b[2J.wav", "contains a control character"),
])
def test_file_names_unfit_for_clip_ids_name_the_split_file_and_line(tmp_path, filename, problem):
    root = _tiny_root(tmp_path, train=f"filename\tscene_label\naudio/airport-lisbon-1-1-a.wav\tairport\n"
                                      f"{filename}\tbus\n")
    with pytest.raises(ManifestError, match=rf"fold1_train\.csv:3: clip id \(file name\) .* {problem}"):
        prepare(root, tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("setup", ["../../ESCAPED", "/tmp/fold1"])
def test_a_setup_that_would_leave_the_folder_is_refused(tmp_path, setup):
    root = _tiny_root(tmp_path)
    with pytest.raises(ManifestError, match="--setup .* it becomes part of a file name"):
        prepare(root, tmp_path / "out" / "data", setup=setup)
    assert not (tmp_path / "out").exists()


def test_a_manifest_folder_below_a_file_is_one_line(tmp_path):
    root = _tiny_root(tmp_path)
    (tmp_path / "notes.txt").write_text("x")
    result = CliRunner().invoke(cli, ["prepare", "--dataset-root", str(root), "--out-dir",
                                      str(tmp_path / "notes.txt" / "data")])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert f"{tmp_path / 'notes.txt'} is not a folder" in result.output


def test_own_classes_with_classes_file(tmp_path):
    """Issue 9 item 5: a data set with other labels says so once (--classes FILE)."""
    train = ("filename\tscene_label\naudio/airport-lisbon-1-1-a.wav\tterminal\n"
             "audio/bus-lyon-2-2-a.wav\tvehicle\n")
    evaluate = "filename\tscene_label\naudio/park-paris-3-3-a.wav\tgreen\naudio/park-paris-3-3-s4.wav\tgreen\n"
    root = _tiny_root(tmp_path, train=train, evaluate=evaluate)
    with pytest.raises(ManifestError, match=r"fold1_train\.csv: line 2: unknown scene label 'terminal'.*--classes FILE"):
        prepare(root, tmp_path / "out")
    classes = tmp_path / "classes.txt"
    classes.write_text("terminal\nvehicle\ngreen\n")
    result = CliRunner().invoke(cli, ["-q", "prepare", "--dataset-root", str(root), "--out-dir",
                                      str(tmp_path / "out"), "--classes", str(classes)])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["known_classes"] == ["terminal", "vehicle", "green"] and summary["label_set"] == "classes"
    assert [c.scene for c in read_manifest(tmp_path / "out" / "fold1_train.tsv")] == ["terminal", "vehicle"]
    # a label outside the declared classes is still a typo
    classes.write_text("terminal\ngreen\n")
    with pytest.raises(ManifestError, match=r"fold1_train\.csv: line 3: unknown scene label 'vehicle' "
                                            r"\(expected one of terminal, green\)"):
        prepare(root, tmp_path / "out2", classes_path=classes)
