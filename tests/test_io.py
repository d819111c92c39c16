"""asctool.io: atomic writes with unpredictable temporary names; reading text inputs."""
from __future__ import annotations

import os
import stat

import pytest

from asctool.errors import AsctoolError, ManifestError
from asctool.io import atomic_path, check_name, claim_outputs, read_text


def test_atomic_path_renames_on_success_and_keeps_the_suffix(tmp_path):
    target = tmp_path / "sub" / "out.json"
    with atomic_path(target) as tmp:
        assert tmp.parent == target.parent and tmp.suffix == ".json" and tmp != target
        assert tmp.exists()   # created with O_EXCL, so nobody else holds the name
        tmp.write_text("done")
    assert target.read_text() == "done" and not tmp.exists()
    mode = stat.S_IMODE(target.stat().st_mode)
    umask = os.umask(0)
    os.umask(umask)
    assert mode == 0o666 & ~umask   # an ordinary new file, not mkstemp's 0600


def test_atomic_path_leaves_the_target_untouched_on_error(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("before")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert target.read_text() == "before" and os.listdir(tmp_path) == ["out.txt"]


def test_temporary_names_are_unpredictable_and_planted_links_not_followed(tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("precious")
    target = tmp_path / "r.json"
    # an attacker plants links under every name the old scheme (and a pid guess) would use
    for name in (f"r.tmp-{os.getpid()}.json", "r.tmp.json"):
        (tmp_path / name).symlink_to(victim)
    names = set()
    for _ in range(3):
        with atomic_path(target) as tmp:
            assert not tmp.is_symlink()
            names.add(tmp.name)
            tmp.write_text("report")
    assert len(names) == 3 and victim.read_text() == "precious" and target.read_text() == "report"


def test_read_text_errors_name_the_file(tmp_path):
    with pytest.raises(ManifestError, match=r"missing\.tsv: file not found"):
        read_text(tmp_path / "missing.tsv", error=ManifestError)
    with pytest.raises(AsctoolError, match=r": cannot read"):
        read_text(tmp_path)   # a folder
    (tmp_path / "latin1.txt").write_bytes(b"caf\xe9")
    with pytest.raises(AsctoolError, match=r"latin1\.txt: cannot read"):
        read_text(tmp_path / "latin1.txt")
    (tmp_path / "bom.txt").write_bytes(b"\xef\xbb\xbfid")
    assert read_text(tmp_path / "bom.txt", encoding="utf-8-sig") == "id"


# --------------------------------------------------------------------------
# check_name: values that become part of a file name (issue 9, item 1)
# --------------------------------------------------------------------------
@pytest.mark.parametrize("value, problem", [
    ("../../ESCAPED", "contains a path separator"),      # the example
    ("/tmp/ESCAPED", "is an absolute path"),
    ("a\\b", "contains a path separator"),
    ("..", "contains '..'"),
    ("a..b", "contains '..'"),
    (".", "is '.'"),
    ("-rf", "starts with '-'"),
    ("clip\nError: forged", "contains a control character"),
    ("clip\x00", "contains a control character"),
    ("clip\x1b[31m", "contains a control character"),
    ("", "is empty"),
])
def test_check_name_refuses_what_could_leave_the_folder(value, problem):
    with pytest.raises(ManifestError) as caught:
        check_name(value, what="clip id", where="m.tsv:7", error=ManifestError)
    message = str(caught.value)
    assert message.startswith(f"m.tsv:7: clip id {value!r} {problem}") and "\n" not in message


@pytest.mark.parametrize("value", ["airport-lisbon-1000-40000-a", "c1", "x_noise", "a.b", "Straße-α", "a-"])
def test_check_name_accepts_ordinary_names(value):
    assert check_name(value, what="clip id", where="m.tsv:2") == value


# --------------------------------------------------------------------------
# claim_outputs: every output checked before any is written (items 16 and 19)
# --------------------------------------------------------------------------
def _snapshot(root):
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*"))


def test_claim_accepts_new_outputs_and_creates_nothing(tmp_path):
    claim = claim_outputs([tmp_path / "a.h5", None, tmp_path / "new" / "deeper" / "b.json"],
                          folders=[tmp_path / "out"])
    assert claim.files == (tmp_path / "a.h5", tmp_path / "new" / "deeper" / "b.json")
    assert claim.folders == (tmp_path / "out",)
    assert _snapshot(tmp_path) == []
    with claim_outputs([tmp_path / "c.h5"]) as held:
        assert held.files == (tmp_path / "c.h5",)


def test_claim_refuses_an_existing_output_without_force(tmp_path):
    (tmp_path / "r.json").write_text("old")
    with pytest.raises(AsctoolError, match=r"r\.json: already exists \(use --force to overwrite\)"):
        claim_outputs([tmp_path / "new.csv", tmp_path / "r.json"])
    claim_outputs([tmp_path / "r.json"], force=True)
    claim_outputs(rewritable=[tmp_path / "r.json"])   # side files a resumed run rewrites
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    with pytest.raises(AsctoolError, match="dangling: already exists"):
        claim_outputs([tmp_path / "dangling"])
    assert (tmp_path / "r.json").read_text() == "old"


def test_claim_refuses_folders_as_files_and_files_as_folders(tmp_path):
    (tmp_path / "d").mkdir()
    with pytest.raises(AsctoolError, match=r"d: is a folder"):
        claim_outputs([tmp_path / "d"], force=True)
    (tmp_path / "f.txt").write_text("x")
    with pytest.raises(AsctoolError, match=r"f\.txt: exists and is not a folder"):
        claim_outputs(folders=[tmp_path / "f.txt"])


@pytest.mark.parametrize("below", ["x.h5", "sub/x.h5"])
def test_claim_refuses_an_output_below_a_file(tmp_path, below):
    """--out some.tsv/x.h5 (the issue's example) and a deeper one: one line naming the file in the way."""
    (tmp_path / "some.tsv").write_text("id\tpath\n")
    with pytest.raises(AsctoolError) as caught:
        claim_outputs([tmp_path / "ok.json", tmp_path / "some.tsv" / below])
    assert str(caught.value) == (f"{tmp_path / 'some.tsv' / below}: cannot be written: "
                                 f"{tmp_path / 'some.tsv'} is not a folder")
    with pytest.raises(AsctoolError, match=r"cannot be written: .*some\.tsv is not a folder"):
        claim_outputs(folders=[tmp_path / "some.tsv" / "cam"])
    assert _snapshot(tmp_path) == ["some.tsv"]


def test_claim_refuses_an_output_in_a_read_only_folder(read_only_dir):
    for target in (read_only_dir / "x.h5", read_only_dir / "new" / "x.h5"):
        with pytest.raises(AsctoolError, match=f"{target}: cannot be written: no permission to write in "
                                               f"{read_only_dir}$"):
            claim_outputs([target])
    with pytest.raises(AsctoolError, match="no permission to write"):
        claim_outputs(folders=[read_only_dir / "cam"])


def test_claim_refuses_an_output_given_twice_or_also_an_input(tmp_path):
    with pytest.raises(AsctoolError, match=r"r\.json: given twice as an output"):
        claim_outputs([tmp_path / "r.json", tmp_path / "sub" / ".." / "r.json"])
    (tmp_path / "s.h5").write_text("scores")
    with pytest.raises(AsctoolError, match=r"s\.h5: is also an input"):
        claim_outputs([tmp_path / "s.h5"], force=True, inputs=[tmp_path / "s.h5", None])


# --------------------------------------------------------------------------
# lock_outputs: one writer per output (issue 9, item 12)
# --------------------------------------------------------------------------
import subprocess  # noqa: E402
import sys  # noqa: E402
import textwrap  # noqa: E402
import threading  # noqa: E402
from pathlib import Path  # noqa: E402

from asctool.io import Interrupted, interrupts_deferred, interrupt, lock_outputs, lock_path_for, locked_outputs  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def _holder(tmp_path, *paths):
    """Another process that holds lock_outputs(paths) until its stdin closes."""
    script = textwrap.dedent(f"""
        import sys
        from asctool.io import lock_outputs
        with lock_outputs({[str(p) for p in paths]!r}):
            print("locked", flush=True)
            sys.stdin.read()
        """)
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    process = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               env=env, text=True)
    assert process.stdout.readline().strip() == "locked"
    return process


def _release(process):
    process.stdin.close()
    assert process.wait(timeout=30) == 0


def test_a_second_writer_of_an_output_is_refused_with_one_line(tmp_path):
    out, run_dir = tmp_path / "feats" / "train.h5", tmp_path / "exp" / "fcnn"
    holder = _holder(tmp_path, out, run_dir)
    try:
        assert lock_path_for(out) == (tmp_path / "feats" / ".train.h5.lock").resolve()
        assert lock_path_for(run_dir) == (tmp_path / "exp" / ".fcnn.lock").resolve()  # beside the folder
        for path in (out, tmp_path / "feats" / ".." / "feats" / "train.h5", run_dir):
            with pytest.raises(AsctoolError) as caught:
                with lock_outputs([path]):
                    pass
            message = str(caught.value)
            assert "\n" not in message and message.startswith(f"{path}: another asctool process (pid {holder.pid})")
            assert "is writing it" in message
        with lock_outputs([tmp_path / "feats" / "other.h5"]):  # another output in the same folder is free
            pass
    finally:
        _release(holder)
    with lock_outputs([out, run_dir]):  # free again; the lock files are removed on release
        assert lock_path_for(out).exists()
    assert not lock_path_for(out).exists() and not lock_path_for(run_dir).exists()


def test_locks_are_reentrant_within_a_process_and_refused_to_other_processes(tmp_path):
    out = tmp_path / "s.h5"
    with lock_outputs([out]):
        with lock_outputs([out, None]):  # a stage and a helper may both lock it
            pass
        assert lock_path_for(out).exists()  # still held by the outer block
        script = f"from asctool.io import lock_outputs\nwith lock_outputs([{str(out)!r}]): pass\n"
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env)
        assert result.returncode != 0 and f"another asctool process (pid {os.getpid()})" in result.stderr
    assert not lock_path_for(out).exists()


