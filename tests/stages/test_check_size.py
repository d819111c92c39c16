"""asctool check-size: quantised models against a size budget, by the DCASE rule or by file size."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from asctool.cli import cli
from asctool.errors import ArtifactError, AsctoolError
from asctool.stages.check_size import run


@pytest.fixture()
def sizes(tmp_path):
    paths = []
    for name, (file_bytes, params) in {"a": (300_000, 250_000), "b": (300_000, 250_000)}.items():
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps({"bytes": file_bytes, "parameters": params, "parameter_bytes": params,
                                    "mode": "dynamic"}))
        paths.append(str(path))
    return paths


def test_check_size_rules(sizes):
    """(from tests/test_recipes.py, check_size.py) the DCASE rule counts parameters x bits; file the bytes."""
    dcase = CliRunner().invoke(cli, ["check-size", "--budget-kb", "500", *sizes])
    assert dcase.exit_code == 0 and "total: 500000 bytes (488.3 KB), within" in dcase.stdout
    assert f"{sizes[0]}: 250000 bytes (244.1 KB, rule dcase; file 300000 bytes, 250000 parameters, dynamic)" \
        in dcase.stdout
    by_file = CliRunner().invoke(cli, ["check-size", "--budget-kb", "500", "--size-rule", "file", *sizes])
    assert by_file.exit_code == 1 and "OVER the budget of 500 KB" in by_file.output


def test_check_size_summary_and_errors(sizes, tmp_path):
    summary = run(sizes, budget_kb=488.29, rule="dcase")
    assert summary["within"] and summary["total_bytes"] == 500_000 and len(summary["models"]) == 2
    with pytest.raises(AsctoolError, match=r"total: 500000 bytes \(488.3 KB\), OVER the budget of 488.28 KB"):
        run(sizes, budget_kb=488.28)
    (tmp_path / "old.json").write_text(json.dumps({"bytes": 10}))
    with pytest.raises(ArtifactError, match="no readable 'parameter_bytes'"):
        run([str(tmp_path / "old.json")], budget_kb=1)
    assert run([str(tmp_path / "old.json")], budget_kb=1, rule="file")["total_bytes"] == 10
    with pytest.raises(ArtifactError, match="file not found"):
        run([str(tmp_path / "none.json")], budget_kb=1)
    assert CliRunner().invoke(cli, ["check-size", "--budget-kb", "0", *sizes]).exit_code == 2
