"""The project's exception types.

Every error a user can cause (bad input files, mismatched artifacts, wrong
options) is raised as an :class:`AsctoolError` subclass. The CLI turns them
into a one-line message and exit status 1.
"""
from __future__ import annotations

__all__ = [
    "AsctoolError",
    "AudioError",
    "ManifestError",
    "ArtifactError",
    "MismatchError",
    "ConfigError",
]


class AsctoolError(Exception):
    """Base class of every error asctool reports to the user."""


class AudioError(AsctoolError):
    """An audio file is missing, unreadable, truncated or has the wrong format."""


class ManifestError(AsctoolError):
    """A manifest or dataset split file is missing or malformed."""


class ArtifactError(AsctoolError):
    """An HDF5 artifact is missing, of the wrong kind or malformed."""


class MismatchError(AsctoolError):
    """Artifacts that must agree (ids, class lists, configurations) do not."""


class ConfigError(AsctoolError):
    """A configuration (front end, training, recipe) is invalid."""
