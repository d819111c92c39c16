"""Class activation maps: where in time and frequency a model finds its class.

The library behind ``asctool cam`` (:mod:`asctool.stages.cam`), which writes
one PNG per clip, stacking the
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

import io
from typing import Any, Mapping, Sequence

import numpy as np

from .errors import ArtifactError

__all__ = ["FEATURE_LAYER", "MIN_FREQ_BINS", "grad_cam", "upsample", "render_png"]

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


def render_png(clip: str, reference: str, spectrogram: np.ndarray, panels: Sequence[Mapping[str, Any]]) -> bytes:
    """One PNG image: the static log-mel channel, then one CAM panel per model.

    Parameters
    ----------
    clip, reference : str
        Clip id and its reference scene ("" when unknown), for the titles.
    spectrogram : np.ndarray [shape=(freq, time)]
        The static log-mel channel of the model input.
    panels : sequence of dict
        Per model: ``name``, ``n_classes``, ``predicted``, ``probability``,
        ``map`` (freq, time) in [0, 1], ``map_shape`` and ``map_ok``.

    Returns
    -------
    bytes
        The PNG file content (100 dpi).
    """
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
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    return buffer.getvalue()
