"""The name -> entry table behind every extension point.

Models, waveform augmentations, batch augmentations, ensemble methods and
fusion methods each keep one :class:`Registry`, filled by their own decorator
(which builds the kind's entry and checks what is special to the kind)::

    MODELS: Registry[ModelSpec] = Registry("model")

    def register(name, description):
        def decorate(builder):
            MODELS.add(name, ModelSpec(name, builder, description, ...))
            return builder
        return decorate

The table refuses a name that is already taken (so a typo fails loudly at
import instead of shadowing an entry) and turns an unknown name into a
:class:`~asctool.errors.ConfigError` that lists the known ones.
"""
from __future__ import annotations

from typing import Generic, Iterator, TypeVar

from .errors import ConfigError

__all__ = ["Registry"]

T = TypeVar("T")


class Registry(Generic[T]):
    """Entries of one kind by name, in registration order.

    Parameters
    ----------
    kind : str
        What an entry is, as messages call it (``"batch augmentation"``).
    unknown : str, optional
        The message of an unknown name, a :meth:`str.format` template with the
        fields ``kind``, ``name`` and ``known`` (the known names, comma
        separated). Default ``"unknown {kind} {name!r}; known: {known}"``.
    error : type of Exception, optional
        What :meth:`get` raises for an unknown name (default
        :class:`~asctool.errors.ConfigError`).
    sort : bool, optional
        List the names sorted instead of in registration order (default
        False). Either way, :meth:`values` and :meth:`items` keep registration
        order.

    Examples
    --------
    >>> methods = Registry("ensemble method")
    >>> methods.add("mean", "the mean")
    >>> methods.get("mean"), "mean" in methods, methods.names()
    ('the mean', True, ['mean'])
    >>> methods.get("median")
    Traceback (most recent call last):
    ...
    asctool.errors.ConfigError: unknown ensemble method 'median'; known: mean
    """

    def __init__(self, kind: str, *, unknown: str = "unknown {kind} {name!r}; known: {known}",
                 error: type[Exception] = ConfigError, sort: bool = False) -> None:
        self.kind = kind
        self._unknown = unknown
        self._error = error
        self._sort = sort
        self._entries: dict[str, T] = {}

    def check_new(self, name: str) -> None:
        """Refuse a name that is already registered.

        For registers that check more than the name (a batch augmentation's
        random stream) and must say "registered twice" before anything else.

        Raises
        ------
        ValueError
            ``"{kind} {name!r} registered twice"``.
        """
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} registered twice")

    def add(self, name: str, entry: T) -> None:
        """Register ``entry`` under ``name``.

        Raises
        ------
        ValueError
            When ``name`` is already registered (see :meth:`check_new`).
        """
        self.check_new(name)
        self._entries[name] = entry

    def remove(self, name: str) -> T:
        """Unregister ``name`` and return its entry (for tests that register a toy entry).

        Raises
        ------
        KeyError
            When ``name`` is not registered.
        """
        return self._entries.pop(name)

    def get(self, name: str) -> T:
        """The entry registered as ``name``.

        Raises
        ------
        ConfigError
            (or the ``error`` given to the constructor) when ``name`` is not
            registered; the message names it and lists the known names.
        """
        try:
            return self._entries[name]
        except KeyError:
            raise self._error(self._unknown.format(kind=self.kind, name=name, known=", ".join(self.names()))) from None

    def names(self) -> list[str]:
        """The registered names, in registration order (sorted if the registry was made with ``sort=True``)."""
        return sorted(self._entries) if self._sort else list(self._entries)

    def values(self) -> list[T]:
        """The registered entries, in registration order."""
        return list(self._entries.values())

    def items(self) -> list[tuple[str, T]]:
        """``(name, entry)`` pairs, in registration order."""
        return list(self._entries.items())

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        """The names, like :meth:`names`."""
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}: {', '.join(self.names())})"
