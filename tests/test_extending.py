"""docs/extending.md: each worked example registers its entry and runs through the command line.

The examples are read from the page itself: each file example is written to a
temporary folder and imported from there. Then ``asctool`` runs in-process
(``CliRunner``), so the command line sees the entry registered at run time. The
registries are restored after each test.
"""
from __future__ import annotations

import dataclasses
import importlib.util
import json
import re
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from asctool.artifacts import read_scores
from asctool.audio import read_audio, write_audio
from asctool.cli import cli
from asctool.manifest import Clip, read_manifest, write_manifest

from helpers import COARSE, FINE, P_COARSE, P_FINE, make_features, write_probs
from helpers import FUSE_IDS as IDS

DOC = Path(__file__).resolve().parents[1] / "docs" / "extending.md"


def _examples() -> dict[str, str]:
    """The page's Python blocks by the path on their first line (``# asctool/...``), joined per path."""
    examples: dict[str, str] = {}
    for block in re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S):
        path = block.splitlines()[0][2:].split(",")[0].strip()
        examples[path] = examples.get(path, "") + block
    return examples


#: the names the page's examples register
EXAMPLE_NAMES = {"tinynet", "gain", "level", "geometric", "additive"}


@pytest.fixture()
def registries():
    """Every registry, restored to its content before the test.

    A user who followed the page has the examples in the package already: their
    entries step aside during the test (the test registers the page's copy) and
    come back after it.
    """
    from asctool import fusion
    from asctool.augment import registry as waveform
    from asctool.models import registry as models
    from asctool.training.batch_augment import registry as batch

    tables = [models.REGISTRY, waveform.REGISTRY, batch.REGISTRY, fusion.ENSEMBLE_METHODS, fusion.FUSION_METHODS]
    saved = [table.items() for table in tables]
    for table in tables:
        for name in EXAMPLE_NAMES & set(table.names()):
            table.remove(name)
    yield
    for table, before in zip(tables, saved):
        for name in set(table.names()) - {name for name, _ in before} | (EXAMPLE_NAMES & set(table.names())):
            table.remove(name)
        for name, entry in before:
            if name not in table:
                table.add(name, entry)
        assert dict(table.items()) == dict(before)      # the tests add toy entries only


