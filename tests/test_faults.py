"""Faults (issue 9, items 10-14): concurrent writers, a full disk, signals, killed processes.

The first part runs by default: one writer per output (item 12), a full disk
(item 13: a small tmpfs where this machine lets us mount one, an injected
ENOSPC everywhere, and a file-size limit), SIGTERM treated like Ctrl-C
(item 14). The second part is the fault suite (``-m slow``): real
``asctool`` processes of featurize, augment, train and predict killed with
SIGKILL, SIGTERM and SIGINT at several points, checked for leftover
processes, corrupt or temporary files, a rerun that resumes or refuses
clearly, and final outputs equal to an uninterrupted run's.

Every wait polls with a deadline, so no test can hang.
"""
from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from asctool.cli import cli
from asctool.io import lock_path_for

from helpers import make_features, write_tiny_features  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
LINUX = sys.platform.startswith("linux")
TIMEOUT = 120  # seconds: the longest any wait here may take

pytestmark = pytest.mark.skipif(not LINUX, reason="signals, /proc and flock as on Linux")


# --------------------------------------------------------------------------
# helpers: processes, files
# --------------------------------------------------------------------------
def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + str(REPO / "tests"),
            "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}


class Run:
    """An ``asctool`` command in its own process group; output to files (a worker holding a pipe cannot block)."""

    def __init__(self, folder: Path, *args, preexec=None) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.stdout, self.stderr = folder / "stdout.txt", folder / "stderr.txt"
        command = [sys.executable, "-c", "from asctool.cli import main; main()", *map(str, args)]
        with open(self.stdout, "w") as out, open(self.stderr, "w") as err:
            self.process = subprocess.Popen(command, stdout=out, stderr=err, env=_env(), cwd=folder,
                                            start_new_session=True, preexec_fn=preexec)
        self.pid = self.process.pid
        self.seen: set[int] = set()  # every descendant seen while it ran

    def poll_children(self) -> None:
        self.seen |= _descendants(self.pid)

    def wait_for(self, condition, what: str, timeout: float = TIMEOUT) -> None:
        """Poll ``condition()`` (and record descendants) until true; fail if the run ends or time runs out."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.poll_children()
            if condition():
                return
            if self.process.poll() is not None:
                pytest.fail(f"the run ended (status {self.process.returncode}) before {what}:\n{self.err()}")
            time.sleep(0.01)
        pytest.fail(f"timed out waiting for {what}")

    def signal(self, signum: int, *, group: bool = False) -> None:
        """``kill -N pid`` or, with ``group``, what Ctrl-C in a terminal does (the whole process group)."""
        self.poll_children()
        if group:
            os.killpg(self.pid, signum)
        else:
            os.kill(self.pid, signum)

    def wait(self, timeout: float = TIMEOUT) -> int:
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill_all()
            pytest.fail(f"the run did not end within {timeout} s")

    def kill_all(self) -> None:
        for pid in {self.pid} | self.seen | _descendants(self.pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        self.process.wait()

    def err(self) -> str:
        return self.stderr.read_text()

    def assert_no_process_left(self, timeout: float = 15) -> None:
        """The run and every descendant it had are gone (zombies count as gone)."""
        deadline = time.monotonic() + timeout
        left = set()
        while time.monotonic() < deadline:
            left = {pid for pid in self.seen | {self.pid} if _alive(pid)}
            if not left:
                return
            time.sleep(0.05)
        for pid in left:
            os.kill(pid, signal.SIGKILL)
        pytest.fail(f"processes left behind: {sorted(left)}")


def _stat_fields(pid: int) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _alive(pid: int) -> bool:
    fields = _stat_fields(pid)
    return fields is not None and fields[0] not in ("Z", "X")


def _descendants(pid: int) -> set[int]:
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat_fields(int(entry.name))
            if fields is not None:
                parents[int(entry.name)] = int(fields[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def _workers(pid: int) -> set[int]:
    """Live Python processes below ``pid`` (the worker pool's; not a passing ``ldconfig``)."""
    python = os.path.realpath(sys.executable)
    found = set()
    for child in _descendants(pid):
        try:
            if _alive(child) and os.path.realpath(f"/proc/{child}/exe") == python:
                found.add(child)
        except OSError:
            pass
    return found


def _clips(folder: Path) -> list[Path]:
    """The audio clips under their final names (not a temporary ``X.tmp-XXXXXXXX.flac``)."""
    return [p for p in folder.glob("*.flac") if ".tmp-" not in p.name]


def _temporaries(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if ".tmp-" in p.name)


def _lock_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob(".*.lock"))


