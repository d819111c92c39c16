"""asctool ensemble and fuse: hand-computed combinations, joins by id, refusals."""
from __future__ import annotations

import json
import math

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from asctool import fusion
from asctool.artifacts import read_scores, write_scores
from asctool.cli import cli
from asctool.errors import ConfigError, ManifestError, MismatchError
from asctool.labels import COARSE_CLASSES, SCENES

# --------------------------------------------------------------------------
# two-stage example: fine a1 a2 (parent A), b1 b2 (parent B)
#   clip ref  p_fine                 p_coarse  fine alone  fused (w=1)
#   f1   a1   .40 .10 .30 .20        .2 .8     a1 right    .16 .04 .48 .32 -> b1 wrong
#   f2   b2   .10 .20 .30 .40        .9 .1     b2 right    .09 .18 .03 .04 -> a2 wrong
#   f3   b2   .30 .35 .05 .30        .1 .9     a2 wrong    .03 .035 .045 .27 -> b2 right
#   f4   a1   .50 .20 .20 .10        .6 .4     a1 right    .30 .12 .08 .04 -> a1 right
# coarse stage: f1 B (ref A) wrong, f2 A (ref B) wrong, f3 B right, f4 A right
# oracle gating: f1 a1, f2 b2, f3 b2, f4 a1: all right
# --------------------------------------------------------------------------
FINE = ["a1", "a2", "b1", "b2"]
COARSE = ["A", "B"]
IDS = ["f1", "f2", "f3", "f4"]
REF = ["a1", "b2", "b2", "a1"]
P_FINE = np.array([[0.4, 0.1, 0.3, 0.2], [0.1, 0.2, 0.3, 0.4], [0.3, 0.35, 0.05, 0.3], [0.5, 0.2, 0.2, 0.1]])
P_COARSE = np.array([[0.2, 0.8], [0.9, 0.1], [0.1, 0.9], [0.6, 0.4]])


@pytest.fixture()
def hierarchy(tmp_path):
    path = tmp_path / "hierarchy.tsv"
    path.write_text("fine\tcoarse\na1\tA\na2\tA\nb1\tB\nb2\tB\n")
    return path


def _scores(path, ids, probs, classes, scenes=None, devices=None):
    return write_scores(path, ids=ids, scores=np.asarray(probs), classes=classes, scenes=scenes,
                        devices=devices if devices is not None else ["a"] * len(ids))


def _pair(tmp_path, order=(0, 1, 2, 3), prefix=""):
    fine = _scores(tmp_path / f"{prefix}fine.h5", IDS, P_FINE, FINE, REF)
    order = list(order)
    coarse = _scores(tmp_path / f"{prefix}coarse.h5", [IDS[i] for i in order], P_COARSE[order], COARSE,
                     [REF[i] for i in order])
    return fine, coarse


# --------------------------------------------------------------------------
# fuse: pure functions
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


# --------------------------------------------------------------------------
# fuse: the stage
# --------------------------------------------------------------------------
def test_fuse_summary_and_output(tmp_path, hierarchy):
    fine, coarse = _pair(tmp_path)
    summary = fusion.fuse(fine, coarse, tmp_path / "out.h5", hierarchy=hierarchy)
    assert summary["coarse_weight"] == 1.0
    assert summary["accuracy"] == pytest.approx({"fine": 0.75, "coarse": 0.5, "fused": 0.5, "oracle_gating": 1.0})
    out = read_scores(tmp_path / "out.h5")
    assert list(out.ids) == IDS
    assert out.classes == FINE
    assert list(out.scenes) == REF
    np.testing.assert_allclose(out.scores[0], [0.16, 0.04, 0.48, 0.32], atol=1e-6)
    assert out.attrs["method"] == "two-stage"
    assert out.attrs["coarse_weight"] == 1.0
    assert json.loads(out.attrs["hierarchy"]) == {"a1": "A", "a2": "A", "b1": "B", "b2": "B"}


