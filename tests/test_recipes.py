"""Recipes: option parsing, job runners, stage guards, results table, shellcheck, end to end."""
from __future__ import annotations

import json
import os
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


def test_results_table(tmp_path):
    report = {"n": 10, "classes": ["a", "b", "c"],
              "overall": {"accuracy": 0.5, "macro_accuracy": 0.45, "log_loss": 1.2345},
              "groups": {"A": {"accuracy": 0.75}, "s4-s6": {"accuracy": 0.25}}}
    (tmp_path / "r.json").write_text(json.dumps(report))
    (tmp_path / "fuse.json").write_text(json.dumps({"accuracy": {"fine": 0.5, "fused": 0.55, "oracle_gating": 0.7}}))
    (tmp_path / "size.json").write_text(json.dumps({"bytes": 2048, "parameter_bytes": 1024}))
    out = tmp_path / "RESULTS.md"
    sys.path.insert(0, str(UTILS))
    try:
        import results_table
    finally:
        sys.path.remove(str(UTILS))
    assert results_table.main(["--out", str(out), "--fusion-summary", str(tmp_path / "fuse.json"),
                               "--sizes", f"sys={tmp_path / 'size.json'}", "--budget-kb", "500",
                               f"sys={tmp_path / 'r.json'}"]) == 0
    text = out.read_text()
    assert "| sys | 3 | 75.0 |  |  | 25.0 | 50.0 | 45.0 | 1.234 | 10 | 2.0 | 1.0 |" in text
    assert "oracle gating" in text and "70.0 %" in text and "within the budget of 500 KB" in text


def test_check_size_rules(tmp_path):
    """The DCASE rule counts parameters x bits; the file rule the .tflite bytes."""
    for name, (file_bytes, params) in {"a": (300_000, 250_000), "b": (300_000, 250_000)}.items():
        (tmp_path / f"{name}.json").write_text(json.dumps(
            {"bytes": file_bytes, "parameters": params, "parameter_bytes": params, "mode": "dynamic"}))
    files = [str(tmp_path / "a.json"), str(tmp_path / "b.json")]
    script = str(UTILS / "check_size.py")
    dcase = subprocess.run([sys.executable, script, "--budget-kb", "500", *files], capture_output=True, text=True)
    assert dcase.returncode == 0 and "total: 500000 bytes (488.3 KB), within" in dcase.stdout
    by_file = subprocess.run([sys.executable, script, "--budget-kb", "500", "--rule", "file", *files],
                             capture_output=True, text=True)
    assert by_file.returncode == 1 and "OVER the budget of 500 KB" in by_file.stdout


def test_split_manifest_by_location(tmp_path):
    rows = ["id\tpath\tscene\tdevice\tcity\tlocation"]
    for scene in ("bus", "park"):
        for loc in range(5):
            for seg in range(2):
                rows.append(f"{scene}-x-{loc}-{seg}-a\taudio/{scene}-{loc}-{seg}.wav\t{scene}\ta\tx\t{scene}-x-{loc}")
    (tmp_path / "in.tsv").write_text("\n".join(rows) + "\n")
    cmd = [sys.executable, str(UTILS / "split_manifest.py"), str(tmp_path / "in.tsv"), "--train",
           str(tmp_path / "sub" / "train.tsv"), "--valid", str(tmp_path / "sub" / "valid.tsv"), "--fraction", "0.2"]
    assert subprocess.run(cmd, capture_output=True).returncode == 0
    train = (tmp_path / "sub" / "train.tsv").read_text().splitlines()[1:]
    valid = (tmp_path / "sub" / "valid.tsv").read_text().splitlines()[1:]
    assert len(train) == 16 and len(valid) == 4
    locations = lambda lines: {line.split("\t")[5] for line in lines}  # noqa: E731
    assert not locations(train) & locations(valid)
    assert valid[0].split("\t")[1].startswith("../audio/")  # paths stay valid from the new folder


@pytest.mark.parametrize("recipe", ["dcase2020_1a.sh", "dcase2020_1b.sh"])
def test_recipe_help_and_bad_options(recipe, tmp_path):
    helped = subprocess.run(["bash", str(RECIPES / recipe), "--help"], capture_output=True, text=True, cwd=tmp_path)
    assert helped.returncode == 0 and "--stop-stage" in helped.stdout and "--data-root" in helped.stdout
    bad = subprocess.run(["bash", str(RECIPES / recipe), "--no-such-option", "1"], capture_output=True, text=True,
                         cwd=tmp_path)
    assert bad.returncode == 2 and "unknown option" in bad.stderr
    wrong = subprocess.run(["bash", str(RECIPES / recipe), "--nj", "zero"], capture_output=True, text=True, cwd=tmp_path)
    assert wrong.returncode == 2 and "--nj must be an integer" in wrong.stderr
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