def _error_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("Error:")]


def _h5_content(path: Path) -> dict[str, bytes]:
    """Every dataset of an HDF5 file, as bytes (the provenance attributes differ run to run)."""
    out = {}
    with h5py.File(path, "r") as handle:
        def visit(name, item):
            if isinstance(item, h5py.Dataset):
                value = item[()]
                out[name] = value.tobytes() if isinstance(value, np.ndarray) and value.dtype != object \
                    else repr(value.tolist() if isinstance(value, np.ndarray) else value).encode()
        handle.visititems(visit)
        out["@config"] = str(handle.attrs.get("config", "")).encode()
        out["@classes"] = str(handle.attrs.get("classes", "")).encode()
    return out


def _keras_weights(path: Path) -> list[np.ndarray]:
    """The weight arrays of a .keras archive, read with h5py (no TensorFlow in this process)."""
    import io

    with zipfile.ZipFile(path) as archive:
        data = archive.read("model.weights.h5")
    arrays = []
    with h5py.File(io.BytesIO(data), "r") as handle:
        handle.visititems(lambda name, item: arrays.append((name, item[()])) if isinstance(item, h5py.Dataset)
                          else None)
    return [value for _, value in sorted(arrays, key=lambda pair: pair[0])]


def _signal_exit(returncode: int, signum: int) -> bool:
    """Ended by ``signum`` (the CLI re-raises it after cleaning up) or exited with 128 + N."""
    return returncode in (-signum, 128 + signum)


# --------------------------------------------------------------------------
# shared inputs
# --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def corpus(demo_manifests, tmp_path_factory) -> dict[str, Path]:
    """Manifests over the tiny demo audio: ``big`` (6 x the 70 training clips, new ids),
    ``train`` (70) and ``meta`` (160); ``small.yaml``: a 32-band front end (small files)."""
    root = tmp_path_factory.mktemp("faults_corpus")
    lines = demo_manifests["train"].read_text().splitlines()
    header, rows = lines[0], lines[1:]
    folder = demo_manifests["train"].parent
    big = [header]
    for k in range(6):
        for row in rows:
            fields = row.split("\t")
            fields[0] = f"{fields[0]}_r{k}"
            fields[1] = str((folder / fields[1]).resolve())
            big.append("\t".join(fields))
    (root / "big.tsv").write_text("\n".join(big) + "\n")
    (root / "small.yaml").write_text("n_mels: 32\n")
    return {"big": root / "big.tsv", "train": demo_manifests["train"], "meta": demo_manifests["meta"],
            "config": root / "small.yaml", "root": root}


def _featurize_args(corpus, out: Path, nj: int = 2) -> list[str]:
    return ["featurize", "--manifest", corpus["big"], "--config", corpus["config"], "--out", out, "--nj", nj]


def _invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


# ==========================================================================
# item 12: one writer per output
# ==========================================================================
def test_two_featurize_runs_to_one_output_the_second_is_refused(corpus, tmp_path):
    """The issue's example: both exited 0 and one result was lost."""
    out = tmp_path / "feats" / "f.h5"
    first = Run(tmp_path / "first", *_featurize_args(corpus, out))
    try:
        first.wait_for(lambda: _temporaries(out.parent), "the first run opened its output")
        second = _invoke(*_featurize_args(corpus, out, nj=1))
        assert second.exit_code == 1
        lines = _error_lines(second.output)
        assert lines == [f"Error: {out}: another asctool process (pid {first.pid}) is writing it; "
                         f"wait for it to end or stop it (lock {lock_path_for(out)})"]
        assert first.wait() == 0, first.err()
    finally:
        first.kill_all()
    with h5py.File(out, "r") as handle:  # the first run's result, complete
        assert handle["features"].shape[0] == 6 * 70
    assert not _temporaries(tmp_path) and not _lock_files(tmp_path)


