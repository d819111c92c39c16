"""File-system helpers every layer shares: atomic writes with safe temporary names, text reading,
the checks of names that become part of a file name, the claim of a stage's outputs, and
exclusive locks on outputs.

This module imports nothing heavy (no h5py, no NumPy), so light modules such
as :mod:`asctool.audio` and :mod:`asctool.manifest` can use it directly.
"""
from __future__ import annotations

import contextlib
import logging
import os
import re
import tempfile
import threading
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

from .errors import AsctoolError

__all__ = ["atomic_path", "read_text", "check_name", "Claim", "claim_outputs", "lock_outputs",
           "lock_path_for", "locked_outputs", "Interrupted", "interrupt", "interrupted", "check_interrupted",
           "interrupts_deferred", "write_error"]

log = logging.getLogger(__name__)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it to ``path`` on success.

    The temporary file is created by :func:`tempfile.mkstemp` in the same
    folder (``<stem>.tmp-<random><suffix>``: an unpredictable name opened with
    ``O_CREAT|O_EXCL``, so a link planted in advance is never followed) and
    given the permissions an ordinary new file would get (``0o666 & ~umask``).
    The suffix is kept because some writers pick the format from it (Keras,
    soundfile); ``suffix`` keeps a longer one (``".weights.h5"``, which Keras
    requires of weight files). On success the file is renamed over ``path``
    (atomic within a file system); on any exception it is removed and ``path``
    is untouched.
    """
    path = Path(path)
    suffix = path.suffix if suffix is None else suffix
    if not path.name.endswith(suffix) or len(path.name) == len(suffix):
        raise ValueError(f"{path}: does not end with the suffix {suffix!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f"{path.name[:len(path.name) - len(suffix)]}.tmp-", suffix=suffix,
                                dir=path.parent)
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


# --------------------------------------------------------------------------
# exclusive locks on outputs (one writer per output file or run folder)
# --------------------------------------------------------------------------
#: Held locks of this process: lock file -> [pid, fd, count]. Re-entrant, so a
#: stage that locks its outputs can call a helper that locks them again.
_HELD: dict[Path, list[int]] = {}
_HELD_GUARD = threading.RLock()


def _drop_inherited_locks() -> None:
    """In a forked child (a worker): close the lock files inherited from the parent.

    A flock belongs to the open file, which a fork shares: a worker holding its copy
    would keep the output locked after its parent was killed, until the worker too
    is gone. Closing the child's copy leaves the parent's lock in place.
    """
    for _pid, fd, _count in _HELD.values():
        try:
            os.close(fd)
        except OSError:
            pass
    _HELD.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_drop_inherited_locks)
_LOCK_RETRIES = 20


def lock_path_for(path: str | os.PathLike) -> Path:
    """The lock file of output ``path``: ``.<name>.lock`` beside it.

    The folder part is resolved (symbolic links, ``..``), so two spellings of
    one output share a lock; the last component is not (:func:`atomic_path`
    replaces a link under the output's name, not its target). A folder output
    (a run folder) is locked the same way: ``exp/.fcnn.lock`` for ``exp/fcnn``.
    """
    path = Path(os.path.normpath(Path(path).absolute()))  # "out/." and "." name their folder
    return path.parent.resolve() / f".{path.name}.lock"


def _leftover_pattern(path: Path) -> re.Pattern[str]:
    """Names :func:`atomic_path` gives the temporary files of ``path`` (mkstemp: 8 random characters)."""
    return re.compile(re.escape(path.stem) + r"\.tmp-[a-z0-9_]{8}" + re.escape(path.suffix))


class _OutputLocks:
    """The locks of :func:`lock_outputs`; a context manager (also ``acquire()``/``release()``)."""

    def __init__(self, paths: Iterable[str | os.PathLike | None]) -> None:
        seen: dict[Path, Path] = {}
        for path in paths:
            if path is None:
                continue
            lock = lock_path_for(path)
            seen.setdefault(lock, Path(path))
        self.outputs = seen  # lock file -> output path, as given
        self._acquired: list[Path] = []
        self._created: list[Path] = []

    # ---- one lock
    def _acquire_one(self, lock: Path, output: Path) -> None:
        with _HELD_GUARD:  # (threads of this process share its locks)
            held = _HELD.get(lock)
            if held is not None and held[0] == os.getpid():
                held[2] += 1
                self._acquired.append(lock)
                return
            self._take(lock, output)

    def _take(self, lock: Path, output: Path) -> None:
        try:
            import fcntl
        except ImportError:  # not POSIX: no locks
            return
        for _ in range(_LOCK_RETRIES):
            try:
                self._make_parents(lock.parent)
                fd = os.open(lock, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0),
                             0o666)
            except FileNotFoundError:  # the folder was removed meanwhile (a releasing holder)
                continue
            except OSError as exc:
                # the output cannot be written there either: the stage's own checks
                # (claim_outputs) or its write say so, with the words for the case
                log.debug("%s: no lock (%s: %s)", output, lock, exc.strerror)
                return
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _read_holder(fd)
                os.close(fd)
                raise AsctoolError(
                    f"{output}: another asctool process{holder} is writing it; wait for it to end or stop it "
                    f"(lock {lock})"
                ) from None
            except OSError as exc:  # a file system without flock: write unlocked
                os.close(fd)
                log.warning("%s: cannot lock %s (%s); concurrent writers of it are not detected",
                            output, lock, exc.strerror)
                return
            # the file may have been removed by the holder that released it between
            # our open and our flock: then we locked a file nobody else will open
            try:
                current = os.stat(lock, follow_symlinks=False)
            except FileNotFoundError:
                current = None
            mine = os.fstat(fd)
            if current is None or (current.st_dev, current.st_ino) != (mine.st_dev, mine.st_ino):
                os.close(fd)
                continue
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()} {_hostname()}\n".encode())
            _HELD[lock] = [os.getpid(), fd, 1]
            self._acquired.append(lock)
            self._remove_leftovers(output)
            return
        raise AsctoolError(f"{output}: could not take its lock {lock} (it keeps being replaced)")

    def _make_parents(self, folder: Path) -> None:
        """Create the missing folders above the lock file (removed again at release if still empty)."""
        missing = []
        for parent in (folder, *folder.parents):
            if os.path.lexists(parent):
                break
            missing.append(parent)
        for parent in reversed(missing):
            try:
                parent.mkdir()
            except FileExistsError:
                continue
            self._created.append(parent)

    @staticmethod
    def _remove_leftovers(output: Path) -> None:
        """Remove temporary files of ``output`` left by a killed writer (none can be alive: we hold the lock)."""
        if output.is_dir():
            return
        pattern = _leftover_pattern(output)
        try:
            names = os.listdir(output.parent)
        except OSError:
            return
        for name in names:
            if pattern.fullmatch(name):
                with contextlib.suppress(OSError):
                    (output.parent / name).unlink()
                    log.info("%s: removed %s, left by an interrupted run", output, name)

    def _release_one(self, lock: Path) -> None:
        with _HELD_GUARD:
            held = _HELD.get(lock)
            if held is None or held[0] != os.getpid():
                return
            held[2] -= 1
            if held[2] > 0:
                return
            del _HELD[lock]
            import fcntl

            fd = held[1]
            try:
                # unlink while holding the lock: a process that opened the old file
                # meanwhile sees it replaced (see _take) and opens the new one
                with contextlib.suppress(OSError):
                    current = os.stat(lock, follow_symlinks=False)
                    mine = os.fstat(fd)
                    if (current.st_dev, current.st_ino) == (mine.st_dev, mine.st_ino):
                        os.unlink(lock)
                fcntl.flock(fd, fcntl.LOCK_UN)  # also for forked workers that share the descriptor
            finally:
                os.close(fd)

    # ---- all of them
    def acquire(self) -> "_OutputLocks":
        try:
            for lock, output in sorted(self.outputs.items()):
                self._acquire_one(lock, output)
        except BaseException:
            self.release()
            raise
        return self

    def release(self) -> None:
        while self._acquired:
            self._release_one(self._acquired.pop())
        while self._created:  # deepest first; only folders still empty
            with contextlib.suppress(OSError):
                self._created.pop().rmdir()

    def __enter__(self) -> "_OutputLocks":
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def write_error(path: str | os.PathLike, exc: BaseException) -> AsctoolError:
    """A one-line error for a failed write of ``path``: the system's reason, or the free space where a
    library hides it (libsndfile's "System error.").

    For errors raised where the path is known but would otherwise be lost
    (in a worker process, or by a library that keeps no errno).
    """
    import errno as errnos
    import shutil

    if isinstance(exc, OSError) and exc.errno:
        message = f"{path}: cannot write ({os.strerror(exc.errno)})"
        if exc.errno in (errnos.ENOSPC, getattr(errnos, "EDQUOT", errnos.ENOSPC)):
            message += "; free some space and run again"
        return AsctoolError(message)
    reason = " ".join(str(exc).split()) or type(exc).__name__
    try:
        free = shutil.disk_usage(Path(path).parent).free
        reason += f"; {free / 1e6:.1f} MB free on its file system"
    except OSError:
        pass
    return AsctoolError(f"{path}: cannot write ({reason})")


def _hostname() -> str:
    import socket

    return socket.gethostname()


def _read_holder(fd: int) -> str:
    """`` (pid N)`` or `` (pid N on HOST)`` from a lock file's content, or ``""``."""
    try:
        fields = os.pread(fd, 200, 0).decode("utf-8", "replace").split()
    except OSError:
        return ""
    if not fields or not fields[0].isdigit():
        return ""
    host = f" on {fields[1]}" if len(fields) > 1 and fields[1] != _hostname() else ""
    return f" (pid {fields[0]}{host})"


def lock_outputs(paths: Iterable[str | os.PathLike | None]) -> _OutputLocks:
    """Hold an exclusive lock on each output (file or folder) for the duration of a ``with`` block.

    A second process that asks for a lock on one of ``paths`` meanwhile gets a
    one-line :class:`~asctool.errors.AsctoolError` naming the output and saying
    that another asctool process is writing it. Take the lock before checking
    whether the output exists, so that the check and the write are one step.

    Where the locks live and why:

    - **A lock file beside each output** (:func:`lock_path_for`:
      ``.<name>.lock`` in the output's folder; for a run folder ``exp/fcnn``,
      ``exp/.fcnn.lock``), locked with ``flock(LOCK_EX | LOCK_NB)``. Beside,
      not in a central folder, so that writers on other machines sharing the
      folder (NFS, where Linux maps flock onto POSIX locks) see it too; not
      inside a folder output, so that the folder need not exist and its
      content stays the stage's own. The lock file holds the holder's pid and
      host, for the message.
    - **Removed on release**, while still locked; a process that opened the
      file just before is protected by checking, after its flock succeeds,
      that the name still refers to the file it locked (else it retries).
      A killed holder (``kill -9``) leaves its lock file, but not its lock
      (the kernel releases it): the file is harmless and is reused and removed
      by the next run.
    - **Leftovers removed.** Holding the lock, no asctool process is writing
      the output, so temporary files of it from a killed writer
      (:func:`atomic_path`'s ``<stem>.tmp-<8 characters><suffix>``) are deleted.
    - **Missing folders** above the lock file are created, and removed again on
      release if still empty (a stage that fails its checks leaves nothing).
      Where the lock file cannot be created (no folder can be made there, no
      permission), the output is not locked: it cannot be written either, and
      the stage's checks (:func:`claim_outputs`) say why in their words.
    - **Re-entrant within a process** (a stage and a helper may both lock the
      same output); forked workers share the descriptor, so release unlocks
      explicitly. Where the file system has no flock, a warning is logged and
      the output is written unlocked.

    Parameters
    ----------
    paths : output files or folders (None entries are skipped)

    Returns
    -------
    A context manager (``acquire()`` and ``release()`` also work).

    Raises
    ------
    AsctoolError
        Another process holds one of the locks; no lock is held then.
    """
    return _OutputLocks(paths)


def locked_outputs(*names: str):
    """Decorator: call the function while :func:`lock_outputs` holds the paths given as arguments ``names``.

    Each named argument is a path, None (skipped) or a sequence of paths.
    """
    import functools
    import inspect

    def decorate(func):
        signature = inspect.signature(func)

        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            paths: list = []
            for name in names:
                value = bound.arguments[name]
                if isinstance(value, (str, os.PathLike)) or value is None:
                    paths.append(value)
                else:
                    paths.extend(value)
            with lock_outputs(paths):
                return func(*args, **kwargs)

        return wrapper

    return decorate


# --------------------------------------------------------------------------
# interrupts (SIGINT, SIGTERM, SIGHUP) as exceptions, deferred around writes
# --------------------------------------------------------------------------
class Interrupted(KeyboardInterrupt):
    """A stopping signal turned into an exception in the main thread (``asctool.cli.main`` does it).

    A KeyboardInterrupt, so every clean-up that Ctrl-C runs (:func:`atomic_path`,
    the worker pool's shutdown) runs for SIGTERM and SIGHUP too.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


_DEFERRING = 0
_PENDING: list[int] = []
_RECEIVED: list[int] = []  # the first signal passed to interrupt(), for good


def interrupt(signum: int) -> None:
    """Raise :class:`Interrupted` for ``signum`` now, or at the end of the current :func:`interrupts_deferred`.

    Meant for a signal handler (which runs in the main thread between two
    Python instructions). The signal is remembered (:func:`interrupted`,
    :func:`check_interrupted`).
    """
    if not _RECEIVED:
        _RECEIVED.append(signum)
    if _DEFERRING:
        _PENDING.append(signum)
        return
    raise Interrupted(signum)


def interrupted() -> int | None:
    """The signal passed to :func:`interrupt` in this process, if any."""
    return _RECEIVED[0] if _RECEIVED else None


def check_interrupted() -> None:
    """Raise :class:`Interrupted` again if :func:`interrupt` was called: for the loops of long work.

    The exception a signal handler raises is lost where Python ignores
    exceptions (a fork hook, a ``__del__``, a weakref callback: "Exception
    ignored in ..."); the next check raises it again. Not to be called in
    clean-up code (it would interrupt the clean-up).
    """
    if _RECEIVED and not _DEFERRING:
        raise Interrupted(_RECEIVED[0])


@contextlib.contextmanager
def interrupts_deferred() -> Iterator[None]:
    """Hold back :func:`interrupt` while the block runs; raise it when the block ends.

    For calls that a Python exception must not cut in two: HDF5 cannot
    recover from an exception raised in the middle of one of its writes (its
    file then fails to close and the interpreter may crash at exit).
    """
    global _DEFERRING
    _DEFERRING += 1
    try:
        yield
    finally:
        _DEFERRING -= 1
        if not _DEFERRING and _PENDING:
            signum = _PENDING[0]
            _PENDING.clear()
            raise Interrupted(signum)
