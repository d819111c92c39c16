"""Provenance of artifacts: the command line and the inputs every artifact records.

Every HDF5 artifact carries ``asctool_kind``, ``schema_version``,
``asctool_version``, ``created`` (ISO time), ``command`` and ``inputs`` (JSON:
each input's path with its size and modification time, or its SHA-256 when it
is small); see ``docs/artifacts.md``.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import shlex
import sys
from pathlib import Path
from typing import Any, Sequence

from . import __version__

__all__ = ["SCHEMA_VERSION", "set_command", "current_command", "describe_inputs", "provenance_attrs", "file_sha256"]

#: The integer version of the artifact format described in docs/artifacts.md.
SCHEMA_VERSION = 1
_SMALL_FILE_BYTES = 1 << 20  # inputs below this size are recorded by SHA-256

_command: str | None = None


def set_command(command: str | Sequence[str] | None) -> None:
    """Record the command line that artifacts written from now on will carry."""
    global _command
    if command is None or isinstance(command, str):
        _command = command
    else:
        _command = shlex.join(list(command))


def current_command() -> str:
    """The command line recorded in provenance (``sys.argv`` unless set)."""
    if _command is not None:
        return _command
    return shlex.join(["asctool", *sys.argv[1:]])


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 (hex) of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def describe_inputs(paths: Sequence[str | os.PathLike]) -> list[dict[str, Any]]:
    """Describe input files for provenance: size and mtime, or SHA-256 if small."""
    described = []
    for raw in paths:
        path = Path(raw)
        entry: dict[str, Any] = {"path": str(path)}
        try:
            stat = path.stat()
        except OSError:
            entry["missing"] = True
        else:
            entry["size"] = stat.st_size
            if path.is_file() and stat.st_size < _SMALL_FILE_BYTES:
                entry["sha256"] = file_sha256(path)
            else:
                entry["mtime"] = _dt.datetime.fromtimestamp(
                    stat.st_mtime, tz=_dt.timezone.utc
                ).isoformat(timespec="seconds")
        described.append(entry)
    return described


def provenance_attrs(kind: str, inputs: Sequence[str | os.PathLike] = ()) -> dict[str, Any]:
    """The attributes every HDF5 artifact carries."""
    return {
        "asctool_kind": kind,
        "schema_version": SCHEMA_VERSION,
        "asctool_version": __version__,
        "created": _dt.datetime.now(tz=_dt.timezone.utc).isoformat(timespec="seconds"),
        "command": current_command(),
        "inputs": json.dumps(describe_inputs(inputs)),
    }