def _hold_lock(*paths) -> subprocess.Popen:
    """Another process holding the locks of ``paths`` (as a running stage does) until its stdin closes."""
    script = textwrap.dedent(f"""
        import sys
        from asctool.io import lock_outputs
        with lock_outputs({[str(p) for p in paths]!r}):
            print("locked", flush=True)
            sys.stdin.read()
        """)
    holder = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              env=_env(), text=True)
    assert holder.stdout.readline().strip() == "locked"
    return holder


def _let_go(holder: subprocess.Popen) -> None:
    holder.stdin.close()
    holder.wait(timeout=30)


def test_train_into_a_run_folder_another_process_writes_is_refused_before_anything_is_written(tmp_path):
    """The issue's second example (a traceback in one run, the wrong config.json in the other)."""
    data = make_features(tmp_path / "a.h5", 16)
    run_dir = tmp_path / "exp" / "run"
    holder = _hold_lock(run_dir)
    try:
        result = _invoke("train", "--train", data, "--model", "fcnn", "--out-dir", run_dir, "--profile", "demo",
                         "--epochs", 1)
    finally:
        _let_go(holder)
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert _error_lines(result.output) == [
        f"Error: {run_dir}: another asctool process (pid {holder.pid}) is writing it; wait for it to end or "
        f"stop it (lock {lock_path_for(run_dir)})"]
    assert not (tmp_path / "exp").exists()  # nothing written, not even the folder


def test_augment_and_predict_refuse_outputs_another_process_writes(corpus, tmp_path):
    """More instances: augment's output folder and manifest, predict's scores file."""
    out_dir, out_manifest = tmp_path / "aug", tmp_path / "aug.tsv"
    for locked in (out_dir, out_manifest):
        holder = _hold_lock(locked)
        try:
            result = _invoke("augment", "noise", "--manifest", corpus["train"], "--out-dir", out_dir,
                             "--out-manifest", out_manifest)
        finally:
            _let_go(holder)
        assert result.exit_code == 1
        assert _error_lines(result.output)[0].startswith(f"Error: {locked}: another asctool process (pid ")
        assert sorted(p.name for p in tmp_path.iterdir()) == []
    features = write_tiny_features(tmp_path / "f.h5", ["a", "b"])
    scores = tmp_path / "s.h5"
    holder = _hold_lock(scores)
    try:
        result = _invoke("predict", "--model", tmp_path / "m.keras", "--features", features, "--out", scores)
    finally:
        _let_go(holder)
    assert result.exit_code == 1 and f"{scores}: another asctool process" in result.output


# ==========================================================================
# item 13: a full disk
# ==========================================================================
@pytest.fixture
def small_disk(tmp_path):
    """A 2 MB tmpfs (root with mount permission only)."""
    folder = tmp_path / "disk"
    folder.mkdir()
    if not shutil.which("mount") or subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(folder)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def test_disk_full_during_featurize_is_one_line_and_frees_the_disk(corpus, small_disk):
    """The issue's example: OSError, "Can't close dataset", a segfault, the temporary file kept."""
    out = small_disk / "f.h5"
    for nj in (1, 2):
        run = Run(small_disk.parent / f"run{nj}", *_featurize_args(corpus, out, nj=nj))
        assert run.wait() == 1, run.err()  # not 139 (a segfault)
        assert _error_lines(run.err()) == [f"Error: {out}: No space left on device (free some space and run again)"]
        assert "Traceback" not in run.err() and "Can't close" not in run.err()
        assert os.listdir(small_disk) == []  # no temporary file, no lock file
        usage = shutil.disk_usage(small_disk)
        assert usage.used < 64 * 1024  # the space is free again
        run.assert_no_process_left()


def test_disk_full_during_augment_is_one_line(corpus, small_disk):
    """Another instance: audio written by the workers (libsndfile hides the errno)."""
    out_dir = small_disk / "aug"
    run = Run(small_disk.parent / "aug", "augment", "noise", "--manifest", corpus["meta"], "--out-dir", out_dir,
              "--out-manifest", small_disk / "aug.tsv", "--nj", 2)
    assert run.wait() == 1
    (line,) = _error_lines(run.err())
    assert line.startswith(f"Error: {out_dir}/") and "cannot write" in line and "MB free" in line
    assert not _temporaries(small_disk) and not _lock_files(small_disk)
    run.assert_no_process_left()


