"""The ``asctool cam`` stage: class activation maps of chosen clips, one PNG per clip.

``asctool cam --model COARSE/model.keras --model FINE/model.keras --features
FEATS.h5 --ids ID,... --out-dir DIR``. The maps are Grad-CAM on each model's
``features_out`` map (:mod:`asctool.saliency`, after section 3.4 of Hu et al.
2020); the classes and front end come from the model's metadata
(:mod:`asctool.runs`).
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..artifacts import check_same_config, first_nonfinite, nonfinite_message, open_features
from ..errors import ArtifactError, AsctoolError, ConfigError, MismatchError
from ..io import atomic_path, check_name, claim_outputs, locked_outputs
from ..runs import read_model_metadata
from ..saliency import FEATURE_LAYER, MIN_FREQ_BINS, grad_cam, render_png, upsample

__all__ = ["run"]

log = logging.getLogger(__name__)


def _model_classes(model_path: Path, n_outputs: int) -> tuple[list[str], dict | None]:
    """Class names and front-end config from the model's metadata (if any)."""
    config = read_model_metadata(model_path, required=False)
    if config is not None:
        classes = [str(c) for c in config["classes"]]
        if len(classes) != n_outputs:
            raise MismatchError(
                f"{model_path}: its metadata lists {len(classes)} classes but the model has {n_outputs} outputs"
            )
        return classes, config["frontend_config"]
    log.warning("%s: the model carries no metadata and has no config.json beside it; classes are shown by index",
                model_path)
    return [f"class{i}" for i in range(n_outputs)], None


@locked_outputs("out_dir")  # one writer per output (docs/reliability.md)
def run(
    model_paths: Sequence[str | Path],
    features_path: str | Path,
    ids: Sequence[str],
    out_dir: str | Path,
    *,
    min_freq_bins: int = MIN_FREQ_BINS,
    force: bool = False,
) -> dict[str, Any]:
    """Class activation maps of chosen clips, one PNG per clip.

    Parameters
    ----------
    model_paths : sequence of path
        One or more ``RUN/model.keras`` (e.g. the 3-class model, then the
        10-class model); one CAM panel each, in this order.
    features_path : path
        Features file holding the clips (same front end as the models).
    ids : sequence of str
        Clip ids to explain.
    out_dir : path
        Folder for ``ID.png``.
    min_freq_bins : int
        A model whose ``features_out`` map has fewer frequency bins gets a
        warning; if no model has that many, nothing is written and an error
        is raised.
    force : bool
        Overwrite existing PNGs.

    Returns
    -------
    dict
        ``out_dir``, ``clips`` (per clip: ``id``, ``png``, ``scene`` and per
        model ``predicted`` and ``probability``), ``models`` (per model: map
        shape and whether it is fine enough) and ``warnings``.
    """
    model_paths = [Path(p) for p in model_paths]
    features_path, out_dir = Path(features_path), Path(out_dir)
    ids = [str(i) for i in ids]
    if not model_paths:
        raise ConfigError("cam needs at least one --model")
    if not ids:
        raise ConfigError("cam needs at least one clip id (--ids ID,...)")
    if len(set(ids)) != len(ids):
        raise ConfigError(f"--ids lists a clip twice: {', '.join(sorted({i for i in ids if ids.count(i) > 1}))}")
    if min_freq_bins < 1:
        raise ConfigError(f"--min-freq-bins must be positive, not {min_freq_bins}")
    for clip in ids:  # each id becomes a file name: ID.png in out_dir
        check_name(clip, what="clip id", where="--ids", error=ConfigError)
    claim_outputs([out_dir / f"{clip}.png" for clip in ids], force=force, folders=[out_dir],
                  inputs=[features_path, *model_paths])

    import keras  # noqa: F401  (TensorFlow backend before the models load; after the checks of the options)

    from ..models import load_model

    with open_features(features_path) as feats:
        position = {clip: i for i, clip in enumerate(feats.ids)}
        unknown = [i for i in ids if i not in position]
        if unknown:
            shown = ", ".join(unknown[:5]) + (f", ... ({len(unknown)} in all)" if len(unknown) > 5 else "")
            raise ArtifactError(f"{features_path}: no clip with id {shown}")
        rows = [position[i] for i in ids]
        x = np.stack([np.asarray(feats.features[r], dtype=np.float32) for r in rows])
        bad = first_nonfinite(x)
        if bad is not None:
            raise ArtifactError(nonfinite_message(features_path, ids[bad], rows[bad]))
        scenes = [str(feats.scenes[r]) for r in rows]
        frontend = feats.config

    models = []
    warnings: list[str] = []
    for path in model_paths:
        model = load_model(path)
        expected = tuple(model.input_shape[1:])
        if len(expected) != 3 or any(e is not None and e != s for e, s in zip(expected, x.shape[1:])):
            raise MismatchError(f"{features_path}: features of shape {x.shape[1:]} do not fit {path} (input {expected})")
        classes, model_frontend = _model_classes(path, int(model.output_shape[-1]))
        if model_frontend is not None:
            check_same_config(model_frontend, frontend, path, features_path)
        maps, probabilities = grad_cam(model, x)
        ok = maps.shape[1] >= min_freq_bins
        if not ok:
            message = (
                f"{path}: the {FEATURE_LAYER} map has only {maps.shape[1]} frequency bins "
                f"(< {min_freq_bins}); its class activation map is too coarse to be meaningful"
            )
            log.warning(message)
            warnings.append(message)
        name = path.parent.name or path.stem
        models.append({"path": path, "name": name, "classes": classes, "maps": maps,
                       "probabilities": probabilities, "ok": ok})
    if not any(m["ok"] for m in models):
        raise AsctoolError(
            f"no model has a {FEATURE_LAYER} map of at least {min_freq_bins} frequency bins; "
            "nothing written (lower --min-freq-bins to draw coarse maps anyway)"
        )

    out_dir.mkdir(parents=True, exist_ok=True)
    freq, time = x.shape[1], x.shape[2]
    clips = []
    for n, clip in enumerate(ids):
        panels = []
        for m in models:
            k = int(m["probabilities"][n].argmax())
            panels.append({
                "name": m["name"], "n_classes": len(m["classes"]), "predicted": m["classes"][k],
                "probability": float(m["probabilities"][n, k]), "map": upsample(m["maps"][n], (freq, time)),
                "map_shape": m["maps"].shape[1:], "map_ok": m["ok"],
            })
        png = out_dir / f"{clip}.png"
        content = render_png(clip, scenes[n], x[n, :, :, 0], panels)
        with atomic_path(png) as tmp:
            tmp.write_bytes(content)
        clips.append({
            "id": clip, "png": str(png), "scene": scenes[n],
            "models": [{"model": p["name"], "predicted": p["predicted"], "probability": round(p["probability"], 4)}
                       for p in panels],
        })
    log.info("wrote %d class activation map(s) to %s", len(clips), out_dir)
    return {
        "out_dir": str(out_dir),
        "clips": clips,
        "models": [{"model": str(m["path"]), "map_shape": list(m["maps"].shape[1:]), "meaningful": m["ok"]}
                   for m in models],
        "warnings": warnings,
    }
