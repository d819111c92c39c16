"""Class activation maps: where in time and frequency a model finds its class.

``asctool cam --model COARSE/model.keras --model FINE/model.keras --features
FEATS.h5 --ids ID,... --out-dir DIR`` writes one PNG per clip, stacking the
clip's log-mel spectrogram (the static channel of the model input) and, for each
model, its class activation map for the class it predicts, upsampled to the
input's frequency x time grid (as in section 3.4 of Hu et al., "Device-robust
acoustic scene classification based on two-stage categorization and data
augmentation", 2020, which compares the maps of the 3-class and 10-class models).

The map is Grad-CAM on the last convolutional map of the model, the layer
named ``features_out`` by every asctool architecture:
``cam = ReLU(sum_k alpha_k A_k)``, ``alpha_k`` the mean over time and frequency
of ``d log p_c / d A_k`` for the predicted class ``c`` (the log-probability
rather than the probability, so that confident predictions do not saturate the
gradient). A map with few frequency bins (FCNN pools frequency 8 times, so 128
bins give 16) is coarse: models whose map has fewer than ``min_freq_bins`` bins
are reported with a warning, and an error is raised when no model has enough.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .artifacts import check_same_config, open_features
from .io import atomic_path
from .errors import ArtifactError, AsctoolError, ConfigError, MismatchError
from .inference import read_model_config

__all__ = ["FEATURE_LAYER", "MIN_FREQ_BINS", "cam", "grad_cam", "upsample"]

log = logging.getLogger(__name__)

FEATURE_LAYER = "features_out"
MIN_FREQ_BINS = 8


def upsample(cam_map: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Bilinear upsampling of a map to ``shape``, cell centres aligned.

    Parameters
    ----------
    cam_map : np.ndarray [shape=(freq', time')]
    shape : (freq, time)

    Returns
    -------
    np.ndarray [shape=(freq, time)]
    """
    cam_map = np.asarray(cam_map, dtype=np.float64)
    out = cam_map
    for axis, size in enumerate(shape):
        n = out.shape[axis]
        # centre of output cell i, in units of input cells
        position = (np.arange(size) + 0.5) * n / size - 0.5
        out = np.apply_along_axis(lambda v: np.interp(position, np.arange(n), v), axis, out)
    return out


def _rescale(values: np.ndarray) -> np.ndarray:
    """Scale to [0, 1] (all zeros stays all zeros)."""
    top = float(values.max()) if values.size else 0.0
    return values / top if top > 0 else np.zeros_like(values)


def grad_cam(model, features: np.ndarray, *, layer: str = FEATURE_LAYER) -> tuple[np.ndarray, np.ndarray]:
    """Grad-CAM of a batch for each clip's predicted class.

    Parameters
    ----------
    model : keras.Model
        Maps ``(batch, freq, time, channels)`` to class probabilities.
    features : np.ndarray [shape=(n, freq, time, channels)]
    layer : str
        Name of the convolutional map to explain.

    Returns
    -------
    maps : np.ndarray [shape=(n, freq', time')]
        Non-negative maps on the layer's grid, each scaled to [0, 1].
    probabilities : np.ndarray [shape=(n, classes)]
    """
    import keras
    import tensorflow as tf

    try:
        target = model.get_layer(layer)
    except ValueError:
        raise ArtifactError(f"model {model.name!r} has no layer named {layer!r} to explain") from None
    probe = keras.Model(model.inputs, [target.output, model.output])
    x = tf.convert_to_tensor(np.asarray(features, dtype=np.float32))
    with tf.GradientTape() as tape:
        feature_map, probabilities = probe(x, training=False)
        predicted = tf.argmax(probabilities, axis=1)
        chosen = tf.gather(probabilities, predicted, axis=1, batch_dims=1)
        objective = tf.math.log(chosen + 1e-12)
    grads = tape.gradient(objective, feature_map)
    if grads is None or len(feature_map.shape) != 4:
        raise ArtifactError(f"model {model.name!r}: layer {layer!r} is not a (freq, time, channels) map")
    weights = tf.reduce_mean(grads, axis=(1, 2), keepdims=True)
    maps = tf.nn.relu(tf.reduce_sum(weights * feature_map, axis=-1)).numpy()
    return np.stack([_rescale(m) for m in maps]), probabilities.numpy()


def _model_classes(model_path: Path, n_outputs: int) -> tuple[list[str], dict | None]:
    """Class names and front-end config from the run's config.json (if any)."""
    config = read_model_config(model_path, required=False)
    if config is not None:
        classes = [str(c) for c in config["classes"]]
        if len(classes) != n_outputs:
            raise MismatchError(
                f"{model_path.parent / 'config.json'}: lists {len(classes)} classes but the model has {n_outputs} outputs"
            )
        return classes, config["frontend_config"]
    log.warning("%s: no config.json beside the model; classes are shown by index", model_path)
    return [f"class{i}" for i in range(n_outputs)], None


def _plot(png: Path, clip: str, reference: str, spectrogram: np.ndarray, panels: list[dict[str, Any]]) -> None:
    """One PNG: the static log-mel channel, then one CAM panel per model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = 1 + len(panels)
    fig, axes = plt.subplots(rows, 1, figsize=(8, 2.4 * rows), sharex=True, squeeze=False)
    axes = axes[:, 0]
    image = axes[0].imshow(spectrogram, origin="lower", aspect="auto", cmap="magma")
    axes[0].set_title(f"{clip}: log-mel (static channel)" + (f", scene {reference}" if reference else ""))
    axes[0].set_ylabel("mel bin")
    fig.colorbar(image, ax=axes[0], pad=0.01)
    for ax, panel in zip(axes[1:], panels):
        ax.imshow(spectrogram, origin="lower", aspect="auto", cmap="gray")
        image = ax.imshow(panel["map"], origin="lower", aspect="auto", cmap="jet", alpha=0.55, vmin=0, vmax=1)
        note = "" if panel["map_ok"] else f"; map only {panel['map_shape'][0]} bins: coarse"
        ax.set_title(
            f"{panel['name']} ({panel['n_classes']} classes): predicted {panel['predicted']} "
            f"(p = {panel['probability']:.2f}){note}"
        )
        ax.set_ylabel("mel bin")
        fig.colorbar(image, ax=ax, pad=0.01)
    axes[-1].set_xlabel("frame")
    fig.tight_layout()
    with atomic_path(png) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)


def cam(
    model_paths: Sequence[str | Path],
    features_path: str | Path,
    ids: Sequence[str],
    out_dir: str | Path,
    *,
    min_freq_bins: int = MIN_FREQ_BINS,
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

    Returns
    -------
    dict
        ``out_dir``, ``clips`` (per clip: ``id``, ``png``, ``scene`` and per
        model ``predicted`` and ``probability``), ``models`` (per model: map
        shape and whether it is fine enough) and ``warnings``.
    """
    import keras  # noqa: F401  (TensorFlow backend before the models load)

    from .models import load_model

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

    with open_features(features_path) as feats:
        position = {clip: i for i, clip in enumerate(feats.ids)}
        unknown = [i for i in ids if i not in position]
        if unknown:
            shown = ", ".join(unknown[:5]) + (f", ... ({len(unknown)} in all)" if len(unknown) > 5 else "")
            raise ArtifactError(f"{features_path}: no clip with id {shown}")
        rows = [position[i] for i in ids]
        x = np.stack([np.asarray(feats.features[r], dtype=np.float32) for r in rows])
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
        _plot(png, clip, scenes[n], x[n, :, :, 0], panels)
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
