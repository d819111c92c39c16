"""recipes/own_data.sh: a system for a user's own data (docs/own-data.md), with a stand-in asctool.

The stand-in (tests/test_recipe_folds.py) records the command lines; `results` is the real one.
"""
from __future__ import annotations

import statistics
import sys
from pathlib import Path

from helpers import run_with_fake_asctool  # noqa: E402  (tests/ is on sys.path)
from test_recipe_folds import FAKE, FOLD_ACC  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
RECIPES = REPO / "recipes"


def _run(tmp_path: Path, recipe: Path, *args: str, fake: str = FAKE):
    """Run ``recipe`` with the stand-in asctool ``fake`` first on PATH; (result, recorded command lines)."""
    return run_with_fake_asctool(tmp_path, recipe, fake, *args, timeout=300,
                                 env={"ASCTOOL_PYTHON": sys.executable, "PYTHONPATH": str(REPO)})


def _recipe(tmp_path: Path) -> Path:
    import shutil

    recipes = tmp_path / "recipes"
    shutil.copytree(RECIPES, recipes)
    return recipes / "own_data.sh"


def test_own_data_help_names_its_profiles_and_needs_a_data_root(tmp_path):
    recipe = _recipe(tmp_path)
    done, _ = _run(tmp_path, recipe, "--help")
    assert done.returncode == 0, done.stderr
    lines = {line.split()[0]: line for line in done.stdout.splitlines() if line.startswith("  --")}
    assert lines["--profile"].endswith("cpu or paper [cpu]")
    assert "synthesized" not in lines["--data-root"]   # the system has no synth stage
    assert "--pad-tolerance" in lines and "--linear-probe" in lines
    assert done.stdout.splitlines()[-1] == ("Stages: 0 prepare, 1 split, 2 featurize, 3 train, 4 predict, 5 score, "
                                            "6 results.")
    bad, calls = _run(tmp_path, recipe, "--work-dir", "w")
    assert bad.returncode == 2 and "--data-root is required (this system has no synth stage)" in bad.stderr
    assert calls == []


def test_own_data_folds_train_the_cnn_with_the_cpu_profile_and_the_linear_probe(tmp_path):
    (tmp_path / "db").mkdir()   # a metadata-CSV layout: prepare --fold K
    done, calls = _run(tmp_path, _recipe(tmp_path), "--work-dir", "w", "--nj", "1", "--data-root", "db",
                       "--folds", "1,2,3", "--duration", "4", "--pad-tolerance", "1", "--resample", "22050")
    assert done.returncode == 0, done.stderr
    assert [c for c in calls if c.startswith("prepare ")] == [
        f"prepare --dataset-root db --out-dir w/data/fold{k} --setup fold{k} --fold {k} --force" for k in (1, 2, 3)]
    assert ("split --manifest w/data/fold2/fold2_train.tsv --out-train w/data/fold2/train_sub.tsv --out-valid "
            "w/data/fold2/valid.tsv --valid-split 0.2 --labels scene --seed 0 "
            "--classes w/data/fold2/fold2_classes.txt --force") in calls
    shards = [c for c in calls if c.startswith("featurize --manifest")]
    assert len(shards) == 9 and all(" --preset 1a --duration 4 --pad-tolerance 1 --resample 22050 --classes "
                                    in c for c in shards), shards
    assert ("train --train w/data/fold2/feats/train_sub.h5 --valid w/data/fold2/feats/valid.h5 --model fcnn "
            "--labels scene --out-dir w/exp/fold2/fcnn --profile cpu --seed 0") in calls
    assert ("train --train w/data/fold2/feats/train_sub.h5 --model logreg --out-dir w/exp/fold2/linear_probe "
            "--force") in calls
    combined = [c for c in calls if c.startswith("results --folds")]
    assert len(combined) == 1
    assert "fcnn=w/exp/fold{fold}/fcnn/report_evaluate.json" in combined[0]
    assert "linear_probe=w/exp/fold{fold}/linear_probe/report_evaluate.json" in combined[0]
    values = list(FOLD_ACC.values())
    mean, std = 100 * statistics.mean(values), 100 * statistics.stdev(values)
    table = (tmp_path / "w" / "exp" / "RESULTS.md").read_text()
    assert table.startswith("# Own data, cross-validation over folds 1,2,3, profile cpu\n")
    for name in ("fcnn", "linear_probe"):
        assert f"| {name} | 2 | {mean:.1f} ± {std:.1f} | {mean:.1f} ± {std:.1f} |  | 30 |" in table


def test_a_label_map_file_is_accepted_as_labels(tmp_path):
    """(found on ESC-50-style data) the recipes refused --labels MAP.tsv, which train, split and score take."""
    (tmp_path / "db").mkdir()
    (tmp_path / "map.tsv").write_text("dog\tanimal\nrain\tweather\n")
    recipe = _recipe(tmp_path)
    done, calls = _run(tmp_path, recipe, "--work-dir", "w", "--nj", "1", "--data-root", "db", "--fold", "1",
                       "--setup", "fold1", "--labels", "map.tsv", "--stop-stage", "3")
    assert done.returncode == 0, done.stderr
    assert any(c.startswith("train ") and "--model fcnn --labels map.tsv " in c for c in calls), calls
    assert any(c.startswith("split ") and " --labels map.tsv " in c for c in calls), calls
    bad, _ = _run(tmp_path, recipe, "--work-dir", "w", "--data-root", "db", "--labels", "nomap.tsv")
    assert bad.returncode == 2 and ("--labels must be scene, coarse or a label map file (TSV scene<TAB>label, as "
                                    "asctool train --labels), not 'nomap.tsv'") in bad.stderr


def test_data_without_an_evaluation_set_stops_at_prepare_with_one_line(tmp_path):
    """(found on a folder-per-class set) the recipe ran on until featurize failed with
    "fold1_evaluate.tsv: file not found"; it stops after prepare and says what to do."""
    fake = FAKE.replace("""printf 'id\\tpath\\nc1\\tx\\n' > "$out/${setup}_evaluate.tsv\"""", ":")
    assert "_evaluate.tsv" not in fake   # a prepare that writes a training manifest only (class folders)
    (tmp_path / "db").mkdir()
    done, calls = _run(tmp_path, _recipe(tmp_path), "--work-dir", "w", "--nj", "1", "--data-root", "db", fake=fake)
    assert done.returncode == 1
    assert [c.split()[0] for c in calls] == ["prepare"]
    assert ("db has no evaluation set (prepare wrote no w/data/fold1_evaluate.tsv); a metadata CSV needs --fold K "
            "or --folds, a folder per class an evaluation set held out with asctool split (docs/own-data.md)"
            ) in done.stderr
