from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from asctool import __version__, artifacts
from asctool.cli import cli

COMMANDS = ["prepare", "synth", "augment", "featurize", "train", "predict", "pseudo-label", "ensemble",
            "fuse", "quantize", "score", "cam", "inspect", "models"]


def test_version_and_every_command_has_help():
    runner = CliRunner()
    result = runner.invoke(cli, ["--version"])
    assert result.exit_code == 0 and __version__ in result.output
    for name in COMMANDS:
        result = runner.invoke(cli, [name, "--help"])
        assert result.exit_code == 0, (name, result.output)
        assert "Usage: " in result.output and name in result.output


def test_help_does_not_import_tensorflow():
    code = ("import sys; from asctool.cli import cli; "
            "sys.argv=['asctool','--help']\n"
            "try:\n cli(prog_name='asctool')\nexcept SystemExit: pass\n"
            "print('tensorflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().endswith("False")


def test_project_errors_are_one_line_exit_1(tmp_path):
    runner = CliRunner()
    missing = tmp_path / "none.h5"
    result = runner.invoke(cli, ["inspect", str(missing)])
    assert result.exit_code == 1
    assert result.output.strip() == f"Error: {missing}: file not found"
    assert "Traceback" not in result.output


def test_usage_errors_exit_2():
    result = CliRunner().invoke(cli, ["featurize", "--no-such-option"])
    assert result.exit_code == 2


def test_inspect_scores_via_cli(tmp_path):
    path = tmp_path / "s.h5"
    artifacts.write_scores(path, ids=["a", "b", "c"], scores=np.eye(3), classes=["x", "y", "z"],
                           scenes=["x", "y", "y"], devices=["a", "b", "b"])
    result = CliRunner().invoke(cli, ["inspect", str(path)])
    assert result.exit_code == 0, result.output
    assert "scores: shape (3, 3) dtype float32" in result.output
    assert "devices: a: 1, b: 2" in result.output
    assert "schema_version: 1" in result.output
