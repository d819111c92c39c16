"""The registry of batch augmentations (``asctool train --augment NAME``).

A batch augmentation is two functions: a ``draw`` that makes the batch's
random parameters in NumPy from a per-batch generator, and an ``apply`` that
uses them on the batch in TensorFlow. The decorator goes on ``apply``::

    def draw_flip(rng, shape, *, window, flip_p):
        return {"flip": rng.random(shape[0]) < flip_p}

    @register("flip", draw=draw_flip, params={"flip_p": 0.5})
    def flip(x, y, *, flip):
        import tensorflow as tf
        return tf.where(flip[:, None, None, None], tf.reverse(x, [2]), x), y

Adding one is one module in :mod:`asctool.training.batch_augment` plus its
name in the package's import line (see ``docs/extending.md``).

The contract:

- ``draw(rng, shape, *, window, **params) -> dict`` of NumPy arrays whose
  shapes depend only on ``shape`` (they become the ``tf.data`` signature).
  ``rng`` is a :class:`numpy.random.Generator` of this augmentation's own
  stream of the batch seed, so switching one augmentation on or off leaves
  the draws of the others unchanged. ``shape`` is the full-length batch
  shape ``(batch, freq, time, channels)``; ``window`` is None or the random
  crop ``(offset, length)`` (``offset`` of shape ``(batch,)``): the batch that
  ``apply`` sees holds frames ``offset[b]:offset[b] + length`` only.
- ``apply(x, y, **arrays) -> (x, y)`` in TensorFlow ops, traceable by XLA:
  ``x`` float32 ``(batch, freq, time', channels)``, ``y`` float32 soft
  targets ``(batch, classes)``. The enabled augmentations are applied in
  registration order.
- ``params``: parameter defaults; the keys are :class:`AugmentConfig` keys
  (stored in a run's ``config.json``), so they must be unique across
  augmentations.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Callable, Mapping

import numpy as np

from ...registry import Registry

__all__ = ["BatchAugmentation", "REGISTRY", "RESERVED", "CROP_STREAM", "register", "available", "get",
           "stream_rng"]

#: Names and keys the registry may not use: the built-in random crop (it decides
#: which frames the reader reads, so it is part of the pipeline, not an entry)
#: and the words ``--augment`` gives a meaning of its own.
RESERVED = ("crop", "auto", "none")
#: Random stream of the crop offsets.
CROP_STREAM = 1


@dataclass(frozen=True)
class BatchAugmentation:
    """One registered batch augmentation.

    Attributes
    ----------
    name : str
        Name in ``--augment`` (lower case, no comma).
    draw : callable
        ``draw(rng, shape, *, window, **params) -> dict`` of NumPy arrays.
    apply : callable
        ``apply(x, y, **arrays) -> (x, y)`` in TensorFlow.
    params : mapping
        Parameter defaults (:class:`AugmentConfig` keys).
    key : str
        The :class:`AugmentConfig` key that switches it on (default ``name``).
    stream : int
        Random stream of the per-batch seed (unique per entry).
    auto : callable
        ``auto(input_shape) -> bool``: whether ``--augment auto`` uses it for
        examples of shape ``(freq, time, channels)``.
    check : callable or None
        ``check(input_shape)`` raising :class:`~asctool.errors.ConfigError`
        when the augmentation cannot run on such examples.
    """

    name: str
    draw: Callable[..., dict]
    apply: Callable[..., tuple]
    params: Mapping[str, Any]
    key: str
    stream: int
    auto: Callable[[tuple[int, int, int]], bool]
    check: Callable[[tuple[int, int, int]], None] | None = None


#: name -> :class:`BatchAugmentation`, in registration (= application) order.
REGISTRY: Registry[BatchAugmentation] = Registry("batch augmentation")


def _name_stream(name: str) -> int:
    """A stream number derived from the name (stable across runs and machines)."""
    return int.from_bytes(hashlib.sha256(name.encode("utf-8")).digest()[:4], "little")


def register(
    name: str,
    *,
    draw: Callable[..., dict],
    params: Mapping[str, Any] | None = None,
    key: str | None = None,
    stream: int | None = None,
    auto: bool | Callable[[tuple[int, int, int]], bool] = False,
    check: Callable[[tuple[int, int, int]], None] | None = None,
) -> Callable[[Callable[..., tuple]], Callable[..., tuple]]:
    """Decorator registering ``apply`` as batch augmentation ``name``.

    Parameters
    ----------
    name : str
        Name in ``--augment``; new, lower case, without commas.
    draw : callable
        ``draw(rng, shape, *, window, **params) -> dict`` of NumPy arrays.
    params : mapping, optional
        Parameter defaults, passed to ``draw`` as keywords.
    key : str, optional
        :class:`AugmentConfig` key of the on/off switch (default ``name``).
    stream : int, optional
        Random stream (default: derived from ``name``).
    auto : bool or callable
        Whether ``--augment auto`` uses it: a constant or a function of the
        example shape ``(freq, time, channels)``. Default False.
    check : callable, optional
        ``check(input_shape)`` raising ConfigError when it cannot run.

    Returns
    -------
    callable
        The decorator (returns ``apply`` unchanged).
    """
    key = name if key is None else key
    params = dict(params or {})
    stream = _name_stream(name) if stream is None else int(stream)
    rule = auto if callable(auto) else (lambda shape, _on=bool(auto): _on)

    def decorate(apply: Callable[..., tuple]) -> Callable[..., tuple]:
        REGISTRY.check_new(name)
        if not name or name != name.lower() or "," in name or name.strip() != name or name in RESERVED:
            raise ValueError(f"batch augmentation name {name!r}: lower case, no comma, not one of {RESERVED}")
        if stream == CROP_STREAM:
            raise ValueError(f"batch augmentation {name!r}: random stream {stream} is the crop's")
        taken = {"crop"}
        for entry in REGISTRY.values():
            taken |= {entry.key, *entry.params}
            if entry.stream == stream:
                raise ValueError(f"batch augmentation {name!r}: random stream {stream} is {entry.name!r}'s")
        clash = sorted(taken & {key, *params})
        if clash or key in params:
            raise ValueError(f"batch augmentation {name!r}: config key(s) {clash or [key]} already in use")
        REGISTRY.add(name, BatchAugmentation(name, draw, apply, MappingProxyType(params), key, stream, rule, check))
        return apply

    return decorate


#: Registered names, in registration (application) order.
available = REGISTRY.names
#: The registered augmentation ``name`` (ConfigError listing the known ones).
get = REGISTRY.get


def stream_rng(seed, stream: int) -> np.random.Generator:
    """The generator of one random stream of a batch seed.

    Parameters
    ----------
    seed : array-like of int
        Per-batch seed (two integers).
    stream : int
        Stream number (:attr:`BatchAugmentation.stream`, or :data:`CROP_STREAM`).
    """
    words = [int(v) & 0xFFFFFFFF for v in np.asarray(seed).ravel()]
    return np.random.default_rng([*words, int(stream)])