def test_a_killed_holder_leaves_a_harmless_lock_file_and_its_leftovers_are_removed(tmp_path):
    out = tmp_path / "f.h5"
    holder = _holder(tmp_path, out)
    holder.kill()  # kill -9: no clean-up
    holder.wait()
    assert lock_path_for(out).exists()
    leftover = tmp_path / "f.tmp-a1b2c3d_.h5"  # what atomic_path of a killed writer leaves
    leftover.write_bytes(b"half")
    keep = [tmp_path / "f.tmp-notmine.h5", tmp_path / "g.tmp-a1b2c3d_.h5", tmp_path / "f.h5.tmp-a1b2c3d_"]
    for path in keep:
        path.write_bytes(b"someone else's")
    with lock_outputs([out]):
        assert not leftover.exists()
    assert all(path.exists() for path in keep) and not lock_path_for(out).exists()


def test_missing_folders_are_created_for_the_lock_and_removed_if_still_empty(tmp_path):
    out = tmp_path / "a" / "b" / "f.h5"
    with lock_outputs([out]):
        assert lock_path_for(out).exists()
    assert not (tmp_path / "a").exists()   # a stage that fails its checks leaves nothing
    with lock_outputs([out]):
        out.write_text("done")
    assert out.read_text() == "done"
    (tmp_path / "file").write_text("")
    with lock_outputs([tmp_path / "file" / "x.h5"]):  # cannot be written: left to claim_outputs to say so
        pass
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "file"]


