"""asctool ensemble: the stage joins members by id, fits on validation scores only, refuses leakage."""
from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from asctool.artifacts import read_scores
from asctool.cli import cli
from asctool.errors import ArtifactError, ConfigError, MismatchError
from asctool.stages.ensemble import run

from helpers import poke, write_raw_scores
from helpers import write_probs as _scores



ENS_IDS = ["e1", "e2", "e3"]
ENS_CLASSES = ["bus", "park", "tram"]
M1 = np.array([[0.6, 0.3, 0.1], [0.2, 0.2, 0.6], [0.3, 0.4, 0.3]])
M2 = np.array([[0.2, 0.7, 0.1], [0.1, 0.1, 0.8], [0.5, 0.2, 0.3]])


def test_mean_ensemble_joins_members_by_id(tmp_path):
    a = _scores(tmp_path / "a.h5", ENS_IDS, M1, ENS_CLASSES, ["bus", "tram", "bus"], ["a", "b", "c"])
    # member b lists the clips in another order and carries no labels
    order = [2, 0, 1]
    b = _scores(tmp_path / "b.h5", [ENS_IDS[i] for i in order], M2[order], ENS_CLASSES, None, ["c", "a", "b"])
    summary = run([a, b], tmp_path / "out.h5", weights="1,3")
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
        run([a, other_ids], tmp_path / "out.h5")
    other_classes = _scores(tmp_path / "c.h5", ENS_IDS, M2, ["bus", "metro", "tram"])
    with pytest.raises(MismatchError) as info:
        run([a, other_classes], tmp_path / "out.h5")
    assert str(info.value) == (
        f"class lists of {a} and {other_classes} differ: {a} has ['bus', 'park', 'tram'], "
        f"{other_classes} has ['bus', 'metro', 'tram']"
    )
    clash = _scores(tmp_path / "d.h5", ENS_IDS, M2, ENS_CLASSES, ["bus", "bus", "bus"])
    a_lab = _scores(tmp_path / "e.h5", ENS_IDS, M1, ENS_CLASSES, ["bus", "tram", "bus"])
    with pytest.raises(MismatchError, match="disagree on the scene of clip e2 \\('tram' vs 'bus'\\)"):
        run([a_lab, clash], tmp_path / "out.h5")
    with pytest.raises(ConfigError, match="is also an input"):
        run([a, a_lab], a)
    assert not (tmp_path / "out.h5").exists()


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
    summary = run([g, n], tmp_path / "out.h5", method="logreg", fit_paths=[vg, vn])
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
    run([g, n], tmp_path / "again.h5", method="logreg", fit_paths=[vg, vn])
    np.testing.assert_array_equal(read_scores(tmp_path / "again.h5").scores, out.scores)

    with pytest.raises(ConfigError, match="good.h5: is also an evaluated input; logistic regression must be fitted"):
        run([g, n], tmp_path / "bad.h5", method="logreg", fit_paths=[g, vn])
    copy = _scores(tmp_path / "copy.h5", ids, good, ENS_CLASSES, scenes)
    copy_n = _scores(tmp_path / "copy_n.h5", ids, noise, ENS_CLASSES, scenes)
    with pytest.raises(ConfigError, match="copy.h5: shares the same clips as the evaluated scores"):
        run([g, n], tmp_path / "bad.h5", method="logreg", fit_paths=[copy, copy_n])
    part = _scores(tmp_path / "part.h5", v_ids[:-1] + ["x0"], v_good, ENS_CLASSES, v_scenes)
    part_n = _scores(tmp_path / "part_n.h5", v_ids[:-1] + ["x0"], v_noise, ENS_CLASSES, v_scenes)
    with pytest.raises(ConfigError, match=r"part.h5: shares 1 clips with the evaluated scores \(x0\)"):
        run([g, n], tmp_path / "bad.h5", method="logreg", fit_paths=[part, part_n])
    with pytest.raises(ConfigError, match="one --fit validation scores file per member, in the same order: got 1 for 2"):
        run([g, n], tmp_path / "bad.h5", method="logreg", fit_paths=[vg])
    unlabelled = _scores(tmp_path / "u.h5", v_ids, v_good, ENS_CLASSES)
    unlabelled_n = _scores(tmp_path / "u_n.h5", v_ids, v_noise, ENS_CLASSES)
    with pytest.raises(ConfigError, match="u.h5: validation scores have no reference labels to fit on"):
        run([g, n], tmp_path / "bad.h5", method="logreg", fit_paths=[unlabelled, unlabelled_n])
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


