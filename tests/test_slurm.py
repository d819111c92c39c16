"""The recipes' Slurm backend on a real one-node Slurm cluster (slow; docs/scaling.md).

``scripts/slurm-localhost.sh start`` installs Debian's slurm-wlm and munge if they are
missing (root and apt-get needed), writes a one-node ``slurm.conf`` for this machine in
a scratch folder, starts munged, slurmctld and slurmd and waits for the node to be idle;
the module's fixture stops them at the end. Where the script cannot install them (exit
status 3) the tests are skipped with its reason; nothing is faked.

The 1a demo recipe runs on a reduced configuration (:data:`REDUCED`: 3 clips per scene,
one FCNN per stage, 2 epochs, no class activation maps) so that the local run, the Slurm
run with a failing array task and a cancelled array fit in a few minutes; the stages and
the job arrays are those of the full demo.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "slurm-localhost.sh"
RECIPE = ROOT / "recipes" / "dcase2020_1a.sh"
#: The demo profile's augmentation (recipes/conf/dcase2020_1a.yaml), named here so that the test does
#: not follow the profile: its set is featurized after evaluate.
AUGMENT = "spectrum-correction"
#: The reduced demo: the stages, shards (--nj 2) and arrays of the demo, less data and training.
REDUCED = ["--nj", "2", "--clips-per-class", "3", "--epochs", "2", "--fine-models", "fcnn",
           "--coarse-models", "fcnn", "--cam-clips", "0", "--augmentations", AUGMENT]
RUN_TIMEOUT = 1200
#: Installing slurm-wlm and munge (apt-get, bounded by the script at 600 s) and starting the cluster.
START_TIMEOUT = 900


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A started one-node cluster: the environment that points Slurm's commands at it.

    Skipped, with the script's reason, where Slurm and munge cannot be installed (exit
    status 3) or the cluster does not start (exit status 1, or no idle node within the
    time limit); whatever did start is stopped first.
    """
    folder = tmp_path_factory.mktemp("slurm")
    env = {**os.environ, "ASCTOOL_SLURM_DIR": str(folder),
           # ports of their own, beside any cluster this machine already runs
           "ASCTOOL_SLURMCTLD_PORT": "6917", "ASCTOOL_SLURMD_PORT": "6918"}

    def stop() -> subprocess.CompletedProcess:
        return subprocess.run(["bash", str(SCRIPT), "stop"], env=env, capture_output=True, text=True, timeout=120)

    try:
        started = subprocess.run(["bash", str(SCRIPT), "start"], env=env, capture_output=True, text=True,
                                 timeout=START_TIMEOUT)
    except subprocess.TimeoutExpired:
        stop()
        pytest.skip(f"no Slurm cluster here: scripts/slurm-localhost.sh start took over {START_TIMEOUT} s")
    if started.returncode in (1, 3):
        stop()
        lines = started.stderr.strip().splitlines() or [f"exit status {started.returncode}"]
        what = "cannot install Slurm" if started.returncode == 3 else "the cluster did not start"
        pytest.skip(f"no Slurm cluster here ({what}): {lines[-1]}")
    assert started.returncode == 0, started.stderr
    env["SLURM_CONF"] = started.stdout.strip().removeprefix("export SLURM_CONF=")
    assert Path(env["SLURM_CONF"]).is_file()
    try:
        yield env
    finally:
        stopped = stop()
        assert stopped.returncode == 0, stopped.stderr
        for name in ("slurmctld", "slurmd"):
            assert not (folder / f"{name}.pid").exists(), f"{name} still has its pid file"


def _recipe_env(base: dict, tmp_path: Path) -> dict:
    """The recipes' environment: this tree's asctool first on PATH, a Slurm conf for the test node."""
    conf = tmp_path / "slurm_test.conf"
    # the test node has no GPU and few cores: every job asks for one CPU (the conf's options win)
    conf.write_text("slurm_opts=(--partition=debug --cpus-per-task=1 --time=00:30:00)\nslurm_gpu_opts=()\n")
    bin_dir = str(Path(sys.executable).parent)
    return {**base, "PATH": f"{bin_dir}:{base['PATH']}", "PYTHONPATH": str(ROOT),
            "ASCTOOL_SLURM_CONF": str(conf), "TF_CPP_MIN_LOG_LEVEL": "2"}


def _recipe(work: Path, env: dict, *extra: str, backend: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(RECIPE), "--work-dir", str(work), *REDUCED, "--backend", backend, *extra],
                          env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT, cwd=work.parent)


def _check_features_readable(feats: Path) -> list[str]:
    """Every features file under ``feats`` (shards and combined sets) passes asctool's checks and reads whole."""
    from asctool.artifacts import check_finite_features, open_features

    names = []
    for path in sorted(feats.rglob("*.h5")):
        with open_features(path) as features:   # kind, schema, ids, shards of a combined file
            assert len(features.ids) > 0, path
            check_finite_features(features)   # every clip read: no NaN from a missing or partial shard
        names.append(str(path.relative_to(feats)))
    return names


