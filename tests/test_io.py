"""asctool.io: atomic writes with unpredictable temporary names; reading text inputs."""
from __future__ import annotations

import os
import stat

import pytest

from asctool.errors import AsctoolError, ManifestError
from asctool.io import atomic_path, read_text


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
