"""The ``asctool quantize`` stage: a ``.tflite`` model from ``RUN/model.keras``.

Converts with :func:`asctool.quantize.convert`, embeds the model metadata
(classes, label map, front-end config, input shape: :mod:`asctool.runs`) in
the FlatBuffer so the file works wherever it is copied, and writes
``size.json`` beside it (bytes, parameters, mode, SHA-256 of the file).
"""
from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from ..artifacts import check_same_config, first_nonfinite, nonfinite_message, open_features
from ..errors import ArtifactError, AsctoolError, ConfigError, MismatchError
from ..io import atomic_path, claim_outputs, locked_outputs
from ..quantize import BITS_PER_PARAMETER, CALIBRATION_CLIPS, MODES, convert
from ..runs import embed_tflite_metadata, model_metadata, read_model_metadata

__all__ = ["run"]

log = logging.getLogger(__name__)


def _input_shape(model, config: dict[str, Any] | None, model_path: Path) -> tuple[int, int, int]:
    """The (freq, time, channels) the model is converted for.

    Fully convolutional models accept any time length; TensorFlow Lite needs
    one, taken from the model's metadata (``input_shape``) when the
    model's own input leaves it open.
    """
    shape = list(model.input_shape[1:])
    if config and config.get("input_shape"):
        configured = [int(s) for s in config["input_shape"]]
        if len(configured) == len(shape):
            shape = [c if s is None else s for s, c in zip(shape, configured)]
    if len(shape) != 3 or any(s is None for s in shape):
        raise ConfigError(
            f"{model_path}: input shape {tuple(model.input_shape[1:])} is not fully known; "
            "its metadata must give input_shape"
        )
    return tuple(int(s) for s in shape)  # type: ignore[return-value]


def _calibration_batches(path: Path, input_shape: tuple[int, ...], frontend: dict | None, *,
                         max_clips: int = CALIBRATION_CLIPS) -> Iterator[list[np.ndarray]]:
    """Representative dataset for int8: clips of a features file, one at a time."""
    with open_features(path) as feats:
        if frontend is not None:
            check_same_config(frontend, feats.config, "the model's front end", path)
        if feats.feature_shape != tuple(input_shape):
            raise MismatchError(
                f"{path}: features of shape {feats.feature_shape} do not fit the model input {tuple(input_shape)}"
            )
        n = min(len(feats), max_clips)
        if n == 0:
            raise ArtifactError(f"{path}: no clips to calibrate on")
        # spread the clips over the file (it may be sorted by scene or device)
        for index in np.unique(np.linspace(0, len(feats) - 1, n).round().astype(int)):
            x = np.asarray(feats.features[int(index)], dtype=np.float32)[None]
            if first_nonfinite(x) is not None:
                raise ArtifactError(nonfinite_message(path, feats.ids[int(index)], int(index)))
            yield [x]


def _check_calibration_file(path: Path, input_shape: tuple[int, ...], frontend: dict | None) -> None:
    """Fail early (before TensorFlow's converter) on a calibration file that cannot work:
    every clip calibration will use is read once (one at a time) and must be finite."""
    for _ in _calibration_batches(path, input_shape, frontend):
        pass


