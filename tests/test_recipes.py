"""Recipes: option parsing, job runners, the shared template and its stage guards, shellcheck, end to end.

The helper commands the recipes call are tested with their stages: tests/stages/test_split.py,
test_results.py and test_check_size.py.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
RECIPES = REPO / "recipes"
UTILS = RECIPES / "utils"


def _bash(script: str, *args: str, cwd: Path | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-c", script, "test", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


PARSE = f"""
set -euo pipefail
nj=4
foo_bar=default
empty=""
force=false
help_message="usage: test [--nj N] [--foo-bar X]"
. {UTILS / 'parse_options.sh'}
printf 'nj=%s foo_bar=%s empty=%s force=%s rest=%s\\n' "$nj" "$foo_bar" "$empty" "$force" "$*"
"""


def test_parse_options_sets_variables():
    done = _bash(PARSE, "--nj", "8", "--foo-bar", "a b", "--empty=x", "--force", "pos1", "pos2")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "nj=8 foo_bar=a b empty=x force=true rest=pos1 pos2"
    explicit = _bash(PARSE, "--force", "false", "--nj", "2")
    assert explicit.stdout.strip() == "nj=2 foo_bar=default empty= force=false rest="


@pytest.mark.parametrize("args, message", [
    (("--no-such", "1"), "unknown option '--no-such'"),
    (("--nj",), "needs a value"),
    (("--force", "--nj"), "needs a value"),
    (("--force=maybe",), "takes true or false"),
    (("--bad%name", "1"), "invalid option name"),
])
def test_parse_options_usage_errors_exit_2(args, message):
    done = _bash(PARSE, *args)
    assert done.returncode == 2
    assert message in done.stderr
    assert done.stdout == ""


def test_parse_options_help_and_config(tmp_path):
    helped = _bash(PARSE, "--help")
    assert helped.returncode == 0 and helped.stdout.strip() == "usage: test [--nj N] [--foo-bar X]"
    conf = tmp_path / "opts.conf"
    conf.write_text("nj=16\nfoo_bar=from-config\n")
    done = _bash(PARSE, "--config", str(conf), "--nj", "3")
    assert done.stdout.strip() == "nj=3 foo_bar=from-config empty= force=false rest="


def test_parse_options_config_is_data(tmp_path):
    """--config FILE: comments, blank lines, quotes; nothing executed or expanded."""
    conf = tmp_path / "opts.conf"
    conf.write_text("# a comment\n\n  nj=16   # trailing comment\nfoo_bar=\"a # b $(touch X)\"\n"
                    "empty='$HOME'\nforce=true\r\n")
    done = _bash(PARSE, "--config", str(conf), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "nj=16 foo_bar=a # b $(touch X) empty=$HOME force=true rest="
    assert not (tmp_path / "X").exists()


@pytest.mark.parametrize("text, message", [
    ("nj=$(touch X)\n", None),                              # a value, taken literally
    ("$(touch X)\n", "expected 'name=value'"),
    ("nj=2\n`touch X`\n", "2: expected 'name=value'"),
    ("nj=2\nno_such=1\n", "opts.conf:2: 'no_such': unknown option"),
    ("force=maybe\n", "opts.conf:1: 'force' takes true or false"),
    ("foo_bar=\"unclosed\n", "opts.conf:1: bad quoting"),
])
def test_parse_options_config_never_executes(tmp_path, text, message):
    conf = tmp_path / "opts.conf"
    conf.write_text(text)
    done = _bash(PARSE, "--config", str(conf), cwd=tmp_path)
    assert not (tmp_path / "X").exists()
    if message is None:
        assert done.returncode == 0 and "nj=$(touch X)" in done.stdout
    else:
        assert done.returncode == 2 and message in done.stderr and done.stdout == ""


def test_parse_options_allow_list():
    """With parse_options_names set, only those variables are options (not the recipe's internals)."""
    kaldi = PARSE.replace("help_message=", "recipe_dir=/x\nhelp_message=")
    assert _bash(kaldi, "--recipe-dir", "/tmp").returncode == 0  # Kaldi's rule: any defined variable
    listed = kaldi.replace("help_message=", "parse_options_names='nj foo_bar empty force'\nhelp_message=")
    assert _bash(listed, "--nj", "2").returncode == 0
    done = _bash(listed, "--recipe-dir", "/tmp")
    assert done.returncode == 2 and "unknown option '--recipe-dir'" in done.stderr


READ_YAML = f"""
set -euo pipefail
. {UTILS / 'read_conf.sh'}
read_yaml_conf "$1"
for i in "${{!conf_keys[@]}}"; do
  printf '%s\t%s\t%s\t%s\n' "${{conf_sections[$i]}}" "${{conf_keys[$i]}}" "${{conf_values[$i]}}" "${{conf_notes[$i]}}"
done
"""


@pytest.mark.parametrize("conf", sorted((RECIPES / "conf").glob("*.yaml")), ids=lambda p: p.name)
def test_conf_files_read_as_yaml_reads_them(conf):
    """The shell reader and a YAML parser agree on every system's conf file."""
    yaml = pytest.importorskip("yaml")
    done = _bash(READ_YAML, str(conf))
    assert done.returncode == 0, done.stderr
    by_shell: dict = {}
    for line in done.stdout.splitlines():
        section, key, value, _ = line.split("\t")
        (by_shell.setdefault(section, {}) if section else by_shell)[key] = value
    def text(value):  # noqa: E306  (a YAML boolean is the word the recipe compares with: true, false)
        if isinstance(value, bool):
            return str(value).lower()
        return {k: text(v) for k, v in value.items()} if isinstance(value, dict) else "" if value is None else str(value)
    assert by_shell == text(yaml.safe_load(conf.read_text()))


@pytest.mark.parametrize("text, message", [
    ("a: 1\n  b: 2\n", "2: indented line outside a section"),
    ("a: [1, 2]\nb:\n- x\n", "3: expected 'key: value'"),
    ("a: 1\na: 2\n", "2: 'a' appears twice"),
    ("s:\n  a: 1\n    b: 2\n", "3: indent differs"),
    ("a: $(touch X)\nb: \"x\" y\n", "2: bad quoting"),
])
def test_read_yaml_conf_rejects_what_it_does_not_read(tmp_path, text, message):
    conf = tmp_path / "c.yaml"
    conf.write_text(text)
    done = _bash(READ_YAML, str(conf), cwd=tmp_path)
    assert done.returncode == 2 and f"c.yaml:{message}" in done.stderr
    assert not (tmp_path / "X").exists()


def test_run_local_jobs_logs_and_failures(tmp_path):
    runner = str(UTILS / "run_local.sh")
    ok = subprocess.run([runner, "--stdout", "out/JOB.txt", "JOB=1:3", "log/x.JOB.log", "echo", "job JOB", "a b"],
                        cwd=tmp_path, capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert (tmp_path / "out" / "2.txt").read_text() == "job 2 a b\n"
    assert "# Ended (code 0)" in (tmp_path / "log" / "x.3.log").read_text()
    bad = subprocess.run([runner, "JOB=1:3", "log/y.JOB.log", "bash", "-c", "echo output of JOB; [ JOB != 2 ]"],
                         cwd=tmp_path, capture_output=True, text=True)
    assert bad.returncode == 1
    assert "1 of 3 jobs failed" in bad.stderr and "output of 2" in bad.stderr and "output of 1" not in bad.stderr
    assert "# Ended (code 1)" in (tmp_path / "log" / "y.2.log").read_text()
    usage = subprocess.run([runner, "JOB=1:2", "log/same.log", "true"], cwd=tmp_path, capture_output=True, text=True)
    assert usage.returncode == 2 and "must contain JOB" in usage.stderr


def test_run_slurm_writes_an_array_job(tmp_path):
    """run_slurm.sh against a stand-in sbatch that runs the array tasks here."""
    fake = tmp_path / "bin" / "sbatch"
    fake.parent.mkdir()
    fake.write_text(
        "#!/usr/bin/env bash\n"
        "array=''; script=''\n"
        "for a in \"$@\"; do case \"$a\" in --array=*) array=\"${a#--array=}\";; --*) ;; *) script=\"$a\";; esac; done\n"
        "echo \"$*\" > sbatch.args; rc=0\n"
        "for ((i=${array%-*}; i<=${array#*-}; i++)); do SLURM_ARRAY_TASK_ID=$i bash \"$script\" || rc=1; done\n"
        "exit $rc\n"
    )
    fake.chmod(0o755)
    conf = tmp_path / "slurm.conf"
    conf.write_text(f"slurm_opts=(--partition=test)\nslurm_sbatch={fake}\n")
    runner = str(UTILS / "run_slurm.sh")
    done = subprocess.run([runner, "--config", str(conf), "--gpu", "1", "JOB=1:2", "log/t.JOB.log",
                           "bash", "-c", "echo task JOB; [ JOB = 1 ]"], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 1
    args = (tmp_path / "sbatch.args").read_text()
    assert "--wait" in args and "--array=1-2" in args and "--partition=test" in args and "--gres=gpu:1" in args
    assert "task 1" in (tmp_path / "log" / "t.1.log").read_text()
    assert "task 2 failed" in done.stderr


@pytest.mark.parametrize("recipe", ["dcase2020_1a.sh", "dcase2020_1b.sh"])
def test_recipe_help_and_bad_options(recipe, tmp_path):
    helped = subprocess.run(["bash", str(RECIPES / recipe), "--help"], capture_output=True, text=True, cwd=tmp_path)
    assert helped.returncode == 0 and "--stop-stage" in helped.stdout and "--data-root" in helped.stdout
    bad = subprocess.run(["bash", str(RECIPES / recipe), "--no-such-option", "1"], capture_output=True, text=True,
                         cwd=tmp_path)
    assert bad.returncode == 2 and "unknown option" in bad.stderr
    wrong = subprocess.run(["bash", str(RECIPES / recipe), "--nj", "zero"], capture_output=True, text=True, cwd=tmp_path)
    assert wrong.returncode == 2 and "--nj must be an integer" in wrong.stderr
    # a model name that could not name a run folder: a usage error, not bash's own message
    models = "--fine-models" if recipe == "dcase2020_1a.sh" else "--models"
    for name in ("res-net", "../x"):
        named = subprocess.run(["bash", str(RECIPES / recipe), models, name], capture_output=True, text=True,
                               cwd=tmp_path)
        assert named.returncode == 2 and f"'{name}' is not a model name" in named.stderr, named.stderr
    assert not (tmp_path / "exp").exists()


def test_recipe_stage_guards_skip_and_resume(tmp_path):
    """Stages out of range do nothing; existing outputs are skipped; the invocation is saved."""
    fake = tmp_path / "bin" / "asctool"
    fake.parent.mkdir()
    fake.write_text("#!/usr/bin/env bash\necho \"$*\" >> \"$FAKE_CALLS\"\n"
                    "if [ \"$1\" = synth ]; then mkdir -p \"$3\"; touch \"$3/meta.csv\"; fi\n"
                    "if [ \"$1\" = prepare ]; then exit 3; fi\n")
    fake.chmod(0o755)
    calls = tmp_path / "calls.txt"
    env = {**os.environ, "PATH": f"{fake.parent}:{os.environ['PATH']}", "FAKE_CALLS": str(calls)}
    cmd = ["bash", str(RECIPES / "dcase2020_1a.sh"), "--work-dir", "w", "--stop-stage", "1"]
    first = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert first.returncode != 0
    assert "Stage 0: synthesize" in first.stderr and "Stage 1: prepare" in first.stderr
    assert "FAILED in stage 1" in first.stderr and "rerun the same command" in first.stderr
    assert calls.read_text().splitlines()[0].startswith("synth --out-dir w/db")
    assert "dcase2020_1a.sh --work-dir w --stop-stage 1" in (tmp_path / "w/exp/invocation.txt").read_text()
    calls.unlink()
    again = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert "Stage 0: synthesize the demo dataset in w/db: skipped" in again.stderr
    assert calls.read_text().startswith("prepare --dataset-root w/db")  # resumes at the failed stage


FAKE_ASCTOOL = """#!/usr/bin/env bash
echo "$*" >> "$FAKE_CALLS"
case "$1" in
  prepare) mkdir -p "$5"; printf 'id\\tpath\\n' > "$5/fold1_train.tsv"
           printf 'id\\tpath\\nc1\\tx\\nc2\\ty\\nc3\\tz\\n' > "$5/fold1_evaluate.tsv" ;;
  results) while [ $# -gt 0 ]; do if [ "$1" = --out ]; then echo table > "$2"; fi; shift; done ;;
esac
"""


def _fake_run(tmp_path: Path, recipe: Path, *args: str) -> tuple[subprocess.CompletedProcess, list[str]]:
    """Run a recipe with a stand-in asctool that only records its command lines."""
    from helpers import run_with_fake_asctool

    return run_with_fake_asctool(tmp_path, recipe, FAKE_ASCTOOL, *args)


# The command lines of `dcase2020_1a.sh --work-dir w --nj 2` before the template (main at c737763),
# sorted (the featurize shards run in parallel); results_table.py became `asctool results`. Since
# every stage refuses existing outputs without --force (issue 9), the stages that may find what an
# interrupted run of theirs left (synth, prepare, featurize shards, cam) or are always rebuilt
# (results) pass --force. Since issue 14 the demo profile trains the 10-class resnet and fcnn for 30
# epochs (fsfcnn left out), adds the linear probe (its training writes several files and always
# passes --force) and the noaug group's resnet, trained without the augmented copies for 50 epochs.
CALLS_1A = """\
augment spectrum-correction --manifest w/data/fold1_train.tsv --out-dir w/data/aug/spectrum-correction --out-manifest w/data/aug_spectrum-correction.tsv --exclude-locations w/data/fold1_evaluate.tsv --devices a --nj 2 --seed 0
cam --model w/exp/coarse_resnet/model.keras --model w/exp/fine_resnet/model.keras --features w/data/feats/evaluate.h5 --ids c1,c2 --out-dir w/exp/cam --force
ensemble w/exp/coarse_resnet/scores_evaluate.h5 w/exp/coarse_fcnn/scores_evaluate.h5 --method mean --labels coarse --out w/exp/coarse_ensemble/scores_evaluate.h5
ensemble w/exp/fine_resnet/scores_evaluate.h5 w/exp/fine_fcnn/scores_evaluate.h5 --method mean --out w/exp/fine_ensemble/scores_evaluate.h5
featurize --manifest w/data/aug_spectrum-correction.tsv --out w/data/feats/aug_spectrum-correction/shard.1.h5 --preset 1a --shard 1/2 --force
featurize --manifest w/data/aug_spectrum-correction.tsv --out w/data/feats/aug_spectrum-correction/shard.2.h5 --preset 1a --shard 2/2 --force
featurize --manifest w/data/fold1_evaluate.tsv --out w/data/feats/evaluate/shard.1.h5 --preset 1a --shard 1/2 --force
featurize --manifest w/data/fold1_evaluate.tsv --out w/data/feats/evaluate/shard.2.h5 --preset 1a --shard 2/2 --force
featurize --manifest w/data/fold1_train.tsv --out w/data/feats/train/shard.1.h5 --preset 1a --shard 1/2 --force
featurize --manifest w/data/fold1_train.tsv --out w/data/feats/train/shard.2.h5 --preset 1a --shard 2/2 --force
featurize --out w/data/feats/aug_spectrum-correction.h5 --combine w/data/feats/aug_spectrum-correction/shard.1.h5 --combine w/data/feats/aug_spectrum-correction/shard.2.h5
featurize --out w/data/feats/evaluate.h5 --combine w/data/feats/evaluate/shard.1.h5 --combine w/data/feats/evaluate/shard.2.h5
featurize --out w/data/feats/train.h5 --combine w/data/feats/train/shard.1.h5 --combine w/data/feats/train/shard.2.h5
fuse --fine w/exp/fine_ensemble/scores_evaluate.h5 --coarse w/exp/coarse_ensemble/scores_evaluate.h5 --out w/exp/two_stage/scores_evaluate.h5
inspect w/data/feats/train.h5
predict --model w/exp/coarse_fcnn/model.keras --features w/data/feats/evaluate.h5 --out w/exp/coarse_fcnn/scores_evaluate.h5
predict --model w/exp/coarse_resnet/model.keras --features w/data/feats/evaluate.h5 --out w/exp/coarse_resnet/scores_evaluate.h5
predict --model w/exp/fine_fcnn/model.keras --features w/data/feats/evaluate.h5 --out w/exp/fine_fcnn/scores_evaluate.h5
predict --model w/exp/fine_resnet/model.keras --features w/data/feats/evaluate.h5 --out w/exp/fine_resnet/scores_evaluate.h5
predict --model w/exp/linear_probe/model.json --features w/data/feats/evaluate.h5 --out w/exp/linear_probe/scores_evaluate.h5
predict --model w/exp/noaug_resnet/model.keras --features w/data/feats/evaluate.h5 --out w/exp/noaug_resnet/scores_evaluate.h5
prepare --dataset-root w/db --out-dir w/data --setup fold1 --force
results --out w/exp/RESULTS.md --title DCASE 2020 Task 1a, fold1 evaluation set, profile demo --published 1a --fusion-summary w/exp/two_stage/fuse.json fine_resnet=w/exp/fine_resnet/report_evaluate.json fine_fcnn=w/exp/fine_fcnn/report_evaluate.json coarse_resnet=w/exp/coarse_resnet/report_evaluate.json coarse_fcnn=w/exp/coarse_fcnn/report_evaluate.json noaug_resnet=w/exp/noaug_resnet/report_evaluate.json fine_ensemble=w/exp/fine_ensemble/report_evaluate.json coarse_ensemble=w/exp/coarse_ensemble/report_evaluate.json linear_probe=w/exp/linear_probe/report_evaluate.json two_stage=w/exp/two_stage/report_evaluate.json --force
score w/exp/coarse_ensemble/scores_evaluate.h5 --labels coarse --json w/exp/coarse_ensemble/report_evaluate.json
score w/exp/coarse_fcnn/scores_evaluate.h5 --labels coarse --json w/exp/coarse_fcnn/report_evaluate.json
score w/exp/coarse_resnet/scores_evaluate.h5 --labels coarse --json w/exp/coarse_resnet/report_evaluate.json
score w/exp/fine_ensemble/scores_evaluate.h5 --json w/exp/fine_ensemble/report_evaluate.json
score w/exp/fine_fcnn/scores_evaluate.h5 --json w/exp/fine_fcnn/report_evaluate.json
score w/exp/fine_resnet/scores_evaluate.h5 --json w/exp/fine_resnet/report_evaluate.json
score w/exp/linear_probe/scores_evaluate.h5 --json w/exp/linear_probe/report_evaluate.json
score w/exp/noaug_resnet/scores_evaluate.h5 --json w/exp/noaug_resnet/report_evaluate.json
score w/exp/two_stage/scores_evaluate.h5 --json w/exp/two_stage/report_evaluate.json
synth --out-dir w/db --clips-per-class 8 --nj 2 --seed 0 --force
train --train w/data/feats/train.h5 --model logreg --out-dir w/exp/linear_probe --force
train --train w/data/feats/train.h5 --model resnet --labels scene --out-dir w/exp/noaug_resnet --profile demo --seed 0 --valid-split 0.1 --epochs 50 --crop 128 --batch-size 8
train --train w/data/feats/train.h5 --train w/data/feats/aug_spectrum-correction.h5 --model fcnn --labels coarse --out-dir w/exp/coarse_fcnn --profile demo --seed 0 --valid-split 0.1 --epochs 14 --crop 128 --batch-size 8
train --train w/data/feats/train.h5 --train w/data/feats/aug_spectrum-correction.h5 --model fcnn --labels scene --out-dir w/exp/fine_fcnn --profile demo --seed 0 --valid-split 0.1 --epochs 30 --crop 128 --batch-size 8
train --train w/data/feats/train.h5 --train w/data/feats/aug_spectrum-correction.h5 --model resnet --labels coarse --out-dir w/exp/coarse_resnet --profile demo --seed 0 --valid-split 0.1 --epochs 14 --crop 128 --batch-size 8 --option base_filters=24
train --train w/data/feats/train.h5 --train w/data/feats/aug_spectrum-correction.h5 --model resnet --labels scene --out-dir w/exp/fine_resnet --profile demo --seed 0 --valid-split 0.1 --epochs 30 --crop 128 --batch-size 8
"""


def test_recipe_1a_runs_the_same_commands(tmp_path):
    """The template gives dcase2020_1a.sh the command lines it had as a 300-line script."""
    done, calls = _fake_run(tmp_path, RECIPES / "dcase2020_1a.sh", "--work-dir", "w", "--nj", "2")
    assert done.returncode == 0, done.stderr
    assert sorted(calls) == CALLS_1A.splitlines()
    assert "Stage 9: class activation maps" in done.stderr and "Done in" in done.stderr
    assert done.stdout == "table\n"   # RESULTS.md, printed
    ordered = [c.split()[0] for c in calls]
    assert ordered.index("synth") < ordered.index("prepare") < ordered.index("augment") < ordered.index("train")
    assert ordered.index("ensemble") < ordered.index("fuse") < ordered.index("score") < ordered.index("results")


def test_recipe_force_reaches_every_stage_that_writes(tmp_path):
    """With --force every stage that writes gets --force (train: instead of --resume); without it only
    the stages that always pass it (see CALLS_1A), never the ones that resume (augment) or write one file."""
    done, calls = _fake_run(tmp_path, RECIPES / "dcase2020_1a.sh", "--work-dir", "w", "--nj", "1", "--force", "true")
    assert done.returncode == 0, done.stderr
    writers = [c for c in calls if not c.startswith("inspect ")]
    assert {c.split()[0] for c in writers} == {"synth", "prepare", "augment", "featurize", "train", "predict",
                                              "ensemble", "fuse", "score", "results", "cam"}
    assert all(" --force" in c for c in writers), [c for c in writers if " --force" not in c]
    _, plain = _fake_run(tmp_path, RECIPES / "dcase2020_1a.sh", "--work-dir", "v", "--nj", "1")
    for command in ("augment", "predict", "ensemble", "fuse", "score", "train"):
        assert not any(c.startswith(command + " ") and "--force" in c and "--model logreg" not in c
                       for c in plain), command
    # the linear probe has no --resume: its run folder is rebuilt whenever model.json is missing
    assert "train --train v/data/feats/train.h5 --model logreg --out-dir v/exp/linear_probe --force" in plain


def test_recipe_1b_commands_and_the_valid_fraction_alias(tmp_path):
    done, calls = _fake_run(tmp_path, RECIPES / "dcase2020_1b.sh", "--work-dir", "w", "--nj", "1",
                            "--valid-fraction", "0.2")
    assert done.returncode == 0, done.stderr
    assert "--valid-fraction is deprecated, use --valid-split" in done.stderr
    assert calls[:3] == [
        "synth --out-dir w/db --clips-per-class 18 --sr 48000 --channels 2 --devices a --nj 1 --seed 0 --force",
        "prepare --dataset-root w/db --out-dir w/data --setup fold1 --force",
        "split --manifest w/data/fold1_train.tsv --out-train w/data/train_sub.tsv --out-valid w/data/valid.tsv "
        "--valid-split 0.2 --labels coarse --seed 0 --force",
    ]
    assert ("train --train w/data/feats/train_sub.h5 --valid w/data/feats/valid.h5 --model mobnet --labels coarse "
            "--out-dir w/exp/mobnet --profile demo --seed 0 --crop 128 --batch-size 8") in calls
    assert "check-size --budget-kb 500 --size-rule dcase w/exp/mobnet/size.json w/exp/small_fcnn/size.json" in calls
    assert ("ensemble w/exp/mobnet/scores_evaluate_tflite.h5 w/exp/small_fcnn/scores_evaluate_tflite.h5 --method logreg "
            "--fit w/exp/mobnet/scores_valid_tflite.h5 --fit w/exp/small_fcnn/scores_valid_tflite.h5 --labels coarse "
            "--out w/exp/ensemble_logreg/scores_evaluate.h5") in calls
    assert ("score w/exp/small_fcnn/scores_evaluate_keras.h5 --labels coarse "
            "--json w/exp/small_fcnn/report_evaluate_keras.json") in calls
    results = [c for c in calls if c.startswith("results ")]
    assert len(results) == 1 and "--published 1b --budget-kb 500 --size-rule dcase" in results[0]
    assert "--size mobnet-tflite=w/exp/mobnet/size.json" in results[0] and "mobnet-keras=" in results[0]
    assert not any(c.startswith(("augment", "fuse", "cam")) for c in calls)
    # the real dataset: its own labels, and the file rule passes the budget to quantize too
    _, real = _fake_run(tmp_path, RECIPES / "dcase2020_1b.sh", "--work-dir", "r", "--data-root", "db",
                        "--size-rule", "file", "--stop-stage", "5")
    assert real[0].startswith("prepare ") and "--labels scene" in real[1]
    assert any(c.startswith("quantize ") and "--max-bytes 512000" in c for c in real)


def test_recipes_are_thin_scripts_of_one_template():
    """Each system: a short script that sets its name and stages and sources the template."""
    for recipe in sorted(RECIPES.glob("*.sh")):
        if recipe.name == "cmd.sh":
            continue
        text = recipe.read_text()
        assert len(text.splitlines()) <= 45, recipe
        assert text.rstrip().endswith('. "$(dirname "${BASH_SOURCE[0]}")/TEMPLATE/asc.sh"'), recipe
        assert (RECIPES / "conf" / f"{recipe.stem}.yaml").is_file(), recipe
        assert "asctool" not in "\n".join(line for line in text.splitlines() if not line.startswith("#"))


def test_recipes_hold_no_python():
    """Recipes call only asctool: no Python files, no python calls."""
    files = [p for p in RECIPES.rglob("*") if p.is_file()]
    assert not [p for p in files if p.suffix == ".py" or p.read_text(errors="replace").startswith("#!/usr/bin/env python")]
    for path in files:
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), start=1):
            code = line.split("#", 1)[0]
            assert "python" not in code.lower(), f"{path}:{number}: {line}"


TOY_CONF = """\
# a third system: one group of two models, a mean ensemble
preset: 1a
groups:
models: fcnn resnet        # the models
labels: coarse
ensembles: ensemble:mean
resnet_option: base_filters=16
valid_split: 0.2
published: none
paper:
  clips_per_class: 12
demo:
  clips_per_class: 4
  epochs: 2
"""


def test_a_third_system_is_a_thin_script_of_the_same_shape(tmp_path):
    """A new system is a copy of a thin script with its own stages plus a conf file."""
    recipes = tmp_path / "recipes"
    shutil.copytree(RECIPES, recipes)
    script = (recipes / "dcase2020_1a.sh").read_text()
    script = script.replace("system=dcase2020_1a", "system=toy").replace(
        'stages="synth prepare augment featurize train predict combine score results cam"',
        'stages="synth prepare featurize train predict combine score results"')
    (recipes / "toy.sh").write_text(script)
    (recipes / "conf" / "toy.yaml").write_text(TOY_CONF)
    helped = subprocess.run(["bash", str(recipes / "toy.sh"), "--help"], capture_output=True, text=True)
    assert "--resnet-option KEY=VALUE" in helped.stdout and "--augmentations" not in helped.stdout
    assert "Stages: 0 synth, 1 prepare, 2 featurize, 3 train, 4 predict, 5 combine, 6 score, 7 results." in helped.stdout
    done, calls = _fake_run(tmp_path, recipes / "toy.sh", "--work-dir", "t", "--nj", "1")
    assert done.returncode == 0, done.stderr
    assert calls[0] == "synth --out-dir t/db --clips-per-class 4 --nj 1 --seed 0 --force"
    assert ("train --train t/data/feats/train.h5 --model resnet --labels coarse --out-dir t/exp/resnet --profile demo "
            "--seed 0 --valid-split 0.2 --epochs 2 --option base_filters=16") in calls
    assert ("ensemble t/exp/fcnn/scores_evaluate.h5 t/exp/resnet/scores_evaluate.h5 --method mean --labels coarse "
            "--out t/exp/ensemble/scores_evaluate.h5") in calls
    assert calls[-1].startswith("results --out t/exp/RESULTS.md --title DCASE 2020 Task 1a, fold1 evaluation set, "
                                "profile demo --published none fcnn=t/exp/fcnn/report_evaluate.json")
    # a conf key the template does not know is refused, naming the file and line
    (recipes / "conf" / "toy.yaml").write_text(TOY_CONF.replace("valid_split: 0.2", "valid_splitt: 0.2"))
    bad, _ = _fake_run(tmp_path, recipes / "toy.sh", "--work-dir", "t")
    assert bad.returncode == 2 and "toy.yaml:8: unknown setting 'valid_splitt'" in bad.stderr


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck is not installed")
def test_shellcheck_clean():
    scripts = sorted(str(p) for p in RECIPES.rglob("*.sh")) + [str(RECIPES / "conf" / "slurm.conf")]
    done = subprocess.run(["shellcheck", "-x", *scripts], cwd=RECIPES, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.slow
def test_recipe_1a_end_to_end(tmp_path):
    """The demo recipe from synth to RESULTS.md (several minutes on 2 CPU cores)."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    done = subprocess.run(["bash", str(RECIPES / "dcase2020_1a.sh"), "--work-dir", str(tmp_path / "demo"), "--nj", "2"],
                          capture_output=True, text=True, env=env, timeout=1800)
    assert done.returncode == 0, done.stderr[-3000:]
    results = (tmp_path / "demo" / "exp" / "RESULTS.md").read_text()
    assert "| two_stage |" in results and "oracle gating" in results
    report = json.loads((tmp_path / "demo" / "exp" / "two_stage" / "report_evaluate.json").read_text())
    assert 0.0 <= report["overall"]["accuracy"] <= 1.0 and report["n"] > 0
    assert "Done in" in done.stderr


@pytest.mark.slow
def test_recipe_1b_end_to_end(tmp_path):
    """Task 1b on synthesized 48 kHz stereo data: quantised pair, budget check, ensembles."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    done = subprocess.run(["bash", str(RECIPES / "dcase2020_1b.sh"), "--work-dir", str(tmp_path / "b"), "--nj", "2"],
                          capture_output=True, text=True, env=env, timeout=1800)
    assert done.returncode == 0, done.stderr[-3000:]
    exp = tmp_path / "b" / "exp"
    results = (exp / "RESULTS.md").read_text()
    assert "| ensemble_logreg |" in results and "within the budget of 500 KB" in results
    for model in ("mobnet", "small_fcnn"):
        size = json.loads((exp / model / "size.json").read_text())
        assert size["mode"] == "dynamic" and size["bytes"] == (exp / model / "model.tflite").stat().st_size


def test_recipe_unlabelled_commands(tmp_path):
    """TEMPLATE/unlabelled.sh: the unlabelled set prepared without labels, five systems side by side."""
    recipe = RECIPES / "TEMPLATE" / "unlabelled.sh"
    one = subprocess.run(["bash", str(recipe), "--data-root", "x"], capture_output=True, text=True, cwd=tmp_path)
    assert one.returncode == 2 and "give both --data-root and --unlabelled-root" in one.stderr
    done, calls = _fake_run(tmp_path, recipe, "--work-dir", "w")
    assert done.returncode == 0, done.stderr
    assert "prepare --dataset-root w/db/unlabelled --out-dir w/data/unlabelled --layout eval --force" in calls
    feats = "w/data/feats"
    common = "--model fcnn --profile demo --epochs 12 --batch-size 8 --crop 128 --seed 0"
    unl = f"--unlabelled {feats}/unlabelled.h5 --domain device --grl-weight 1.0 --grl-ramp"
    expected = [
        f"train {common} --out-dir w/exp/plain --force --train {feats}/train.h5",
        f"train {common} --out-dir w/exp/adversarial_time --force --train {feats}/train.h5 {unl} --adversarial time",
        f"train {common} --out-dir w/exp/adversarial_whole --force --train {feats}/train.h5 {unl} --adversarial whole",
        f"train {common} --out-dir w/exp/tri_training_phase1 --force --train {feats}/train.h5 --tri-training "
        "--orthogonality 1.0",
        "pseudo-label --model w/exp/tri_training_phase1 --features w/data/feats/unlabelled.h5 --threshold 0.5 "
        "--out w/exp/tri_training_pseudo.h5 --force",
        f"train {common} --out-dir w/exp/tri_training --force --train {feats}/train.h5 --train "
        "w/exp/tri_training_pseudo.h5",
        f"train {common} --out-dir w/exp/tri_training_adversarial --force --train {feats}/train.h5 --train "
        f"w/exp/tri_training_adversarial_pseudo.h5 {unl} --adversarial time",
    ]
    for line in expected:
        assert line in calls, line
    results = [c for c in calls if c.startswith("results")]
    assert len(results) == 1 and "tri_training_adversarial=w/exp/tri_training_adversarial/score.json" in results[0]


CALLS_BASELINE_DEMO = """\
embed --manifest w/data/fold1_evaluate.tsv --extractor birdnet --hop 1 --out w/data/emb/evaluate.h5 --nj 1
embed --manifest w/data/fold1_train.tsv --extractor birdnet --hop 1 --out w/data/emb/train.h5 --nj 1
inspect w/data/emb/train.h5
predict --model w/exp/logreg/model.json --features w/data/emb/evaluate.h5 --out w/exp/logreg/scores_evaluate.h5
predict --model w/exp/mlp/model.keras --features w/data/emb/evaluate.h5 --out w/exp/mlp/scores_evaluate.h5
prepare --dataset-root w/db --out-dir w/data --setup fold1 --force
results --out w/exp/RESULTS.md --title DCASE 2020 Task 1a baseline (embeddings + MLP), fold1 evaluation set, profile demo --published dcase2020-baseline mlp=w/exp/mlp/report_evaluate.json logreg=w/exp/logreg/report_evaluate.json --force
score w/exp/logreg/scores_evaluate.h5 --json w/exp/logreg/report_evaluate.json
score w/exp/mlp/scores_evaluate.h5 --json w/exp/mlp/report_evaluate.json
synth --out-dir w/db --clips-per-class 6 --nj 1 --seed 0 --force
train --train w/data/emb/train.h5 --model logreg --labels scene --out-dir w/exp/logreg --profile demo --seed 0
train --train w/data/emb/train.h5 --model mlp --labels scene --out-dir w/exp/mlp --profile demo --seed 0
"""


def test_recipe_baseline_on_demo_data_uses_birdnet(tmp_path):
    done, calls = _fake_run(tmp_path, RECIPES / "dcase2020_baseline.sh", "--work-dir", "w", "--nj", "1")
    assert done.returncode == 0, done.stderr
    assert sorted(calls) == CALLS_BASELINE_DEMO.splitlines()
    assert "Stage 2: embed train with extractor birdnet (--hop 1)" in done.stderr
    assert "Embeddings of the training set (extractor birdnet)" in done.stderr


def test_recipe_baseline_with_data_needs_openl3_weights(tmp_path):
    data = tmp_path / "tau"
    data.mkdir()
    done, calls = _fake_run(tmp_path, RECIPES / "dcase2020_baseline.sh", "--work-dir", "w", "--data-root", str(data))
    assert done.returncode == 2 and calls == []
    assert done.stderr.strip().count("\n") == 0 and "asctool download openl3" in done.stderr
    weights = tmp_path / "openl3_audio_mel256_music-v0_4_0.h5.gz"
    weights.write_bytes(b"x")
    done, calls = _fake_run(tmp_path, RECIPES / "dcase2020_baseline.sh", "--work-dir", "w", "--data-root", str(data),
                            "--weights", str(weights))
    assert done.returncode == 0, done.stderr
    embed = [c for c in calls if c.startswith("embed --manifest w/data/fold1_train.tsv")]
    assert embed == [f"embed --manifest w/data/fold1_train.tsv --extractor openl3 --input-repr mel256 --content-type "
                     f"music --embedding-size 512 --hop 0.1 --weights {weights} --out w/data/emb/train.h5 --nj 4"]
    assert "train --train w/data/emb/train.h5 --model mlp --labels scene --out-dir w/exp/mlp " \
           "--profile dcase2020-baseline --seed 0" in calls


def test_recipe_linear_probe_row(tmp_path):
    """1a's conf turns the probe on (a RESULTS.md row); --linear-probe false leaves every probe step out."""
    done, calls = _fake_run(tmp_path, RECIPES / "dcase2020_1a.sh", "--work-dir", "w", "--nj", "1")
    assert done.returncode == 0, done.stderr
    assert "train --train w/data/feats/train.h5 --model logreg --out-dir w/exp/linear_probe --force" in calls
    assert ("predict --model w/exp/linear_probe/model.json --features w/data/feats/evaluate.h5 "
            "--out w/exp/linear_probe/scores_evaluate.h5") in calls
    assert "score w/exp/linear_probe/scores_evaluate.h5 --json w/exp/linear_probe/report_evaluate.json" in calls
    assert "linear_probe=w/exp/linear_probe/report_evaluate.json" in [c for c in calls if c.startswith("results")][0]
    off, calls = _fake_run(tmp_path, RECIPES / "dcase2020_1a.sh", "--work-dir", "w", "--nj", "1",
                           "--linear-probe", "false")
    assert off.returncode == 0, off.stderr
    assert calls and not any("linear_probe" in c for c in calls)


def test_recipe_group_augmented_and_epochs(tmp_path):
    """G_augmented false: the group's models train without the augmented sets; G_epochs: their own --epochs."""
    aug = "--train w/data/feats/aug_spectrum-correction.h5 "
    done, calls = _fake_run(tmp_path, RECIPES / "dcase2020_1a.sh", "--work-dir", "w", "--nj", "1",
                            "--noaug-models", "resnet fcnn", "--noaug-epochs", "7", "--fine-epochs", "5",
                            "--epochs", "3")
    assert done.returncode == 0, done.stderr
    trains = {c.split("--out-dir ")[1].split()[0]: c for c in calls if c.startswith("train ") and "logreg" not in c}
    assert sorted(trains) == ["w/exp/coarse_fcnn", "w/exp/coarse_resnet", "w/exp/fine_fcnn", "w/exp/fine_resnet",
                              "w/exp/noaug_fcnn", "w/exp/noaug_resnet"]
    for run in ("noaug_resnet", "noaug_fcnn"):
        assert trains[f"w/exp/{run}"].startswith(f"train --train w/data/feats/train.h5 --model {run[6:]} --labels "
                                                 f"scene --out-dir w/exp/{run} --profile demo --seed 0 "
                                                 "--valid-split 0.1 --epochs 7 --crop 128")
    for run in ("fine_resnet", "fine_fcnn", "coarse_resnet", "coarse_fcnn"):
        assert aug in trains[f"w/exp/{run}"]
        assert f"--epochs {5 if run.startswith('fine') else 3} " in trains[f"w/exp/{run}"]
    assert "Stage 4: train noaug_fcnn (fcnn, labels scene, without the augmented copies, 7 epochs)" in done.stderr
    assert not any(c.startswith("ensemble ") and "noaug" in c for c in calls)   # rows only
    results = [c for c in calls if c.startswith("results ")][0]
    assert "noaug_resnet=w/exp/noaug_resnet/report_evaluate.json" in results
    # augmented true: the augmented sets again; the paper profile: its three models, no noaug runs
    _, calls = _fake_run(tmp_path, RECIPES / "dcase2020_1a.sh", "--work-dir", "v", "--nj", "1",
                         "--noaug-augmented", "true", "--stop-stage", "4")
    noaug = [c for c in calls if "--out-dir v/exp/noaug_resnet" in c]
    assert len(noaug) == 1 and aug.replace("w/", "v/") in noaug[0] and "--epochs 50 " in noaug[0]
    _, calls = _fake_run(tmp_path, RECIPES / "dcase2020_1a.sh", "--work-dir", "p", "--data-root", "db", "--nj", "1",
                         "--stop-stage", "4")
    runs = sorted(c.split("--out-dir p/exp/")[1].split()[0] for c in calls if c.startswith("train "))
    assert runs == ["coarse_fcnn", "coarse_resnet", "fine_fcnn", "fine_fsfcnn", "fine_resnet", "linear_probe"]
    assert not any("--epochs" in c for c in calls)
    # bad values: a usage error naming the option, nothing run
    bad, calls = _fake_run(tmp_path, RECIPES / "dcase2020_1a.sh", "--work-dir", "x", "--fine-epochs", "0")
    assert bad.returncode == 2 and "--fine-epochs must be an integer >= 1, not '0'" in bad.stderr and not calls
    # (the command line and --config take only true/false for a key whose conf value is one; a conf can say more)
    recipes = tmp_path / "recipes"
    shutil.copytree(RECIPES, recipes)
    conf = recipes / "conf" / "dcase2020_1a.yaml"
    conf.write_text(conf.read_text().replace("noaug_augmented: false", "noaug_augmented: maybe"))
    bad, calls = _fake_run(tmp_path, recipes / "dcase2020_1a.sh", "--work-dir", "x")
    assert bad.returncode == 2 and "--noaug-augmented must be true or false, not 'maybe'" in bad.stderr and not calls


def test_make_demo_prints_the_seed_spread_of_docs_results():
    """`make demo` ends by printing the block of docs/results.md between the seed-spread markers:
    the 3-seed table, labelled as measured once, with its date and command."""
    root = RECIPES.parent
    makefile = (root / "Makefile").read_text()
    target = makefile.split("\ndemo:", 1)[1].split("\n\n", 1)[0]
    sed = [line.strip() for line in target.splitlines() if "sed -n" in line]
    assert len(sed) == 1 and "docs/results.md" in sed[0]
    done = subprocess.run(sed[0].lstrip("@"), shell=True, cwd=root, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    text = done.stdout
    assert "<!--" not in text and "measured once" in text and "seeds 0, 1, 2" in text
    assert "| fine_ensemble |" in text and "| linear_probe |" in text and "| noaug_resnet |" in text
    assert re.search(r"20\d\d-\d\d-\d\d", text) and "--seed" in text
