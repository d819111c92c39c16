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
@pytest.fixture()
def read_only_dir(tmp_path):
    """A folder nobody may write in: a read-only tmpfs for root, else mode 0555."""
    import subprocess

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
