"""asctool.scoring: metrics against a hand-computed example, report layout and text."""
from __future__ import annotations

import math

import numpy as np
import pytest

from asctool import scoring

from helpers import DEVICES, P_TRUE, PROBS, REFERENCE
from helpers import SCORE_CLASSES as CLASSES
from helpers import expected_log_loss as _ll


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
def test_format_report_says_micro_and_macro():
    report = scoring.compute_report(PROBS, CLASSES, REFERENCE, DEVICES, scoring.packaged_groups())
    text = scoring.format_report(report)
    assert "accuracy, micro (share of all clips)         66.67 %" in text
    assert "accuracy, macro (mean of class accuracies)   72.22 %" in text
    assert " 1 park     1   2   0" in text


# --------------------------------------------------------------------------
# command line
# --------------------------------------------------------------------------
