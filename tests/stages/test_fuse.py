"""asctool fuse: the stage joins by id, checks the hierarchy, chooses the weight on validation scores."""
from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from asctool.artifacts import read_scores
from asctool.cli import cli
from asctool.errors import ArtifactError, ConfigError, ManifestError, MismatchError
from asctool.labels import COARSE_CLASSES, SCENES
from asctool.stages.fuse import run

from helpers import COARSE, FINE, P_COARSE, P_FINE
from helpers import FUSE_IDS as IDS
from helpers import FUSE_REF as REF
from helpers import poke, write_raw_scores
from helpers import write_probs as _scores


@pytest.fixture()
def hierarchy(tmp_path):
    path = tmp_path / "hierarchy.tsv"
    path.write_text("fine\tcoarse\na1\tA\na2\tA\nb1\tB\nb2\tB\n")
    return path


def _pair(tmp_path, order=(0, 1, 2, 3), prefix=""):
    fine = _scores(tmp_path / f"{prefix}fine.h5", IDS, P_FINE, FINE, REF)
    order = list(order)
    coarse = _scores(tmp_path / f"{prefix}coarse.h5", [IDS[i] for i in order], P_COARSE[order], COARSE,
                     [REF[i] for i in order])
    return fine, coarse


def test_fuse_summary_and_output(tmp_path, hierarchy):
    fine, coarse = _pair(tmp_path)
    summary = run(fine, coarse, tmp_path / "out.h5", hierarchy=hierarchy)
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
    """docs/reference.md 7.1: permuting the coarse file's rows must not change the result."""
    fine, coarse = _pair(tmp_path)
    _, shuffled = _pair(tmp_path, order=(2, 0, 3, 1), prefix="shuffled_")
    with h5py.File(shuffled) as handle:  # the file really lists the clips in another order
        assert list(handle["id"].asstr()[()]) == ["f3", "f1", "f4", "f2"]
    a = run(fine, coarse, tmp_path / "a.h5", hierarchy=hierarchy)
    b = run(fine, shuffled, tmp_path / "b.h5", hierarchy=hierarchy)
    assert a["accuracy"] == b["accuracy"]
    np.testing.assert_array_equal(read_scores(tmp_path / "a.h5").scores, read_scores(tmp_path / "b.h5").scores)


def test_fuse_refuses_differing_id_sets(tmp_path, hierarchy):
    fine = _scores(tmp_path / "fine.h5", IDS, P_FINE, FINE, REF)
    coarse = _scores(tmp_path / "coarse.h5", ["f1", "f2", "f3", "x9"], P_COARSE, COARSE)
    with pytest.raises(MismatchError) as info:
        run(fine, coarse, tmp_path / "out.h5", hierarchy=hierarchy)
    assert str(info.value) == (
        f"{fine} and {coarse} hold different clips: 1 ids only in {fine} (f4); 1 ids only in {coarse} (x9)"
    )
    assert not (tmp_path / "out.h5").exists()


def test_fuse_hierarchy_errors(tmp_path):
    fine, coarse = _pair(tmp_path)
    partial = tmp_path / "partial.tsv"
    partial.write_text("a1\tA\na2\tA\nb1\tB\n")
    with pytest.raises(MismatchError, match=r"partial.tsv: no parent for fine class\(es\) b2"):
        run(fine, coarse, tmp_path / "out.h5", hierarchy=partial)
    absent = tmp_path / "absent.tsv"
    absent.write_text("a1\tA\na2\tA\nb1\tB\nb2\tC\n")
    with pytest.raises(MismatchError) as info:
        run(fine, coarse, tmp_path / "out.h5", hierarchy=absent)
    assert str(info.value) == f"{absent}: maps 'b2' to 'C', which is not a class of {coarse} [A, B]"
    twice = tmp_path / "twice.tsv"
    twice.write_text("a1\tA\na1\tB\na2\tA\nb1\tB\nb2\tB\n")
    with pytest.raises(ManifestError, match="class 'a1' is mapped twice"):
        run(fine, coarse, tmp_path / "out.h5", hierarchy=twice)
    assert not (tmp_path / "out.h5").exists()


