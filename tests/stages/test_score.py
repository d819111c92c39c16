"""The score stage: JSON report, groups, label maps, submission, plot, CLI."""
from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from asctool import scoring  # noqa: F401
from asctool.cli import cli
from asctool.errors import ConfigError, MismatchError

from helpers import P_TRUE
from helpers import SCORE_CLASSES as CLASSES
from helpers import expected_log_loss as _ll
from helpers import write_example_scores as _write
from helpers import write_raw_scores


from asctool.stages.score import run as score  # noqa: E402


def test_score_writes_json_in_the_design_shape(tmp_path):
    scores = _write(tmp_path / "s.h5")
    report = score(scores, json_path=tmp_path / "r.json")
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["n"] == 6
    assert data["class_order"] == CLASSES
    assert data["overall"]["accuracy"] == pytest.approx(4 / 6)
    assert data["overall"]["macro_accuracy"] == pytest.approx(13 / 18)
    assert data["overall"]["log_loss"] == pytest.approx(_ll(P_TRUE), rel=1e-6)
    assert set(data["groups"]) == {"A", "B&C", "s1-s3"}
    assert list(data["classes"]) == CLASSES
    assert data["confusion"] == [[1, 1, 0], [1, 2, 0], [0, 0, 1]]
    assert report["overall"] == data["overall"]
    assert not list(tmp_path.glob("*.tmp-*"))


def test_score_with_custom_groups(tmp_path):
    scores = _write(tmp_path / "s.h5")
    groups = tmp_path / "groups.yaml"
    groups.write_text("real: [a, b]\nsimulated: [s1, s2]\nnone: [z]\n")
    report = score(scores, groups=groups)
    assert list(report["groups"]) == ["real", "simulated"]
    assert report["groups"]["real"]["n"] == 5
    assert report["groups"]["real"]["accuracy"] == pytest.approx(3 / 5)


def test_bad_groups_file_is_refused(tmp_path):
    scores = _write(tmp_path / "s.h5")
    groups = tmp_path / "groups.yaml"
    groups.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="groups.yaml: device groups must be a mapping"):
        score(scores, groups=groups)


def test_labels_coarse_scores_3_class_scores_of_scene_labelled_clips(tmp_path):
    scenes = ["bus", "airport", "park", "tram", "shopping_mall", "street_traffic"]
    # classes indoor, outdoor, transportation; predicted: trans, indoor, outdoor, outdoor, indoor, outdoor
    probs = np.array([
        [0.1, 0.1, 0.8], [0.6, 0.3, 0.1], [0.2, 0.7, 0.1],
        [0.1, 0.5, 0.4], [0.5, 0.4, 0.1], [0.3, 0.4, 0.3],
    ])
    scores = _write(tmp_path / "s.h5", scenes=scenes, probs=probs, classes=["indoor", "outdoor", "transportation"])
    report = score(scores, labels="coarse")
    # references: trans, indoor, outdoor, trans, indoor, outdoor -> 5 of 6 right (tram wrong)
    assert report["overall"]["accuracy"] == pytest.approx(5 / 6)
    assert report["classes"]["transportation"] == pytest.approx({"n": 2, "accuracy": 0.5})
    # without the map, the scene labels do not match the class list
    with pytest.raises(MismatchError) as info:
        score(scores, json_path=tmp_path / "r.json")
    assert str(info.value) == (
        f"{scores}: reference label 'airport' is not in the class list [indoor, outdoor, transportation]: "
        "the class list of the scores does not match its labels (use --labels coarse to map scenes to "
        "the coarse classes)"
    )
    assert not (tmp_path / "r.json").exists()


