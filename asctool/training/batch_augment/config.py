"""Which batch augmentations a run uses: :class:`AugmentConfig` and ``--augment``."""
from __future__ import annotations

from typing import Any, Iterator, Mapping, Sequence

from ...errors import ConfigError
from .registry import REGISTRY, BatchAugmentation

__all__ = ["AugmentConfig", "REFERENCE_CROP", "augment_names", "parse_augment"]

#: Crop length of the reference system (task 1a: 400 of 423 frames).
REFERENCE_CROP = 400


def _layout() -> dict[str, Any]:
    """Every key and its default: the crop, then each entry's switch and parameters."""
    layout: dict[str, Any] = {"crop": None}
    for entry in REGISTRY.values():
        layout[entry.key] = False
        layout.update(entry.params)
    return layout


def augment_names() -> list[str]:
    """Names ``--augment`` accepts besides ``auto`` and ``none``: ``crop``, then the registry's."""
    return ["crop", *REGISTRY]


class AugmentConfig(Mapping[str, Any]):
    """Which batch augmentations run, and their parameters (immutable, hashable).

    A flat mapping, stored as is in a run's ``config.json``: ``crop`` (frames
    kept by the random crop, or None for no crop), then for every registered
    batch augmentation its on/off switch and its parameters. With the
    built-in entries::

        {"crop": None, "specaugment": False, "freq_mask": 12, "time_mask": 39,
         "mixup": False, "mixup_alpha": 0.4, "channel_swap": False, "swap_p": 0.5}

    Keys not given take these defaults (every augmentation off); keys are
    also read as attributes (``config.crop``, ``config.mixup_alpha``).

    Parameters
    ----------
    **values
        Keys of the layout above.

    Raises
    ------
    ConfigError
        An unknown key.
    """

    __slots__ = ("_values", "_hash")

    def __init__(self, **values: Any) -> None:
        layout = _layout()
        unknown = sorted(set(values) - set(layout))
        if unknown:
            raise ConfigError(f"batch augmentation: unknown key(s) {', '.join(unknown)}; known: {', '.join(layout)}")
        merged = {**layout, **values}
        object.__setattr__(self, "_values", merged)
        object.__setattr__(self, "_hash", hash(tuple(merged.items())))

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __getattr__(self, key: str) -> Any:
        if key.startswith("_"):
            raise AttributeError(key)
        try:
            return self._values[key]
        except KeyError:
            raise AttributeError(f"AugmentConfig has no key {key!r}") from None

    def __setattr__(self, key: str, value: Any) -> None:
        raise AttributeError("AugmentConfig is immutable; use replace()")

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        if isinstance(other, AugmentConfig):
            return self._values == other._values
        return NotImplemented

    def __repr__(self) -> str:
        return "AugmentConfig(" + ", ".join(f"{k}={v!r}" for k, v in self._values.items()) + ")"

    def __reduce__(self):
        return (_restore, (self._values,))

    def replace(self, **changes: Any) -> "AugmentConfig":
        """A copy with ``changes`` applied."""
        return AugmentConfig(**{**self._values, **changes})

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for ``config.json``."""
        return dict(self._values)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "AugmentConfig":
        """Inverse of :meth:`to_dict` (keys of augmentations not registered now are ignored)."""
        layout = _layout()
        return cls(**{k: data[k] for k in layout if k in data})

    def enabled(self) -> list[BatchAugmentation]:
        """The registered augmentations switched on, in application order."""
        return [entry for entry in REGISTRY.values() if self._values.get(entry.key)]

    def params(self, entry: BatchAugmentation) -> dict[str, Any]:
        """The parameters of ``entry`` in this config."""
        return {k: self._values[k] for k in entry.params}

    def output_time(self, time: int) -> int:
        """Frames per example after augmentation, for inputs of ``time`` frames."""
        return self.crop if self.crop else time


def _restore(values: Mapping[str, Any]) -> AugmentConfig:
    return AugmentConfig(**values)


def parse_augment(spec: str | None, crop: int | None, input_shape: tuple[int, int, int], *,
                  auto_off: Sequence[str] = (), auto_crop: int | None = None,
                  params: Mapping[str, Any] | None = None) -> AugmentConfig:
    """Resolve ``--augment`` and ``--crop`` into an :class:`AugmentConfig`.

    Parameters
    ----------
    spec : str or None
        ``auto`` (or None): the crop to :data:`REFERENCE_CROP` frames for
        3-channel (task 1a) inputs longer than that, and every registered
        augmentation whose ``auto`` rule accepts the input shape (SpecAugment
        and mixup always, the channel swap for 6-channel task 1b inputs),
        less ``auto_off``; ``none``: nothing; otherwise a comma-separated
        subset of :func:`augment_names`.
    crop : int or None
        Crop length in frames; None keeps the automatic length (400 frames
        when the input is longer), 0 disables cropping.
    input_shape : (freq, time, channels)
        Shape of one training example.
    auto_off : sequence of str
        Augmentations that ``auto`` leaves out: the training profile's (e.g.
        the demo profile's ``specaugment, mixup``) and the model's (e.g.
        ``specaugment`` for ``resnet``), see
        :func:`asctool.training.resolve_profile`.
    auto_crop : int or None
        The profile's crop (e.g. ``cpu``): ``auto`` and a bare ``crop`` use
        this many frames, for any channel count, when the input is longer
        (``auto`` leaves shorter inputs uncropped). None: the reference rule above.
    params : mapping, optional
        Augmentation strengths replacing the registry's reference values
        (e.g. ``{"mixup_alpha": 0.2}``); keys of the :class:`AugmentConfig` layout.

    Raises
    ------
    ConfigError
        Unknown names, a crop not shorter than the input, an augmentation that
        cannot run on this input (e.g. a channel swap on an odd channel count).
    """
    _, time, channels = input_shape
    known = augment_names()
    unknown_off = [n for n in auto_off if n not in known]
    if unknown_off:
        raise ConfigError(f"augmentations to leave out of auto: unknown name(s) {', '.join(unknown_off)}; "
                          f"known: {', '.join(known)}")
    text = (spec or "auto").strip().lower()
    if text == "auto":
        values: dict[str, Any] = {e.key: bool(e.auto(tuple(input_shape))) and e.name not in auto_off
                                  for e in REGISTRY.values()}
        if auto_crop is None:
            default_crop = REFERENCE_CROP if channels == 3 and time > REFERENCE_CROP else None
        else:
            default_crop = int(auto_crop) if time > int(auto_crop) else None
        if "crop" in auto_off:
            default_crop = None
        values["crop"] = default_crop if crop is None else int(crop) or None
    else:
        names = [] if text == "none" else [n.strip() for n in text.split(",") if n.strip()]
        unknown = [n for n in names if n not in known]
        if unknown:
            raise ConfigError(
                f"--augment: unknown augmentation(s) {', '.join(unknown)}; "
                f"choose from {', '.join(known)}, auto or none"
            )
        if crop and "crop" not in names:
            raise ConfigError(f"--crop {crop}: 'crop' is not among --augment {spec}")
        values = {e.key: e.name in names for e in REGISTRY.values()}
        bare = REFERENCE_CROP if auto_crop is None else int(auto_crop)
        values["crop"] = (bare if crop is None else int(crop) or None) if "crop" in names else None
    extra = dict(params or {})
    reserved = sorted(set(extra) & ({"crop"} | {e.key for e in REGISTRY.values()}))
    if reserved:
        raise ConfigError(f"augmentation strengths: {', '.join(reserved)} are switches, not strengths")
    config = AugmentConfig(**values, **extra)
    if config.crop is not None and not 0 < config.crop < time:
        raise ConfigError(
            f"crop of {config.crop} frames: must be shorter than the input ({time} frames); "
            f"give --crop N with N < {time}, or --crop 0"
        )
    for entry in config.enabled():
        if entry.check is not None:
            entry.check(tuple(input_shape))
    return config