_REAL_PWRITE = os.pwrite


def _fail_writes_after(monkeypatch, calls: int, code: int = errno.ENOSPC) -> None:
    """Make the ``calls``-th and later writes of HDF5 artifacts fail like a full disk."""
    from asctool import h5write

    real = _REAL_PWRITE
    count = {"n": 0}

    def pwrite(fd, data, offset):
        count["n"] += 1
        if count["n"] >= calls:
            raise OSError(code, os.strerror(code))
        return real(fd, data, offset)

    monkeypatch.setattr(h5write.os, "pwrite", pwrite)


@pytest.mark.parametrize("calls", [1, 5, 40])
def test_injected_enospc_in_featurize_is_one_line_and_leaves_nothing(corpus, tmp_path, monkeypatch, calls):
    """Where no tmpfs can be mounted (CI): the same failure injected at the first, an early and a late write."""
    _fail_writes_after(monkeypatch, calls)
    out = tmp_path / "f.h5"
    result = _invoke("featurize", "--manifest", corpus["train"], "--config", corpus["config"], "--out", out)
    assert result.exit_code == 1
    assert _error_lines(result.output) == [f"Error: {out}: No space left on device (free some space and run again)"]
    assert os.listdir(tmp_path) == []


def test_injected_write_errors_in_scores_files_are_one_line(tmp_path, monkeypatch):
    """Another instance: a scores file (ensemble), with EIO and EDQUOT."""
    from helpers import write_example_scores

    member = write_example_scores(tmp_path / "a.h5")
    for code, text in ((errno.EIO, "Input/output error"), (errno.EDQUOT, "Disk quota exceeded")):
        _fail_writes_after(monkeypatch, 3, code)
        out = tmp_path / "e.h5"
        result = _invoke("ensemble", member, member, "--out", out)
        assert result.exit_code == 1
        expected = f"Error: {out}: {text}" + (" (free some space and run again)" if code == errno.EDQUOT else "")
        assert _error_lines(result.output) == [expected]
        assert sorted(p.name for p in tmp_path.iterdir()) == ["a.h5"]


def test_features_writer_raises_an_oserror_naming_the_output(tmp_path, monkeypatch):
    from asctool.artifacts import FeaturesWriter

    _fail_writes_after(monkeypatch, 4)
    with pytest.raises(OSError) as caught:
        with FeaturesWriter(tmp_path / "w.h5", n=50, feature_shape=(64, 64, 2), config={},
                            ids=[str(i) for i in range(50)], dtype="float32") as writer:
            for i in range(50):
                writer.write(i, np.ones((64, 64, 2)))
    assert caught.value.errno == errno.ENOSPC and caught.value.filename == str(tmp_path / "w.h5")
    assert os.listdir(tmp_path) == []


def _file_size_limit(limit: int):
    def apply():
        import resource

        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


def test_a_file_size_limit_is_a_one_line_error_naming_the_output(corpus, tmp_path):
    """A real OS-level write failure without root (EFBIG from RLIMIT_FSIZE): an HDF5 file and a text file."""
    out = tmp_path / "f.h5"
    run = Run(tmp_path / "feat", *_featurize_args(corpus, out, nj=2), preexec=_file_size_limit(1 << 20))
    assert run.wait() == 1, run.err()
    assert _error_lines(run.err()) == [f"Error: {out}: File too large"]
    run.assert_no_process_left()
    out_train = tmp_path / "t.tsv"
    run = Run(tmp_path / "split", "split", "--manifest", corpus["meta"], "--out-train", out_train,
              "--out-valid", tmp_path / "v.tsv", preexec=_file_size_limit(2000))
    assert run.wait() == 1, run.err()
    assert _error_lines(run.err()) == [f"Error: {out_train}: File too large"]
    assert not _temporaries(tmp_path) and not out_train.exists()


