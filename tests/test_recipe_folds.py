"""The recipe template's cross-validation (--folds) and the fusion weight chosen on validation scores.

A stand-in asctool records the command lines; its `score` writes a report whose accuracy
depends on the fold, and `results` is the real `asctool results`, so the mean ± std the
recipe prints is checked against an independent computation.
"""
from __future__ import annotations

import statistics
import sys
from pathlib import Path

from helpers import FAKE_PRELUDE, run_with_fake_asctool, toy_recipe

REPO = Path(__file__).resolve().parents[1]

FAKE = FAKE_PRELUDE + r"""case "$cmd" in
  synth) mkdir -p "${opt[--out-dir]}"; touch "${opt[--out-dir]}/meta.csv" ;;
  prepare) out="${opt[--out-dir]}"; setup="${opt[--setup]}"; mkdir -p "$out"
           printf 'id\tpath\n' > "$out/${setup}_train.tsv"
           printf 'id\tpath\nc1\tx\n' > "$out/${setup}_evaluate.tsv"
           if [ -n "${opt[--fold]:-}" ]; then printf 'dog\nrain\n' > "$out/${setup}_classes.txt"; fi ;;
  score) json="${opt[--json]}"; fold="$(sed -n 's|.*/fold\([0-9]*\)/.*|\1|p' <<<"$json")"
         acc="0.$((40 + 7 * ${fold:-1} * ${fold:-1}))"   # fold 1: 0.47, 2: 0.68, 3: 0.103 -> see FOLD_ACC
         mkdir -p "$(dirname "$json")"
         printf '{"n": 10, "classes": ["a", "b"], "overall": {"accuracy": %s, "macro_accuracy": %s}, "groups": {}}\n' \
           "$acc" "$acc" > "$json" ;;
  fuse) echo '{"coarse_weight": 0.5}' ;;
  results) exec "$ASCTOOL_PYTHON" -c "import sys; from asctool.cli import main; sys.argv[0] = 'asctool'; main()" \
             results "$@" ;;
esac
"""

TOY = """\
preset: 1a
groups: fine coarse
fine_models: fcnn resnet
fine_labels: scene
fine_ensembles: fine_ensemble:mean
coarse_models: fcnn
coarse_labels: coarse
coarse_ensembles: coarse_ensemble:mean
fusion: two_stage
fusion_fine: fine_ensemble
fusion_coarse: coarse_ensemble
fusion_weight: valid
valid_split: 0.2
published: none
paper:
  clips_per_class: 12
demo:
  clips_per_class: 4
  epochs: 2
"""


def _toy(tmp_path: Path, conf: str = TOY, stages: str = "synth prepare split featurize train predict combine score results"):
    return toy_recipe(tmp_path, conf, stages)


def _run(tmp_path: Path, recipe: Path, *args: str):
    return run_with_fake_asctool(tmp_path, recipe, FAKE, *args, timeout=300,
                                 env={"ASCTOOL_PYTHON": sys.executable, "PYTHONPATH": str(REPO)})


def test_fusion_weight_chosen_on_validation_scores(tmp_path):
    done, calls = _run(tmp_path, _toy(tmp_path), "--work-dir", "w", "--nj", "1")
    assert done.returncode == 0, done.stderr
    assert "split --manifest w/data/fold1_train.tsv --out-train w/data/train_sub.tsv --out-valid w/data/valid.tsv " \
           "--valid-split 0.2 --labels scene --seed 0 --force" in calls
    for run in ("fine_fcnn", "fine_resnet", "coarse_fcnn"):
        assert (f"predict --model w/exp/{run}/model.keras --features w/data/feats/valid.h5 "
                f"--out w/exp/{run}/scores_valid.h5") in calls
    assert ("ensemble w/exp/fine_fcnn/scores_valid.h5 w/exp/fine_resnet/scores_valid.h5 --method mean "
            "--out w/exp/fine_ensemble/scores_valid.h5") in calls
    assert ("ensemble w/exp/coarse_fcnn/scores_valid.h5 --method mean --labels coarse "
            "--out w/exp/coarse_ensemble/scores_valid.h5") in calls
    fuse = [c for c in calls if c.startswith("fuse ")]
    assert fuse == ["fuse --fine w/exp/fine_ensemble/scores_evaluate.h5 --coarse w/exp/coarse_ensemble/scores_evaluate.h5 "
                    "--choose-weight-on w/exp/fine_ensemble/scores_valid.h5 w/exp/coarse_ensemble/scores_valid.h5 "
                    "--out w/exp/two_stage/scores_evaluate.h5"]
    order = [c.split()[0] + (" valid" if "scores_valid.h5 --method" in c else "") for c in calls]
    assert order.index("ensemble valid") < order.index("fuse")


def test_fusion_weight_number_and_its_checks(tmp_path):
    recipe = _toy(tmp_path)
    done, calls = _run(tmp_path, recipe, "--work-dir", "w", "--nj", "1", "--fusion-weight", "0.5", "--stop-stage", "6")
    assert done.returncode == 0, done.stderr
    assert [c for c in calls if c.startswith("fuse ")][0].endswith(
        "--coarse-weight 0.5 --out w/exp/two_stage/scores_evaluate.h5")
    assert not any("scores_valid.h5 --method" in c for c in calls)   # no validation ensembles needed
    bad, _ = _run(tmp_path, recipe, "--work-dir", "w", "--fusion-weight", "heavy")
    assert bad.returncode == 2 and "--fusion-weight must be a number or valid, not 'heavy'" in bad.stderr
    nosplit = _toy(tmp_path / "b", stages="synth prepare featurize train predict combine score results")
    bad, _ = _run(tmp_path, nosplit, "--work-dir", "w")
    assert bad.returncode == 2 and "needs a split stage" in bad.stderr
    fitted = _toy(tmp_path / "c", conf=TOY.replace("fine_ensemble:mean", "fine_ensemble:logreg:fit"))
    bad, _ = _run(tmp_path, fitted, "--work-dir", "w")
    assert bad.returncode == 2 and "ensemble fine_ensemble is fitted on the validation scores" in bad.stderr