def test_labels_from_a_tsv_map(tmp_path):
    scores = _write(tmp_path / "s.h5", scenes=["x1", "x1", "x2", "x2", "x2", "x3"])
    label_map = tmp_path / "map.tsv"
    label_map.write_text("x1\tbus\nx2\tpark\nx3\ttram\n")
    assert score(scores, labels=label_map)["overall"]["accuracy"] == pytest.approx(4 / 6)
    label_map.write_text("x1\tbus\nx2\tpark\n")
    with pytest.raises(MismatchError, match=r"s.h5: reference scene\(s\) x3 not in the label map"):
        score(scores, labels=label_map)


def test_unlabelled_scores_still_write_a_submission(tmp_path):
    scores = _write(tmp_path / "s.h5", scenes=None)
    report = score(scores, submission=tmp_path / "out.csv", json_path=tmp_path / "r.json")
    assert report["labelled"] is False
    assert "overall" not in report
    assert report["predicted"] == {"bus": 2, "park": 3, "tram": 1}
    text = (tmp_path / "out.csv").read_text()
    lines = text.splitlines()
    assert lines[0] == "filename\tscene_label\tbus\tpark\ttram"
    assert lines[1] == "audio/c1.wav\tbus\t0.700000\t0.200000\t0.100000"
    assert lines[5] == "audio/c5.wav\tbus\t0.600000\t0.100000\t0.300000"
    assert len(lines) == 7 and text.endswith("\n")
    assert "no reference labels: nothing to score" in scoring.format_report(report)
    with pytest.raises(Exception, match="no reference labels, so no confusion matrix to plot"):
        score(scores, plot=tmp_path / "cm.png")
    assert not (tmp_path / "cm.png").exists()


def test_partially_labelled_scores_are_refused(tmp_path):
    scores = _write(tmp_path / "s.h5", scenes=["bus", "", "park", "park", "park", "tram"])
    with pytest.raises(MismatchError, match=r"s.h5: 1 of 6 clips have no reference label"):
        score(scores)


def test_plot_writes_a_png(tmp_path):
    scores = _write(tmp_path / "s.h5")
    score(scores, plot=tmp_path / "cm.png")
    assert (tmp_path / "cm.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_score_prints_the_table_and_writes_json(tmp_path):
    scores = _write(tmp_path / "s.h5")
    result = CliRunner().invoke(cli, ["score", str(scores), "--json", str(tmp_path / "r.json")])
    assert result.exit_code == 0, result.output
    assert "accuracy, micro" in result.stdout
    assert "B&C" in result.stdout
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["devices"]["b"]["accuracy"] == pytest.approx(0.5)


def test_cli_score_error_exits_1_with_one_line(tmp_path):
    scores = _write(tmp_path / "s.h5", scenes=["bus", "bus", "park", "park", "park", "metro"])
    result = CliRunner().invoke(cli, ["score", str(scores), "--json", str(tmp_path / "r.json")])
    assert result.exit_code == 1
    assert "reference label 'metro' is not in the class list [bus, park, tram]" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "r.json").exists()


# --------------------------------------------------------------------------
# outputs: all checked before any is written, none overwritten without --force (issue 9, items 16, 19)
# --------------------------------------------------------------------------
def test_no_output_is_written_unless_all_can_be(tmp_path, one_line_error, tree):
    """The issue's example: --submission s.csv --json FILE/r.json wrote s.csv and then failed."""
    scores = _write(tmp_path / "s.h5")
    (tmp_path / "FILE").write_text("a file, not a folder")
    before = tree(tmp_path)
    done = CliRunner().invoke(cli, ["score", str(scores), "--submission", str(tmp_path / "s.csv"),
                                    "--json", str(tmp_path / "FILE" / "r.json")])
    one_line_error(done, f"{tmp_path / 'FILE' / 'r.json'}: cannot be written: {tmp_path / 'FILE'} is not a folder")
    assert tree(tmp_path) == before


