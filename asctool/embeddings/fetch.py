"""Downloading a published weight file, only when a user asks (``asctool download``).

Nothing in asctool downloads at run time otherwise. The file is streamed to a
temporary name beside its final name (:func:`asctool.io.atomic_path`) and
renamed only once it is whole and has passed the caller's check.
"""
from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path
from typing import Callable
from urllib.error import URLError
from urllib.request import urlopen

from ..errors import AsctoolError
from ..io import atomic_path

__all__ = ["fetch"]

log = logging.getLogger(__name__)


def fetch(url: str, path: str | os.PathLike, *, check: Callable[[Path], object] | None = None,
          timeout: float = 60.0) -> dict:
    """Download ``url`` to ``path`` atomically; ``check(tmp)`` may refuse the bytes (raising).

    Returns
    -------
    dict with ``path``, ``url``, ``bytes`` and ``sha256``.

    Raises
    ------
    AsctoolError
        one line naming the URL: the network failed, or the server answered
        with an error; ``check``'s own error when the file is not what was asked.
    """
    path = Path(path)
    digest, size = hashlib.sha256(), 0
    with atomic_path(path) as tmp:
        try:
            with urlopen(url, timeout=timeout) as response, open(tmp, "wb") as out:
                for block in iter(lambda: response.read(1 << 20), b""):
                    out.write(block)
                    digest.update(block)
                    size += len(block)
        except URLError as exc:  # (HTTPError included)
            raise AsctoolError(f"{url}: download failed ({getattr(exc, 'reason', exc)})") from None
        except (OSError, ValueError) as exc:
            if isinstance(exc, OSError) and getattr(exc, "filename", None):
                raise  # a local write error (full disk) names the file
            raise AsctoolError(f"{url}: download failed ({exc})") from None
        if check is not None:
            check(tmp)
    log.info("%s: %d bytes from %s (SHA-256 %s)", path, size, url, digest.hexdigest())
    return {"path": str(path), "url": url, "bytes": size, "sha256": digest.hexdigest()}
