"""The model registry: architecture name -> builder function.

A new architecture is one module in :mod:`asctool.models` whose builder is
decorated with :func:`register` (plus its name in the import line of
``asctool/models/__init__.py``; see ``docs/extending.md``)::

    @register("mynet", "one line for `asctool models`")
    def build_mynet(num_classes, input_shape, *, width=1.0, l2=0.0):
        ...

Builders take ``num_classes`` and ``input_shape`` positionally and every option
as a keyword with a default; :func:`build` checks option names and types against
that signature before calling the builder.

The entry also declares what training needs to know about the model, so that
the training code names no model: ``training_defaults`` overrides a training
profile's values (``{"paper": {"epochs": 126}}``) and ``augment_auto_off``
names the batch augmentations that ``asctool train --augment auto`` leaves out
for this model.
"""
from __future__ import annotations

import inspect
import logging
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Callable, Mapping, Sequence

from ..errors import AsctoolError, ConfigError
from ..registry import Registry

__all__ = ["ModelSpec", "REGISTRY", "register", "build", "check_options", "available", "spec", "parse_input_shape",
           "feature_map_output"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelSpec:
    """One registry entry.

    Attributes
    ----------
    name : str
        Registry name (``asctool train --model NAME``).
    builder : callable
        ``builder(num_classes, input_shape, **options) -> keras.Model``.
    description : str
        One line shown by ``asctool models``.
    defaults : dict
        The builder's keyword options and their defaults.
    training_defaults : mapping
        Training profile name -> values that override the profile's for this
        model (e.g. ``{"paper": {"epochs": 126}}``); read by
        :func:`asctool.training.resolve_profile`.
    augment_auto_off : tuple of str
        Batch augmentations that ``--augment auto`` leaves out for this model
        (e.g. ``("specaugment",)``), on top of the profile's.
    feature_map : str
        Name of the layer whose output is the model's last feature map
        ``(batch, freq', time', channels)``, before global pooling: where a
        domain classifier or the tri-training labellers attach
        (:mod:`asctool.training.adversarial`).
    inputs : {"features", "embeddings"}
        What the model reads: features ``(freq, time, channels)``, or one
        embedding frame ``(dims,)`` (``asctool embed``; trained frame by frame,
        :mod:`asctool.training.frames`).
    """

    name: str
    builder: Callable[..., Any]
    description: str
    defaults: dict
    training_defaults: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    augment_auto_off: tuple[str, ...] = ()
    feature_map: str = "features_out"
    inputs: str = "features"


#: name -> :class:`ModelSpec`, filled by :func:`register`; names listed sorted.
REGISTRY: Registry[ModelSpec] = Registry("model", unknown="unknown {kind} {name!r}; known models: {known}",
                                         error=AsctoolError, sort=True)


def register(
    name: str,
    description: str,
    *,
    training_defaults: Mapping[str, Mapping[str, Any]] | None = None,
    augment_auto_off: Sequence[str] = (),
    feature_map: str = "features_out",
    inputs: str = "features",
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator adding a builder to the registry under ``name``.

    Parameters
    ----------
    name : str
        Registry name; must be new.
    description : str
        One-line description.
    training_defaults : mapping, optional
        Profile name -> profile values to override for this model, e.g.
        ``{"paper": {"epochs": 126}}`` (see :data:`asctool.training.PROFILES`).
    augment_auto_off : sequence of str
        Batch augmentations that ``--augment auto`` leaves out for this model.
    feature_map : str
        The layer holding the last feature map before global pooling
        (default ``features_out``); domain heads attach there.
    inputs : {"features", "embeddings"}
        What the model reads (see :class:`ModelSpec`).

    Returns
    -------
    callable
        The decorator (returns the builder unchanged).
    """
    if isinstance(augment_auto_off, str):
        raise TypeError(f"model {name!r}: augment_auto_off must be a sequence of names, not a string")
    overrides = MappingProxyType({str(profile): MappingProxyType(dict(values))
                                  for profile, values in (training_defaults or {}).items()})

    def decorate(builder: Callable[..., Any]) -> Callable[..., Any]:
        defaults = {
            p.name: p.default
            for p in inspect.signature(builder).parameters.values()
            if p.kind is inspect.Parameter.KEYWORD_ONLY
        }
        REGISTRY.add(name, ModelSpec(name, builder, description, defaults, overrides, tuple(augment_auto_off),
                                     str(feature_map), inputs))
        return builder

    return decorate


#: Names of the registered architectures, sorted.
available = REGISTRY.names
#: The registry entry of ``name``; :class:`AsctoolError` listing the known names if unknown.
spec = REGISTRY.get


def _coerce(name: str, key: str, value: Any, default: Any) -> Any:
    """Convert an option given as a string (``--option key=value``) to the default's type."""
    try:
        if isinstance(default, bool):
            if isinstance(value, str):
                low = value.strip().lower()
                if low in ("1", "true", "yes", "on"):
                    return True
                if low in ("0", "false", "no", "off"):
                    return False
                raise ValueError(value)
            return bool(value)
        if isinstance(default, int):
            number = float(value)
            if number != int(number):
                raise ValueError(value)
            return int(number)
        if isinstance(default, float):
            return float(value)
        if isinstance(default, tuple):
            items = value.split(",") if isinstance(value, str) else list(value)
            kind = type(default[0]) if default else int
            return tuple(kind(float(v)) if kind is int else kind(v) for v in items)
    except (TypeError, ValueError):
        raise ConfigError(
            f"model {name!r}: option {key}={value!r} is not a valid {type(default).__name__}"
        ) from None
    return value


def parse_input_shape(input_shape: Any) -> tuple[int, int | None, int]:
    """Check an input shape ``(freq, time, channels)``; ``time`` may be None.

    Accepts a sequence of three positive integers or a string ``"128x423x3"``.

    Returns
    -------
    tuple of (int, int or None, int)

    Raises
    ------
    ConfigError
        When the shape is not three positive integers.
    """
    raw = input_shape
    if isinstance(input_shape, str):
        input_shape = [None if p.strip().lower() in ("none", "?") else p for p in input_shape.split("x")]
    try:
        dims = tuple(None if d is None else int(d) for d in input_shape)
    except (TypeError, ValueError):
        raise ConfigError(f"input shape {raw!r}: expected FREQxTIMExCHANNELS integers") from None
    if len(dims) != 3 or dims[0] is None or dims[2] is None or any(d is not None and d < 1 for d in dims):
        raise ConfigError(f"input shape {raw!r}: expected three positive integers (freq, time, channels)")
    return dims  # type: ignore[return-value]


def check_options(name: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """The architecture options of model ``name``, checked and converted to their defaults' types.

    What :func:`build` does with its options, without building: ``asctool
    train`` calls it before it writes anything, so a bad ``--option`` value
    leaves no run folder behind.

    Raises
    ------
    AsctoolError
        Unknown model name.
    ConfigError
        Unknown option, or a value of the wrong type or out of range.
    """
    entry = spec(name)
    unknown = sorted(set(options) - set(entry.defaults))
    if unknown:
        raise ConfigError(
            f"model {name!r}: unknown option(s) {', '.join(unknown)}; "
            f"known options: {', '.join(sorted(entry.defaults))}"
        )
    kwargs = {k: _coerce(name, k, v, entry.defaults[k]) for k, v in options.items()}
    if "width" in kwargs and not kwargs["width"] > 0:
        raise ConfigError(f"model {name!r}: width={kwargs['width']} must be > 0")
    if "l2" in kwargs and kwargs["l2"] < 0:
        raise ConfigError(f"model {name!r}: l2={kwargs['l2']} must be >= 0")
    if "dropout" in kwargs and not 0 <= kwargs["dropout"] < 1:
        raise ConfigError(f"model {name!r}: dropout={kwargs['dropout']} must be in [0, 1)")
    return kwargs


def build(name: str, num_classes: int, input_shape: Any, **options: Any):
    """Build an uncompiled model of a registered architecture.

    Parameters
    ----------
    name : str
        Registry name (see :func:`available`).
    num_classes : int
        Number of output classes (>= 2).
    input_shape : sequence of int
        ``(freq, time, channels)``, e.g. ``(128, 423, 3)``; ``time`` may be None
        (the models are fully convolutional); ``(dims,)`` for a model of
        ``inputs="embeddings"``.
    **options
        Architecture options (e.g. ``width``, ``base_filters``, ``l2``). Values
        given as strings are converted to the default's type.

    Returns
    -------
    keras.Model
        Input ``(batch, freq, time, channels)``, output ``(batch, num_classes)``
        softmax probabilities; its last body feature map is the layer
        ``features_out``. L2 regularisation, where the architecture has it, is
        already attached to the kernels.

    Raises
    ------
    AsctoolError
        Unknown model name (the message lists the known ones).
    ConfigError
        Unknown option, bad option value, bad class count or input shape.
    """
    entry = spec(name)
    try:
        classes = int(num_classes)
    except (TypeError, ValueError):
        raise ConfigError(f"model {name!r}: num_classes={num_classes!r} is not an integer") from None
    if classes < 2:
        raise ConfigError(f"model {name!r}: num_classes={classes} must be at least 2")
    if entry.inputs == "embeddings":  # one embedding frame: (dims,)
        try:
            (dims,) = (input_shape,) if isinstance(input_shape, (int, str)) else tuple(input_shape)
            shape = (int(dims),)
        except (TypeError, ValueError):
            shape = (0,)
        if shape[0] < 1:
            raise ConfigError(f"model {name!r}: input {input_shape!r} is not an embedding size (dims,)")
    else:
        shape = parse_input_shape(input_shape)
    kwargs = check_options(name, options)
    log.debug("building %s for %d classes, input %s, options %s", name, classes, shape, kwargs)
    try:
        return entry.builder(classes, shape, **kwargs)
    except ValueError as exc:  # shape problems found while wiring the graph
        raise ConfigError(f"model {name!r} with input {shape}: {exc}") from None


def feature_map_output(model: Any, name: str):
    """The output tensor of the layer that the registry entry of ``name`` declares as its ``feature_map``.

    Where a domain classifier (docs/adversarial.md) or a tag fusion
    (docs/tag_fusion.md) attaches to a backbone built by :func:`build`.

    Parameters
    ----------
    model : keras.Model
        A model built by :func:`build` for the architecture ``name``.
    name : str
        Registry name of the architecture.

    Returns
    -------
    KerasTensor [shape=(batch, freq', time', filters)]

    Raises
    ------
    ConfigError
        The model has no such layer, or its output is not 4-D.
    """
    entry = spec(name)
    try:
        feature = model.get_layer(entry.feature_map).output
    except ValueError:
        raise ConfigError(f"model {name!r}: its registry entry names the feature map layer "
                          f"{entry.feature_map!r}, which the model does not have") from None
    if len(feature.shape) != 4:
        raise ConfigError(f"model {name!r}: feature map {entry.feature_map!r} has shape "
                          f"{tuple(feature.shape)}, expected (batch, freq, time, channels)")
    return feature

