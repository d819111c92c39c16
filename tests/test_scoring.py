"""asctool score: metrics against a hand-computed example, report, submission, CLI."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
from click.testing import CliRunner

from asctool import scoring
from asctool.artifacts import write_scores
from asctool.cli import cli
from asctool.errors import ConfigError, MismatchError

# Six clips, three classes, devices a, b, s1.
#   clip ref   device probs               predicted
#   c1   bus   a      .70 .20 .10         bus   right
#   c2   bus   a      .20 .50 .30         park  wrong
#   c3   park  a      .10 .80 .10         park  right
#   c4   park  b      .25 .50 .25         park  right
#   c5   park  b      .60 .10 .30         bus   wrong
#   c6   tram  s1     .10 .10 .80         tram  right
CLASSES = ["bus", "park", "tram"]
IDS = ["c1", "c2", "c3", "c4", "c5", "c6"]
SCENES = ["bus", "bus", "park", "park", "park", "tram"]
DEVICES = ["a", "a", "a", "b", "b", "s1"]
PROBS = np.array([
    [0.70, 0.20, 0.10],
    [0.20, 0.50, 0.30],
    [0.10, 0.80, 0.10],
    [0.25, 0.50, 0.25],
    [0.60, 0.10, 0.30],
    [0.10, 0.10, 0.80],
])
REFERENCE = np.array([0, 0, 1, 1, 1, 2])
# probability of the reference class, clip by clip
P_TRUE = [0.7, 0.2, 0.8, 0.5, 0.1, 0.8]


def _ll(values):
    return -sum(math.log(v) for v in values) / len(values)


def _write(path, scenes=SCENES, devices=DEVICES, probs=PROBS, classes=CLASSES, ids=IDS):
    return write_scores(path, ids=ids, scores=probs, classes=classes, scenes=scenes, devices=devices)


# --------------------------------------------------------------------------
# pure metrics
# --------------------------------------------------------------------------
def test_metrics_on_the_hand_computed_example():
    predicted = PROBS.argmax(axis=1)
    assert scoring.accuracy(REFERENCE, predicted) == pytest.approx(4 / 6)
    # bus 1/2, park 2/3, tram 1/1
    assert scoring.macro_accuracy(REFERENCE, predicted, 3) == pytest.approx((1 / 2 + 2 / 3 + 1) / 3)
    assert scoring.log_loss(REFERENCE, PROBS) == pytest.approx(_ll(P_TRUE))
    np.testing.assert_array_equal(
        scoring.confusion_matrix(REFERENCE, predicted, 3), [[1, 1, 0], [1, 2, 0], [0, 0, 1]]
    )


def test_log_loss_normalises_before_clipping():
    # rows summing to 2 (summed ensemble scores): normalised first, so ln(0.7)
    assert scoring.log_loss([0], np.array([[1.4, 0.4, 0.2]])) == pytest.approx(-math.log(0.7))
    # a zero probability of the reference class is clipped to 1e-15
    assert scoring.log_loss([0], np.array([[0.0, 1.0, 0.0]])) == pytest.approx(-math.log(1e-15))


def test_macro_accuracy_ignores_classes_absent_from_the_reference():
    # class 2 never occurs in the reference: mean of class 0 (1/1) and class 1 (0/2)
    assert scoring.macro_accuracy([0, 1, 1], [0, 0, 2], 3) == pytest.approx(0.5)


def test_compute_report_devices_groups_classes():
    report = scoring.compute_report(PROBS, CLASSES, REFERENCE, DEVICES, scoring.packaged_groups())
    assert report["n"] == 6
    assert report["overall"]["accuracy"] == pytest.approx(4 / 6)
    assert report["overall"]["macro_accuracy"] == pytest.approx(13 / 18)
    assert list(report["devices"]) == ["a", "b", "s1"]
    assert report["devices"]["a"] == pytest.approx({"n": 3, "accuracy": 2 / 3, "log_loss": _ll([0.7, 0.2, 0.8])})
    assert report["devices"]["b"] == pytest.approx({"n": 2, "accuracy": 1 / 2, "log_loss": _ll([0.5, 0.1])})
    assert report["devices"]["s1"] == pytest.approx({"n": 1, "accuracy": 1.0, "log_loss": _ll([0.8])})
    # s4-s6 has no device present, so it is not reported; B&C holds only b here
    assert list(report["groups"]) == ["A", "B&C", "s1-s3"]
    assert report["groups"]["B&C"]["n"] == 2
    assert report["groups"]["B&C"]["accuracy"] == pytest.approx(0.5)
    assert report["groups"]["B&C"]["devices"] == ["b"]
    assert report["classes"]["park"] == pytest.approx({"n": 3, "accuracy": 2 / 3})
    assert report["confusion"] == [[1, 1, 0], [1, 2, 0], [0, 0, 1]]


# --------------------------------------------------------------------------
# the stage
# --------------------------------------------------------------------------
def test_score_writes_json_in_the_design_shape(tmp_path):
    scores = _write(tmp_path / "s.h5")
    report = scoring.score(scores, json_path=tmp_path / "r.json")
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
    report = scoring.score(scores, groups=groups)
    assert list(report["groups"]) == ["real", "simulated"]
    assert report["groups"]["real"]["n"] == 5
    assert report["groups"]["real"]["accuracy"] == pytest.approx(3 / 5)


def test_bad_groups_file_is_refused(tmp_path):
    scores = _write(tmp_path / "s.h5")
    groups = tmp_path / "groups.yaml"
    groups.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="groups.yaml: device groups must be a mapping"):
        scoring.score(scores, groups=groups)


def test_labels_coarse_scores_3_class_scores_of_scene_labelled_clips(tmp_path):
    scenes = ["bus", "airport", "park", "tram", "shopping_mall", "street_traffic"]
    # classes indoor, outdoor, transportation; predicted: trans, indoor, outdoor, outdoor, indoor, outdoor
    probs = np.array([
        [0.1, 0.1, 0.8], [0.6, 0.3, 0.1], [0.2, 0.7, 0.1],
        [0.1, 0.5, 0.4], [0.5, 0.4, 0.1], [0.3, 0.4, 0.3],
    ])
    scores = _write(tmp_path / "s.h5", scenes=scenes, probs=probs, classes=["indoor", "outdoor", "transportation"])
    report = scoring.score(scores, labels="coarse")
    # references: trans, indoor, outdoor, trans, indoor, outdoor -> 5 of 6 right (tram wrong)
    assert report["overall"]["accuracy"] == pytest.approx(5 / 6)
    assert report["classes"]["transportation"] == pytest.approx({"n": 2, "accuracy": 0.5})
    # without the map, the scene labels do not match the class list
    with pytest.raises(MismatchError) as info:
        scoring.score(scores, json_path=tmp_path / "r.json")
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
    assert scoring.score(scores, labels=label_map)["overall"]["accuracy"] == pytest.approx(4 / 6)
    label_map.write_text("x1\tbus\nx2\tpark\n")
    with pytest.raises(MismatchError, match=r"s.h5: reference scene\(s\) x3 not in the label map"):
        scoring.score(scores, labels=label_map)


def test_unlabelled_scores_still_write_a_submission(tmp_path):
    scores = _write(tmp_path / "s.h5", scenes=None)
    report = scoring.score(scores, submission=tmp_path / "out.csv", json_path=tmp_path / "r.json")
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
        scoring.score(scores, plot=tmp_path / "cm.png")
    assert not (tmp_path / "cm.png").exists()


def test_partially_labelled_scores_are_refused(tmp_path):
    scores = _write(tmp_path / "s.h5", scenes=["bus", "", "park", "park", "park", "tram"])
    with pytest.raises(MismatchError, match=r"s.h5: 1 of 6 clips have no reference label"):
        scoring.score(scores)


def test_plot_writes_a_png(tmp_path):
    scores = _write(tmp_path / "s.h5")
    scoring.score(scores, plot=tmp_path / "cm.png")
    assert (tmp_path / "cm.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_format_report_says_micro_and_macro():
    report = scoring.compute_report(PROBS, CLASSES, REFERENCE, DEVICES, scoring.packaged_groups())
    text = scoring.format_report(report)
    assert "accuracy, micro (share of all clips)         66.67 %" in text
    assert "accuracy, macro (mean of class accuracies)   72.22 %" in text
    assert " 1 park     1   2   0" in text


# --------------------------------------------------------------------------
# command line
# --------------------------------------------------------------------------
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