FOLD_ACC = {1: 0.47, 2: 0.68, 3: 0.103}   # what the stand-in's score reports for each fold


def test_folds_run_every_stage_per_fold_and_print_mean_and_std(tmp_path):
    (tmp_path / "db").mkdir()   # a metadata-CSV layout: no evaluation_setup/, so prepare --fold K
    done, calls = _run(tmp_path, _toy(tmp_path), "--work-dir", "w", "--nj", "1", "--data-root", "db",
                       "--folds", "1,2,3")
    assert done.returncode == 0, done.stderr
    prepares = [c for c in calls if c.startswith("prepare ")]
    assert prepares == [f"prepare --dataset-root db --out-dir w/data/fold{k} --setup fold{k} --fold {k} --force"
                        for k in (1, 2, 3)]
    # the data's own classes (prepare writes SETUP_classes.txt for non-DCASE labels) reach split and featurize
    assert ("split --manifest w/data/fold2/fold2_train.tsv --out-train w/data/fold2/train_sub.tsv --out-valid "
            "w/data/fold2/valid.tsv --valid-split 0.2 --labels scene --seed 0 "
            "--classes w/data/fold2/fold2_classes.txt --force") in calls
    assert all("--classes w/data/fold" in c for c in calls if c.startswith("featurize --manifest"))
    assert ("train --train w/data/fold2/feats/train_sub.h5 --valid w/data/fold2/feats/valid.h5 --model fcnn "
            "--labels scene --out-dir w/exp/fold2/fine_fcnn --profile paper --seed 0") in calls
    combined = [c for c in calls if c.startswith("results --folds")]
    assert len(combined) == 1 and "two_stage=w/exp/fold{fold}/two_stage/report_evaluate.json" in combined[0]
    values = list(FOLD_ACC.values())
    mean, std = 100 * statistics.mean(values), 100 * statistics.stdev(values)
    table = (tmp_path / "w" / "exp" / "RESULTS.md").read_text()
    assert f"| two_stage | 2 | {mean:.1f} ± {std:.1f} | {mean:.1f} ± {std:.1f} |  | 30 |" in table
    assert done.stdout.endswith(table)   # printed last
    for k in (1, 2, 3):
        assert (tmp_path / "w" / "exp" / f"fold{k}" / "RESULTS.md").is_file()
    # rerun: each fold's finished steps are skipped (the stand-in writes only manifests and reports)
    again, calls = _run(tmp_path, _toy(tmp_path / "again"), "--work-dir", "w", "--nj", "1", "--data-root", "db",
                        "--folds", "1,2,3")
    assert again.returncode == 0, again.stderr
    assert not any(c.startswith(("prepare", "score")) for c in calls) and calls[-1].startswith("results --folds")


def test_folds_on_a_tau_layout_use_the_setups(tmp_path):
    done, calls = _run(tmp_path, _toy(tmp_path), "--work-dir", "w", "--nj", "1", "--folds", "1,2",
                       "--stop-stage", "1")
    assert done.returncode == 0, done.stderr
    assert [c for c in calls if c.startswith(("synth", "prepare"))] == [
        "synth --out-dir w/db --clips-per-class 4 --nj 1 --seed 0 --force",   # once: the second fold finds it
        "prepare --dataset-root w/db --out-dir w/data/fold1 --setup fold1 --force",
        "prepare --dataset-root w/db --out-dir w/data/fold2 --setup fold2 --force",
    ]
    assert not any(c.startswith("results") for c in calls)   # the results stage is out of range
    bad, _ = _run(tmp_path, _toy(tmp_path / "b"), "--work-dir", "w", "--folds", "1,../x")
    assert bad.returncode == 2 and "'../x' is not a fold name" in bad.stderr


def test_duration_and_resample_reach_featurize(tmp_path):
    recipe = _toy(tmp_path)
    done, calls = _run(tmp_path, recipe, "--work-dir", "w", "--nj", "1", "--duration", "auto", "--resample", "preset",
                       "--stop-stage", "3")
    assert done.returncode == 0, done.stderr
    shards = [c for c in calls if c.startswith("featurize --manifest")]
    assert len(shards) == 3 and all(" --preset 1a --duration auto --resample --shard 1/1 --force" in c
                                    for c in shards), shards
    _, calls = _run(tmp_path, _toy(tmp_path / "b"), "--work-dir", "v", "--nj", "1", "--duration", "5",
                    "--resample", "16000", "--stop-stage", "3")
    assert all(" --duration 5 --resample 16000 " in c for c in calls if c.startswith("featurize --manifest"))
    _, calls = _run(tmp_path, _toy(tmp_path / "c"), "--work-dir", "u", "--nj", "1", "--stop-stage", "3")
    assert not any("--duration" in c or "--resample" in c for c in calls)   # the preset's, as before
