"""File-system helpers every layer shares: atomic writes with safe temporary names, text reading.

This module imports nothing heavy (no h5py, no NumPy), so light modules such
as :mod:`asctool.audio` and :mod:`asctool.manifest` can use it directly.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Iterator

from .errors import AsctoolError

__all__ = ["atomic_path", "read_text"]


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
