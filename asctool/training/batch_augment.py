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

Everything is vectorised over the batch (no per-example Python) and drawn with
stateless random ops from a per-batch seed, so a batch is augmented the same
way whichever thread computes it and whenever a run is resumed. Evaluation and
prediction use the full, unaugmented input.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any, Mapping, Sequence

from ..errors import ConfigError

__all__ = ["AugmentConfig", "AUGMENTATIONS", "default_augment", "parse_augment",
           "spec_augment", "random_crop", "mixup", "channel_swap", "augment_batch",
           "draw_spec_augment", "draw_crop", "draw_mixup", "draw_swap"]

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
# the augmentations (TensorFlow, vectorised, stateless)
#
# Each augmentation is split into a draw (small random parameters from a
# stateless seed) and an application (pure tensor ops). The public functions
# run one of each; augment_batch draws everything, then applies it in one
# XLA-compiled function so that crop, cast, masks, mixup and swap fuse into a
# few passes over the batch.
# --------------------------------------------------------------------------
def _uniform(shape, seed):
    import tensorflow as tf

    return tf.random.stateless_uniform(shape, seed=seed, dtype=tf.float32)


def _band_keep(length, max_width, shape, seed):
    """Float (B, C, length) mask: 0 on one band of width 0..max_width per (B, C), else 1."""
    import tensorflow as tf

    seeds = tf.random.experimental.stateless_split(seed, 2)
    width = tf.floor(_uniform(shape, seeds[0]) * float(max_width + 1))
    width = tf.minimum(width, tf.cast(length, tf.float32))
    start = tf.floor(_uniform(shape, seeds[1]) * (tf.cast(length, tf.float32) - width + 1.0))
    pos = tf.cast(tf.range(length), tf.float32)[None, None, :]
    masked = (pos >= start[..., None]) & (pos < (start + width)[..., None])
    return 1.0 - tf.cast(masked, tf.float32)


def draw_spec_augment(seed, shape, *, freq_mask: int = 12, time_mask: int = 39):
    """Keep masks of SpecAugment: ``fkeep`` (B, F, C) and ``tkeep`` (B, T, C), float 0/1."""
    import tensorflow as tf

    batch, freq, time, channels = shape[0], shape[1], shape[2], shape[3]
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 2)
    bc = tf.stack([batch, channels])
    fkeep = tf.transpose(_band_keep(freq, freq_mask, bc, seeds[0]), [0, 2, 1])
    tkeep = tf.transpose(_band_keep(time, time_mask, bc, seeds[1]), [0, 2, 1])
    return fkeep, tkeep


def draw_crop(seed, shape, *, length: int):
    """Frame indices (B, length) of a random crop per example."""
    import tensorflow as tf

    batch, time = shape[0], shape[2]
    span = tf.cast(time - length + 1, tf.float32)
    offset = tf.cast(tf.floor(_uniform(tf.reshape(batch, [1]), tf.cast(seed, tf.int64)) * span), tf.int32)
    return offset[:, None] + tf.range(length)[None, :]


def draw_mixup(seed, batch, *, alpha: float = 0.4):
    """Mixing weights ``lam`` (B,) ~ Beta(alpha, alpha) and partner permutation ``perm`` (B,)."""
    import tensorflow as tf

    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 3)
    size = tf.reshape(batch, [1])
    g1 = tf.random.stateless_gamma(size, seed=seeds[0], alpha=alpha, dtype=tf.float32)
    g2 = tf.random.stateless_gamma(size, seed=seeds[1], alpha=alpha, dtype=tf.float32)
    lam = g1 / tf.maximum(g1 + g2, 1e-12)
    perm = tf.argsort(_uniform(size, seeds[2]))
    return lam, perm


def draw_swap(seed, batch, *, p: float = 0.5):
    """Boolean (B,): which examples get their channel pairs exchanged."""
    import tensorflow as tf

    return _uniform(tf.reshape(batch, [1]), tf.cast(seed, tf.int64)) < p


def _apply_masks(x, fkeep, tkeep):
    return x * fkeep[:, :, None, :] * tkeep[:, None, :, :]