def test_ensemble_refuses_options_the_method_does_not_take(tmp_path):
    a = _scores(tmp_path / "a.h5", ENS_IDS, M1, ENS_CLASSES)
    b = _scores(tmp_path / "b.h5", ENS_IDS, M2, ENS_CLASSES)
    with pytest.raises(ConfigError, match=r"--fit is only used by methods fitted on validation scores \(logreg"):
        run([a, b], tmp_path / "out.h5", fit_paths=[a, b])
    with pytest.raises(ConfigError, match=r"--weights is only used by weighted methods \(mean"):
        run([a, b], tmp_path / "out.h5", method="logreg", weights="1,1", fit_paths=[a, b])
    with pytest.raises(ConfigError, match="unknown ensemble method; known: mean, logreg"):
        run([a, b], tmp_path / "out.h5", method="median")
    result = CliRunner().invoke(cli, ["ensemble", str(a), str(b), "--out", str(tmp_path / "out.h5"),
                                      "--method", "median"])
    assert result.exit_code == 2 and "'median' is not one of 'mean', 'logreg'" in result.output
    assert not (tmp_path / "out.h5").exists()


# --------------------------------------------------------------------------
# the output: never overwritten without --force (issue 9, items 16, 19)
# --------------------------------------------------------------------------
def test_an_existing_output_needs_force(tmp_path, one_line_error):
    a = _scores(tmp_path / "a.h5", ENS_IDS, M1, ENS_CLASSES)
    b = _scores(tmp_path / "b.h5", ENS_IDS, M2, ENS_CLASSES)
    out = tmp_path / "out.h5"
    out.write_bytes(b"earlier")
    args = ["ensemble", str(a), str(b), "--out", str(out)]
    one_line_error(CliRunner().invoke(cli, args), f"{out}: already exists (use --force to overwrite)")
    assert out.read_bytes() == b"earlier"
    done = CliRunner().invoke(cli, [*args, "--force"])
    assert done.exit_code == 0, done.output
    assert list(read_scores(out).ids) == ENS_IDS


def test_an_output_below_a_file_is_one_line(tmp_path, one_line_error, tree):
    a = _scores(tmp_path / "a.h5", ENS_IDS, M1, ENS_CLASSES)
    b = _scores(tmp_path / "b.h5", ENS_IDS, M2, ENS_CLASSES)
    before = tree(tmp_path)
    one_line_error(CliRunner().invoke(cli, ["ensemble", str(a), str(b), "--out", str(tmp_path / "a.h5" / "x.h5")]),
                   f"{tmp_path / 'a.h5' / 'x.h5'}: cannot be written: {tmp_path / 'a.h5'} is not a folder")
    assert tree(tmp_path) == before


# --------------------------------------------------------------------------
# silent wrong results refused (issue 9 items 4, 6, 7)
# --------------------------------------------------------------------------
def _cli_error(*args):
    result = CliRunner().invoke(cli, list(map(str, args)))
    assert result.exit_code == 1, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "Traceback" not in result.output, result.output
    return errors[0]


def test_a_member_with_a_duplicated_id_is_refused(tmp_path):
    """``ensemble A.h5 DUP.h5`` joined the duplicated clip to A's row for that id."""
    a = _scores(tmp_path / "a.h5", ENS_IDS, M1, ENS_CLASSES)
    dup = write_raw_scores(tmp_path / "dup.h5", ["e1", "e2", "e3", "e2"], np.vstack([M2, M1[:1]]), ENS_CLASSES)
    error = _cli_error("ensemble", a, dup, "--out", tmp_path / "out.h5")
    assert "dup.h5: duplicate ids: e2" in error
    assert not (tmp_path / "out.h5").exists()


def test_empty_members_are_refused(tmp_path):
    """``ensemble E.h5 E.h5`` wrote a 0-clip file."""
    empty = write_raw_scores(tmp_path / "e.h5", [], np.zeros((0, 3)), ENS_CLASSES)
    assert "e.h5: scores file holds no clips" in _cli_error("ensemble", empty, empty, "--out", tmp_path / "out.h5")
    assert not (tmp_path / "out.h5").exists()


def test_a_member_with_nan_scores_is_refused(tmp_path):
    a = _scores(tmp_path / "a.h5", ENS_IDS, M1, ENS_CLASSES)
    b = poke(_scores(tmp_path / "b.h5", ENS_IDS, M2, ENS_CLASSES), "scores", (2, 1), np.nan)
    with pytest.raises(ArtifactError, match=r"b\.h5: scores of clip e3 \(row 2\) are NaN or Inf"):
        run([a, b], tmp_path / "out.h5")
    assert not (tmp_path / "out.h5").exists()