def _load(path: str, tmp_path: Path):
    """Import the example file ``path`` of the page from a temporary folder (its registration runs)."""
    file = tmp_path / f"example_{Path(path).stem}.py"
    file.write_text(_examples()[path], encoding="utf-8")
    spec = importlib.util.spec_from_file_location(file.stem, file)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _invoke(args: list[str]):
    result = CliRunner().invoke(cli, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result


def test_the_page_has_one_example_per_kind():
    assert set(_examples()) == {"asctool/models/tinynet.py", "asctool/augment/gain.py",
                                "asctool/training/batch_augment/level.py", "asctool/fusion/geometric.py",
                                "asctool/fusion/additive.py"}
    # one block per example file
    assert len(re.findall(r"^```python\n# asctool/", DOC.read_text(), flags=re.M)) == len(_examples())


def test_a_model(registries, tmp_path):
    _load("asctool/models/tinynet.py", tmp_path)
    # the registry now knows it: an unknown name is refused with a list that names it
    refused = CliRunner().invoke(cli, ["train", "--train", str(tmp_path / "x.h5"), "--model", "tinynett",
                                       "--out-dir", str(tmp_path / "no")])
    assert refused.exit_code == 1 and "tinynet" in refused.output and not (tmp_path / "no").exists()
    data = make_features(tmp_path / "train.h5", 16)
    # no --epochs: the entry's training_defaults give the demo profile 1 epoch
    result = _invoke(["train", "--train", data, "--model", "tinynet", "--out-dir", tmp_path / "run",
                      "--profile", "demo", "--batch-size", "8", "--option", "filters=4"])
    summary = json.loads(result.stdout)
    assert summary["epochs"] == 1 and summary["steps"] == 2
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["model"] == "tinynet" and config["epochs"] == 1 and config["model_options"]["filters"] == "4"
    assert (tmp_path / "run" / "model.keras").is_file()


def test_a_waveform_augmentation(registries, tmp_path):
    _load("asctool/augment/gain.py", tmp_path)
    rng = np.random.default_rng(0)
    clips = []
    for stem in ("bus-lyon-1-10-a", "park-lyon-2-20-a"):
        write_audio(tmp_path / f"{stem}.wav", 0.1 * rng.standard_normal((1, 8000)), 16000)
        clips.append(Clip(id=stem, path=f"{stem}.wav", scene=stem.split("-")[0], device="a", city="lyon"))
    manifest = write_manifest(tmp_path / "train.tsv", clips)
    half = 20 * np.log10(0.5)
    _invoke(["augment", "gain", "--manifest", manifest, "--out-dir", tmp_path / "out", "--out-manifest",
             tmp_path / "out.tsv", "--format", "wav", "--param", f"gain_db_min={half}", "--param",
             f"gain_db_max={half}"])
    out = read_manifest(tmp_path / "out.tsv")
    assert len(out) == 2 and {c.augmentation for c in out} == {"gain"}
    for clip in out:
        y, _ = read_audio(tmp_path / clip.path)
        source, _ = read_audio(tmp_path / f"{clip.source_id}.wav")
        np.testing.assert_allclose(y, 0.5 * source, atol=1e-6)


def test_a_batch_augmentation(registries, tmp_path):
    from asctool.training.batch_augment import REGISTRY

    _load("asctool/training/batch_augment/level.py", tmp_path)
    _load("asctool/models/tinynet.py", tmp_path)
    traced = []
    entry = REGISTRY.remove("level")

    def spy(x, y, **arrays):
        traced.append(sorted(arrays))
        return entry.apply(x, y, **arrays)

    REGISTRY.add("level", dataclasses.replace(entry, apply=spy))
    assert "level" in CliRunner().invoke(cli, ["train", "--help"]).output
    data = make_features(tmp_path / "train.h5", 16)
    _invoke(["train", "--train", data, "--model", "tinynet", "--out-dir", tmp_path / "run", "--profile", "demo",
             "--batch-size", "8", "--augment", "level,mixup"])
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["augment"]["level"] is True and config["augment"]["level_max"] == 0.1
    assert config["augment"]["mixup"] is True and config["augment"]["specaugment"] is False
    assert traced and traced[0] == ["shift"]      # applied inside the training pipeline
    # auto leaves an entry out unless it asks to be in
    _invoke(["train", "--train", data, "--model", "tinynet", "--out-dir", tmp_path / "auto", "--profile", "demo",
             "--batch-size", "8"])
    assert json.loads((tmp_path / "auto" / "config.json").read_text())["augment"]["level"] is False


def test_an_ensemble_method(registries, tmp_path):
    _load("asctool/fusion/geometric.py", tmp_path)
    m1 = np.array([[0.6, 0.3, 0.1], [0.2, 0.2, 0.6]])
    m2 = np.array([[0.2, 0.7, 0.1], [0.1, 0.1, 0.8]])
    a = write_probs(tmp_path / "a.h5", ["e1", "e2"], m1, ["bus", "park", "tram"])
    b = write_probs(tmp_path / "b.h5", ["e2", "e1"], m2[::-1], ["bus", "park", "tram"])   # joined by id
    result = _invoke(["ensemble", a, b, "--method", "geometric", "--weights", "1,3", "--out", tmp_path / "out.h5"])
    assert json.loads(result.stdout)["weights"] == [0.25, 0.75]
    expected = m1 ** 0.25 * m2 ** 0.75
    expected /= expected.sum(axis=1, keepdims=True)
    out = read_scores(tmp_path / "out.h5")
    np.testing.assert_allclose(out.scores, expected, atol=1e-6)
    assert out.attrs["method"] == "geometric"


def test_a_fusion_method(registries, tmp_path):
    _load("asctool/fusion/additive.py", tmp_path)
    hierarchy = tmp_path / "hierarchy.tsv"
    hierarchy.write_text("a1\tA\na2\tA\nb1\tB\nb2\tB\n")
    fine = write_probs(tmp_path / "fine.h5", IDS, P_FINE, FINE)
    coarse = write_probs(tmp_path / "coarse.h5", IDS[::-1], P_COARSE[::-1], COARSE)
    _invoke(["fuse", "--fine", fine, "--coarse", coarse, "--hierarchy", hierarchy, "--method", "additive",
             "--coarse-weight", "2", "--out", tmp_path / "out.h5"])
    expected = P_FINE + 2 * P_COARSE[:, [0, 0, 1, 1]]
    expected /= expected.sum(axis=1, keepdims=True)
    out = read_scores(tmp_path / "out.h5")
    np.testing.assert_allclose(out.scores, expected, atol=1e-6)
    assert out.attrs["method"] == "additive" and out.attrs["coarse_weight"] == 2.0
