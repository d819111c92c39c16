"""Logging and progress bars on stderr (results go to stdout, from cli.py only)."""
from __future__ import annotations

import contextlib
import logging
import sys
from typing import Callable, Iterator

__all__ = ["configure", "progress", "progress_enabled"]

_quiet = False


def configure(verbosity: int = 0) -> None:
    """Set up logging on stderr: -1 quiet (warnings only), 0 info, 1 debug."""
    global _quiet
    _quiet = verbosity < 0
    level = logging.WARNING if verbosity < 0 else logging.DEBUG if verbosity > 0 else logging.INFO
    root = logging.getLogger("asctool")
    root.setLevel(level)
    if not any(getattr(h, "_asctool", False) for h in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        handler._asctool = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    for handler in root.handlers:
        if getattr(handler, "_asctool", False):
            handler.setStream(sys.stderr)
    root.propagate = False


def progress_enabled() -> bool:
    """Progress bars show only on an interactive stderr and without -q."""
    return not _quiet and sys.stderr.isatty()


@contextlib.contextmanager
def progress(total: int | None, description: str) -> Iterator[Callable[[int], None]]:
    """Context manager yielding ``advance(n=1)``; a rich bar on stderr when enabled."""
    if not progress_enabled():
        yield lambda n=1: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
        console=Console(stderr=True), transient=True,
    ) as bar:
        task = bar.add_task(description, total=total)
        yield lambda n=1: bar.advance(task, n)