# ==========================================================================
# item 14: SIGTERM is Ctrl-C
# ==========================================================================
def _fifo_manifest(corpus, folder: Path) -> Path:
    """The training manifest with a FIFO as its 31st clip: reading it blocks, so the run waits there."""
    folder.mkdir(parents=True, exist_ok=True)
    os.mkfifo(folder / "blocks.wav")
    lines = corpus["train"].read_text().splitlines()
    base = corpus["train"].parent
    rows = []
    for row in lines[1:]:
        fields = row.split("\t")
        fields[1] = str((base / fields[1]).resolve())
        rows.append("\t".join(fields))
    fifo = "\t".join(["blocks", str(folder / "blocks.wav")] + rows[0].split("\t")[2:])
    manifest = folder / "m.tsv"
    manifest.write_text("\n".join([lines[0], *rows[:30], fifo, *rows[30:]]) + "\n")
    return manifest


@pytest.mark.parametrize("nj", [1, 2])
def test_sigterm_removes_the_featurize_temporary_file(corpus, tmp_path, nj):
    """The issue's example; with --nj 2 the workers are stopped too."""
    manifest = _fifo_manifest(corpus, tmp_path / "in")
    out = tmp_path / "out" / "f.h5"
    run = Run(tmp_path / "run", "featurize", "--manifest", manifest, "--config", corpus["config"], "--out", out,
              "--nj", nj)
    try:
        run.wait_for(lambda: _temporaries(out.parent), "the run opened its output")
        time.sleep(0.3)
        run.signal(signal.SIGTERM)
        status = run.wait()
    finally:
        run.kill_all()
    assert _signal_exit(status, signal.SIGTERM), run.err()
    assert _error_lines(run.err()) == ["Error: interrupted by SIGTERM; temporary files were removed"]
    assert not out.parent.exists() or os.listdir(out.parent) == []  # no temporary file, no lock file
    run.assert_no_process_left()


def test_sighup_and_sigterm_stop_augment_workers_and_remove_their_temporary_files(corpus, tmp_path):
    """Another instance: temporary audio files are written by the workers themselves."""
    for signum in (signal.SIGTERM, signal.SIGHUP):
        out_dir = tmp_path / signum.name / "aug"
        run = Run(tmp_path / signum.name, "augment", "noise", "--manifest", corpus["meta"], "--out-dir", out_dir,
                  "--out-manifest", out_dir.parent / "aug.tsv", "--nj", 2)
        try:
            run.wait_for(lambda: len(_clips(out_dir)) >= 4, "4 clips written")
            workers = _workers(run.pid)
            run.signal(signum)
            status = run.wait()
        finally:
            run.kill_all()
        assert _signal_exit(status, signum), run.err()
        assert _error_lines(run.err()) == [f"Error: interrupted by {signum.name}; temporary files were removed"]
        assert workers  # the workers were seen, and are gone
        run.assert_no_process_left()
        assert not _temporaries(out_dir.parent) and not _lock_files(out_dir.parent)


def test_interrupt_in_process_exits_130_with_one_line(tmp_path, monkeypatch):
    """In-process (CliRunner): a KeyboardInterrupt in a stage becomes one line and status 128 + 2."""
    from asctool.stages import featurize

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(featurize, "run", interrupted)
    result = _invoke("featurize", "--manifest", tmp_path / "m.tsv", "--out", tmp_path / "f.h5")
    assert result.exit_code == 130
    assert _error_lines(result.output) == ["Error: interrupted by SIGINT; temporary files were removed"]


# ==========================================================================
# the fault suite (slow): kill at several points, check, rerun, compare
# ==========================================================================
@pytest.fixture(scope="module")
def featurize_reference(corpus, tmp_path_factory) -> dict[str, bytes]:
    root = tmp_path_factory.mktemp("featurize_reference")
    run = Run(root, *_featurize_args(corpus, root / "f.h5"))  # as the runs it is compared with
    assert run.wait() == 0, run.err()
    return _h5_content(root / "f.h5")


def _check_killed_output(out: Path, signum: int, run: Run, reference: dict[str, bytes] | None = None) -> None:
    """After a kill: no process left; the final name absent or complete; temporary files only after SIGKILL."""
    run.assert_no_process_left()
    if out.exists() and reference is not None:  # it ended just before the kill
        assert _h5_content(out) == reference
    if signum != signal.SIGKILL:
        assert not _temporaries(out.parent), "an interrupted run left a temporary file"
        assert not _lock_files(out.parent)
        assert _error_lines(run.err()) == [f"Error: interrupted by {signal.Signals(signum).name}; "
                                           "temporary files were removed"]