@locked_outputs("out")  # one writer per output (docs/reliability.md)
def run(
    model_path: str | Path,
    out: str | Path,
    *,
    mode: str = "dynamic",
    calibration: str | Path | None = None,
    max_bytes: int | None = None,
    force: bool = False,
) -> dict[str, Any]:
    """Post-training quantisation of ``RUN/model.keras`` to ``out`` (.tflite).

    Parameters
    ----------
    model_path : path
        A ``.keras`` model written by ``asctool train`` (its metadata gives
        the input shape, classes and front end).
    out : path
        The ``.tflite`` file to write, with the metadata embedded;
        ``size.json`` is written beside it.
    mode : {"dynamic", "float16", "int8"}
    calibration : path, optional
        Features file for ``int8`` calibration (same front end as the model).
    max_bytes : int, optional
        Budget: when the ``.tflite`` is larger, fail and write nothing.
    force : bool
        Overwrite an existing ``out``.

    Returns
    -------
    dict
        ``out``, ``bytes`` (the file), ``parameters`` (Keras ``count_params``),
        ``bits_per_parameter`` and ``parameter_bytes`` (parameters x nominal bits
        of the mode / 8: the DCASE 2020 Task 1b size rule), ``mode``,
        ``source_model``, ``source_bytes`` and ``max_bytes`` (what ``size.json``
        holds).

    Raises
    ------
    AsctoolError
        Bad options, a missing or unloadable model, a calibration file that
        does not fit, a model TensorFlow Lite cannot convert, or a file over
        ``max_bytes``.
    """
    model_path, out = Path(model_path), Path(out)
    calibration = Path(calibration) if calibration is not None else None
    if mode not in MODES:
        raise ConfigError(f"--mode must be one of {', '.join(MODES)}, not {mode!r}")
    if out.suffix != ".tflite":
        raise ConfigError(f"{out}: the output must be a .tflite file")
    if mode == "int8" and calibration is None:
        raise ConfigError("--mode int8 needs --calibration FEATS.h5 (features to calibrate the activations)")
    if mode != "int8" and calibration is not None:
        raise ConfigError(f"--calibration is only used with --mode int8, not {mode}")
    if max_bytes is not None and max_bytes < 1:
        raise ConfigError(f"--max-bytes must be positive, not {max_bytes}")
    if not model_path.is_file():
        raise ArtifactError(f"{model_path}: model file not found")
    if model_path.suffix == ".json":   # a linear back-end (RUN/model.json): weights in JSON, no graph
        from ..backends import LinearModel

        backend = LinearModel.load(model_path).metadata.get("backend", "linear")
        raise ConfigError(f"{model_path}: {backend} back-ends are not Keras models: nothing to quantise "
                          f"(asctool predict --model {model_path} applies it as it is)")
    if model_path.suffix != ".keras":
        raise ConfigError(f"{model_path}: quantize converts a Keras model (RUN/model.keras), not a "
                          f"{model_path.suffix or 'suffix-less'} file")
    size_path = out.parent / "size.json"
    # size.json is rewritten without --force when it describes this file (checked below)
    claim_outputs([out], force=force, rewritable=[size_path], inputs=[model_path, calibration])

    config = read_model_metadata(model_path, required=False)
    if config is None:
        log.warning("%s: the model carries no metadata; predict will not know its classes", model_path)
    if size_path.exists():
        try:
            described = json.loads(size_path.read_text()).get("file")
        except (ValueError, AttributeError):
            described = None
        # one size.json per folder: it may describe another .tflite only if that file is gone
        if described not in (None, out.name) and (out.parent / str(described)).exists():
            raise MismatchError(
                f"{size_path}: already describes {described}; write {out.name} into its own folder"
            )

    from ..models import load_model

    model = load_model(model_path)
    input_shape = _input_shape(model, config, model_path)
    frontend = (config or {}).get("frontend_config")
    representative = None  # a generator function, int8 only
    if mode == "int8":
        if not calibration.is_file():
            raise ArtifactError(f"{calibration}: calibration features file not found")
        _check_calibration_file(calibration, input_shape, frontend)

        def representative():  # noqa: F811
            return _calibration_batches(calibration, input_shape, frontend)

    log.info("converting %s to TensorFlow Lite (%s, input %s)", model_path, mode, "x".join(map(str, input_shape)))
    try:
        content = convert(model, input_shape, mode=mode, representative=representative)
    except AsctoolError:
        raise
    except Exception as exc:  # TensorFlow raises many types; report one line
        first = next((line.strip() for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
        raise AsctoolError(f"{model_path}: cannot be quantised to TensorFlow Lite ({mode}): {first}") from None
    if config is not None:
        content = embed_tflite_metadata(content, {**model_metadata(config), "input_shape": list(input_shape)})

    summary: dict[str, Any] = {
        "file": out.name,
        "bytes": len(content),
        "parameters": int(model.count_params()),
        "bits_per_parameter": BITS_PER_PARAMETER[mode],
        "parameter_bytes": int(model.count_params()) * BITS_PER_PARAMETER[mode] // 8,
        "mode": mode,
        "source_model": str(model_path),
        "source_bytes": model_path.stat().st_size,
        "sha256": hashlib.sha256(content).hexdigest(),
        "input_shape": list(input_shape),
    }
    if max_bytes is not None:
        summary["max_bytes"] = int(max_bytes)
        if len(content) > max_bytes:
            if out.exists():  # only with --force: a stale file must not pass for this result
                out.unlink()
            raise AsctoolError(
                f"{out}: quantised model is {len(content)} bytes, over --max-bytes {max_bytes}; nothing written"
            )

    with atomic_path(out) as tmp:
        tmp.write_bytes(content)
    with atomic_path(size_path) as tmp:
        tmp.write_text(json.dumps(summary, indent=2) + "\n")
    log.info("wrote %s (%d bytes, %s; Keras model %d bytes)", out, len(content), mode, summary["source_bytes"])
    return {"out": str(out), **summary}
