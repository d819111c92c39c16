"""The command line's support: option types, the error-to-one-line mapping, registry-name helpers.

Part of the command-line layer with :mod:`asctool.cli` (the only modules that
import ``click``): ``cli.py`` holds the commands, this module what they share.
"""
from __future__ import annotations

import errno
import os
import re
import signal
from pathlib import Path
from typing import Callable, Sequence

import click

from .errors import AsctoolError

INPUT_FILE = click.Path(exists=False, dir_okay=False, path_type=Path)
OUT_FILE = click.Path(dir_okay=False, path_type=Path)
DIRECTORY = click.Path(file_okay=False, path_type=Path)


class _InterruptedExit(click.ClickException):
    """The one line printed after an interrupted stage has cleaned up; exit status 128 + N."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"interrupted by {signal.Signals(signum).name}; temporary files were removed")
        self.exit_code = 128 + signum


#: Signals :func:`main` turns into :class:`asctool.io.Interrupted`.
_INTERRUPTS = ("SIGINT", "SIGTERM", "SIGHUP")

# what the C library and HDF5 say about a failed write: "errno = 28, error message = '...'"
_HDF5_ERRNO = re.compile(r"errno = (\d+)")
_HDF5_FILENAME = re.compile(r"filename = '([^']*)'")
# atomic_path's temporary names (mkstemp): STEM.tmp-XXXXXXXXSUFFIX
_TEMPORARY = re.compile(r"^(?P<stem>.*)\.tmp-[a-z0-9_]{8}(?P<suffix>(\.[^./]*)?)$")
_DISK_FULL = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}


def _output_being_written(exc: BaseException) -> str | None:
    """The temporary file of :func:`asctool.io.atomic_path` that a frame of ``exc``'s traceback held.

    For errors that name no file (a failed ``write``: ENOSPC, EIO): the frame
    inside ``with atomic_path(path) as tmp:`` holds ``tmp``, whose name
    (``STEM.tmp-XXXXXXXXSUFFIX``) gives the output; the innermost one wins.
    """
    tb, found = exc.__traceback__, None
    while tb is not None:
        for value in list(tb.tb_frame.f_locals.values()):
            text = os.fspath(value) if isinstance(value, (str, os.PathLike)) else None
            if isinstance(text, str) and len(text) < 4096 and _TEMPORARY.match(text):
                found = text
                break
        tb = tb.tb_next
    return found


def _os_error_line(exc: BaseException) -> str | None:
    """One line for an operating-system error (``OSError``, HDF5's RuntimeError), or None for other errors.

    Names the file (the final output, not its temporary name) and says what
    the system said; a full disk or quota also says what to do.
    """
    if isinstance(exc, OSError):
        code, filename, text = exc.errno, exc.filename, exc.strerror
        if code is None:  # h5py puts the C library's report in the message
            match = _HDF5_ERRNO.search(str(exc))
            code = int(match.group(1)) if match else None
    elif isinstance(exc, RuntimeError) and _HDF5_ERRNO.search(str(exc)):
        code, filename, text = int(_HDF5_ERRNO.search(str(exc)).group(1)), None, None
    else:
        return None
    if filename is None:
        match = _HDF5_FILENAME.search(str(exc))
        filename = match.group(1) if match else _output_being_written(exc)
    text = os.strerror(code) if code is not None else (text or str(exc).splitlines()[0])
    if filename is not None:
        filename = os.fsdecode(filename)
        match = _TEMPORARY.match(filename)
        if match:  # the temporary file of an output: name the output
            filename = match.group("stem") + match.group("suffix")
    message = f"{filename}: {text}" if filename else text
    if code in _DISK_FULL:
        message += " (free some space and run again)"
    return " ".join(message.split())


class _Group(click.Group):
    """Maps project and operating-system errors to one-line messages (tracebacks with -v)."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt as exc:
            raise _InterruptedExit(getattr(exc, "signum", signal.SIGINT)) from None
        except (AsctoolError, OSError, RuntimeError) as exc:
            if isinstance(exc, AsctoolError):
                message = str(exc)
            elif isinstance(exc, OSError) and exc.errno == errno.EPIPE:
                raise  # stdout closed: click handles it
            else:
                message = _os_error_line(exc)
                if message is None:
                    raise
            if ctx.obj and ctx.obj.get("verbose"):
                import traceback

                traceback.print_exc()
            raise click.ClickException(message) from None


class _RegistryChoice(click.Choice):
    """A choice among a registry's names, read when a value is checked or the help is shown.

    So ``asctool --help`` imports no registry (the model registry imports
    TensorFlow), and entries registered at run time are accepted.
    """

    def __init__(self, names: Callable[[], Sequence[str]]) -> None:
        self._names = names
        super().__init__(())

    @property
    def choices(self) -> tuple[str, ...]:  # type: ignore[override]
        return tuple(self._names())

    @choices.setter
    def choices(self, value) -> None:  # click.Choice.__init__ assigns it
        pass


class _RegistryHelpOption(click.Option):
    """An option whose help text lists a registry's names, built only when the help is shown."""

    def __init__(self, *args, help_text: Callable[[], str], **kwargs) -> None:
        self._help_text = help_text
        super().__init__(*args, **kwargs)

    def get_help_record(self, ctx: click.Context):
        self.help = self._help_text()
        return super().get_help_record(ctx)


_CLASSES_HELP = "The data set's own classes, one per line (default: the DCASE scenes or the 3 coarse classes)."


def _batch_augment_help() -> str:
    from .training.batch_augment import augment_names

    return ("Batch augmentations: auto (the reference's), none, or a comma-separated subset of "
            + ",".join(augment_names()) + ".")


def _names(module: str, attribute: str) -> Callable[[], list[str]]:
    """The names a registry lists (``module.attribute``: a function or a sequence), imported when asked."""
    def names() -> list[str]:
        import importlib

        value = getattr(importlib.import_module(module, __package__), attribute)
        return list(value() if callable(value) else value)
    return names


_augment_methods = _names(".augment.registry", "available")
_ensemble_methods = _names(".fusion", "ensemble_methods")
_fusion_methods = _names(".fusion", "fusion_methods")
_presets = _names(".frontend", "PRESETS")   # asctool/conf/preset_NAME.yaml


def _code_backends() -> list[str]:
    """The back-ends fitted on a trained model's codes (``asctool backend NAME``)."""
    from .backends import available

    return available("codes")


def _parse_shape(ctx: click.Context, param: click.Parameter, text: str) -> tuple[int, ...]:
    """--input FREQxTIMExCHANNELS: three positive integers, else a usage error (exit 2)."""
    try:
        shape = tuple(int(part) for part in text.lower().split("x"))
    except ValueError:
        shape = ()
    if len(shape) != 3 or min(shape) < 1:
        raise click.BadParameter(f"{text!r} is not a shape of three positive integers like 128x423x3",
                                 ctx=ctx, param=param)
    return shape
