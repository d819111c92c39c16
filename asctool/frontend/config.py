"""Front-end configuration: the packaged presets, YAML files and their validation.

A configuration is one flat dict with exactly the keys of :data:`CONFIG_KEYS`
(librosa's names for the signal parameters: ``sr``, ``n_fft``,
``hop_length``, ``n_mels``, ``fmin``, ``fmax``, ...), resolved by
:func:`resolve_config` from ``--preset`` (``asctool/conf/preset_<name>.yaml``)
or ``--config`` (a YAML file of overrides on top of a preset). That dict is
stored with the features, so later stages can compare front ends; see
``docs/featurize.md`` for every key.
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from ..errors import ConfigError
from ..io import read_text
from .dsp import frame_count, mel_filterbank

__all__ = [
    "PRESETS",
    "CONFIG_KEYS",
    "preset_config",
    "load_config",
    "validate_config",
    "resolve_config",
]


def _packaged_presets() -> tuple[str, ...]:
    from importlib import resources

    names = (p.name for p in (resources.files("asctool") / "conf").iterdir())
    return tuple(sorted(n[len("preset_"):-len(".yaml")] for n in names
                        if n.startswith("preset_") and n.endswith(".yaml")))


#: Names of the packaged front ends: one per ``asctool/conf/preset_<name>.yaml``
#: (a new preset is one file there).
PRESETS = _packaged_presets()

#: Every key of a front-end configuration, in the order they are documented.
CONFIG_KEYS = (
    "sr", "channels", "downmix", "duration", "pad_tolerance",
    "n_fft", "win_length", "hop_length", "window", "center", "pad_mode", "power",
    "n_mels", "fmin", "fmax", "htk", "norm",
    "log", "log_offset", "scaling", "deltas", "delta_width",
)
#: The keys of a raw-waveform configuration (``frontend: raw``; preset ``raw``).
RAW_KEYS = ("frontend", "sr", "channels", "downmix", "duration", "pad_tolerance", "preemphasis")
_WINDOWS = ("hann", "hamming", "blackman", "rectangular")
_PAD_MODES = ("reflect", "constant", "edge")
_SCALINGS = ("minmax", "none")
_NORMS = (None, "slaney")


def _int(minimum: int) -> Callable[[Any], int]:
    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ValueError(f"must be an integer >= {minimum}")
        return int(value)

    return check


def _float(low: float, high: float | None = None, *, low_open: bool = True, high_open: bool = False,
           nullable: bool = False) -> Callable[[Any], float | None]:
    def check(value: Any) -> float | None:
        if value is None and nullable:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ValueError("must be a number" + (" or null" if nullable else ""))
        value = float(value)
        if (value <= low if low_open else value < low) or (
            high is not None and (value >= high if high_open else value > high)
        ):
            lo = f"{'>' if low_open else '>='} {low:g}"
            hi = "" if high is None else f" and {'<' if high_open else '<='} {high:g}"
            raise ValueError(f"must be {lo}{hi}")
        return value

    return check


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError("must be true or false")
    return value


def _choice(options: Sequence[Any]) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        if value not in options:
            shown = ", ".join("null" if o is None else str(o) for o in options)
            raise ValueError(f"must be one of {shown}")
        return value

    return check


_CHECKS: dict[str, Callable[[Any], Any]] = {
    "sr": _int(1000),
    "channels": _int(1),
    "downmix": _bool,
    "duration": _float(0.0),
    "pad_tolerance": _float(0.0, 1.0, low_open=False),  # 1: any shorter clip is padded
    "n_fft": _int(16),
    "win_length": _int(1),
    "hop_length": _int(1),
    "window": _choice(_WINDOWS),
    "center": _bool,
    "pad_mode": _choice(_PAD_MODES),
    "power": _float(0.0),
    "n_mels": _int(1),
    "fmin": _float(0.0, low_open=False),
    "fmax": _float(0.0, nullable=True),
    "htk": _bool,
    "norm": _choice(_NORMS),
    "log": _bool,
    "log_offset": _float(0.0),
    "scaling": _choice(_SCALINGS),
    "deltas": _bool,
    "delta_width": _int(1),
}


def _checked_keys(raw: Mapping[str, Any], source: str, keys: Sequence[str], checks: Mapping[str, Any],
                  kind: str = "") -> dict[str, Any]:
    """``keys`` of ``raw``, each through its check, in ``keys`` order (ConfigError: unknown, missing, bad value)."""
    unknown = [k for k in raw if k not in keys]
    if unknown:
        raise ConfigError(f"{source}: unknown key {unknown[0]!r}{kind} (known keys: {', '.join(keys)})")
    missing = [k for k in keys if k not in raw]
    if missing:
        raise ConfigError(f"{source}: missing key {missing[0]!r}")
    config: dict[str, Any] = {}
    for key in keys:
        try:
            config[key] = checks[key](raw[key])
        except ValueError as exc:
            raise ConfigError(f"{source}: key {key!r} {exc}, got {raw[key]!r}") from None
    return config


def _validate_raw(raw: Mapping[str, Any], source: str) -> dict[str, Any]:
    """A raw-waveform configuration (:data:`RAW_KEYS`): pre-emphasis coefficient in [0, 1)."""
    checks = {**_CHECKS, "frontend": _choice(("raw",)),
              "preemphasis": _float(0.0, 1.0, low_open=False, high_open=True)}
    config = _checked_keys(raw, source, RAW_KEYS, checks, kind=" for frontend raw")
    if round(config["duration"] * config["sr"]) < 12:
        raise ConfigError(f"{source}: key 'duration' must give at least 12 samples, got {config['duration']!r}")
    return config


def validate_config(raw: Mapping[str, Any], source: str) -> dict[str, Any]:
    """Check a complete front-end configuration and return it resolved.

    Parameters
    ----------
    raw : mapping with exactly the keys of :data:`CONFIG_KEYS`
    source : where it came from (a file name), used in error messages

    Returns
    -------
    config : dict
        the same keys in :data:`CONFIG_KEYS` order, numbers normalised to
        int/float and ``fmax: null`` resolved to ``sr / 2``.

    Raises
    ------
    ConfigError
        unknown or missing keys, values of the wrong type or out of range,
        or settings that contradict each other (e.g. more mel bands than the
        FFT resolves, which leaves empty filters); the message names
        ``source`` and the key.
    """
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{source}: a front-end config must be a mapping of keys to values")
    if raw.get("frontend") == "raw":
        return _validate_raw(raw, source)
    config = _checked_keys(raw, source, CONFIG_KEYS, _CHECKS)

    def bad(key: str, why: str) -> ConfigError:
        return ConfigError(f"{source}: key {key!r} {why}, got {config[key]!r}")

    nyquist = config["sr"] / 2
    if config["fmax"] is None:
        config["fmax"] = float(nyquist)
    if config["fmax"] > nyquist:
        raise bad("fmax", f"must be <= sr / 2 = {nyquist:g}")
    if config["fmin"] >= config["fmax"]:
        raise bad("fmin", f"must be below fmax ({config['fmax']:g})")
    if config["win_length"] > config["n_fft"]:
        raise bad("win_length", f"must be <= n_fft ({config['n_fft']})")
    weights = mel_filterbank(sr=config["sr"], n_fft=config["n_fft"], n_mels=config["n_mels"], fmin=config["fmin"],
                             fmax=config["fmax"], htk=config["htk"])
    empty = int((weights.max(axis=1) <= 0).sum())
    if empty:  # a band narrower than the FFT bin spacing catches no bin: a constant feature row
        raise bad("n_mels", f"is too many for n_fft {config['n_fft']} at sr {config['sr']} "
                            f"({config['fmin']:g}-{config['fmax']:g} Hz): {empty} of the {config['n_mels']} mel "
                            "filters fall between FFT bins and are empty; lower n_mels or raise n_fft")
    n_samples = round(config["duration"] * config["sr"])
    if n_samples < config["n_fft"]:
        raise bad("duration", f"must give at least n_fft ({config['n_fft']}) samples")
    frames = frame_count(n_samples, n_fft=config["n_fft"], hop_length=config["hop_length"],
                         center=config["center"])
    if config["deltas"] and frames <= 4 * config["delta_width"]:
        raise bad("delta_width", f"leaves no frames of the {frames} (deltas lose 4 x delta_width)")
    return config


def _read_yaml(path: Path) -> Any:
    import yaml

    text = read_text(path, error=ConfigError)
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" at line {where.line + 1}" if where is not None else ""
        raise ConfigError(f"{path}: not valid YAML{line} ({getattr(exc, 'problem', exc)})") from None


def _preset_raw(name: str) -> dict[str, Any]:
    from importlib import resources

    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r} (presets: {', '.join(PRESETS)})")
    ref = resources.files("asctool") / "conf" / f"preset_{name}.yaml"
    with resources.as_file(ref) as path:
        raw = _read_yaml(Path(path))
    return dict(raw)


def preset_config(name: str) -> dict[str, Any]:
    """The resolved configuration of a packaged preset (``"1a"`` or ``"1b"``)."""
    return validate_config(_preset_raw(name), f"preset {name}")


def _config_raw(path: Path) -> dict[str, Any]:
    """The keys of a YAML config merged over its ``base`` preset, not yet validated."""
    raw = _read_yaml(path)
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{path}: a front-end config must be a mapping of keys to values")
    raw = dict(raw)
    base = raw.pop("base", "1a")
    if base not in PRESETS:
        raise ConfigError(f"{path}: key 'base' must be one of {', '.join(PRESETS)}, got {base!r}")
    merged = _preset_raw(str(base))
    unknown = [k for k in raw if k not in (RAW_KEYS if merged.get("frontend") == "raw" else _CHECKS)]
    if unknown:
        raise ConfigError(
            f"{path}: unknown key {unknown[0]!r} (known keys: base, "
            f"{', '.join(RAW_KEYS if merged.get('frontend') == 'raw' else CONFIG_KEYS)})"
        )
    merged.update(raw)
    return merged


def load_config(path: str | os.PathLike) -> dict[str, Any]:
    """Read and validate a YAML front-end configuration.

    The file holds any of the keys of :data:`CONFIG_KEYS` and optionally
    ``base: 1a`` or ``base: 1b``; keys it leaves out are taken from that preset
    (``1a`` when absent). Errors name the file and the key.
    """
    path = Path(path)
    return validate_config(_config_raw(path), str(path))


def resolve_config(preset: str | None = None, config_path: str | os.PathLike | None = None, *,
                   overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The configuration of ``--preset`` or ``--config`` (preset 1a when neither).

    Parameters
    ----------
    preset : name of a packaged preset (:data:`PRESETS`)
    config_path : YAML config instead of a preset (see :func:`load_config`)
    overrides : keys set from the command line (``featurize --duration``:
        ``duration`` in s; ``--resample HZ``: ``sr`` in Hz), applied before
        validation, so that ``fmax: null`` follows a new ``sr`` and every
        check (enough samples for ``n_fft``, frames left after the deltas)
        applies to the new values; messages then name the source and the
        overrides (``preset 1a with duration 0.01: key 'duration' ...``).

    Raises
    ------
    ConfigError
        both a preset and a config file, an unknown preset or key, a value out
        of range (see :func:`validate_config`).
    """
    if preset is not None and config_path is not None:
        raise ConfigError(f"{config_path}: give either a config file or a preset ({preset}), not both")
    if config_path is not None:
        raw, source = _config_raw(Path(config_path)), str(config_path)
    else:
        name = preset or "1a"
        raw, source = _preset_raw(name), f"preset {name}"
    if overrides:
        unknown = [k for k in overrides if k not in _CHECKS]
        if unknown:
            raise ConfigError(f"unknown front-end key {unknown[0]!r} (known keys: {', '.join(CONFIG_KEYS)})")
        raw.update(overrides)
        source += " with " + ", ".join(f"{k} {v:g}" if isinstance(v, float) else f"{k} {v}"
                                      for k, v in overrides.items())
    return validate_config(raw, source)