def test_fuse_joins_by_id_not_by_row_order(tmp_path, hierarchy):
    """REFERENCE.md 7.1: permuting the coarse file's rows must not change the result."""
    fine, coarse = _pair(tmp_path)
    _, shuffled = _pair(tmp_path, order=(2, 0, 3, 1), prefix="shuffled_")
    with h5py.File(shuffled) as handle:  # the file really lists the clips in another order
        assert list(handle["id"].asstr()[()]) == ["f3", "f1", "f4", "f2"]
    a = fusion.fuse(fine, coarse, tmp_path / "a.h5", hierarchy=hierarchy)
    b = fusion.fuse(fine, shuffled, tmp_path / "b.h5", hierarchy=hierarchy)
    assert a["accuracy"] == b["accuracy"]
    np.testing.assert_array_equal(read_scores(tmp_path / "a.h5").scores, read_scores(tmp_path / "b.h5").scores)


def test_fuse_refuses_differing_id_sets(tmp_path, hierarchy):
    fine = _scores(tmp_path / "fine.h5", IDS, P_FINE, FINE, REF)
    coarse = _scores(tmp_path / "coarse.h5", ["f1", "f2", "f3", "x9"], P_COARSE, COARSE)
    with pytest.raises(MismatchError) as info:
        fusion.fuse(fine, coarse, tmp_path / "out.h5", hierarchy=hierarchy)
    assert str(info.value) == (
        f"{fine} and {coarse} hold different clips: 1 ids only in {fine} (f4); 1 ids only in {coarse} (x9)"
    )
    assert not (tmp_path / "out.h5").exists()


def test_fuse_hierarchy_errors(tmp_path):
    fine, coarse = _pair(tmp_path)
    partial = tmp_path / "partial.tsv"
    partial.write_text("a1\tA\na2\tA\nb1\tB\n")
    with pytest.raises(MismatchError, match=r"partial.tsv: no parent for fine class\(es\) b2"):
        fusion.fuse(fine, coarse, tmp_path / "out.h5", hierarchy=partial)
    absent = tmp_path / "absent.tsv"
    absent.write_text("a1\tA\na2\tA\nb1\tB\nb2\tC\n")
    with pytest.raises(MismatchError) as info:
        fusion.fuse(fine, coarse, tmp_path / "out.h5", hierarchy=absent)
    assert str(info.value) == f"{absent}: maps 'b2' to 'C', which is not a class of {coarse} [A, B]"
    twice = tmp_path / "twice.tsv"
    twice.write_text("a1\tA\na1\tB\na2\tA\nb1\tB\nb2\tB\n")
    with pytest.raises(ManifestError, match="class 'a1' is mapped twice"):
        fusion.fuse(fine, coarse, tmp_path / "out.h5", hierarchy=twice)
    assert not (tmp_path / "out.h5").exists()


def test_fuse_default_hierarchy_is_the_packaged_map(tmp_path):
    rng = np.random.default_rng(0)
    ids = [f"c{i}" for i in range(5)]
    p10 = rng.dirichlet(np.ones(10), size=5)
    p3 = rng.dirichlet(np.ones(3), size=5)
    fine = _scores(tmp_path / "fine.h5", ids, p10, SCENES)
    coarse = _scores(tmp_path / "coarse.h5", ids, p3, COARSE_CLASSES)
    summary = fusion.fuse(fine, coarse, tmp_path / "out.h5")
    assert "accuracy" not in summary  # unlabelled
    parents = [0, 2, 2, 0, 1, 1, 0, 1, 1, 2]
    expected = p10 * p3[:, parents]
    expected /= expected.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(read_scores(tmp_path / "out.h5").scores, expected, atol=1e-6)
    # swapping the stages is caught by the hierarchy check
    with pytest.raises(MismatchError, match="no parent for fine class"):
        fusion.fuse(coarse, fine, tmp_path / "out2.h5")