FEATURIZE_POINTS = {
    # the output is open, the workers started, nothing written yet
    "opened": lambda out: bool(_temporaries(out.parent)),
    # about 100 of 420 clips written (32 x 423 x 3 float16 = 81 kB each)
    "midway": lambda out: any(p.stat().st_size > 100 * 81_000 for p in _temporaries(out.parent)),
}


@pytest.mark.slow
@pytest.mark.parametrize("point", list(FEATURIZE_POINTS))
@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM, signal.SIGINT])
def test_fault_suite_featurize(corpus, featurize_reference, tmp_path, signum, point):
    out = tmp_path / "out" / "f.h5"
    run = Run(tmp_path / "run", *_featurize_args(corpus, out))
    try:
        run.wait_for(lambda: FEATURIZE_POINTS[point](out), f"point {point}")
        run.wait_for(lambda: len(_workers(run.pid)) >= 2, "the two workers")
        run.signal(signum, group=signum == signal.SIGINT)  # SIGINT: Ctrl-C reaches the workers too
        status = run.wait()
    finally:
        run.kill_all()
    assert _signal_exit(status, signum), run.err()
    _check_killed_output(out, signum, run, featurize_reference)
    # the rerun: the output does not exist, so it simply runs (and removes a killed run's leftovers)
    rerun = Run(tmp_path / "rerun", *_featurize_args(corpus, out))
    assert rerun.wait() == 0, rerun.err()
    assert _h5_content(out) == featurize_reference
    assert not _temporaries(out.parent) and not _lock_files(out.parent)


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM])
def test_fault_suite_featurize_parent_killed_leaves_no_worker(corpus, tmp_path, signum):
    """Item 10: kill -9 / kill -TERM of a featurize parent with --nj 2 leaves no worker running."""
    manifest = _fifo_manifest(corpus, tmp_path / "in")  # the workers are busy (one blocked) when it dies
    out = tmp_path / "out" / "f.h5"
    run = Run(tmp_path / "run", "featurize", "--manifest", manifest, "--config", corpus["config"], "--out", out,
              "--nj", 2)
    try:
        run.wait_for(lambda: len(_workers(run.pid)) >= 2 and _temporaries(out.parent), "the workers and the output")
        workers = _workers(run.pid)
        run.signal(signum)
        run.wait()
        run.assert_no_process_left(timeout=5)
        assert workers and not any(_alive(pid) for pid in workers)
    finally:
        run.kill_all()


@pytest.fixture(scope="module")
def augment_reference(corpus, tmp_path_factory) -> dict[str, bytes]:
    root = tmp_path_factory.mktemp("augment_reference")
    run = _augment_run(corpus, root, "log")
    assert run.wait() == 0, run.err()
    return _augment_content(root)


def _augment_content(root: Path) -> dict[str, bytes]:
    files = {p.name: p.read_bytes() for p in _clips(root / "aug")}
    files["aug.tsv"] = (root / "aug.tsv").read_bytes()
    return files


def _augment_run(corpus, root: Path, name: str) -> Run:
    return Run(root / name, "augment", "noise", "--manifest", corpus["meta"], "--out-dir", root / "aug",
               "--out-manifest", root / "aug.tsv", "--nj", 2, "--seed", 3)


def _check_augment_folder(root: Path, signum: int) -> None:
    """Every .flac under its final name is a complete, readable clip; no manifest yet."""
    import soundfile

    assert not (root / "aug.tsv").exists()
    for path in _clips(root / "aug"):
        assert soundfile.info(path).frames > 0
    if signum != signal.SIGKILL:
        assert not _temporaries(root) and not _lock_files(root)


@pytest.mark.slow
@pytest.mark.parametrize("signum, clips", [(signal.SIGKILL, 10), (signal.SIGTERM, 0), (signal.SIGTERM, 30),
                                           (signal.SIGINT, 20)])
