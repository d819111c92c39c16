"""Event labels and tagging metrics (asctool.tagging.metrics) against hand computations."""
from __future__ import annotations

import numpy as np
import pytest

from asctool.errors import ArtifactError
from asctool.tagging.metrics import mean_average_precision, multi_hot, tag_vocabulary, tagging_report


def _ap_by_hand(target, score):
    """Average precision as the mean, over positives, of the precision at each positive's rank (no ties)."""
    order = np.argsort(-np.asarray(score))
    hits = np.asarray(target)[order]
    precisions = np.cumsum(hits) / np.arange(1, len(hits) + 1)
    return precisions[hits == 1].mean()


def _auc_by_hand(target, score):
    """The probability that a positive outranks a negative (ties count one half)."""
    pos, neg = np.asarray(score)[np.asarray(target) == 1], np.asarray(score)[np.asarray(target) == 0]
    return np.mean([(p > n) + 0.5 * (p == n) for p in pos for n in neg])


def test_vocabulary_and_multi_hot():
    labels = ["dog;siren", " engine ", "", "siren;;dog"]
    names = tag_vocabulary(labels)
    assert names == ["dog", "engine", "siren"]
    np.testing.assert_array_equal(multi_hot(labels, names), [[1, 0, 1], [0, 1, 0], [0, 0, 0], [1, 0, 1]])
    with pytest.raises(ArtifactError, match="f.h5: clip b lists event 'bird', not one of the 3 tags"):
        multi_hot(["dog", "bird"], names, where="f.h5", ids=["a", "b"])


def test_map_and_auc_on_hand_made_scores_equal_hand_computations():
    targets = np.array([[1, 0, 0], [0, 1, 0], [1, 1, 0], [0, 0, 0], [1, 0, 0], [0, 1, 0]])
    scores = np.array([[0.9, 0.2, 0.1], [0.3, 0.8, 0.4], [0.2, 0.7, 0.3], [0.6, 0.1, 0.2],
                       [0.8, 0.3, 0.6], [0.1, 0.4, 0.5]])
    # tag 0: positives at ranks 1 (0.9), 2 (0.8) and 5 (0.2, after 0.6 and 0.3): AP = (1/1 + 2/2 + 3/5) / 3
    assert _ap_by_hand(targets[:, 0], scores[:, 0]) == pytest.approx((1 + 1 + 0.6) / 3)
    mean_ap, aps = mean_average_precision(targets, scores)
    expected = [_ap_by_hand(targets[:, c], scores[:, c]) for c in range(2)]
    assert aps[2] is None and aps[:2] == pytest.approx(expected)
    assert mean_ap == pytest.approx(np.mean(expected))
    report = tagging_report(targets, scores, ["dog", "siren", "engine"])
    assert report["mAP"] == pytest.approx(np.mean(expected))
    assert report["per_tag"]["dog"]["auc"] == pytest.approx(_auc_by_hand(targets[:, 0], scores[:, 0]))
    assert report["per_tag"]["siren"]["auc"] == pytest.approx(_auc_by_hand(targets[:, 1], scores[:, 1]))
    assert report["per_tag"]["engine"] == {"positives": 0, "ap": None, "auc": None}
    assert report["mean_auc"] == pytest.approx(np.mean([_auc_by_hand(targets[:, c], scores[:, c]) for c in range(2)]))
