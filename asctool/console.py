"""Logging and progress bars on stderr (results go to stdout, from cli.py only).

Also keeps TensorFlow's native start-up messages (absl's "All log messages
before absl::InitializeLog() ..." line, oneDNN, CUDA and CPU-feature notices)
off stderr unless ``-v``: they are written by C++ code straight to file
descriptor 2 before TensorFlow's own log level applies, so
``TF_CPP_MIN_LOG_LEVEL`` alone does not hide them (TensorFlow 2.21).
"""
from __future__ import annotations

import contextlib
import importlib.abc
import importlib.machinery
import logging
import os
import sys
from typing import Callable, Iterator

__all__ = ["configure", "progress", "progress_enabled", "muted_stderr", "mute_tensorflow_startup", "remove_muter"]

_quiet = False


def configure(verbosity: int = 0) -> None:
    """Set up logging on stderr: -1 quiet (warnings only), 0 info, 1 debug.

    The level is set on the stderr handler too, so a file handler that lowers
    the ``asctool`` logger's level meanwhile (a run's ``train.log``,
    :func:`asctool.runs.log_to`) does not bring INFO lines to stderr under -q.
    Unless ``verbosity > 0``, TensorFlow's native lines are muted
    (:func:`mute_tensorflow_startup`).
    """
    global _quiet
    _quiet = verbosity < 0
    if verbosity <= 0:
        mute_tensorflow_startup()
    else:
        remove_muter()
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
            handler.setLevel(level)
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


@contextlib.contextmanager
def muted_stderr() -> Iterator[None]:
    """Send file descriptor 2 (native code's stderr, and Python's) to /dev/null for the block."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no usable stderr: nothing to mute
        yield
        return
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 2)
        yield
    finally:
        try:
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)


class _MutedLoader(importlib.abc.Loader):
    """Executes the ``tensorflow`` package, then lists its devices, with stderr muted."""

    def __init__(self, loader: importlib.abc.Loader) -> None:
        self._loader = loader

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module) -> None:
        with muted_stderr():
            self._loader.exec_module(module)
            try:  # the first device query prints the CUDA notices (cuInit) of the process
                module.config.list_physical_devices()
            except Exception:  # noqa: BLE001 - the messages only; the stage meets real errors itself
                pass


class _TensorFlowStartupMuter(importlib.abc.MetaPathFinder):
    """Finds ``tensorflow`` once, as usual, with a loader that mutes its start-up."""

    def find_spec(self, name, path=None, target=None):
        if name != "tensorflow":
            return None
        remove_muter()
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _MutedLoader(spec.loader)
        return spec


def mute_tensorflow_startup() -> None:
    """Keep TensorFlow's native start-up lines off stderr (called by :func:`configure` unless -v).

    Sets ``TF_CPP_MIN_LOG_LEVEL=3`` (unless already set: TensorFlow's later
    C++ INFO, WARNING and ERROR lines, such as "oneDNN supports DT_HALF only
    on platforms with AVX-512" during training; real failures still reach
    the user as Python exceptions) and installs an import hook, so that the first
    ``import tensorflow`` of the process and its first device query run with
    file descriptor 2 on /dev/null. Does nothing when TensorFlow is already
    imported.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if "tensorflow" in sys.modules or any(isinstance(f, _TensorFlowStartupMuter) for f in sys.meta_path):
        return
    sys.meta_path.insert(0, _TensorFlowStartupMuter())


def remove_muter() -> None:
    """Take the import hook of :func:`mute_tensorflow_startup` out again (if installed)."""
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, _TensorFlowStartupMuter)]