def test_fault_suite_augment(corpus, augment_reference, tmp_path, signum, clips):
    run = _augment_run(corpus, tmp_path, "run")
    try:
        run.wait_for(lambda: (tmp_path / "aug" / ".asctool-augment.json").exists()
                     and len(_clips(tmp_path / "aug")) >= clips, f"{clips} clips written")
        run.signal(signum, group=signum == signal.SIGINT)
        status = run.wait()
    finally:
        run.kill_all()
    assert _signal_exit(status, signum), run.err()
    run.assert_no_process_left()
    _check_augment_folder(tmp_path, signum)
    kept = len(_clips(tmp_path / "aug"))
    rerun = _augment_run(corpus, tmp_path, "rerun")
    assert rerun.wait() == 0, rerun.err()
    summary = json.loads(rerun.stdout.read_text())
    assert summary["kept_existing"] == kept and summary["written"] == 160 - kept  # it resumed
    assert _augment_content(tmp_path) == augment_reference
    assert not _temporaries(tmp_path) and not _lock_files(tmp_path)


@pytest.mark.slow
def test_fault_suite_a_killed_augment_worker_ends_the_stage_with_one_line(corpus, augment_reference, tmp_path):
    """Item 11: kill -9 of one worker: a one-line error (not a hang); the rerun resumes."""
    run = _augment_run(corpus, tmp_path, "run")
    try:
        run.wait_for(lambda: len(_clips(tmp_path / "aug")) >= 10 and len(_workers(run.pid)) >= 2,
                     "10 clips and the workers")
        os.kill(min(_workers(run.pid)), signal.SIGKILL)
        status = run.wait(timeout=60)
    finally:
        run.kill_all()
    assert status == 1
    (line,) = _error_lines(run.err())
    assert line.startswith(f"Error: {corpus['meta']}: an augment noise worker process died (")
    assert line.endswith("; run with --nj 1 to see why") and "Traceback" not in run.err()
    run.assert_no_process_left()
    _check_augment_folder(tmp_path, signal.SIGKILL)
    assert len(_temporaries(tmp_path)) <= 1 and not _lock_files(tmp_path)  # the killed worker's, at most
    rerun = _augment_run(corpus, tmp_path, "rerun")
    assert rerun.wait() == 0, rerun.err()
    assert json.loads(rerun.stdout.read_text())["kept_existing"] >= 10
    assert _augment_content(tmp_path) == augment_reference
    assert not _temporaries(tmp_path)


TRAIN_ARGS = ["--model", "fcnn", "--profile", "demo", "--epochs", 3, "--batch-size", 8, "--seed", 5,
              "--augment", "none"]


