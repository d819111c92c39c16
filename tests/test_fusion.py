"""asctool.fusion: hand-computed combinations, the weight choice, the method registries."""
from __future__ import annotations

import math

import numpy as np
import pytest

from asctool import fusion
from asctool.errors import ConfigError
from asctool.labels import COARSE_CLASSES, SCENES

from helpers import COARSE, FINE, P_COARSE, P_FINE


# --------------------------------------------------------------------------
# fusion (pure)
# --------------------------------------------------------------------------
def test_fuse_probabilities_by_hand():
    parents = fusion.parent_index(FINE, COARSE, {"a1": "A", "a2": "A", "b1": "B", "b2": "B"})
    np.testing.assert_array_equal(parents, [0, 0, 1, 1])
    fused = fusion.fuse_probabilities(P_FINE, P_COARSE, parents, 1.0)
    np.testing.assert_allclose(fused[0], [0.16, 0.04, 0.48, 0.32])
    np.testing.assert_allclose(fused[1], np.array([0.09, 0.18, 0.03, 0.04]) / 0.34)
    # w = 2: coarse squared, (0.04, 0.64)
    fused2 = fusion.fuse_probabilities(P_FINE, P_COARSE, parents, 2.0)
    np.testing.assert_allclose(fused2[0], np.array([0.016, 0.004, 0.192, 0.128]) / 0.34)
    # w = 0: the fine stage alone
    np.testing.assert_allclose(fusion.fuse_probabilities(P_FINE, P_COARSE, parents, 0.0), P_FINE)
    # a row whose product is zero everywhere keeps p_fine
    dead = fusion.fuse_probabilities([[0.5, 0.5, 0.0, 0.0]], [[0.0, 1.0]], parents, 1.0)
    np.testing.assert_allclose(dead, [[0.5, 0.5, 0.0, 0.0]])


def test_oracle_gating_restricts_to_the_true_parent():
    parents = np.array([0, 0, 1, 1])
    predicted = fusion.oracle_gating(P_FINE, parents, np.array([0, 3, 3, 0]))
    np.testing.assert_array_equal(predicted, [0, 3, 3, 0])


def test_packaged_hierarchy_parents():
    from asctool.labels import packaged_hierarchy

    parents = fusion.parent_index(SCENES, COARSE_CLASSES, packaged_hierarchy())
    # indoor 0, outdoor 1, transportation 2
    np.testing.assert_array_equal(parents, [0, 2, 2, 0, 1, 1, 0, 1, 1, 2])


def test_select_coarse_weight_by_hand():
    # v1 is like f3 (fine wrong, fused right), v2 like f4 (both right)
    p_fine = P_FINE[[2, 3]]
    p_coarse = P_COARSE[[2, 3]]
    best, table = fusion.select_coarse_weight(p_fine, p_coarse, np.array([0, 0, 1, 1]), np.array([3, 0]), [0, 1, 2])
    assert [row["accuracy"] for row in table] == [0.5, 1.0, 1.0]
    # w = 1 and w = 2 tie on accuracy; w = 2 has the lower log loss
    ll1 = -(math.log(0.27 / 0.38) + math.log(0.30 / 0.54)) / 2
    ll2 = -(math.log(0.243 / 0.29) + math.log(0.18 / 0.30)) / 2
    assert table[1]["log_loss"] == pytest.approx(ll1)
    assert table[2]["log_loss"] == pytest.approx(ll2)
    assert best == 2.0


def test_fusion_method_registry():
    assert fusion.fusion_methods()[0] == "two-stage"
    assert fusion.get_fusion_method("two-stage").func is fusion.fuse_probabilities
    with pytest.raises(ConfigError, match="unknown fusion method; known: two-stage"):
        fusion.get_fusion_method("nope")
    with pytest.raises(ValueError, match="registered twice"):
        fusion.fusion_method("two-stage")(fusion.fuse_probabilities)
    with pytest.raises(ValueError, match="lower-case"):
        fusion.fusion_method("Bad Name")(fusion.fuse_probabilities)
    with pytest.raises(ConfigError, match="unknown fusion method"):
        fusion.select_coarse_weight(P_FINE, P_COARSE, np.array([0, 0, 1, 1]), np.array([0, 3, 3, 0]), [1], method="nope")


