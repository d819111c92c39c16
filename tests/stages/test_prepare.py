"""asctool prepare: TAU layouts -> manifests, on the real fold-1 split files."""
from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from asctool.cli import cli
from asctool.errors import ManifestError
from asctool.labels import read_classes
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


# --------------------------------------------------------------------------
# issue 14: layouts beyond TAU (tiny fabricated trees, CRLF and BOM included)
# --------------------------------------------------------------------------
def _bytes(path: Path, text: str) -> None:
    """Write ``text`` with CRLF line ends and a UTF-8 byte-order mark."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\xef\xbb\xbf" + text.replace("\n", "\r\n").encode("utf-8"))


def test_tau_tree_with_other_labels_takes_the_classes_from_the_data(tmp_path):
    """(issue 14) prepare refused a TAU-style tree with non-TAU labels: "unknown scene label 'dog'"."""
    stems = ["dog-x-1-1-a", "dog-x-2-1-a", "rain-x-3-1-a", "rain-x-4-1-a"]
    train = "filename\tscene_label\n" + "".join(f"audio/{s}.wav\t{s.split('-')[0]}\n" for s in stems[::2])
    evaluate = "filename\tscene_label\n" + "".join(f"audio/{s}.wav\t{s.split('-')[0]}\n" for s in stems[1::2])
    root = tmp_path / "root"
    for stem in stems:
        _write(root / "audio" / f"{stem}.wav", "")
    _bytes(root / "evaluation_setup/fold1_train.csv", train)
    _bytes(root / "evaluation_setup/fold1_evaluate.csv", evaluate)
    _bytes(root / "evaluation_setup/fold1_test.csv", "filename\n" + "".join(f"audio/{s}.wav\n" for s in stems[1::2]))
    summary = prepare(root, tmp_path / "out")
    assert summary["label_set"] == "data" and summary["known_classes"] == ["dog", "rain"]
    assert summary["layout"] == "tau"
    assert (tmp_path / "out" / "fold1_classes.txt").read_text() == "dog\nrain\n"
    train_m = read_manifest(tmp_path / "out" / "fold1_train.tsv")
    assert [(c.scene, c.device, c.location, c.extra["filename"]) for c in train_m] == [
        ("dog", "a", "dog-x-1", "audio/dog-x-1-1-a.wav"), ("rain", "a", "rain-x-3", "audio/rain-x-3-1-a.wav")]
    # the typo check of the later stages uses the declared class set, not the TAU list
    declared = read_classes(tmp_path / "out" / "fold1_classes.txt")
    assert len(read_manifest(tmp_path / "out" / "fold1_train.tsv", check_labels=True, classes=declared)) == 2
    typo = tmp_path / "out" / "typo.tsv"
    typo.write_text((tmp_path / "out" / "fold1_train.tsv").read_text().replace("\train\t", "\trian\t"))
    with pytest.raises(ManifestError, match=r"typo\.tsv:3: unknown label 'rian', not one of the classes of --classes"):
        read_manifest(typo, check_labels=True, classes=declared)
    with pytest.raises(ManifestError, match=r"fold1_train\.tsv:2: unknown label 'dog'.*not DCASE classes: declare "
                                            r"the data set's classes with --classes FILE \(asctool prepare writes "
                                            r"SETUP_classes\.txt\)$"):
        read_manifest(tmp_path / "out" / "fold1_train.tsv", check_labels=True)
    # DCASE labels with one typo are still refused by prepare itself
    _bytes(root / "evaluation_setup/fold1_train.csv", "filename\tscene_label\naudio/dog-x-1-1-a.wav\tpark\n"
           "audio/rain-x-3-1-a.wav\tparc\n")
    _bytes(root / "evaluation_setup/fold1_evaluate.csv", "filename\tscene_label\naudio/dog-x-2-1-a.wav\tbus\n"
           "audio/rain-x-4-1-a.wav\tbus\n")
    with pytest.raises(ManifestError, match=r"fold1_train\.csv: line 3: unknown scene label 'parc'"):
        prepare(root, tmp_path / "out2")


def _eval_root(tmp_path: Path, with_split: bool) -> Path:
    root = tmp_path / "eval"
    for name in ("0", "1", "airport-lisbon-9-9-b"):
        _write(root / "audio" / f"{name}.wav", "")
    if with_split:
        _bytes(root / "evaluation_setup/fold1_test.csv", "filename\naudio/1.wav\naudio/0.wav\n"
               "audio/airport-lisbon-9-9-b.wav")        # no final newline
    return root


@pytest.mark.parametrize("with_split", [True, False])
def test_dcase_evaluation_set_gives_an_unlabelled_test_manifest(tmp_path, with_split):
    root = _eval_root(tmp_path, with_split)
    summary = prepare(root, tmp_path / "out")
    assert summary["layout"] == "eval" and summary["counts"] == {"test": 3}
    assert set(summary["manifests"]) == {"test"}
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["fold1_info.json", "fold1_test.tsv"]
    test = read_manifest(tmp_path / "out" / "fold1_test.tsv")
    expected = ["1", "0", "airport-lisbon-9-9-b"] if with_split else ["0", "1", "airport-lisbon-9-9-b"]
    assert test.ids == expected and all(c.scene == "" for c in test)
    assert test.audio_path(test.clips[0]).resolve() == (root / "audio" / f"{expected[0]}.wav").resolve()
    assert test.clips[2].device == "b" and test.clips[0].device == ""
    assert [c.extra["filename"] for c in test] == [f"audio/{i}.wav" for i in expected]


def test_evaluation_set_missing_audio_is_one_message(tmp_path):
    root = _eval_root(tmp_path, True)
    (root / "audio" / "0.wav").unlink()
    with pytest.raises(ManifestError, match=r"eval: 1 of 3 listed audio files are missing: audio/0\.wav \(use "
                                            r"--no-check-audio"):
        prepare(root, tmp_path / "out")
    assert not (tmp_path / "out").exists()


ESC = ("filename,fold,target,category,esc10,src_file,take\n"
       "1-100-A-0.wav,1,0,dog,True,100,A\n"
       "1-101-A-1.wav,1,1,rain,False,101,A\n"
       "2-102-A-0.wav,2,0,dog,True,102,A\n"
       "2-103-B-1.wav,2,1,rain,False,103,B\n"
       "3-104-A-0.wav,3,0,dog,True,104,A\n"
       '3-105-A-2.wav,3,2,"crow, cawing",False,105,A\n')


def _esc_root(tmp_path: Path) -> Path:
    root = tmp_path / "ESC-50"
    _bytes(root / "meta" / "esc50.csv", ESC)
    for line in ESC.splitlines()[1:]:
        _write(root / "audio" / line.split(",")[0], "")
    return root


def test_metadata_csv_folds_are_disjoint_and_complete(tmp_path):
    root = _esc_root(tmp_path)
    every = set()
    for fold in (1, 2, 3):
        out = tmp_path / "out"
        summary = prepare(root, out, fold=str(fold))
        assert summary["layout"] == "metadata" and summary["setup"] == f"fold{fold}"
        assert summary["folds"] == {"1": 2, "2": 2, "3": 2} and summary["fold"] == str(fold)
        train = read_manifest(out / f"fold{fold}_train.tsv")
        evaluate = read_manifest(out / f"fold{fold}_evaluate.tsv")
        test = read_manifest(out / f"fold{fold}_test.tsv")
        assert not set(train.ids) & set(evaluate.ids)                                 # disjoint
        assert set(train.ids) | set(evaluate.ids) == {l.split(",")[0][:-4] for l in ESC.splitlines()[1:]}  # complete
        assert {c.extra["fold"] for c in evaluate} == {str(fold)} and str(fold) not in {c.extra["fold"] for c in train}
        assert test.ids == evaluate.ids and all(not c.scene for c in test)
        every.update(evaluate.ids)
    assert len(every) == 6                                                            # each clip evaluated once
    clip = read_manifest(tmp_path / "out" / "fold3_evaluate.tsv").clips[1]
    assert (clip.id, clip.scene, clip.device, clip.location) == ("3-105-A-2", "crow, cawing", "", "")
    assert clip.extra == {"fold": "3", "target": "2", "esc10": "False", "src_file": "105", "take": "A",
                          "filename": "audio/3-105-A-2.wav"}
    assert (tmp_path / "out" / "fold3_classes.txt").read_text() == "crow, cawing\ndog\nrain\n"
    everything = prepare(root, tmp_path / "all")
    assert everything["setup"] == "all" and set(everything["manifests"]) == {"train"}
    assert len(read_manifest(tmp_path / "all" / "all_train.tsv")) == 6


def test_metadata_csv_urbansound8k_style_and_other_column_names(tmp_path):
    root = tmp_path / "UrbanSound8K"
    rows = [("100-3-0-0.wav", "100", "1", "dog_bark"), ("101-5-0-0.wav", "101", "1", "siren"),
            ("102-3-0-0.wav", "102", "2", "dog_bark"), ("103-5-0-1.wav", "103", "2", "siren")]
    _bytes(root / "metadata" / "UrbanSound8K.csv", "slice_file_name,fsID,start,end,salience,fold,classID,class\n"
           + "".join(f"{f},{s},0,4,1,{k},0,{c}\n" for f, s, k, c in rows))
    for f, _, k, _ in rows:
        _write(root / "audio" / f"fold{k}" / f, "")
    summary = prepare(root, tmp_path / "out", fold="2")
    assert summary["audio_prefix"] == "audio/fold{fold}/" and summary["columns"]["label"] == "class"
    evaluate = read_manifest(tmp_path / "out" / "fold2_evaluate.tsv")
    assert evaluate.ids == ["102-3-0-0", "103-5-0-1"] and evaluate.clips[0].extra["fsID"] == "102"
    assert evaluate.audio_path(evaluate.clips[0]).resolve() == (root / "audio/fold2/102-3-0-0.wav").resolve()
    # other names: --filename-column, --label-column, --fold-column (tab-separated this time)
    other = tmp_path / "other"
    _bytes(other / "labels.tsv", "name\tkind\tcv\nx1.wav\tcat\tA\nx2.wav\tcow\tA\nx3.wav\tcat\tB\nx4.wav\tcow\tB\n")
    for i in range(1, 5):
        _write(other / f"x{i}.wav", "")
    result = CliRunner().invoke(cli, ["-q", "prepare", "--dataset-root", str(other), "--out-dir", str(tmp_path / "o"),
                                      "--filename-column", "name", "--label-column", "kind", "--fold-column", "cv",
                                      "--fold", "B"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["counts"] == {"train": 2, "evaluate": 2, "test": 2}
    assert read_manifest(tmp_path / "o" / "foldB_train.tsv").clips[0].extra == {"cv": "A", "filename": "x1.wav"}


@pytest.mark.parametrize("edit, args, message", [
    (lambda t: t, {"fold": "7"}, r"esc50\.csv: --fold 7: no such fold in column 'fold' \(folds: 1, 2, 3\)"),
    (lambda t: t, {"label_column": "kind"}, r"esc50\.csv: no column 'kind' \(--label-column\); found filename, fold"),
    (lambda t: t.replace("category", "what"), {}, r"esc50\.csv: no label column \(looked for label, category.*"
                                                   r"--label-column"),
    (lambda t: t.replace(",dog,True,104", ",,True,104"), {}, r"esc50\.csv:6: empty label \(column 'category'\)"),
    (lambda t: t.replace("fold,", "split,"), {"fold": "1"}, r"esc50\.csv: --fold 1: no fold column"),
    (lambda t: t.replace("2-102-A-0.wav", "1-100-A-0.wav"), {}, r"duplicate clip '1-100-A-0' on lines 2 and 4"),
    (lambda t: t + "9-9-A-0.wav,1,0,dog,True,9,A\n", {}, r"ESC-50: 1 of 7 listed audio files are missing: "
                                                          r"audio/9-9-A-0\.wav"),
])
def test_metadata_csv_errors_are_one_line_and_write_nothing(tmp_path, edit, args, message):
    root = _esc_root(tmp_path)
    _bytes(root / "meta" / "esc50.csv", edit(ESC))
    with pytest.raises(ManifestError, match=message) as caught:
        prepare(root, tmp_path / "out", **args)
    assert "\n" not in str(caught.value) and not (tmp_path / "out").exists()


def test_a_folder_per_class(tmp_path):
    root = tmp_path / "sounds"
    for name in ("dog/a.wav", "dog/b.WAV", "rain/c.flac", "rain/deep/d.wav", "rain/notes.txt", ".hidden/e.wav"):
        _write(root / name, "")
    summary = prepare(root, tmp_path / "out")
    assert (summary["layout"], summary["setup"], summary["counts"]) == ("folders", "all", {"train": 4})
    train = read_manifest(tmp_path / "out" / "all_train.tsv")
    assert [(c.id, c.scene, c.extra["filename"]) for c in train] == [
        ("a", "dog", "dog/a.wav"), ("b", "dog", "dog/b.WAV"), ("c", "rain", "rain/c.flac"),
        ("d", "rain", "rain/deep/d.wav")]
    assert (tmp_path / "out" / "all_classes.txt").read_text() == "dog\nrain\n"
    _write(root / "rain" / "a.wav", "")                      # the same stem in two classes: CLASS-STEM ids
    prepare(root, tmp_path / "out", force=True)
    assert read_manifest(tmp_path / "out" / "all_train.tsv").ids == ["dog-a", "dog-b", "rain-a", "rain-c", "rain-d"]
    (tmp_path / "classes.txt").write_text("dog\ncat\n")
    with pytest.raises(ManifestError, match=r"sounds/rain: unknown label 'rain' \(expected one of dog, cat\)"):
        prepare(root, tmp_path / "out3", classes_path=tmp_path / "classes.txt")


def test_layout_detection_and_option_errors(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    result = CliRunner().invoke(cli, ["prepare", "--dataset-root", str(empty), "--out-dir", str(tmp_path / "o")])
    assert result.exit_code == 1 and "no data set layout found" in result.output
    assert len(result.output.strip().splitlines()) == 1
    two = _esc_root(tmp_path)
    _bytes(two / "metadata" / "other.csv", "a,b\n")
    with pytest.raises(ManifestError, match=r"2 CSV/TSV files could be the metadata \(meta/esc50\.csv, "
                                            r"metadata/other\.csv\); name one with --metadata FILE"):
        prepare(two, tmp_path / "o")
    assert prepare(two, tmp_path / "o", metadata=two / "meta" / "esc50.csv")["counts"] == {"train": 6}
    root = _tiny_root(tmp_path)
    result = CliRunner().invoke(cli, ["prepare", "--dataset-root", str(root), "--out-dir", str(tmp_path / "o2"),
                                      "--fold", "1"])
    assert result.exit_code == 1 and ("--fold applies to a metadata CSV; this is a tau layout (its folds are "
                                      "evaluation_setup/foldK_*.csv: --setup foldK)") in result.output


def test_fold_on_class_folders_says_how_to_hold_out_an_evaluation_set(tmp_path):
    """(found on a folder-per-class set) --fold there: the one line says what to do instead, in English."""
    root = tmp_path / "db"
    for name in ("dog/a.wav", "dog/b.wav", "rain/c.wav", "rain/d.wav"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        sf.write(str(root / name), np.zeros(800, np.float32), 16000)
    result = CliRunner().invoke(cli, ["prepare", "--dataset-root", str(root), "--out-dir", str(tmp_path / "o"),
                                      "--fold", "1", "--label-column", "x"])
    assert result.exit_code == 1 and result.output.strip() == (
        f"Error: {root}: --fold, --label-column apply to a metadata CSV; this is a folders layout (no folds: hold "
        "out an evaluation set with asctool split --valid-split FRACTION, docs/own-data.md)")
    assert not (tmp_path / "o").exists()
