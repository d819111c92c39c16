"""Tests of asctool.console: TensorFlow's native start-up lines stay off stderr unless -v."""
from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from helpers import make_features, trained_run

# what TensorFlow 2.21's C++ code prints at start-up (absl's format: I0000 00:00:... file.cc:N] ...)
_NATIVE = re.compile(r"^([IWEF]\d{4} \d\d:\d\d:\d\d\.\d+ +\d+ \S+:\d+\]|WARNING: All log messages before absl)")


def _asctool(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}  # as a user's shell has it
    code = "import sys; from asctool.cli import main; sys.argv[0] = 'asctool'; main()"
    return subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True, text=True,
                          timeout=300)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return trained_run(tmp_path_factory)


def test_predict_quiet_prints_no_native_tensorflow_lines(run, tmp_path):
    out = tmp_path / "s.h5"
    done = _asctool("-q", "predict", "--model", str(run["run"] / "model.keras"), "--features", str(run["test"]),
                    "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert out.is_file()
    assert not [line for line in done.stderr.splitlines() if _NATIVE.match(line)], done.stderr
    assert done.stderr.strip() == "", done.stderr   # -q: nothing at all on a clean run


def test_verbose_shows_them_again():
    done = _asctool("-v", "models", "--classes", "3", "--input", "32x40x3")
    assert done.returncode == 0, done.stderr
    native = [line for line in done.stderr.splitlines() if _NATIVE.match(line)]
    assert native, done.stderr   # the muting is what hides them: -v lets them through


def test_train_quiet_prints_nothing(tmp_path):
    """-q: no native TensorFlow lines during training either (ERROR-level notices such as oneDNN's
    DT_HALF one), and no INFO lines although the run's train.log asks the logger for them."""
    data = make_features(tmp_path / "f.h5", 8)
    done = _asctool("-q", "train", "--train", str(data), "--model", "fcnn", "--out-dir", str(tmp_path / "run"),
                    "--profile", "demo", "--epochs", "1", "--valid-split", "0.25")
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip() == "", done.stderr
    assert "INFO asctool.training.trainer: epoch 1/1" in (tmp_path / "run" / "train.log").read_text()