@pytest.fixture(scope="module")
def train_reference(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("train_reference")
    data = make_features(root / "train.h5", 96, seed=0)
    big = make_features(root / "predict.h5", 1500, seed=1, city="paris")
    run = Run(root / "log", "-q", "train", "--train", data, "--out-dir", root / "run", *TRAIN_ARGS)
    assert run.wait(timeout=300) == 0, run.err()
    scores = root / "scores.h5"
    run = Run(root / "log", "-q", "predict", "--model", root / "run" / "model.keras", "--features", big,
              "--out", scores, "--batch-size", 1)
    assert run.wait(timeout=300) == 0, run.err()
    return {"data": data, "run": root / "run", "features": big, "scores": _h5_content(scores)}


def _state_epoch(run_dir: Path) -> int:
    try:
        return json.loads((run_dir / "state.json").read_text())["epoch"]
    except (OSError, ValueError):
        return 0


TRAIN_POINTS = {
    "configured": lambda run_dir: (run_dir / "config.json").exists(),   # building the model, first epoch
    "epoch 1 done": lambda run_dir: _state_epoch(run_dir) >= 1,
}


def _check_run_folder(run_dir: Path, signum: int) -> None:
    """Nothing corrupt under a final name: JSON parses, archives open, no temporary file unless SIGKILL."""
    for path in run_dir.rglob("*"):
        if ".tmp-" in path.name:
            assert signum == signal.SIGKILL, f"{path} left by an interrupted run"
        elif path.suffix == ".json":
            json.loads(path.read_text())
        elif path.suffix == ".keras":
            with zipfile.ZipFile(path) as archive:
                assert archive.testzip() is None
    if signum != signal.SIGKILL:
        assert not _lock_files(run_dir.parent)


@pytest.mark.slow
@pytest.mark.parametrize("signum, point", [(signal.SIGKILL, "epoch 1 done"), (signal.SIGTERM, "configured"),
                                           (signal.SIGINT, "epoch 1 done")])
def test_fault_suite_train(train_reference, tmp_path, signum, point):
    run_dir = tmp_path / "run"
    args = ["train", "--train", train_reference["data"], "--out-dir", run_dir, *TRAIN_ARGS]
    run = Run(tmp_path / "killed", *args)
    try:
        run.wait_for(lambda: TRAIN_POINTS[point](run_dir), point, timeout=300)
        if point == "epoch 1 done":
            time.sleep(0.5)  # into epoch 2
        run.signal(signum, group=signum == signal.SIGINT)
        status = run.wait()
    finally:
        run.kill_all()
    assert _signal_exit(status, signum), run.err()
    run.assert_no_process_left()
    _check_run_folder(run_dir, signum)
    # a plain rerun refuses clearly; --resume continues
    refused = Run(tmp_path / "refused", *args)
    assert refused.wait() == 1
    (line,) = _error_lines(refused.err())
    assert line.startswith(f"Error: {run_dir}: already holds a run (")
    assert line.endswith("use --resume to continue it or --force to start over")
    resumed = Run(tmp_path / "resumed", *args, "--resume")
    assert resumed.wait(timeout=300) == 0, resumed.err()
    reference = train_reference["run"]
    assert (run_dir / "history.tsv").read_text() == (reference / "history.tsv").read_text()
    for name in ("model.keras", "last.keras"):
        for a, b in zip(_keras_weights(reference / name), _keras_weights(run_dir / name), strict=True):
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)
    assert not _temporaries(run_dir) and not _lock_files(tmp_path)


@pytest.mark.slow
def test_fault_suite_two_train_runs_into_one_folder(train_reference, tmp_path):
    """Item 12 with two real trainings: the second is refused, the first's config.json stays its own."""
    run_dir = tmp_path / "run"
    first = Run(tmp_path / "first", "train", "--train", train_reference["data"], "--out-dir", run_dir, *TRAIN_ARGS)
    try:
        first.wait_for(lambda: (run_dir / "config.json").exists(), "the first run's config.json", timeout=300)
        second = Run(tmp_path / "second", "train", "--train", train_reference["data"], "--out-dir", run_dir,
                     *TRAIN_ARGS[:-4], "--seed", 6, "--force")
        assert second.wait() == 1
        assert _error_lines(second.err())[0].startswith(f"Error: {run_dir}: another asctool process (pid {first.pid})")
        assert first.wait(timeout=300) == 0, first.err()
    finally:
        first.kill_all()
    assert json.loads((run_dir / "config.json").read_text())["seed"] == 5


@pytest.mark.slow
@pytest.mark.parametrize("signum, point", [(signal.SIGKILL, "predicting"), (signal.SIGTERM, "predicting"),
                                           (signal.SIGINT, "starting")])
def test_fault_suite_predict(train_reference, tmp_path, signum, point):
    out = tmp_path / "out" / "scores.h5"
    args = ["predict", "--model", train_reference["run"] / "model.keras", "--features",
            train_reference["features"], "--out", out, "--batch-size", 1]
    run = Run(tmp_path / "killed", *args)
    try:
        if point == "predicting":
            run.wait_for(lambda: "predict 1500 clips" in run.err(), "the model loaded", timeout=300)
            time.sleep(0.5)
        else:
            run.wait_for(lambda: lock_path_for(out).exists(), "the lock taken")
        run.signal(signum, group=signum == signal.SIGINT)
        status = run.wait()
    finally:
        run.kill_all()
    assert _signal_exit(status, signum), run.err()
    _check_killed_output(out, signum, run)
    assert not out.exists()  # written only at the end
    rerun = Run(tmp_path / "rerun", *args)
    assert rerun.wait(timeout=300) == 0, rerun.err()
    assert _h5_content(out) == train_reference["scores"]
    assert not _temporaries(out.parent) and not _lock_files(out.parent)
