"""New HDF5 files written so that a failed write or an interrupt never breaks HDF5.

HDF5 cannot recover from a failed write: after a full disk, closing the file
fails too ("Can't close dataset"), the file stays open under its temporary
name, the disk stays full, and the interpreter crashed at exit (a segfault).
Nor can it recover from a Python exception raised in the middle of one of its
calls (a signal turned into an exception). So new artifacts are written

- through :class:`GuardedFile` (h5py's ``fileobj`` driver): the first failed
  write (``OSError``: ENOSPC, EDQUOT, EIO...) is kept and reported to HDF5 as
  done, later writes are dropped; the writer checks after every HDF5 call
  (:meth:`NewH5.check`) and raises an ``OSError`` naming the final file, the
  file closes cleanly, and :func:`asctool.io.atomic_path` removes it;
- with interrupts held back during each HDF5 call
  (:func:`asctool.io.interrupts_deferred`).

:func:`new_h5` is the whole pattern for a file written in one block;
:class:`asctool.artifacts.FeaturesWriter` uses :class:`AtomicH5` across its calls.
"""
from __future__ import annotations

import contextlib
import io
import os
from pathlib import Path
from typing import Iterator

import h5py

from .io import atomic_path, check_interrupted, interrupts_deferred

__all__ = ["GuardedFile", "NewH5", "AtomicH5", "new_h5"]


class GuardedFile(io.RawIOBase):
    """The file h5py writes a new artifact through (its ``fileobj`` driver); a failed write never reaches HDF5.

    The first failed write is kept in :attr:`error` and reported to HDF5 as
    done. From then on (and once the file is discarded) writes go to an
    in-memory overlay instead of the disk, so that HDF5, which may read back
    what it wrote, keeps a consistent view of the file until it is closed;
    the overlay holds only what HDF5 writes after the failure (its caches:
    a few MB). Writes are positional (``pwrite``) and complete (a short
    write is continued).
    """

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.fd = os.open(path, os.O_RDWR | getattr(os, "O_CLOEXEC", 0))
        self.position = 0
        self.size = 0  # the file's size as HDF5 sees it
        self.error: OSError | None = None
        self._overlay: list[tuple[int, bytes]] = []  # (offset, data) written after the failure, in order

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        if whence == os.SEEK_SET:
            self.position = offset
        elif whence == os.SEEK_CUR:
            self.position += offset
        else:
            self.position = self.size + offset
        return self.position

    def tell(self) -> int:
        return self.position

    def readinto(self, buffer) -> int:
        start = self.position
        n = max(0, min(len(buffer), self.size - start))
        data = bytearray(os.pread(self.fd, n, start).ljust(n, b"\0"))
        for offset, written in self._overlay:  # later writes win
            lo, hi = max(start, offset), min(start + n, offset + len(written))
            if lo < hi:
                data[lo - start:hi - start] = written[lo - offset:hi - offset]
        buffer[:n] = data
        self.position += n
        return n

    def write(self, data) -> int:
        view = memoryview(data).cast("B")
        done = 0
        while done < len(view) and self.error is None:
            try:
                done += os.pwrite(self.fd, view[done:], self.position + done)
            except OSError as exc:
                self.error = exc
        if self.error is not None:
            self._overlay.append((self.position, bytes(view)))
        self.position += len(view)
        self.size = max(self.size, self.position)
        return len(view)

    def truncate(self, size: int | None = None) -> int:
        size = self.position if size is None else size
        if self.error is None:
            try:
                os.ftruncate(self.fd, size)
            except OSError as exc:
                self.error = exc
        self.size = size
        return size

    def flush(self) -> None:
        pass

    def close(self) -> None:
        if self.fd >= 0:
            fd, self.fd = self.fd, -1
            try:
                os.close(fd)  # where a network file system reports a failed write
            except OSError as exc:
                self.error = self.error or exc
        self._overlay = []
        super().close()