def test_fuse_default_hierarchy_is_the_packaged_map(tmp_path):
    rng = np.random.default_rng(0)
    ids = [f"c{i}" for i in range(5)]
    p10 = rng.dirichlet(np.ones(10), size=5)
    p3 = rng.dirichlet(np.ones(3), size=5)
    fine = _scores(tmp_path / "fine.h5", ids, p10, SCENES)
    coarse = _scores(tmp_path / "coarse.h5", ids, p3, COARSE_CLASSES)
    summary = run(fine, coarse, tmp_path / "out.h5")
    assert "accuracy" not in summary  # unlabelled
    parents = [0, 2, 2, 0, 1, 1, 0, 1, 1, 2]
    expected = p10 * p3[:, parents]
    expected /= expected.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(read_scores(tmp_path / "out.h5").scores, expected, atol=1e-6)
    # swapping the stages is caught by the hierarchy check
    with pytest.raises(MismatchError, match="no parent for fine class"):
        run(coarse, fine, tmp_path / "out2.h5")


def test_fuse_chooses_the_weight_on_validation_scores(tmp_path, hierarchy):
    fine, coarse = _pair(tmp_path)
    v_fine = _scores(tmp_path / "vfine.h5", ["v1", "v2"], P_FINE[[2, 3]], FINE, ["b2", "a1"])
    v_coarse = _scores(tmp_path / "vcoarse.h5", ["v2", "v1"], P_COARSE[[3, 2]], COARSE)
    summary = run(fine, coarse, tmp_path / "out.h5", hierarchy=hierarchy,
                          choose_weight_on=[v_fine, v_coarse], weight_grid="0,1,2")
    assert summary["coarse_weight"] == 2.0
    assert [r["accuracy"] for r in summary["weight_selection"]["grid"]] == [0.5, 1.0, 1.0]
    assert read_scores(tmp_path / "out.h5").attrs["coarse_weight"] == 2.0
    # choosing on the evaluated scores themselves is refused
    with pytest.raises(ConfigError, match="never on the scores it combines"):
        run(fine, coarse, tmp_path / "out2.h5", hierarchy=hierarchy, choose_weight_on=[fine, coarse])
    with pytest.raises(ConfigError, match="either --coarse-weight or --choose-weight-on"):
        run(fine, coarse, tmp_path / "out2.h5", hierarchy=hierarchy, coarse_weight=1.0,
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
    assert ("fine class(es) a1, a2, b1, b2 are not DCASE 2020 scenes, and the coarse scores carry no label map "
            "that covers them: give each fine class its coarse class with --hierarchy FILE") in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_fuse_refuses_an_unknown_method(tmp_path, hierarchy):
    fine, coarse = _pair(tmp_path)
    with pytest.raises(ConfigError, match="unknown fusion method; known: two-stage"):
        run(fine, coarse, tmp_path / "out.h5", hierarchy=hierarchy, method="sum")
    result = CliRunner().invoke(cli, ["fuse", "--fine", str(fine), "--coarse", str(coarse), "--out",
                                      str(tmp_path / "out.h5"), "--method", "sum"])
    assert result.exit_code == 2 and "'sum' is not 'two-stage'" in result.output
    assert not (tmp_path / "out.h5").exists()


# --------------------------------------------------------------------------
# the output: never overwritten without --force (issue 9, items 16, 19)
# --------------------------------------------------------------------------
def test_an_existing_output_needs_force(tmp_path, hierarchy, one_line_error):
    fine, coarse = _pair(tmp_path)
    out = tmp_path / "fused.h5"
    out.write_bytes(b"earlier")
    args = ["fuse", "--fine", str(fine), "--coarse", str(coarse), "--hierarchy", str(hierarchy), "--out", str(out)]
    one_line_error(CliRunner().invoke(cli, args), f"{out}: already exists (use --force to overwrite)")
    assert out.read_bytes() == b"earlier"
    done = CliRunner().invoke(cli, [*args, "--force"])
    assert done.exit_code == 0, done.output
    assert list(read_scores(out).ids) == list(IDS)


def test_an_output_in_a_read_only_folder_is_one_line(tmp_path, hierarchy, read_only_dir, one_line_error):
    fine, coarse = _pair(tmp_path)
    one_line_error(CliRunner().invoke(cli, ["fuse", "--fine", str(fine), "--coarse", str(coarse), "--hierarchy",
                                            str(hierarchy), "--out", str(read_only_dir / "new" / "fused.h5")]),
                   "fused.h5: cannot be written: no permission to write in")


# --------------------------------------------------------------------------
# silent wrong results refused (issue 9 items 4, 6, 7)
# --------------------------------------------------------------------------
def test_coarse_scores_with_a_duplicated_id_are_refused(tmp_path, hierarchy):
    """``fuse --coarse DUP.h5`` joined the duplicated clip to the fine row of that id."""
    fine, _ = _pair(tmp_path)
    dup = write_raw_scores(tmp_path / "dup.h5", [*IDS, "f1"], np.vstack([P_COARSE, P_COARSE[1:2]]), COARSE)
    result = CliRunner().invoke(cli, ["fuse", "--fine", str(fine), "--coarse", str(dup), "--hierarchy",
                                      str(hierarchy), "--out", str(tmp_path / "out.h5")])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "dup.h5: duplicate ids: f1" in result.output
    assert not (tmp_path / "out.h5").exists()


def test_inf_or_empty_scores_are_refused(tmp_path, hierarchy):
    fine, coarse = _pair(tmp_path)
    poke(coarse, "scores", (3, 0), np.inf)
    with pytest.raises(ArtifactError, match=r"coarse\.h5: scores of clip f4 \(row 3\) are NaN or Inf"):
        run(fine, coarse, tmp_path / "out.h5", hierarchy=hierarchy)
    empty = write_raw_scores(tmp_path / "empty.h5", [], np.zeros((0, 2)), COARSE)
    with pytest.raises(ArtifactError, match=r"empty\.h5: scores file holds no clips"):
        run(fine, empty, tmp_path / "out.h5", hierarchy=hierarchy)
    assert not (tmp_path / "out.h5").exists()


def test_fuse_any_classes_with_the_map_the_coarse_scores_carry(tmp_path):
    """(issue 14) non-DCASE classes: the coarse model's training map is the hierarchy; else say --hierarchy."""
    from asctool.artifacts import write_scores

    rng = np.random.default_rng(3)
    ids = [f"c{i}" for i in range(6)]
    fine_classes = ["cat", "car", "dog", "rain", "wind"]
    mapping = {"dog": "animal", "cat": "animal", "rain": "nature", "wind": "nature", "car": "urban"}
    p5, p3 = rng.dirichlet(np.ones(5), size=6), rng.dirichlet(np.ones(3), size=6)
    fine = write_scores(tmp_path / "fine.h5", ids=ids, scores=p5, classes=fine_classes)
    coarse = write_scores(tmp_path / "coarse.h5", ids=ids, scores=p3, classes=["animal", "nature", "urban"],
                          extra_attrs={"label_map": json.dumps(mapping)})
    run(fine, coarse, tmp_path / "out.h5")
    parents = [0, 2, 0, 1, 1]
    expected = p5 * p3[:, parents]
    np.testing.assert_allclose(read_scores(tmp_path / "out.h5").scores, expected / expected.sum(1, keepdims=True),
                               atol=1e-6)
    bare = write_scores(tmp_path / "bare.h5", ids=ids, scores=p3, classes=["animal", "nature", "urban"])
    with pytest.raises(MismatchError, match=r"fine\.h5: fine class\(es\) cat, car, dog, rain, wind are not DCASE 2020 "
                                            r"scenes.*--hierarchy FILE"):
        run(fine, bare, tmp_path / "out2.h5")
    text = CliRunner().invoke(cli, ["fuse", "--help"]).output
    assert "10-class" not in text and "3-class" not in text and "any K classes" in text