def _apply_crop(x, index):
    import tensorflow as tf

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
    x : tf.Tensor [shape=(batch, freq, time, channels)], float32
    seed : tf.Tensor [shape=(2,)], int
        Stateless seed.
    freq_mask, time_mask : int
        Largest band widths (bins, frames); widths are uniform in 0..max,
        positions uniform over the valid starts.

    Returns
    -------
    tf.Tensor, same shape as ``x``
    """
    import tensorflow as tf

    fkeep, tkeep = draw_spec_augment(seed, tf.shape(x), freq_mask=freq_mask, time_mask=time_mask)
    return _apply_masks(x, tf.cast(fkeep, x.dtype), tf.cast(tkeep, x.dtype))


def random_crop(x, seed, *, length: int):
    """Keep ``length`` consecutive frames of each example, at a random offset.

    Parameters
    ----------
    x : tf.Tensor [shape=(batch, freq, time, channels)]
    seed : tf.Tensor [shape=(2,)], int
    length : int
        Frames kept (< time).

    Returns
    -------
    tf.Tensor [shape=(batch, freq, length, channels)]
    """
    import tensorflow as tf

    return _apply_crop(x, draw_crop(seed, tf.shape(x), length=length))


def mixup(x, y, seed, *, alpha: float = 0.4):
    """Mix each example with a random partner of the same batch.

    Parameters
    ----------
    x : tf.Tensor [shape=(batch, freq, time, channels)], float32
    y : tf.Tensor [shape=(batch, classes)], float32 (one-hot or soft)
    seed : tf.Tensor [shape=(2,)], int
    alpha : float
        ``lam ~ Beta(alpha, alpha)`` per example.

    Returns
    -------
    (x, y) mixed, same shapes.
    """
    import tensorflow as tf

    lam, perm = draw_mixup(seed, tf.shape(x)[0], alpha=alpha)
    return _apply_mixup(x, y, lam, perm)


def channel_swap(x, seed, *, p: float = 0.5):
    """Exchange left and right in every adjacent channel pair, with probability ``p``.

    Parameters
    ----------
    x : tf.Tensor [shape=(batch, freq, time, channels)], channels even,
        ordered ``[L, R, dL, dR, ddL, ddR]``
    seed : tf.Tensor [shape=(2,)], int
    p : float

    Returns
    -------
    tf.Tensor, same shape
    """
    import tensorflow as tf

    return _apply_swap(x, draw_swap(seed, tf.shape(x)[0], p=p))


def _apply_all(x, labels, params, *, config: AugmentConfig, num_classes: int):
    """Apply drawn parameters in the reference order (masks are drawn on the full
    length and cropped with the input, which equals masking before cropping)."""
    import tensorflow as tf

    y = tf.one_hot(labels, num_classes, dtype=tf.float32)
    if config.crop:
        x = _apply_crop(x, params["crop"])
    x = tf.cast(x, tf.float32)
    if config.specaugment:
        fkeep, tkeep = params["spec"]
        if config.crop:
            tkeep = _apply_crop(tkeep[:, None], params["crop"])[:, 0]
        x = _apply_masks(x, fkeep, tkeep)
    if config.mixup:
        x, y = _apply_mixup(x, y, *params["mixup"])
    if config.channel_swap:
        x = _apply_swap(x, params["swap"])
    return x, y


_FUSED: dict = {}


def augment_batch(x, labels, seed, *, config: AugmentConfig, num_classes: int, jit: bool = True):
    """Apply the configured augmentations to one training batch.

    Parameters
    ----------
    x : tf.Tensor [shape=(batch, freq, time, channels)], float16 or float32
    labels : tf.Tensor [shape=(batch,)], int class indices
    seed : tf.Tensor [shape=(2,)], int64 per-batch seed
    config : AugmentConfig
    num_classes : int
    jit : bool
        Apply the augmentations in one XLA-compiled function (the random
        parameters are drawn outside it); the result equals the unfused one
        up to float rounding (about 1e-7).

    Returns
    -------
    (x, y) : float32 inputs ``(batch, freq, crop or time, channels)`` and soft
        targets ``(batch, num_classes)``.
    """
    import tensorflow as tf

    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 4)
    shape = tf.shape(x)
    params: dict = {}
    if config.specaugment:
        params["spec"] = draw_spec_augment(seeds[0], shape, freq_mask=config.freq_mask,
                                           time_mask=config.time_mask)
    if config.crop:
        params["crop"] = draw_crop(seeds[1], shape, length=config.crop)
    if config.mixup:
        params["mixup"] = draw_mixup(seeds[2], shape[0], alpha=config.mixup_alpha)
    if config.channel_swap:
        params["swap"] = draw_swap(seeds[3], shape[0], p=config.swap_p)
    if not jit:
        return _apply_all(x, labels, params, config=config, num_classes=num_classes)
    key = (config, num_classes)
    if key not in _FUSED:
        def fused(x, labels, params):
            return _apply_all(x, labels, params, config=config, num_classes=num_classes)

        _FUSED[key] = tf.function(fused, jit_compile=True)
    return _FUSED[key](x, labels, params)