def _write_error(error: OSError, path: Path) -> OSError:
    """The OSError of a failed write, naming the final ``path`` (not its temporary name)."""
    code = error.errno if error.errno is not None else 5  # EIO
    return OSError(code, os.strerror(code), str(path))


class NewH5:
    """A new HDF5 file at the temporary path of :func:`atomic_path`, written through :class:`GuardedFile`."""

    def __init__(self, tmp: Path, path: Path) -> None:
        self.path = path
        self.file = GuardedFile(tmp)
        try:
            with self.writing():
                self.handle = h5py.File(self.file, "w")
        except BaseException:
            self.file.close()
            raise

    def check(self) -> None:
        """Raise the failed write, if there was one (an OSError naming the output)."""
        if self.file.error is not None:
            raise _write_error(self.file.error, self.path) from None

    @contextlib.contextmanager
    def writing(self) -> Iterator[None]:
        """Around HDF5 calls: interrupts wait for the call to end; a failed write is raised after it.

        Where HDF5 itself fails because of the failed write, the failed write
        is what is raised.
        """
        with interrupts_deferred():
            try:
                yield
            except Exception:
                self.check()
                raise
        self.check()

    def close(self, *, keep: bool) -> None:
        """Close; ``keep=False`` (the file is discarded) drops what HDF5 still has to write."""
        if not keep and self.file.error is None:
            self.file.error = OSError(0, "discarded")
        try:
            self.handle.close()
        except Exception:
            if keep:
                self.check()  # the failed write behind HDF5's error
            raise
        finally:
            self.file.close()
        if keep:
            self.check()


class AtomicH5:
    """A new HDF5 file at a temporary name (:func:`asctool.io.atomic_path`), renamed by :meth:`finish`.

    ``open()`` returns the h5py handle; wrap each HDF5 call in ``writing()``;
    ``finish(error)`` closes the file and renames it to ``path`` (``error``
    None) or removes it (the caller's error, which the caller raises).
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self._atomic = None
        self._new: NewH5 | None = None

    def open(self) -> h5py.File:
        self._atomic = atomic_path(self.path)
        tmp = self._atomic.__enter__()
        try:
            self._new = NewH5(tmp, self.path)
        except BaseException as exc:
            self._atomic.__exit__(type(exc), exc, exc.__traceback__)  # removes the temporary file
            raise
        return self._new.handle

    @contextlib.contextmanager
    def writing(self) -> Iterator[None]:
        """Around HDF5 calls (see :meth:`NewH5.writing`); on an exception the file is removed (:meth:`finish`).

        Also raises an interrupt whose exception was lost (:func:`asctool.io.check_interrupted`).
        """
        try:
            check_interrupted()
            with self._new.writing():
                yield
        except BaseException as exc:
            self.finish(exc)
            raise

    def finish(self, error: BaseException | None = None) -> None:
        """Close; rename to ``path`` when ``error`` is None, else remove the file (``error`` is the caller's).

        Raises a failure of its own, the file removed: the last writes failed
        (an ``OSError`` naming ``path``), or an interrupt held back meanwhile.
        """
        new, atomic = self._new, self._atomic
        if new is None:  # finished already
            return
        self._new = self._atomic = None
        failure = None
        with interrupts_deferred():  # an interrupt waits until the file is renamed or removed
            try:
                new.close(keep=error is None)  # a discarded file writes nothing more
            except BaseException as exc:  # the last writes failed (a full disk)
                failure = exc
                new.close(keep=False)
            cause = failure if failure is not None else error
            if cause is None:
                atomic.__exit__(None, None, None)  # the rename
            else:
                atomic.__exit__(type(cause), cause, cause.__traceback__)  # removes the temporary file
        if failure is not None:
            raise failure


@contextlib.contextmanager
def new_h5(path: Path) -> Iterator[h5py.File]:
    """An HDF5 file written atomically at ``path``; a failed write is an OSError naming ``path``."""
    out = AtomicH5(path)
    handle = out.open()
    with out.writing():  # removes the file on an exception
        yield handle
    out.finish()
