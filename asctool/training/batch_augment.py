"""Per-batch augmentation of model inputs (REFERENCE.md section 4), in TensorFlow.

Applied to every training batch, in this order:

1. SpecAugment: per example and per channel, one frequency mask of width
   0..``freq_mask`` bins and one time mask of width 0..``time_mask`` frames,
   set to 0 (off for Resnet in the reference system);
2. random crop of ``crop`` frames, at an offset drawn per example;
3. mixup: ``x = lam * x + (1 - lam) * x[perm]`` and the same on the one-hot
   targets, with ``lam ~ Beta(alpha, alpha)`` per example and ``perm`` a random
   permutation of the batch (the reference draws the partners from a second
   batch; mixing within the batch has the same distribution and reads half as
   much data);
4. channel swap: with probability ``swap_p`` per example, exchange left and
   right in each (left, right) channel pair, i.e. ``[L, R, dL, dR, ddL, ddR]``
   becomes ``[R, L, dR, dL, ddR, ddL]`` (task 1b stereo input).

Everything is vectorised over the batch (no per-example Python). The random
parameters are drawn with NumPy from a per-batch seed, so a batch is
augmented the same way whichever thread computes it and whenever a run is
resumed. Evaluation and prediction use the full, unaugmented input.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any, Mapping, Sequence

import numpy as np

from ..errors import ConfigError

__all__ = ["AugmentConfig", "AUGMENTATIONS", "default_augment", "parse_augment",
           "spec_augment", "random_crop", "mixup", "channel_swap", "augment_batch",
           "draw_spec_augment", "draw_crop", "draw_mixup", "draw_swap", "draw_batch",
           "param_signature", "apply_batch"]

#: Names accepted by ``--augment`` (comma-separated), besides ``auto`` and ``none``.
AUGMENTATIONS = ("specaugment", "crop", "mixup", "swap")

#: Crop length of the reference system (task 1a: 400 of 423 frames).
REFERENCE_CROP = 400


@dataclass(frozen=True)
class AugmentConfig:
    """Which batch augmentations run, and their parameters.

    Attributes
    ----------
    specaugment : bool
        Frequency and time masking.
    freq_mask, time_mask : int
        Largest mask widths in bins and frames (widths are drawn from 0..max).
    crop : int or None
        Frames kept by the random crop; None for no crop.
    mixup : bool
        Mixup of inputs and targets.
    mixup_alpha : float
        Beta distribution parameter of the mixing weight.
    channel_swap : bool
        Left/right exchange of channel pairs.
    swap_p : float
        Probability of the exchange per example.
    """

    specaugment: bool = True
    freq_mask: int = 12
    time_mask: int = 39
    crop: int | None = None
    mixup: bool = True
    mixup_alpha: float = 0.4
    channel_swap: bool = False
    swap_p: float = 0.5

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for ``config.json``."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "AugmentConfig":
        """Inverse of :meth:`to_dict`."""
        return cls(**{k: data[k] for k in asdict(cls()) if k in data})

    def output_time(self, time: int) -> int:
        """Frames per example after augmentation, for inputs of ``time`` frames."""
        return self.crop if self.crop else time


def default_augment(model: str, input_shape: tuple[int, int, int]) -> AugmentConfig:
    """The reference system's choices for a model and input shape.

    SpecAugment for every model except ``resnet``; crop to 400 frames for
    3-channel (task 1a) inputs longer than that; mixup always; channel swap
    for 6-channel (task 1b stereo) inputs.
    """
    _, time, channels = input_shape
    crop = REFERENCE_CROP if channels == 3 and time > REFERENCE_CROP else None
    return AugmentConfig(
        specaugment=not model.startswith("resnet"),
        crop=crop,
        mixup=True,
        channel_swap=channels == 6,
    )


def parse_augment(spec: str | None, crop: int | None, model: str,
                  input_shape: tuple[int, int, int], *, auto_off: Sequence[str] = ()) -> AugmentConfig:
    """Resolve ``--augment`` and ``--crop`` into an :class:`AugmentConfig`.

    Parameters
    ----------
    spec : str or None
        ``auto`` (or None): the reference choices (:func:`default_augment`);
        ``none``: nothing; otherwise a comma-separated subset of
        :data:`AUGMENTATIONS`.
    crop : int or None
        Crop length in frames; None keeps the automatic length (400 frames
        when the input is longer), 0 disables cropping.
    model : str
        Model name (SpecAugment is off for ``resnet`` under ``auto``).
    input_shape : (freq, time, channels)
        Shape of one training example.
    auto_off : sequence of str
        Augmentations that ``auto`` leaves out (a training profile's choice,
        e.g. the demo profile's ``specaugment, mixup``).

    Raises
    ------
    ConfigError
        Unknown names, a crop not shorter than the input, a channel swap on an
        odd channel count.
    """
    _, time, channels = input_shape
    text = (spec or "auto").strip().lower()
    if text == "auto":
        config = default_augment(model, input_shape)
        off = {name: False for name in ("specaugment", "mixup") if name in auto_off}
        if "swap" in auto_off:
            off["channel_swap"] = False
        config = replace(config, **off)
        if "crop" in auto_off:
            config = replace(config, crop=None)
        if crop is not None:
            config = replace(config, crop=int(crop) or None)
    else:
        names = [] if text == "none" else [n.strip() for n in text.split(",") if n.strip()]
        unknown = [n for n in names if n not in AUGMENTATIONS]
        if unknown:
            raise ConfigError(
                f"--augment: unknown augmentation(s) {', '.join(unknown)}; "
                f"choose from {', '.join(AUGMENTATIONS)}, auto or none"
            )
        if crop and "crop" not in names:
            raise ConfigError(f"--crop {crop}: 'crop' is not among --augment {spec}")
        config = AugmentConfig(
            specaugment="specaugment" in names,
            crop=(REFERENCE_CROP if crop is None else int(crop) or None) if "crop" in names else None,
            mixup="mixup" in names,
            channel_swap="swap" in names,
        )
    if config.crop is not None and not 0 < config.crop < time:
        raise ConfigError(
            f"crop of {config.crop} frames: must be shorter than the input ({time} frames); "
            f"give --crop N with N < {time}, or --crop 0"
        )
    if config.channel_swap and channels % 2:
        raise ConfigError(f"--augment swap: needs (left, right) channel pairs, the input has {channels} channels")
    return config


# --------------------------------------------------------------------------
# the augmentations
#
# Each augmentation is split into a draw (small random parameters, in NumPy,
# from a per-batch seed) and an application (TensorFlow tensor ops). The
# training pipeline draws in its reader thread, reads only the cropped frames
# from disk, and applies the rest in one XLA-compiled function, so that cast,
# masks, mixup and swap fuse into one pass over the batch.
# --------------------------------------------------------------------------
#: Independent random streams of one batch seed, so that switching one
#: augmentation off leaves the draws of the others unchanged.
_STREAMS = {"spec": 0, "crop": 1, "mixup": 2, "swap": 3}


def _rng(seed, stream: str) -> np.random.Generator:
    """The generator of one augmentation for a batch seed (two integers)."""
    words = [int(v) & 0xFFFFFFFF for v in np.asarray(seed).ravel()]
    return np.random.default_rng([*words, _STREAMS[stream]])


def _band_keep(rng: np.random.Generator, length: int, max_width: int, size: tuple[int, int]) -> np.ndarray:
    """Float (B, length, C) mask: 0 on one band of width 0..max_width per (B, C), else 1."""
    width = np.minimum(rng.integers(0, max_width + 1, size), length)
    start = rng.integers(0, length - width + 1)
    pos = np.arange(length)[None, :, None]
    masked = (pos >= start[:, None, :]) & (pos < (start + width)[:, None, :])
    return (~masked).astype(np.float32)


def draw_spec_augment(seed, shape, *, freq_mask: int = 12, time_mask: int = 39):
    """Keep masks of SpecAugment: ``fkeep`` (B, F, C) and ``tkeep`` (B, T, C), float32 0/1."""
    rng = _rng(seed, "spec")
    batch, freq, time, channels = (int(v) for v in shape)
    fkeep = _band_keep(rng, freq, freq_mask, (batch, channels))
    tkeep = _band_keep(rng, time, time_mask, (batch, channels))
    return fkeep, tkeep


def draw_crop(seed, shape, *, length: int) -> np.ndarray:
    """First frame (B,) of a random crop of ``length`` frames per example."""
    batch, time = int(shape[0]), int(shape[2])
    return _rng(seed, "crop").integers(0, time - length + 1, batch)


def draw_mixup(seed, batch: int, *, alpha: float = 0.4) -> tuple[np.ndarray, np.ndarray]:
    """Mixing weights ``lam`` (B,) ~ Beta(alpha, alpha) and partner permutation ``perm`` (B,)."""
    rng = _rng(seed, "mixup")
    lam = rng.beta(alpha, alpha, int(batch)).astype(np.float32)
    return lam, rng.permutation(int(batch)).astype(np.int32)


def draw_swap(seed, batch: int, *, p: float = 0.5) -> np.ndarray:
    """Boolean (B,): which examples get their channel pairs exchanged."""
    return _rng(seed, "swap").random(int(batch)) < p


def _crop_mask(mask: np.ndarray, offset: np.ndarray, length: int) -> np.ndarray:
    """``mask[b, offset[b]:offset[b] + length]`` for every example ``b`` of a (B, T, C) mask."""
    index = np.asarray(offset)[:, None] + np.arange(length)[None, :]
    return np.take_along_axis(mask, index[:, :, None], axis=1)


def draw_batch(seed, shape, config: AugmentConfig) -> dict[str, np.ndarray]:
    """Every random parameter of one batch.

    Parameters
    ----------
    seed : array-like of two int
        Per-batch seed.
    shape : (batch, freq, time, channels)
        Shape of the full-length batch.
    config : AugmentConfig

    Returns
    -------
    dict
        ``offset`` (B,) crop starts (with a crop); ``fkeep`` (B, F, C) and
        ``tkeep`` (B, T', C) SpecAugment keep masks, the time mask already
        cropped like the input (drawing on the full length and cropping equals
        masking before cropping); ``lam`` (B,) and ``perm`` (B,) for mixup;
        ``swap`` (B,) for the channel swap.
    """
    batch = int(shape[0])
    params: dict[str, np.ndarray] = {}
    if config.crop:
        params["offset"] = draw_crop(seed, shape, length=config.crop)
    if config.specaugment:
        fkeep, tkeep = draw_spec_augment(seed, shape, freq_mask=config.freq_mask, time_mask=config.time_mask)
        if config.crop:
            tkeep = _crop_mask(tkeep, params["offset"], config.crop)
        params["fkeep"], params["tkeep"] = fkeep, tkeep
    if config.mixup:
        params["lam"], params["perm"] = draw_mixup(seed, batch, alpha=config.mixup_alpha)
    if config.channel_swap:
        params["swap"] = draw_swap(seed, batch, p=config.swap_p)
    return params


def param_signature(config: AugmentConfig, batch: int, freq: int, time: int, channels: int) -> dict:
    """``tf.TensorSpec`` of each entry of :func:`draw_batch` but ``offset``
    (``time`` is the frame count after the crop)."""
    import tensorflow as tf

    spec: dict = {}
    if config.specaugment:
        spec["fkeep"] = tf.TensorSpec((batch, freq, channels), tf.float32)
        spec["tkeep"] = tf.TensorSpec((batch, time, channels), tf.float32)
    if config.mixup:
        spec["lam"] = tf.TensorSpec((batch,), tf.float32)
        spec["perm"] = tf.TensorSpec((batch,), tf.int32)
    if config.channel_swap:
        spec["swap"] = tf.TensorSpec((batch,), tf.bool)
    return spec


def _apply_masks(x, fkeep, tkeep):
    return x * fkeep[:, :, None, :] * tkeep[:, None, :, :]


def _apply_crop(x, offset, length: int):
    import tensorflow as tf

    index = tf.cast(offset, tf.int32)[:, None] + tf.range(length)[None, :]
    return tf.gather(x, index, axis=2, batch_dims=1)


def _apply_mixup(x, y, lam, perm):
    import tensorflow as tf

    lx = tf.reshape(lam, [-1, 1, 1, 1])
    x = lx * x + (1.0 - lx) * tf.gather(x, perm)
    y = lam[:, None] * y + (1.0 - lam[:, None]) * tf.gather(y, perm)
    return x, y


def _apply_swap(x, swap):
    import tensorflow as tf

    channels = x.shape[-1]
    if channels is None or channels % 2:
        raise ConfigError(f"channel swap needs an even, known channel count, got {channels}")
    order = [c ^ 1 for c in range(channels)]                  # 1, 0, 3, 2, 5, 4
    return tf.where(swap[:, None, None, None], tf.gather(x, order, axis=3), x)


def spec_augment(x, seed, *, freq_mask: int = 12, time_mask: int = 39):
    """Zero one frequency band and one time band per example and channel.

    Parameters
    ----------
    x : tf.Tensor or np.ndarray [shape=(batch, freq, time, channels)], float
    seed : array-like of two int
        Per-batch seed.
    freq_mask, time_mask : int
        Largest band widths (bins, frames); widths are uniform in 0..max,
        positions uniform over the valid starts.

    Returns
    -------
    tf.Tensor, same shape and dtype as ``x``
    """
    import tensorflow as tf

    x = tf.convert_to_tensor(x)
    fkeep, tkeep = draw_spec_augment(seed, x.shape, freq_mask=freq_mask, time_mask=time_mask)
    return _apply_masks(x, tf.cast(fkeep, x.dtype), tf.cast(tkeep, x.dtype))


def random_crop(x, seed, *, length: int):
    """Keep ``length`` consecutive frames of each example, at a random offset.

    Parameters
    ----------
    x : tf.Tensor or np.ndarray [shape=(batch, freq, time, channels)]
    seed : array-like of two int
    length : int
        Frames kept (< time).

    Returns
    -------
    tf.Tensor [shape=(batch, freq, length, channels)]
    """
    import tensorflow as tf

    x = tf.convert_to_tensor(x)
    return _apply_crop(x, draw_crop(seed, x.shape, length=length), length)


def mixup(x, y, seed, *, alpha: float = 0.4):
    """Mix each example with a random partner of the same batch.

    Parameters
    ----------
    x : tf.Tensor or np.ndarray [shape=(batch, freq, time, channels)], float32
    y : tf.Tensor or np.ndarray [shape=(batch, classes)], float32 (one-hot or soft)
    seed : array-like of two int
    alpha : float
        ``lam ~ Beta(alpha, alpha)`` per example.

    Returns
    -------
    (x, y) mixed, same shapes.
    """
    import tensorflow as tf

    x = tf.convert_to_tensor(x)
    lam, perm = draw_mixup(seed, x.shape[0], alpha=alpha)
    return _apply_mixup(x, tf.convert_to_tensor(y), lam, perm)


def channel_swap(x, seed, *, p: float = 0.5):
    """Exchange left and right in every adjacent channel pair, with probability ``p``.

    Parameters
    ----------
    x : tf.Tensor or np.ndarray [shape=(batch, freq, time, channels)], channels
        even, ordered ``[L, R, dL, dR, ddL, ddR]``
    seed : array-like of two int
    p : float

    Returns
    -------
    tf.Tensor, same shape
    """
    import tensorflow as tf

    x = tf.convert_to_tensor(x)
    return _apply_swap(x, draw_swap(seed, x.shape[0], p=p))


def _apply_all(x, labels, params, *, config: AugmentConfig, num_classes: int):
    """Apply drawn parameters to an already cropped batch, in the reference order."""
    import tensorflow as tf

    y = tf.one_hot(labels, num_classes, dtype=tf.float32)
    x = tf.cast(x, tf.float32)
    if config.specaugment:
        x = _apply_masks(x, params["fkeep"], params["tkeep"])
    if config.mixup:
        x, y = _apply_mixup(x, y, params["lam"], params["perm"])
    if config.channel_swap:
        x = _apply_swap(x, params["swap"])
    return x, y


_FUSED: dict = {}


def apply_batch(x, labels, params, *, config: AugmentConfig, num_classes: int, jit: bool = True):
    """Apply drawn parameters (:func:`draw_batch`, less ``offset``) to a cropped batch.

    Parameters
    ----------
    x : tf.Tensor [shape=(batch, freq, crop or time, channels)], float16 or float32
    labels : tf.Tensor [shape=(batch,)], int class indices
    params : dict
        Masks, mixup and swap parameters of this batch.
    config : AugmentConfig
    num_classes : int
    jit : bool
        Run as one XLA-compiled function; the result equals the unfused one
        up to float rounding (about 1e-7).

    Returns
    -------
    (x, y) : float32 inputs and soft targets ``(batch, num_classes)``.
    """
    import tensorflow as tf

    params = {k: v for k, v in params.items() if k != "offset"}
    if not jit:
        return _apply_all(x, labels, params, config=config, num_classes=num_classes)
    key = (config, num_classes)
    if key not in _FUSED:
        def fused(x, labels, params):
            return _apply_all(x, labels, params, config=config, num_classes=num_classes)

        _FUSED[key] = tf.function(fused, jit_compile=True)
    return _FUSED[key](x, labels, params)


def augment_batch(x, labels, seed, *, config: AugmentConfig, num_classes: int, jit: bool = True):
    """Apply the configured augmentations to one full-length training batch.

    The training pipeline does the same in two halves (:func:`draw_batch` and
    a cropped read in its reader, :func:`apply_batch` in ``tf.data``); this
    function is for a batch already in memory.

    Parameters
    ----------
    x : tf.Tensor or np.ndarray [shape=(batch, freq, time, channels)], float16 or float32
    labels : tf.Tensor or np.ndarray [shape=(batch,)], int class indices
    seed : array-like of two int
        Per-batch seed.
    config : AugmentConfig
    num_classes : int
    jit : bool
        See :func:`apply_batch`.

    Returns
    -------
    (x, y) : float32 inputs ``(batch, freq, crop or time, channels)`` and soft
        targets ``(batch, num_classes)``.
    """
    import tensorflow as tf

    x = tf.convert_to_tensor(x)
    params = draw_batch(seed, x.shape, config)
    if config.crop:
        x = _apply_crop(x, params["offset"], config.crop)
    return apply_batch(x, labels, params, config=config, num_classes=num_classes, jit=jit)
