"""The registry of waveform augmentations and the ``--param`` parser.

A new augmentation is one function plus one registry line::

    @register("noise", params={"noise_std": 0.01}, positive=("noise_std",))
    def noise(y, sr, *, rng, ctx, noise_std):
        ...

The registered function takes one clip ``y`` of shape ``(channels, samples)``
at ``sr`` Hz, a per-clip ``rng`` (:class:`numpy.random.Generator`), a
:class:`ClipContext` (resources prepared once per run: impulse responses,
device responses, mixing partners) and the method's parameters as keyword
arguments, and returns the augmented clip with the same shape.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from ..errors import ConfigError
from ..registry import Registry

__all__ = [
    "Augmentation",
    "ClipContext",
    "Plan",
    "REGISTRY",
    "register",
    "get",
    "available",
    "parse_params",
    "clip_rng",
]


@dataclass
class ClipContext:
    """What a registered function may use besides the clip itself.

    Attributes
    ----------
    clip_id : id of the source clip
    scene : scene label of the source clip ("" when unknown)
    segment : segment key ``scene-city-location-segment`` ("" when unknown)
    variant : "" or the variant of this copy (the target device of
        ``spectrum-correction --per-device``)
    resources : what the method's ``setup`` prepared (read-only)
    """

    clip_id: str
    scene: str = ""
    segment: str = ""
    variant: str = ""
    resources: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class Plan:
    """What a method's ``setup`` returns to the run loop.

    Attributes
    ----------
    resources : picklable objects handed to every worker (via :class:`ClipContext`)
    variants : per source clip id, the variants to write (default: one copy, ``[""]``);
        a clip missing from a non-None mapping is skipped
    skipped : reason -> number of source clips skipped by the setup
    artifacts : suffix -> writer; each writer is called with the path
        ``<out-manifest stem><suffix>`` once the run has passed its checks
    summary : extra entries for the run summary
    """

    resources: dict[str, Any] = field(default_factory=dict)
    variants: dict[str, list[str]] | None = None
    skipped: dict[str, int] = field(default_factory=dict)
    artifacts: dict[str, Callable[[Any], None]] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Augmentation:
    """One registered augmentation method.

    Attributes
    ----------
    name : method name on the command line
    func : the per-clip function ``func(y, sr, *, rng, ctx, **params) -> y``
    params : parameter defaults (the keys ``--param`` accepts)
    positive : parameters that must be > 0
    source_devices : default source devices, or None for every row
    setup : optional ``setup(request) -> Plan`` run once before the clips
        (see :class:`asctool.augment.sources.SetupRequest` for the request fields)
    tag : suffix added to source ids (no dash, so TAU stems stay 5 fields)
    """

    name: str
    func: Callable[..., np.ndarray]
    params: Mapping[str, float]
    positive: tuple[str, ...] = ()
    source_devices: tuple[str, ...] | None = None
    setup: Callable[..., Plan] | None = None
    tag: str = ""


#: name -> :class:`Augmentation`, filled by :func:`register`, in registration (CLI) order.
REGISTRY: Registry[Augmentation] = Registry("augmentation")


def register(
    name: str,
    *,
    params: Mapping[str, float] | None = None,
    positive: Sequence[str] = (),
    source_devices: Sequence[str] | None = None,
    setup: Callable[..., Plan] | None = None,
    tag: str | None = None,
) -> Callable[[Callable[..., np.ndarray]], Callable[..., np.ndarray]]:
    """Decorator registering ``func`` as augmentation ``name``."""

    def decorate(func: Callable[..., np.ndarray]) -> Callable[..., np.ndarray]:
        REGISTRY.add(name, Augmentation(
            name=name,
            func=func,
            params=dict(params or {}),
            positive=tuple(positive),
            source_devices=None if source_devices is None else tuple(source_devices),
            setup=setup,
            tag=tag if tag is not None else name.replace("-", ""),
        ))
        return func

    return decorate


#: Registered method names, in registration order.
available = REGISTRY.names
#: The registered augmentation ``name`` (ConfigError listing the known ones).
get = REGISTRY.get


def parse_params(aug: Augmentation, overrides: Sequence[str] | Mapping[str, Any] = ()) -> dict[str, float]:
    """Resolve ``KEY=VALUE`` overrides against the method's defaults.

    Values are numbers (int where the default is an int). Checks: known keys,
    numeric values, ``*_min <= *_max`` pairs, and the ``positive`` keys > 0.

    Raises
    ------
    ConfigError
        naming the parameter and the bad value, or listing the known keys.
    """
    values: dict[str, float] = dict(aug.params)
    items = overrides.items() if isinstance(overrides, Mapping) else [_split(text) for text in overrides]
    known = ", ".join(sorted(aug.params)) or "(none)"
    for key, raw in items:
        if key not in aug.params:
            raise ConfigError(f"augment {aug.name}: unknown parameter {key!r}; known: {known}")
        try:
            number = float(raw)
        except (TypeError, ValueError):
            raise ConfigError(f"augment {aug.name}: parameter {key}={raw!r} is not a number") from None
        if not np.isfinite(number):
            raise ConfigError(f"augment {aug.name}: parameter {key}={raw!r} is not finite")
        if isinstance(aug.params[key], int) and not isinstance(aug.params[key], bool):
            if number != int(number):
                raise ConfigError(f"augment {aug.name}: parameter {key}={raw!r} must be an integer")
            number = int(number)
        values[key] = number
    for key in aug.positive:
        if values[key] <= 0:
            raise ConfigError(f"augment {aug.name}: parameter {key}={values[key]} must be > 0")
    for key in values:
        if key.endswith("_min"):
            upper = key[: -len("_min")] + "_max"
            if upper in values and values[key] > values[upper]:
                raise ConfigError(
                    f"augment {aug.name}: {key}={values[key]} is greater than {upper}={values[upper]}"
                )
    return values


def _split(text: str) -> tuple[str, str]:
    key, sep, value = str(text).partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--param {text!r}: expected KEY=VALUE")
    return key.strip().replace("-", "_"), value.strip()


def clip_rng(seed: int, method: str, clip_id: str) -> np.random.Generator:
    """A generator seeded from ``seed``, the method and the clip id.

    Uses SHA-256 (stable across processes and Python runs, unlike ``hash()``),
    so a clip's randomness does not depend on the order or the worker that
    processes it.
    """
    digest = hashlib.sha256(f"{int(seed)}\0{method}\0{clip_id}".encode("utf-8")).digest()
    words = np.frombuffer(digest, dtype="<u4").tolist()
    return np.random.default_rng(np.random.SeedSequence(words))