def test_a_plot_in_a_read_only_folder_stops_the_json_too(tmp_path, read_only_dir, one_line_error, tree):
    scores = _write(tmp_path / "s.h5")
    before = tree(tmp_path)
    done = CliRunner().invoke(cli, ["score", str(scores), "--json", str(tmp_path / "r.json"),
                                    "--plot", str(read_only_dir / "confusion.png")])
    one_line_error(done, "confusion.png: cannot be written: no permission to write in")
    assert tree(tmp_path) == before


@pytest.mark.parametrize("option, name", [("--json", "r.json"), ("--submission", "s.csv"), ("--plot", "c.png")])
def test_existing_outputs_need_force(tmp_path, one_line_error, option, name):
    scores = _write(tmp_path / "s.h5")
    (tmp_path / name).write_text("earlier")
    args = ["score", str(scores), option, str(tmp_path / name)]
    one_line_error(CliRunner().invoke(cli, args), f"{tmp_path / name}: already exists (use --force to overwrite)")
    assert (tmp_path / name).read_text() == "earlier"
    done = CliRunner().invoke(cli, [*args, "--force"])
    assert done.exit_code == 0, done.output
    assert (tmp_path / name).read_bytes() != b"earlier"
    one_line_error(CliRunner().invoke(cli, ["score", str(scores), option, str(scores), "--force"]),
                   "is also an input")


# --------------------------------------------------------------------------
# silent wrong results refused, user files accepted (issue 9 items 7 and 18)
# --------------------------------------------------------------------------
def test_a_scores_file_without_clips_is_an_error(tmp_path):
    empty = write_raw_scores(tmp_path / "e.h5", [], np.zeros((0, 3)), CLASSES)
    result = CliRunner().invoke(cli, ["score", str(empty), "--json", str(tmp_path / "r.json")])
    assert result.exit_code == 1 and "e.h5: scores file holds no clips" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "r.json").exists()


def test_classes_written_as_an_hdf5_string_array_are_accepted(tmp_path):
    """What h5py users write by habit (``attrs["classes"] = [...]``) gave a TypeError traceback."""
    import h5py

    from helpers import DEVICES, IDS, PROBS, SCENES

    reference = score(_write(tmp_path / "ref.h5"))
    for name, attr in (("vlen.h5", np.array(CLASSES, dtype=h5py.string_dtype())),
                       ("fixed.h5", np.array([c.encode() for c in CLASSES]))):
        path = write_raw_scores(tmp_path / name, IDS, PROBS, CLASSES, scenes=SCENES, classes_attr=attr)
        with h5py.File(path, "a") as handle:
            handle.create_dataset("device", data=DEVICES, dtype=h5py.string_dtype())
        result = CliRunner().invoke(cli, ["score", str(path), "--json", str(tmp_path / f"{name}.json")])
        assert result.exit_code == 0, result.output
        report = json.loads((tmp_path / f"{name}.json").read_text())
        assert report["overall"] == reference["overall"] and report["class_order"] == CLASSES
        assert report["groups"] == reference["groups"] and report["confusion"] == reference["confusion"]


# --------------------------------------------------------------------------
# issue 14: data sets beyond DCASE
# --------------------------------------------------------------------------
from asctool.artifacts import write_scores  # noqa: E402

ANIMALS = {"dog": "animal", "cat": "animal", "rain": "nature", "wind": "nature", "car": "urban"}


def _coarse_scores(path, *, carry: bool):
    """5-to-3-class scores of clips labelled with the fine classes; the map they were trained with when ``carry``."""
    scenes = ["dog", "cat", "rain", "wind", "car", "dog"]
    probs = np.array([[0.8, 0.1, 0.1], [0.2, 0.7, 0.1], [0.1, 0.8, 0.1],
                      [0.1, 0.2, 0.7], [0.1, 0.1, 0.8], [0.3, 0.6, 0.1]])   # classes animal, nature, urban
    return write_scores(path, ids=[f"c{i}" for i in range(6)], scores=probs, classes=["animal", "nature", "urban"],
                        scenes=scenes, extra_attrs={"label_map": json.dumps(ANIMALS)} if carry else None)


