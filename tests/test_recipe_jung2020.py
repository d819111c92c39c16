"""recipes/jung2020_tagging.sh: the template's tag stage and one run per tag fusion mode.

A stand-in asctool records the command lines; its manifests carry a ``tags`` column, its
`score` writes a report with device groups, and `results` is the real `asctool results`,
so RESULTS.md is checked for the rows by device group and the paper's reference rows.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from helpers import FAKE_PRELUDE, run_with_fake_asctool  # noqa: E402  (tests/ is on sys.path)

REPO = Path(__file__).resolve().parents[1]
RECIPES = REPO / "recipes"
RECIPE = RECIPES / "jung2020_tagging.sh"

FAKE = FAKE_PRELUDE + r"""case "$cmd" in
  synth) mkdir -p "${opt[--out-dir]}"; touch "${opt[--out-dir]}/meta.csv" ;;
  prepare) out="${opt[--out-dir]}"; mkdir -p "$out"
           printf 'id\tpath\tscene\ttags\n' > "$out/fold1_train.tsv"
           printf 'id\tpath\tscene\ttags\nc1\tx\tpark\tbirds\n' > "$out/fold1_evaluate.tsv" ;;
  train) mkdir -p "${opt[--out-dir]}"; touch "${opt[--out-dir]}/config.json"
         if [ "${opt[--task]:-}" = tagging ]; then touch "${opt[--out-dir]}/model.keras"; fi ;;
  score) json="${opt[--json]}"; mkdir -p "$(dirname "$json")"
         if [ -n "${opt[--manifest]:-}" ]; then echo '{"task": "tagging", "mAP": 0.5}' > "$json"; exit 0; fi
         case "$json" in *codecat*) acc=0.5 ;; *attention*) acc=0.25 ;; *) acc=0.375 ;; esac
         printf '{"n": 8, "classes": ["a", "b"], "overall": {"accuracy": %s, "macro_accuracy": %s, "log_loss": 1.0},
                 "groups": {"A": {"accuracy": 0.5}, "B&C": {"accuracy": 0.25}, "s1-s3": {"accuracy": 0.75},
                 "s4-s6": {"accuracy": 0.125}}}\n' "$acc" "$acc" > "$json" ;;
  results) exec "$ASCTOOL_PYTHON" -c "import sys; from asctool.cli import main; sys.argv[0] = 'asctool'; main()" \
             results "$@" ;;
