"""File-system helpers every layer shares: atomic writes with safe temporary names, text reading,
the checks of names that become part of a file name, and the claim of a stage's outputs.

This module imports nothing heavy (no h5py, no NumPy), so light modules such
as :mod:`asctool.audio` and :mod:`asctool.manifest` can use it directly.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

from .errors import AsctoolError

__all__ = ["atomic_path", "read_text", "check_name", "Claim", "claim_outputs"]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it to ``path`` on success.

    The temporary file is created by :func:`tempfile.mkstemp` in the same
    folder (``<stem>.tmp-<random><suffix>``: an unpredictable name opened with
    ``O_CREAT|O_EXCL``, so a link planted in advance is never followed) and
    given the permissions an ordinary new file would get (``0o666 & ~umask``).
    The suffix is kept because some writers pick the format from it (Keras,
    soundfile). On success the file is renamed over ``path`` (atomic within a
    file system); on any exception it is removed and ``path`` is untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f"{path.stem}.tmp-", suffix=path.suffix, dir=path.parent)
    tmp = Path(name)
    try:
        os.fchmod(fd, 0o666 & ~_umask())
        os.close(fd)
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def read_text(path: str | os.PathLike, *, error: type[AsctoolError] = AsctoolError,
              encoding: str = "utf-8") -> str:
    """The text of an input file, or a one-line ``error`` naming the file.

    Parameters
    ----------
    path : path
    error : AsctoolError subclass
        The exception raised (e.g. :class:`~asctool.errors.ManifestError` for a manifest).
    encoding : str
        ``"utf-8-sig"`` tolerates a byte-order mark.

    Raises
    ------
    error
        ``PATH: file not found``, or ``PATH: cannot read (...)`` for a folder, a
        permission problem or text that is not valid in ``encoding``.
    """
    path = Path(path)
    try:
        return path.read_text(encoding=encoding)
    except FileNotFoundError:
        raise error(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"{path}: cannot read ({exc})") from None


# --------------------------------------------------------------------------
# names that become part of a file name
# --------------------------------------------------------------------------
def _name_problem(text: str) -> str | None:
    if not text:
        return "is empty"
    if any(unicodedata.category(ch) == "Cc" for ch in text):
        return "contains a control character"
    if os.path.isabs(text) or text.startswith(("/", "\\")):
        return "is an absolute path"
    if "/" in text or "\\" in text:
        return "contains a path separator"
    if ".." in text or set(text) == {"."}:
        return "contains '..'" if ".." in text else "is '.'"
    if text.startswith("-"):
        return "starts with '-'"
    return None


def check_name(value: str, *, what: str = "name", where: str | os.PathLike | None = None,
               error: type[AsctoolError] = AsctoolError) -> str:
    """``value`` if it can safely become part of a file name, else a one-line ``error``.

    Clip ids become audio and PNG file names, device names and setup names
    parts of file names: a value that could leave the output folder, hide as
    an option or garble a terminal line is refused wherever it is read.

    Parameters
    ----------
    value : str
    what : str
        What the value is, for the message (``"clip id"``, ``"--setup"``).
    where : str or path, optional
        Where it was read, for the message (``MANIFEST:LINE``, ``--ids``, a file).
    error : AsctoolError subclass
        The exception raised.

    Returns
    -------
    str
        ``value``, unchanged.

    Raises
    ------
    error
        ``WHERE: WHAT 'VALUE' <problem>`` when the value is empty, contains a
        path separator (``/`` or ``\\``), ``..`` or a control character, is
        ``.``, an absolute path or starts with ``-``.
    """
    text = str(value)
    problem = _name_problem(text)
    if problem is not None:
        prefix = f"{where}: " if where is not None else ""
        raise error(f"{prefix}{what} {text!r} {problem}; it becomes part of a file name, "
                    "so it may not contain /, \\, '..' or control characters nor start with '-'")
    return value


# --------------------------------------------------------------------------
# the claim of a stage's outputs
# --------------------------------------------------------------------------
@dataclass(frozen=True)
class Claim:
    """The outputs a stage claimed with :func:`claim_outputs` (every one checked).

    A ``with`` block holds the claim for its duration; :meth:`release` ends it
    (today the claim holds nothing to release: it is the place where locks on
    the outputs belong).
    """

    files: tuple[Path, ...]
    folders: tuple[Path, ...]

    def release(self) -> None:
        """End the claim (nothing to release yet)."""

    def __enter__(self) -> "Claim":
        return self

    def __exit__(self, *exc_info) -> None:
        self.release()


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.abspath(a) == os.path.abspath(b) or a.resolve() == b.resolve()


def _check_creatable(path: Path, folder: Path, error: type[AsctoolError]) -> None:
    """``folder`` (where ``path`` goes) exists as a writable folder or can be created."""
    ancestor = Path(os.path.abspath(folder))
    while not os.path.lexists(ancestor) and ancestor.parent != ancestor:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        what = "a broken link" if ancestor.is_symlink() and not ancestor.exists() else "not a folder"
        raise error(f"{path}: cannot be written: {_shown(ancestor, folder)} is {what}")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise error(f"{path}: cannot be written: no permission to write in {_shown(ancestor, folder)}")
    try:  # access() says yes to root everywhere (/proc, /sys): create (and remove) a folder there to be sure
        os.rmdir(tempfile.mkdtemp(prefix=".asctool-probe-", dir=ancestor))
    except OSError as exc:
        raise error(f"{path}: cannot be written: cannot create anything in {_shown(ancestor, folder)} "
                    f"({exc.strerror})") from None


def _shown(ancestor: Path, folder: Path) -> str:
    """``ancestor`` as the user spelled it (a prefix of ``folder``) where possible."""
    for candidate in (folder, *folder.parents):
        if os.path.abspath(candidate) == str(ancestor):
            return str(candidate) if str(candidate) not in ("", ".") else "the current folder"
    return str(ancestor)


def claim_outputs(files: Iterable[str | os.PathLike | None] = (), *, force: bool = False,
                  folders: Iterable[str | os.PathLike | None] = (),
                  rewritable: Iterable[str | os.PathLike | None] = (),
                  inputs: Iterable[str | os.PathLike | None] = (),
                  error: type[AsctoolError] = AsctoolError) -> Claim:
    """Check every output of a stage before any is written: the prologue of every stage.

    Call it once, after the options are checked and before anything is
    written (no folder created, no file touched): it either accepts all the
    outputs or raises one line naming the first bad one. ``None`` entries are
    skipped (outputs a user did not ask for).

    Parameters
    ----------
    files : paths
        Output files. Each must not be a folder, must not exist unless
        ``force``, and its folder must exist as a writable folder or be
        creatable (no file in the way, e.g. ``--out some.tsv/x.h5``; permission
        to write in the nearest existing folder).
    force : bool
        Whether existing ``files`` may be overwritten (``--force``).
    folders : paths
        Output folders: each must not be a file and must exist writable or be
        creatable. What they may already hold is the stage's rule.
    rewritable : paths
        Output files that may exist without ``force`` (what a resumed run
        rewrites, or a side file with its own rule, such as ``size.json``):
        checked like ``files`` otherwise.
    inputs : paths
        The stage's input files: no output may be one of them.
    error : AsctoolError subclass
        The exception raised.

    Returns
    -------
    Claim
        The checked outputs (a context manager; see :class:`Claim`).

    Raises
    ------
    error
        ``PATH: is a folder``, ``PATH: already exists (use --force to
        overwrite)``, ``PATH: cannot be written: ... is not a folder``, ``PATH:
        cannot be written: no permission to write in FOLDER``, ``PATH: is also
        an input``, ``PATH: given twice as an output``.
    """
    claimed_folders: list[Path] = []
    for folder in (Path(p) for p in folders if p is not None):
        if os.path.lexists(folder) and not folder.is_dir():
            raise error(f"{folder}: exists and is not a folder")
        _check_creatable(folder, folder, error)
        claimed_folders.append(folder)
    checked_inputs = [Path(p) for p in inputs if p is not None]
    claimed: list[Path] = []
    for path, may_exist in [*((Path(p), force) for p in files if p is not None),
                            *((Path(p), True) for p in rewritable if p is not None)]:
        if any(_same_file(path, other) for other in claimed):
            raise error(f"{path}: given twice as an output")
        if path.is_dir():
            raise error(f"{path}: is a folder (an output file is expected here)")
        if any(_same_file(path, source) for source in checked_inputs):
            raise error(f"{path}: is also an input of this command; write the output to another file")
        if os.path.lexists(path) and not may_exist:
            raise error(f"{path}: already exists (use --force to overwrite)")
        _check_creatable(path, path.parent, error)
        claimed.append(path)
    return Claim(tuple(claimed), tuple(claimed_folders))