def test_coarse_scores_use_the_map_they_carry(tmp_path):
    """(issue 14) without --labels: "reference label 'dog' is not in the class list"; the scores carry the map."""
    report = score(_coarse_scores(tmp_path / "s.h5", carry=True))
    # references animal, animal, nature, nature, urban, animal; predicted animal, nature, nature, urban, urban, nature
    assert report["overall"]["accuracy"] == pytest.approx(3 / 6)
    assert report["labels"] == "the map the scores carry (their model's --labels)"
    assert report["classes"]["animal"] == {"n": 3, "accuracy": pytest.approx(1 / 3)}
    with pytest.raises(MismatchError, match="reference label 'car' is not in the class list"):
        score(_coarse_scores(tmp_path / "t.h5", carry=True), labels="scene")      # an explicit --labels wins


def test_coarse_scores_without_a_map_hint_labels(tmp_path):
    scores = _coarse_scores(tmp_path / "s.h5", carry=False)
    result = CliRunner().invoke(cli, ["score", str(scores)])
    assert result.exit_code == 1 and len(result.output.strip().splitlines()) == 1
    assert ("reference label 'car' is not in the class list [animal, nature, urban]: the class list of the scores "
            "does not match its labels (for scores of coarser classes than the labels, give the map from labels "
            "to classes with --labels MAP.tsv, one 'label<TAB>class' per line)") in result.output
    (tmp_path / "map.tsv").write_text("".join(f"{k}\t{v}\n" for k, v in ANIMALS.items()))
    assert score(scores, labels=tmp_path / "map.tsv")["overall"]["accuracy"] == pytest.approx(3 / 6)


@pytest.mark.parametrize("devices, line", [
    (None, "no device information: figures per class below"),
    ([""] * 6, "no device information: figures per class below"),
    (["a"] * 6, "one device (a): its figures are the overall ones; per class below"),
])
def test_no_device_information_reports_per_class_without_empty_groups(tmp_path, devices, line):
    """(issue 14) score printed a device-group table with only "A" when there was no device information."""
    report = score(_write(tmp_path / "s.h5", devices=devices))
    assert report["groups"] == {}
    text = scoring.format_report(report)
    assert line in text.splitlines()
    assert "group " not in text and "\nA " not in text and "\ndevice " not in text
    assert "\nclass " in text and "tram" in text


def test_submission_lists_the_manifests_file_names(tmp_path):
    """(issue 14) --submission wrote audio/<id>.wav instead of the manifest's path."""
    scores = _write(tmp_path / "s.h5", scenes=None)
    manifest = tmp_path / "m.tsv"
    rows = "".join(f"c{i}\t../data/audio/fold{i % 2}/c{i}.wav\t\t{'' if i == 2 else f'audio/fold{i % 2}/c{i}.wav'}\n"
                   for i in range(1, 7))
    manifest.write_text("id\tpath\tscene\tfilename\n" + rows)
    score(scores, submission=tmp_path / "out.csv", manifest=manifest)
    lines = (tmp_path / "out.csv").read_text().splitlines()
    assert [line.split("\t")[0] for line in lines[1:]] == [
        "audio/fold1/c1.wav", "../data/audio/fold0/c2.wav", "audio/fold1/c3.wav", "audio/fold0/c4.wav",
        "audio/fold1/c5.wav", "audio/fold0/c6.wav"]
    manifest.write_text("id\tpath\nc1\tc1.wav\n")
    with pytest.raises(MismatchError, match=r"s\.h5: 5 of 6 clips are not in the manifest \(e\.g\. c2\)"):
        score(scores, submission=tmp_path / "out2.csv", manifest=manifest)
    assert not (tmp_path / "out2.csv").exists()
    with pytest.raises(ConfigError, match="--manifest names the submission's file names"):
        score(scores, manifest=manifest)