def test_fuse_chooses_the_weight_on_validation_scores(tmp_path, hierarchy):
    fine, coarse = _pair(tmp_path)
    v_fine = _scores(tmp_path / "vfine.h5", ["v1", "v2"], P_FINE[[2, 3]], FINE, ["b2", "a1"])
    v_coarse = _scores(tmp_path / "vcoarse.h5", ["v2", "v1"], P_COARSE[[3, 2]], COARSE)
    summary = fusion.fuse(fine, coarse, tmp_path / "out.h5", hierarchy=hierarchy,
                          choose_weight_on=[v_fine, v_coarse], weight_grid="0,1,2")
    assert summary["coarse_weight"] == 2.0
    assert [r["accuracy"] for r in summary["weight_selection"]["grid"]] == [0.5, 1.0, 1.0]
    assert read_scores(tmp_path / "out.h5").attrs["coarse_weight"] == 2.0
    # choosing on the evaluated scores themselves is refused
    with pytest.raises(ConfigError, match="never on the scores it combines"):
        fusion.fuse(fine, coarse, tmp_path / "out2.h5", hierarchy=hierarchy, choose_weight_on=[fine, coarse])
    with pytest.raises(ConfigError, match="either --coarse-weight or --choose-weight-on"):
        fusion.fuse(fine, coarse, tmp_path / "out2.h5", hierarchy=hierarchy, coarse_weight=1.0,
                    choose_weight_on=[v_fine, v_coarse])
    assert not (tmp_path / "out2.h5").exists()