def test_locked_outputs_decorator_locks_the_named_arguments(tmp_path):
    seen = []

    @locked_outputs("out", "more")
    def stage(manifest, out, *, more=(), force=False):
        seen.append(sorted(p.name for p in tmp_path.iterdir()))
        return out

    assert stage("m.tsv", tmp_path / "x.h5", more=[tmp_path / "y.tsv", None]) == tmp_path / "x.h5"
    assert seen == [[".x.h5.lock", ".y.tsv.lock"]] and list(tmp_path.iterdir()) == []


_COUNTER_WORKER = """
import sys, time
from pathlib import Path
from asctool.errors import AsctoolError
from asctool.io import lock_outputs

counter, rounds = Path(sys.argv[1]), int(sys.argv[2])
done = 0
while done < rounds:
    try:
        with lock_outputs([counter]):
            value = int(counter.read_text())
            time.sleep(0.001)
            counter.write_text(str(value + 1))
        done += 1
    except AsctoolError:
        time.sleep(0.0005)
"""


def test_locks_exclude_each_other_while_lock_files_come_and_go(tmp_path):
    """Four processes increment a counter under the lock, which each release removes: no update is lost."""
    counter = tmp_path / "counter"
    counter.write_text("0")
    script = tmp_path / "worker.py"
    script.write_text(_COUNTER_WORKER)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    workers = [subprocess.Popen([sys.executable, str(script), str(counter), "40"], env=env) for _ in range(4)]
    for worker in workers:
        assert worker.wait(timeout=120) == 0
    assert counter.read_text() == "160" and not lock_path_for(counter).exists()


