"""asctool results: RESULTS.md from asctool score --json reports."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from asctool.cli import cli
from asctool.errors import ArtifactError, ConfigError
from asctool.stages.results import run

REPORT = {"n": 10, "classes": ["a", "b", "c"],
          "overall": {"accuracy": 0.5, "macro_accuracy": 0.45, "log_loss": 1.2345},
          "groups": {"A": {"accuracy": 0.75}, "s4-s6": {"accuracy": 0.25}}}


@pytest.fixture()
def files(tmp_path):
    (tmp_path / "r.json").write_text(json.dumps(REPORT))
    (tmp_path / "fuse.json").write_text(json.dumps({"accuracy": {"fine": 0.5, "fused": 0.55, "oracle_gating": 0.7}}))
    (tmp_path / "size.json").write_text(json.dumps({"bytes": 2048, "parameter_bytes": 1024}))
    return tmp_path


def test_results_table(files):
    """(from tests/test_recipes.py, results_table.py) rows, sizes, oracle line, budget."""
    out = files / "RESULTS.md"
    summary = run([f"sys={files / 'r.json'}"], out, fusion_summary=files / "fuse.json",
                  sizes=[f"sys={files / 'size.json'}"], budget_kb=500, published="1a")
    assert summary == {"out": str(out), "rows": 1}
    text = out.read_text()
    assert "| sys | 3 | 75.0 |  |  | 25.0 | 50.0 | 45.0 | 1.234 | 10 | 2.0 | 1.0 |" in text
    assert "oracle gating" in text and "70.0 %" in text and "within the budget of 500 KB" in text
    assert "Published figures (docs/reference.md section 6" in text


def test_rows_in_order_and_the_published_block(files):
    out = files / "R.md"
    run([f"b={files / 'r.json'}", f"a={files / 'r.json'}"], out, title="T", published="1b")
    text = out.read_text()
    assert text.startswith("# T\n\n| system | classes | A | B&C | s1-s3 | s4-s6 |")
    assert text.index("| b |") < text.index("| a |") and "file (KB)" not in text
    assert "Published (docs/reference.md section 6): Mobnet 95.2 %" in text and "oracle" not in text
    run([f"a={files / 'r.json'}"], out, force=True)
    assert "Published" not in out.read_text()


def test_missing_inputs(files):
    out = files / "R.md"
    run([f"a={files / 'r.json'}"], out, fusion_summary=files / "none.json")   # skipped, with a warning
    assert "Oracle" not in out.read_text() and "oracle" not in out.read_text()
    with pytest.raises(ArtifactError, match="nothere.json: file not found"):
        run([f"a={files / 'nothere.json'}"], out, force=True)
    with pytest.raises(ConfigError, match="expected NAME=FILE"):
        run([str(files / "r.json")], out, force=True)
    with pytest.raises(ConfigError, match="given twice"):
        run([f"a={files / 'r.json'}", f"a={files / 'r.json'}"], out, force=True)


def test_results_command_line(files):
    out = files / "RESULTS.md"
    done = CliRunner().invoke(cli, ["results", "--out", str(out), "--title", "X", "--published", "none",
                                    "--size", f"sys={files / 'size.json'}", "--size-rule", "file",
                                    "--budget-kb", "1", f"sys={files / 'r.json'}"])
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["rows"] == 1
    assert "files 2048 bytes (2.0 KB); OVER the budget of 1 KB (rule file)." in out.read_text()
    assert CliRunner().invoke(cli, ["results", "--out", str(out)]).exit_code == 2   # no report


def test_an_existing_table_needs_force(files, one_line_error):
    """(issue 9, item 19) the recipes rebuild it with --force."""
    out = files / "RESULTS.md"
    out.write_text("earlier")
    args = ["results", "--out", str(out), f"sys={files / 'r.json'}"]
    one_line_error(CliRunner().invoke(cli, args), f"{out}: already exists (use --force to overwrite)")
    assert out.read_text() == "earlier"
    assert CliRunner().invoke(cli, [*args, "--force"]).exit_code == 0 and "| sys |" in out.read_text()
    one_line_error(CliRunner().invoke(cli, ["results", "--out", str(files / "r.json"), "--force",
                                            f"sys={files / 'r.json'}"]), "r.json: is also an input")


# --------------------------------------------------------------------------
# --folds: mean ± std over cross-validation folds
# --------------------------------------------------------------------------
FOLD_ACC = {"cnn": [0.61, 0.70, 0.655, 0.72, 0.58], "fused": [0.64, 0.71, 0.69, 0.75, 0.60]}
FOLD_MACRO = {"cnn": [0.60, 0.68, 0.64, 0.70, 0.57], "fused": [0.63, 0.70, 0.70, 0.74, 0.61]}
FOLD_LOSS = {"cnn": [1.10, 0.95, 1.02, 0.90, 1.21], "fused": [1.00, 0.90, 0.97, 0.85, 1.15]}


@pytest.fixture()
def fold_reports(tmp_path):
    for k in range(5):
        for name in FOLD_ACC:
            folder = tmp_path / f"fold{k + 1}" / name
            folder.mkdir(parents=True)
            report = {"n": 40 + k, "classes": ["dog", "rain", "siren"],
                      "overall": {"accuracy": FOLD_ACC[name][k], "macro_accuracy": FOLD_MACRO[name][k],
                                  "log_loss": FOLD_LOSS[name][k]},
                      "groups": {}, "classes_report": {}}
            (folder / "report.json").write_text(json.dumps(report))
    return tmp_path


def test_folds_mean_and_std_against_an_independent_computation(fold_reports):
    import statistics

    out = fold_reports / "RESULTS.md"
    rows = [f"{name}={fold_reports / 'fold{fold}' / name / 'report.json'}" for name in FOLD_ACC]
    summary = run(rows, out, title="CV", folds="1,2,3,4,5")
    assert summary["folds"] == ["1", "2", "3", "4", "5"] and summary["rows"] == 2
    text = out.read_text()
    assert "Cross-validation over 5 folds (1, 2, 3, 4, 5)" in text
    for name in FOLD_ACC:
        acc, macro, loss = FOLD_ACC[name], FOLD_MACRO[name], FOLD_LOSS[name]
        got = summary["systems"][name]
        assert got["accuracy"]["mean"] == pytest.approx(statistics.mean(acc), abs=1e-12)
        assert got["accuracy"]["std"] == pytest.approx(statistics.stdev(acc), abs=1e-12)
        assert got["macro_accuracy"]["std"] == pytest.approx(statistics.stdev(macro), abs=1e-12)
        row = (f"| {name} | 3 | {100 * statistics.mean(acc):.1f} ± {100 * statistics.stdev(acc):.1f} | "
               f"{100 * statistics.mean(macro):.1f} ± {100 * statistics.stdev(macro):.1f} | "
               f"{statistics.mean(loss):.3f} ± {statistics.stdev(loss):.3f} | 210 |")
        assert row in text, text
        assert "| " + " | ".join([name, *(f"{100 * v:.1f}" for v in acc)]) + " |" in text
    # by hand: mean 0.653, squared deviations sum to 0.01388, / 4 = 0.00347, sqrt = 0.0589
    assert "| cnn | 3 | 65.3 ± 5.9 |" in text
    assert "B&C" not in text   # no device groups in these reports: no empty columns


def test_folds_through_the_cli_and_errors(fold_reports, tmp_path):
    template = str(fold_reports / "fold{fold}" / "cnn" / "report.json")
    result = CliRunner().invoke(cli, ["results", "--folds", "1,2", "--out", str(tmp_path / "R.md"), f"cnn={template}"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["systems"]["cnn"]["accuracy"]["mean"] == pytest.approx((0.61 + 0.70) / 2)
    with pytest.raises(ConfigError, match=r"holds \{fold\}"):
        run([f"cnn={fold_reports / 'fold1' / 'cnn' / 'report.json'}"], tmp_path / "X.md", folds="1,2")
    with pytest.raises(ArtifactError, match="fold6.*file not found"):
        run([f"cnn={template}"], tmp_path / "X.md", folds="5,6")
    with pytest.raises(ConfigError, match="given twice"):
        run([f"cnn={template}"], tmp_path / "X.md", folds="1,1")
    with pytest.raises(ConfigError, match="fold"):
        run([f"cnn={template}"], tmp_path / "X.md", folds="1,../x")
    with pytest.raises(ConfigError, match="--size: not with --folds"):
        run([f"cnn={template}"], tmp_path / "X.md", folds="1,2", sizes=["cnn=s.json"])
    assert not (tmp_path / "X.md").exists()
    one = run([f"cnn={template}"], tmp_path / "one.md", folds="3")
    assert one["systems"]["cnn"]["accuracy"] == {"mean": 0.655, "std": None}
    assert "| cnn | 3 | 65.5 |" in (tmp_path / "one.md").read_text()