def test_demo_recipe_on_slurm(cluster, tmp_path):
    """Job arrays, per-task logs, a failing task named with its log, a rerun that resubmits only the
    missing tasks, a cancelled array that leaves no corrupt file, and RESULTS.md equal to the local run's."""
    env = _recipe_env(cluster, tmp_path)
    local = _recipe(tmp_path / "local", env, backend="local")
    assert local.returncode == 0, local.stderr[-3000:]
    expected = (tmp_path / "local" / "exp" / "RESULTS.md").read_text()

    work = tmp_path / "slurm"
    exp, data = work / "exp", work / "data"
    first = _recipe(work, env, "--stop-stage", "2", backend="slurm")
    assert first.returncode == 0, first.stderr[-3000:]
    # a broken clip in the second half of the evaluation manifest: task 2 of the featurize array fails
    rows = (data / "fold1_evaluate.tsv").read_text().splitlines()
    broken = (data / rows[-1].split("\t")[1]).resolve()
    kept = tmp_path / "kept.wav"
    shutil.copyfile(broken, kept)
    broken.write_bytes(b"RIFF not a wave file")
    failed = _recipe(work, env, "--stage", "3", "--stop-stage", "3", backend="slurm")
    assert failed.returncode != 0
    log2 = exp / "log" / "featurize_evaluate.2.log"
    assert "task 2 failed (Slurm job" in failed.stderr and f"its log: {log2}" in failed.stderr, failed.stderr[-3000:]
    assert "task 1 failed" not in failed.stderr
    assert "FAILED in stage 3" in failed.stderr
    assert "# Ended (code 1)" in log2.read_text()
    assert not (data / "feats" / "evaluate.h5").exists()
    assert (data / "feats" / "train.h5").is_file()   # the set before it was finished
    # per-task logs and Slurm's own files
    for name in ("featurize_train.1.log", "featurize_train.2.log", "q/featurize_train.sh",
                 "q/featurize_train.1.out", "q/featurize_train.submit.log", f"augment_{AUGMENT}.log"):
        assert (exp / "log" / name).is_file(), name

    # the clip repaired; the array of the next set is cancelled while it runs (the cluster's fault)
    shutil.copyfile(kept, broken)
    resumed = subprocess.Popen(
        ["bash", str(RECIPE), "--work-dir", str(work), *REDUCED, "--backend", "slurm", "--stop-stage", "3"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    job = None
    deadline = time.monotonic() + 600
    while job is None and time.monotonic() < deadline and resumed.poll() is None:
        queue = subprocess.run(["squeue", "-h", "-o", "%A %j %T"], env=env, capture_output=True, text=True).stdout
        for line in queue.splitlines():
            job_id, name, state = line.split()
            if name == f"featurize_aug_{AUGMENT}" and state == "RUNNING":
                job = job_id
        time.sleep(0.1)
    assert job is not None, f"the featurize array of aug_{AUGMENT} was never seen running"
    subprocess.run(["scancel", job], env=env, check=True)
    out, err = resumed.communicate(timeout=RUN_TIMEOUT)
    assert "resubmitting task(s) 2 of featurize_evaluate" in err, err[-3000:]
    assert resumed.returncode != 0, "the recipe went on after its array was cancelled"
    assert f"Slurm job {job}" in err and "failed" in err
    # nothing corrupt: every features file there is whole; the cancelled set is not combined
    readable = _check_features_readable(data / "feats")
    assert "evaluate.h5" in readable and not (data / "feats" / f"aug_{AUGMENT}.h5").exists()

    final = _recipe(work, env, backend="slurm")
    assert final.returncode == 0, final.stderr[-3000:]
    assert "of featurize_train already done" not in final.stderr   # its stage was skipped whole
    assert (exp / "RESULTS.md").read_text() == expected
    _check_features_readable(data / "feats")
    # a rerun with everything done submits nothing
    again = _recipe(work, env, "--stage", "3", "--stop-stage", "3", backend="slurm")
    assert again.returncode == 0 and "skipped, outputs exist" in again.stderr


def test_multiworker_training_under_srun(cluster, tmp_path):
    """`srun -n 2 asctool train --distribute multiworker`: the workers find each other from Slurm's
    variables (SLURM_STEP_NODELIST, ports from ASCTOOL_PORT_BASE); the chief alone writes the run folder."""
    import json
    import random

    sys.path.insert(0, str(ROOT / "tests"))
    from helpers import make_features

    make_features(tmp_path / "train.h5", 32, seed=0)
    env = {**_recipe_env(cluster, tmp_path), "ASCTOOL_PORT_BASE": str(random.randrange(20000, 30000)),
           "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run(
        ["srun", "--ntasks=2", "--cpus-per-task=1", "--time=00:20:00", "--kill-on-bad-exit=1",
         sys.executable, "-c", "from asctool.cli import main; main()",
         "train", "--train", "train.h5", "--out-dir", "run", "--model", "fcnn", "--profile", "demo", "--epochs", "1",
         "--batch-size", "8", "--augment", "crop", "--crop", "32", "--distribute", "multiworker"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    decoder = json.JSONDecoder()
    text, summaries = done.stdout.strip(), []
    while text:   # the two tasks' summaries, one after the other
        summary, end = decoder.raw_decode(text)
        summaries.append(summary)
        text = text[end:].strip()
    assert [s["workers"] for s in summaries] == [2, 2] and summaries[0]["steps"] == 4
    log = (tmp_path / "run" / "train.log").read_text()
    assert "worker 0 of 2 (slurm" in log and "worker 1 of 2" not in log
    assert (tmp_path / "run" / "model.keras").is_file()