def test_interrupts_deferred_raise_after_the_block(monkeypatch):
    from asctool import io

    monkeypatch.setattr(io, "_RECEIVED", [])  # this process's record, restored after the test
    order = []
    with pytest.raises(Interrupted) as caught:
        with interrupts_deferred():
            interrupt(15)  # what the CLI's signal handler calls
            io.check_interrupted()  # held back too
            order.append("block ran to its end")
    assert order == ["block ran to its end"] and caught.value.signum == 15
    assert isinstance(caught.value, KeyboardInterrupt)
    with pytest.raises(Interrupted):
        interrupt(2)
    # an exception lost where Python ignores them (a fork hook, __del__) is raised again by the next check
    assert io.interrupted() == 15
    with pytest.raises(Interrupted) as caught:
        io.check_interrupted()
    assert caught.value.signum == 15


def test_lock_state_is_per_thread_safe(tmp_path):
    """Threads of one process share its locks (re-entrant), without corrupting the count."""
    out = tmp_path / "t.h5"
    errors = []

    def worker():
        try:
            for _ in range(50):
                with lock_outputs([out]):
                    pass
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    with lock_outputs([out]):
        threads = [threading.Thread(target=worker) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert lock_path_for(out).exists()
    assert errors == [] and not lock_path_for(out).exists()


def test_a_forked_child_does_not_keep_the_parents_lock(tmp_path):
    """Workers are forked while the stage holds its locks: the lock must end with the parent."""
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent(f"""
        import os, sys, time
        from asctool.io import lock_outputs
        with lock_outputs([{str(tmp_path / 'out.h5')!r}]):
            child = os.fork()
            if child == 0:
                null = os.open(os.devnull, os.O_WRONLY)
                os.dup2(null, 1)    # let the test read the parent's output to its end
                os.dup2(null, 2)
                time.sleep(30)      # a worker outliving its parent
                os._exit(0)
            print(child, flush=True)
            os._exit(0)             # the parent dies holding the lock
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=20)
    child = int(done.stdout.strip())
    os.kill(child, 0)   # the child still runs
    try:
        with lock_outputs([tmp_path / "out.h5"]):   # free although the child still runs
            pass
    finally:
        os.kill(child, 9)


def test_atomic_path_keeps_a_longer_suffix(tmp_path):
    target = tmp_path / "epoch-0002.weights.h5"
    with atomic_path(target, suffix=".weights.h5") as tmp:
        assert tmp.name.startswith("epoch-0002.tmp-") and tmp.name.endswith(".weights.h5")
        tmp.write_bytes(b"w")
    assert target.read_bytes() == b"w"
    with pytest.raises(ValueError, match="does not end with"):
        with atomic_path(target, suffix=".keras"):
            pass
