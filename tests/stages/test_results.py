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