def test_weight_grid_and_weight_checks():
    assert fusion.parse_weight_grid("0, 0.5,2") == [0.0, 0.5, 2.0]
    assert fusion.parse_weight_grid((1, 2)) == [1.0, 2.0]
    with pytest.raises(ConfigError, match="not a comma-separated list"):
        fusion.parse_weight_grid("0,x")
    with pytest.raises(ConfigError, match="no weights given"):
        fusion.parse_weight_grid("")
    with pytest.raises(ConfigError, match="--coarse-weight -1.0: weights must be finite numbers >= 0"):
        fusion.check_weight(-1.0)


# --------------------------------------------------------------------------
# ensembles (pure)
# --------------------------------------------------------------------------
def test_parse_weights():
    np.testing.assert_allclose(fusion.parse_weights("1,3", 2), [0.25, 0.75])
    np.testing.assert_allclose(fusion.parse_weights(None, 4), [0.25] * 4)
    with pytest.raises(ConfigError, match=r"--weights '1,2,3': 3 weights for 2 members"):
        fusion.parse_weights("1,2,3", 2)
    with pytest.raises(ConfigError, match="not a comma-separated list of numbers"):
        fusion.parse_weights("1,x", 2)
    with pytest.raises(ConfigError, match="non-negative and not all 0"):
        fusion.parse_weights("1,-1", 2)


def test_fit_logreg_with_a_huge_penalty_learns_the_class_priors():
    # coef is pushed to 0, so softmax(intercept) is the maximum-likelihood prior: 3/4, 1/4
    x = np.array([[1.0, -2.0], [0.5, 0.3], [-1.0, 2.0], [2.0, 1.0]])
    model = fusion.fit_logreg(x, np.array([0, 0, 0, 1]), 2, l2=1e6)
    np.testing.assert_allclose(model.coef, 0.0, atol=1e-5)
    np.testing.assert_allclose(fusion.predict_logreg(x, model), [[0.75, 0.25]] * 4, atol=1e-4)


def test_fit_logreg_reaches_the_optimum():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(60, 4))
    y = rng.integers(0, 3, size=60)
    l2 = 0.1
    model = fusion.fit_logreg(x, y, 3, l2=l2)
    p = fusion.predict_logreg(x, model)
    onehot = np.eye(3)[y]
    # the gradient of mean cross-entropy + l2/2 |W|^2 vanishes at the optimum
    np.testing.assert_allclose(x.T @ (p - onehot) / 60 + l2 * model.coef, 0.0, atol=1e-5)
    np.testing.assert_allclose((p - onehot).sum(axis=0) / 60, 0.0, atol=1e-5)
    assert model.converged


def test_ensemble_method_registry():
    assert fusion.ensemble_methods()[:2] == ["mean", "logreg"]
    mean, logreg = fusion.get_ensemble_method("mean"), fusion.get_ensemble_method("logreg")
    assert mean.weighted and mean.fit is None and logreg.fit is not None and not logreg.weighted
    probs = [np.array([[0.6, 0.4], [0.2, 0.8]]), np.array([[0.2, 0.8], [0.4, 0.6]])]
    np.testing.assert_allclose(mean.combine(probs, weights=np.array([0.25, 0.75]), fitted=None),
                               fusion.mean_ensemble(probs, np.array([0.25, 0.75])))
    fitted = logreg.fit(probs, np.array([0, 1]), 2)
    assert isinstance(fitted, fusion.LogReg) and fitted.summary() == {"converged": fitted.converged}
    np.testing.assert_allclose(logreg.combine(probs, weights=None, fitted=fitted),
                               fusion.predict_logreg(fusion.logreg_features(probs), fitted))
    with pytest.raises(ConfigError, match="unknown ensemble method; known: mean, logreg"):
        fusion.get_ensemble_method("median")
    with pytest.raises(ValueError, match="registered twice"):
        fusion.ensemble_method("mean")(lambda probs, **_: probs[0])
    with pytest.raises(ValueError, match="none of"):
        fusion.ensemble_method("weights")(lambda probs, **_: probs[0])