esac
"""


def _run(tmp_path: Path, *args: str, recipe: Path = RECIPE):
    return run_with_fake_asctool(tmp_path, recipe, FAKE, *args, timeout=300,
                                 env={"ASCTOOL_PYTHON": sys.executable, "PYTHONPATH": str(REPO)})


COMMON = "--model small_fcnn --labels scene --profile demo --seed 0 --epochs 30 --width 0.5 --crop 128 --batch-size 8"
MODES = {"small_fcnn": None, "small_fcnn_codecat": "codecat", "small_fcnn_concat_3": "concat:3",
         "small_fcnn_attention_2-1": "attention:2,1", "small_fcnn_both_4-3": "both:4,3"}


def _train(run: str, mode: str | None) -> str:
    line = f"train --train w/data/feats/train.h5 {COMMON.replace('--labels scene', f'--labels scene --out-dir w/exp/{run}')}"
    return line + (f" --tags w/data/tags/train.h5 --tag-fusion {mode}" if mode else "")


def test_demo_chain_tagger_then_every_fusion_mode(tmp_path):
    done, calls = _run(tmp_path, "--work-dir", "w", "--nj", "1")
    assert done.returncode == 0, done.stderr
    order = [c.split()[0] + (" tagging" if "--task tagging" in c or "--manifest" in c and c.startswith("score") else "")
             for c in calls]
    assert order.index("synth") < order.index("prepare") < order.index("featurize") < order.index("train tagging") \
        < order.index("tag") < order.index("score tagging") < order.index("train") < order.index("predict") < order.index("score") \
        < order.index("results")
    assert ("train --task tagging --train w/data/feats/train.h5 --model fcnn --out-dir w/exp/tagger --seed 0 "
            "--profile cpu --epochs 20 --valid-split 0.2") in calls
    for s in ("train", "evaluate"):
        assert (f"tag --manifest w/data/fold1_{s}.tsv --tagger asctool --run w/exp/tagger "
                f"--out w/data/tags/{s}.h5 --nj 1") in calls
    assert ("score w/data/tags/evaluate.h5 --manifest w/data/fold1_evaluate.tsv "
            "--json w/exp/tagger/report_evaluate.json") in calls
    trains = [c for c in calls if c.startswith("train ") and "--task" not in c and "logreg" not in c]
    assert sorted(trains) == sorted(_train(run, mode) for run, mode in MODES.items())
    for run, mode in MODES.items():
        tags = " --tags w/data/tags/evaluate.h5" if mode else ""
        assert (f"predict --model w/exp/{run}/model.keras --features w/data/feats/evaluate.h5{tags} "
                f"--out w/exp/{run}/scores_evaluate.h5") in calls
    assert "train --train w/data/feats/train.h5 --model logreg --out-dir w/exp/linear_probe --force" in calls
    results = [c for c in calls if c.startswith("results ")]
    assert len(results) == 1 and "--published jung2020" in results[0]
    table = (tmp_path / "w" / "exp" / "RESULTS.md").read_text()
    # one row per run by device group (the stand-in's figures), then the paper's reference rows
    assert "| small_fcnn_codecat | 2 | 50.0 | 25.0 | 75.0 | 12.5 | 50.0 | 50.0 | 1.000 | 8 |" in table
    assert "| small_fcnn_attention_2-1 | 2 | 50.0 | 25.0 | 75.0 | 12.5 | 25.0 | 25.0 | 1.000 | 8 |" in table
    for row in ("| baseline (backbone alone) | 73.63 |", "| concatenation (3 tag layers) | 75.66 |",
                "| multi-head attention (2 heads, 1 layer) | 76.58 |", "| both (shared, 4 heads, 3 layers) | 76.75 |"):
        assert row in table
    assert table.index("| linear_probe |") < table.index("73.63")
    assert done.stdout.endswith(table)


def test_rerun_skips_the_trained_tagger_and_the_tags(tmp_path):
    done, _ = _run(tmp_path, "--work-dir", "w", "--nj", "1")
    assert done.returncode == 0, done.stderr
    (tmp_path / "w" / "exp" / "tagger" / "model.keras").unlink()   # an interrupted tagger resumes
    again, calls = _run(tmp_path, "--work-dir", "w", "--nj", "1", "--stage", "3", "--stop-stage", "3")
    assert again.returncode == 0, again.stderr
    assert calls[0].startswith("train --task tagging ") and calls[0].endswith(" --resume")
    forced, calls = _run(tmp_path, "--work-dir", "w", "--nj", "1", "--stage", "3", "--stop-stage", "3",
                         "--force", "true")
    assert forced.returncode == 0 and calls[0].endswith(" --force") and " --resume" not in calls[0]
    (tmp_path / "w" / "data" / "tags").mkdir()
    for s in ("train", "evaluate"):   # the stand-in writes no tags files
        (tmp_path / "w" / "data" / "tags" / f"{s}.h5").write_bytes(b"")
    again, calls = _run(tmp_path, "--work-dir", "w", "--nj", "1", "--stage", "3", "--stop-stage", "3")
    assert again.returncode == 0, again.stderr
    assert calls == []
    assert "Stage 3: train the tagger (fcnn on the tags column" in again.stderr and "skipped" in again.stderr


def test_birdnet_tagger_needs_no_training(tmp_path):
    subset = tmp_path / "nonbird.txt"
    subset.write_text("Engine\nSiren\n")
    done, calls = _run(tmp_path, "--work-dir", "w", "--nj", "2", "--tagger", "birdnet",
                       "--tagger-opts", f"--tag-subset {subset}", "--tag-fusions", "none attention:2,1")
    assert done.returncode == 0, done.stderr
    assert not any("--task tagging" in c or "--manifest w/data/fold1_evaluate.tsv --json" in c for c in calls)
    assert [c for c in calls if c.startswith("tag ")] == [
        f"tag --manifest w/data/fold1_{s}.tsv --tagger birdnet --tag-subset {subset} --out w/data/tags/{s}.h5 --nj 2"
        for s in ("train", "evaluate")]
    runs = sorted(c.split("--out-dir ")[1].split()[0] for c in calls if c.startswith("train ") and "logreg" not in c)
    assert runs == ["w/exp/small_fcnn", "w/exp/small_fcnn_attention_2-1"]


def test_real_data_defaults_to_birdnet(tmp_path):
    (tmp_path / "tau").mkdir()
    done, calls = _run(tmp_path, "--work-dir", "w", "--data-root", "tau", "--nj", "1", "--stop-stage", "3")
    assert done.returncode == 0, done.stderr
    assert not any(c.startswith("synth") for c in calls)
    assert "tag --manifest w/data/fold1_train.tsv --tagger birdnet --out w/data/tags/train.h5 --nj 1" in calls
    assert all(" --preset 1a --resample --shard 1/1 " in c for c in calls if c.startswith("featurize --manifest"))


def test_bad_fusion_mode_and_missing_tagger_are_usage_errors(tmp_path):
    done, calls = _run(tmp_path, "--work-dir", "w", "--tag-fusions", "none attention:2;rm")
    assert done.returncode == 2 and calls == []
    assert done.stderr.strip().count("\n") == 0 and "'attention:2;rm' is not a fusion mode" in done.stderr
    done, calls = _run(tmp_path, "--work-dir", "w", "--tagger", "asctool", "--tagger-model", "")
    assert done.returncode == 2 and calls == [] and "needs a featurize stage and tagger_model" in done.stderr
    assert not (tmp_path / "w").exists()


def test_help_lists_the_tag_settings(tmp_path):
    helped = subprocess.run(["bash", str(RECIPE), "--help"], capture_output=True, text=True, cwd=tmp_path)
    assert helped.returncode == 0
    for flag in ("--tag-fusions LIST", "--tagger-model NAME", "--tagger NAME", "--tagger-opts ARGS", "Stages: 0 synth, 1 prepare, "
                 "2 featurize, 3 tag, 4 train, 5 predict, 6 score, 7 results."):
        assert flag in helped.stdout, flag


def test_a_split_stage_validates_fused_models_on_the_training_tags(tmp_path):
    """With a split stage the tagger gets the validation features, and a fused model is
    validated with tags/train.h5 (which covers train_sub and valid)."""
    recipes = tmp_path / "recipes"
    shutil.copytree(RECIPES, recipes)
    script = RECIPE.read_text().replace("system=jung2020_tagging", "system=toy").replace(
        'stages="synth prepare featurize tag', 'stages="synth prepare split featurize tag')
    (recipes / "toy.sh").write_text(script)
    conf = (RECIPES / "conf" / "jung2020_tagging.yaml").read_text()
    conf = conf.replace("tag_fusions: none codecat concat:3 attention:2,1 both:4,3", "tag_fusions: codecat")
    (recipes / "conf" / "toy.yaml").write_text(conf.replace("linear_probe: true", "valid_split: 0.2"))
    done, calls = _run(tmp_path, "--work-dir", "w", "--nj", "1", recipe=recipes / "toy.sh")
    assert done.returncode == 0, done.stderr
    assert any(c.startswith("train --task tagging --train w/data/feats/train_sub.h5 --valid w/data/feats/valid.h5 ")
               for c in calls)
    assert ("predict --model w/exp/small_fcnn_codecat/model.keras --features w/data/feats/valid.h5 "
            "--tags w/data/tags/train.h5 --out w/exp/small_fcnn_codecat/scores_valid.h5") in calls
    assert any(c.startswith("train --train w/data/feats/train_sub.h5 --valid w/data/feats/valid.h5 ")
               and c.endswith("--tags w/data/tags/train.h5 --tag-fusion codecat") for c in calls)
    assert json.loads((tmp_path / "w" / "exp" / "tagger" / "report_evaluate.json").read_text())["mAP"] == 0.5
