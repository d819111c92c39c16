"""Shared fixtures: the real data in ../shared/data and a tiny synthesized corpus."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

sys.path.insert(0, str(Path(__file__).resolve().parent))  # tests/helpers.py, for every test folder

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` beside the checkout; tests using it skip when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not beside the checkout")
    return SHARED_DATA


@pytest.fixture(scope="session")
def demo_dataset(tmp_path_factory) -> Path:
    """A tiny synthesized dataset in the TAU layout, made once per test session.

    ``asctool.stages.synth.run(root, clips_per_class=2, seed=0)``: 10 s mono clips at
    44.1 kHz (the 1a preset gives 423 frames); per scene 2 training segments on
    device a, one of them also on b, c, s1-s3, and one evaluation segment on
    all nine devices: 70 train and 90 evaluate/test clips. Treat it as read-only.
    """
    from asctool.stages.synth import run as synthesize

    root = tmp_path_factory.mktemp("demo_dataset")
    synthesize(root, clips_per_class=2, seed=0)
    return root


@pytest.fixture(scope="session")
def demo_manifests(demo_dataset, tmp_path_factory) -> dict[str, Path]:
    """``asctool prepare`` run on :func:`demo_dataset`: ``{"train", "evaluate", "test", "meta": path}``."""
    from asctool.stages.prepare import run as prepare

    out = tmp_path_factory.mktemp("demo_manifests")
    summary = prepare(demo_dataset, out)
    return {name: Path(path) for name, path in summary["manifests"].items()}


@pytest.fixture()
def read_only_dir(tmp_path):
    """``tmp_path/RO``, a folder nobody may write in: a read-only tmpfs for root, else mode 0555."""
    folder = tmp_path / "RO"
    folder.mkdir()
    if os.geteuid() != 0:
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)
        return
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(folder)],
                             capture_output=True)
    if mounted.returncode != 0:
        pytest.skip("root here cannot mount a read-only tmpfs")
    yield folder
    subprocess.run(["umount", str(folder)], check=True)