def test_cli_fuse(tmp_path, hierarchy):
    fine, coarse = _pair(tmp_path, order=(3, 2, 1, 0))
    result = CliRunner().invoke(cli, ["fuse", "--fine", str(fine), "--coarse", str(coarse), "--hierarchy",
                                      str(hierarchy), "--out", str(tmp_path / "out.h5"), "--coarse-weight", "0"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["accuracy"]["fused"] == summary["accuracy"]["fine"] == 0.75
    result = CliRunner().invoke(cli, ["fuse", "--fine", str(fine), "--coarse", str(coarse), "--out",
                                      str(tmp_path / "x.h5")])
    assert result.exit_code == 1
    assert "the packaged DCASE 2020 hierarchy: no parent for fine class(es) a1, a2, b1, b2" in result.output


# --------------------------------------------------------------------------
# ensemble
# --------------------------------------------------------------------------
ENS_IDS = ["e1", "e2", "e3"]
ENS_CLASSES = ["bus", "park", "tram"]
M1 = np.array([[0.6, 0.3, 0.1], [0.2, 0.2, 0.6], [0.3, 0.4, 0.3]])
M2 = np.array([[0.2, 0.7, 0.1], [0.1, 0.1, 0.8], [0.5, 0.2, 0.3]])


def test_parse_weights():
    np.testing.assert_allclose(fusion.parse_weights("1,3", 2), [0.25, 0.75])
    np.testing.assert_allclose(fusion.parse_weights(None, 4), [0.25] * 4)
    with pytest.raises(ConfigError, match=r"--weights '1,2,3': 3 weights for 2 members"):
        fusion.parse_weights("1,2,3", 2)
    with pytest.raises(ConfigError, match="not a comma-separated list of numbers"):
        fusion.parse_weights("1,x", 2)
    with pytest.raises(ConfigError, match="non-negative and not all 0"):
        fusion.parse_weights("1,-1", 2)


def test_mean_ensemble_joins_members_by_id(tmp_path):
    a = _scores(tmp_path / "a.h5", ENS_IDS, M1, ENS_CLASSES, ["bus", "tram", "bus"], ["a", "b", "c"])
    # member b lists the clips in another order and carries no labels
    order = [2, 0, 1]
    b = _scores(tmp_path / "b.h5", [ENS_IDS[i] for i in order], M2[order], ENS_CLASSES, None, ["c", "a", "b"])
    summary = fusion.ensemble([a, b], tmp_path / "out.h5", weights="1,3")
    out = read_scores(tmp_path / "out.h5")
    assert list(out.ids) == ENS_IDS
    # 0.25 * M1 + 0.75 * M2, row e1: (0.15 + 0.15, 0.075 + 0.525, 0.025 + 0.075)
    np.testing.assert_allclose(out.scores[0], [0.3, 0.6, 0.1], atol=1e-6)
    np.testing.assert_allclose(out.scores[2], [0.45, 0.25, 0.3], atol=1e-6)
    assert list(out.scenes) == ["bus", "tram", "bus"]
    assert list(out.devices) == ["a", "b", "c"]
    assert out.attrs["method"] == "mean"
    assert json.loads(out.attrs["weights"]) == [0.25, 0.75]
    assert json.loads(out.attrs["members"]) == [str(a), str(b)]
    # reference bus, tram, bus; member a predicts bus, tram, park (2 of 3 right)
    assert summary["accuracy"]["members"][str(a)] == pytest.approx(2 / 3)
    # member b predicts park, tram, bus; the ensemble park, tram, bus: 2 of 3 each
    assert summary["accuracy"]["members"][str(b)] == pytest.approx(2 / 3)
    assert summary["accuracy"]["ensemble"] == pytest.approx(2 / 3)


def test_ensemble_refuses_mismatched_members(tmp_path):
    a = _scores(tmp_path / "a.h5", ENS_IDS, M1, ENS_CLASSES)
    other_ids = _scores(tmp_path / "b.h5", ["e1", "e2", "zz"], M2, ENS_CLASSES)
    with pytest.raises(MismatchError, match=r"1 ids only in .*a.h5 \(e3\); 1 ids only in .*b.h5 \(zz\)"):
        fusion.ensemble([a, other_ids], tmp_path / "out.h5")
    other_classes = _scores(tmp_path / "c.h5", ENS_IDS, M2, ["bus", "metro", "tram"])
    with pytest.raises(MismatchError) as info:
        fusion.ensemble([a, other_classes], tmp_path / "out.h5")
    assert str(info.value) == (
        f"class lists of {a} and {other_classes} differ: {a} has ['bus', 'park', 'tram'], "
        f"{other_classes} has ['bus', 'metro', 'tram']"
    )
    clash = _scores(tmp_path / "d.h5", ENS_IDS, M2, ENS_CLASSES, ["bus", "bus", "bus"])
    a_lab = _scores(tmp_path / "e.h5", ENS_IDS, M1, ENS_CLASSES, ["bus", "tram", "bus"])
    with pytest.raises(MismatchError, match="disagree on the scene of clip e2 \\('tram' vs 'bus'\\)"):
        fusion.ensemble([a_lab, clash], tmp_path / "out.h5")
    with pytest.raises(ConfigError, match="is also an input"):
        fusion.ensemble([a, a_lab], a)
    assert not (tmp_path / "out.h5").exists()


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


def _members(rng, n, offset):
    """An informative member (right class boosted) and a noise member, with labels."""
    y = rng.integers(0, 3, size=n)
    logits = rng.normal(size=(n, 3)) + 1.5 * np.eye(3)[y]
    good = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    noise = rng.dirichlet(np.ones(3), size=n)
    ids = [f"x{offset + i}" for i in range(n)]
    scenes = [ENS_CLASSES[k] for k in y]
    return ids, good, noise, scenes, y


def test_logreg_ensemble_fits_on_validation_and_refuses_leakage(tmp_path):
    rng = np.random.default_rng(0)
    ids, good, noise, scenes, y = _members(rng, 200, 0)
    v_ids, v_good, v_noise, v_scenes, _ = _members(rng, 200, 1000)
    g = _scores(tmp_path / "good.h5", ids, good, ENS_CLASSES, scenes)
    n = _scores(tmp_path / "noise.h5", ids, noise, ENS_CLASSES, scenes)
    vg = _scores(tmp_path / "vgood.h5", v_ids, v_good, ENS_CLASSES, v_scenes)
    vn = _scores(tmp_path / "vnoise.h5", v_ids[::-1], v_noise[::-1], ENS_CLASSES, v_scenes[::-1])
    summary = fusion.ensemble([g, n], tmp_path / "out.h5", method="logreg", fit_paths=[vg, vn])
    out = read_scores(tmp_path / "out.h5")
    model = json.loads(out.attrs["logreg"])
    coef = np.abs(np.asarray(model["coef"]))
    # the informative member's log-probabilities carry most of the weight
    assert coef[:3].sum() > 3 * coef[3:].sum()
    # the learned combination does not lose to the informative member alone
    assert summary["accuracy"]["ensemble"] >= summary["accuracy"]["members"][str(g)] - 0.02
    assert summary["fit_clips"] == 200
    assert json.loads(out.attrs["fit"]) == [str(vg), str(vn)]
    # the same run twice gives the same scores (no randomness)
    fusion.ensemble([g, n], tmp_path / "again.h5", method="logreg", fit_paths=[vg, vn])
    np.testing.assert_array_equal(read_scores(tmp_path / "again.h5").scores, out.scores)

    with pytest.raises(ConfigError, match="good.h5: is also an evaluated input; logistic regression must be fitted"):
        fusion.ensemble([g, n], tmp_path / "bad.h5", method="logreg", fit_paths=[g, vn])
    copy = _scores(tmp_path / "copy.h5", ids, good, ENS_CLASSES, scenes)
    copy_n = _scores(tmp_path / "copy_n.h5", ids, noise, ENS_CLASSES, scenes)
    with pytest.raises(ConfigError, match="copy.h5: shares the same clips as the evaluated scores"):
        fusion.ensemble([g, n], tmp_path / "bad.h5", method="logreg", fit_paths=[copy, copy_n])
    part = _scores(tmp_path / "part.h5", v_ids[:-1] + ["x0"], v_good, ENS_CLASSES, v_scenes)
    part_n = _scores(tmp_path / "part_n.h5", v_ids[:-1] + ["x0"], v_noise, ENS_CLASSES, v_scenes)
    with pytest.raises(ConfigError, match=r"part.h5: shares 1 clips with the evaluated scores \(x0\)"):
        fusion.ensemble([g, n], tmp_path / "bad.h5", method="logreg", fit_paths=[part, part_n])
    with pytest.raises(ConfigError, match="one --fit validation scores file per member, in the same order: got 1 for 2"):
        fusion.ensemble([g, n], tmp_path / "bad.h5", method="logreg", fit_paths=[vg])
    unlabelled = _scores(tmp_path / "u.h5", v_ids, v_good, ENS_CLASSES)
    unlabelled_n = _scores(tmp_path / "u_n.h5", v_ids, v_noise, ENS_CLASSES)
    with pytest.raises(ConfigError, match="u.h5: validation scores have no reference labels to fit on"):
        fusion.ensemble([g, n], tmp_path / "bad.h5", method="logreg", fit_paths=[unlabelled, unlabelled_n])
    assert not (tmp_path / "bad.h5").exists()


def test_cli_ensemble(tmp_path):
    a = _scores(tmp_path / "a.h5", ENS_IDS, M1, ENS_CLASSES, ["bus", "tram", "bus"])
    b = _scores(tmp_path / "b.h5", ENS_IDS, M2, ENS_CLASSES)
    result = CliRunner().invoke(cli, ["ensemble", str(a), str(b), "--out", str(tmp_path / "out.h5")])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["weights"] == [0.5, 0.5]
    np.testing.assert_allclose(read_scores(tmp_path / "out.h5").scores[1], [0.15, 0.15, 0.7], atol=1e-6)
    result = CliRunner().invoke(cli, ["ensemble", str(a), str(b), "--out", str(tmp_path / "x.h5"), "--weights", "1"])
    assert result.exit_code == 1
    assert "Error: --weights '1': 1 weights for 2 members" in result.output
    assert not (tmp_path / "x.h5").exists()
