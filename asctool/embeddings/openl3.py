"""Extractor ``openl3``: the L3-Net audio sub-network of OpenL3, built in Keras 3 as published.

Source: Cramer, Wu, Salamon, Bello, "Look, listen, and learn more: design
choices for deep audio embeddings", ICASSP 2019; the reference code is
marl/openl3 ``openl3/models.py`` (v0.4.x) and ``openl3/core.py``, with the
kapre 0.3 front end it builds on; docs/embed.md lists every fact with the
line it comes from. In short:

- input: 1 s of mono audio at 48 kHz (``asr = 48000``), windows every ``hop``
  seconds (0.1 s), centred (``_center_audio``: ``int(48000 / 2)`` zeros first);
- front end, computed here with TensorFlow ops instead of kapre layers
  (:class:`L3Spectrogram`): ``tf.signal.stft`` with a periodic Hann window;
  ``linear`` n_fft 512, hop 242, no end padding (257 x 197); ``mel128`` and
  ``mel256`` n_fft 2048, hop 242, ``pad_end=True``, the magnitude times the
  Slaney-normalised mel filterbank of ``librosa.filters.mel`` (fmin 0, fmax
  24 kHz: kapre's ``filterbank_mel``) (128 or 256 x 199); then openl3's
  ``kapre_v0_1_4_magnitude_to_decibel``: ``10 log10(max(x, 1e-10))`` minus
  the example's maximum, floored at -80 dB;
- a batch normalisation of the input; four blocks of two (3x3 conv 'same',
  BN, ReLU) with 64, 128, 256, 512 filters, 2x2 max-pooling (stride 2) after
  blocks 1-3; the last conv (``audio_embedding_layer``) without BN and ReLU;
- embedding: max-pooling ('same') of (8, 8) for linear and mel256, (4, 8) for
  mel128 (6144-d), or (32, 24) / (16, 24) (512-d), then flatten.

Weights: the official ``openl3_audio_{linear,mel128,mel256}_{music,env}-v0_4_0.h5``
(CC BY 4.0; gzipped as published, or not), loaded layer by layer in the
file's order with their shapes checked (:func:`read_weight_file`,
:func:`load_weights`): the 16 layers that hold weights (8 batch
normalisations, 8 convolutions).
"""
from __future__ import annotations

import gzip
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ArtifactError, ConfigError
from .registry import Extractor, check_file, file_sha256, register

__all__ = [
    "INPUT_REPRS", "CONTENT_TYPES", "EMBEDDING_SIZES", "POOL_SIZES", "FRONT_ENDS", "SAMPLE_RATE",
    "WEIGHTS_VERSION", "WEIGHTS_URL", "weight_file_name", "weight_url", "build_model", "read_weight_file",
    "load_weights", "weight_layers", "OpenL3Extractor",
]

SAMPLE_RATE = 48000  # models.py: asr = 48000, audio_window_dur = 1
INPUT_REPRS = ("linear", "mel128", "mel256")
CONTENT_TYPES = ("music", "env")
EMBEDDING_SIZES = (6144, 512)
#: models.py AUDIO_POOLING_SIZES
POOL_SIZES = {
    "linear": {6144: (8, 8), 512: (32, 24)},
    "mel128": {6144: (4, 8), 512: (16, 24)},
    "mel256": {6144: (8, 8), 512: (32, 24)},
}
#: models.py _construct_*_audio_network: n_dft, n_hop, n_mels, kapre's pad_end
FRONT_ENDS = {
    "linear": {"n_fft": 512, "hop": 242, "n_mels": None, "pad_end": False},
    "mel128": {"n_fft": 2048, "hop": 242, "n_mels": 128, "pad_end": True},
    "mel256": {"n_fft": 2048, "hop": 242, "n_mels": 256, "pad_end": True},
}
FILTERS = (64, 128, 256, 512)
WEIGHT_DECAY = 1e-5  # kernel_regularizer l2 (training only; kept for fidelity)
DB_AMIN, DB_RANGE = 1e-10, 80.0
WEIGHTS_VERSION = "v0_4_0"
#: where openl3's setup.py downloads the weight files from
WEIGHTS_URL = "https://github.com/marl/openl3/raw/models/"
LICENCE = "weights CC BY 4.0 (marl/openl3); code MIT"


def weight_file_name(input_repr: str, content_type: str, *, gz: bool = True) -> str:
    """``openl3_audio_{input_repr}_{content_type}-v0_4_0.h5[.gz]`` (the published name)."""
    return f"openl3_audio_{input_repr}_{content_type}-{WEIGHTS_VERSION}.h5" + (".gz" if gz else "")


def weight_url(input_repr: str, content_type: str) -> str:
    """The official URL of a weight file (openl3's ``setup.py``: base_url + compressed name)."""
    return WEIGHTS_URL + weight_file_name(input_repr, content_type)


def spectrogram_shape(input_repr: str) -> tuple[int, int]:
    """(freq, time) of the front end's output for 1 s at 48 kHz: 257x197, 128x199, 256x199."""
    fe = FRONT_ENDS[input_repr]
    if fe["pad_end"]:
        frames = -(-SAMPLE_RATE // fe["hop"])
    else:
        frames = 1 + (SAMPLE_RATE - fe["n_fft"]) // fe["hop"]
    return (fe["n_mels"] or fe["n_fft"] // 2 + 1), frames


def mel_matrix(input_repr: str) -> np.ndarray | None:
    """kapre's ``filterbank_mel``: ``librosa.filters.mel(...).T`` (n_freq, n_mels) float32; None for linear."""
    fe = FRONT_ENDS[input_repr]
    if fe["n_mels"] is None:
        return None
    import librosa

    return librosa.filters.mel(sr=SAMPLE_RATE, n_fft=fe["n_fft"], n_mels=fe["n_mels"], fmin=0.0, fmax=None,
                               htk=False, norm="slaney").T.astype(np.float32)


def _spectrogram_layer_class():
    import keras
    import tensorflow as tf

    class L3Spectrogram(keras.layers.Layer):
        """Waveform (batch, 48000) -> decibel spectrogram (batch, freq, time, 1), no weights.

        The kapre 0.3 layers openl3 composes (STFT, Magnitude, ApplyFilterbank)
        and openl3's ``kapre_v0_1_4_magnitude_to_decibel``, in TensorFlow ops.
        """

        def __init__(self, input_repr: str = "mel256", **kwargs) -> None:
            super().__init__(**kwargs)
            self.input_repr = input_repr
            fe = FRONT_ENDS[input_repr]
            self.n_fft, self.step, self.pad_end = fe["n_fft"], fe["hop"], fe["pad_end"]
            mel = mel_matrix(input_repr)
            self.mel = None if mel is None else tf.constant(mel)

        def call(self, x):
            spec = tf.abs(tf.signal.stft(x, frame_length=self.n_fft, frame_step=self.step, fft_length=self.n_fft,
                                         window_fn=tf.signal.hann_window, pad_end=self.pad_end))  # (b, t, f)
            if self.mel is not None:
                spec = tf.tensordot(spec, self.mel, axes=1)
            log_spec = 10.0 * tf.math.log(tf.maximum(spec, DB_AMIN)) / tf.math.log(tf.constant(10.0, spec.dtype))
            log_spec = tf.maximum(log_spec - tf.reduce_max(log_spec, axis=(1, 2), keepdims=True), -DB_RANGE)
            return tf.transpose(log_spec, (0, 2, 1))[..., None]  # openl3's Permute((2, 1, 3)): (b, f, t, 1)

        def compute_output_shape(self, input_shape):
            return (input_shape[0], *spectrogram_shape(self.input_repr), 1)

        def get_config(self):
            return {**super().get_config(), "input_repr": self.input_repr}

    return L3Spectrogram


def build_model(input_repr: str = "mel256", embedding_size: int = 6144, *, frontend: bool = True):
    """The L3-Net audio embedding model (Keras 3), layer for layer as ``openl3/models.py``.

    Parameters
    ----------
    input_repr : ``linear``, ``mel128`` or ``mel256``
    embedding_size : 6144 or 512 (the final max-pooling, ``AUDIO_POOLING_SIZES``)
    frontend : the input is the 1 s waveform ``(48000,)`` (True) or the
        spectrogram ``(freq, time, 1)`` (False)

    Returns
    -------
    keras.Model, output ``(batch, embedding_size)``; 4,689,860 parameters for
    every input representation (the front end has none).
    """
    import keras
    from keras import layers

    if input_repr not in INPUT_REPRS or embedding_size not in EMBEDDING_SIZES:
        raise ConfigError(f"openl3 has input_repr {INPUT_REPRS} and embedding_size {EMBEDDING_SIZES}, "
                          f"got {input_repr!r}, {embedding_size!r}")
    if frontend:
        inputs = keras.Input((SAMPLE_RATE,), name="audio")
        x = _spectrogram_layer_class()(input_repr, name="spectrogram")(inputs)
    else:
        inputs = x = keras.Input((*spectrogram_shape(input_repr), 1), name="spectrogram")
    bn = conv = 0

    def next_bn(x):
        nonlocal bn
        bn += 1
        return layers.BatchNormalization(name=f"batch_normalization_{bn}")(x)

    def next_conv(x, filters, name=None):
        nonlocal conv
        if name is None:
            conv += 1
        return layers.Conv2D(filters, (3, 3), padding="same", kernel_initializer="he_normal",
                             kernel_regularizer=keras.regularizers.l2(WEIGHT_DECAY),
                             name=name or f"conv2d_{conv}")(x)

    x = next_bn(x)
    for block, filters in enumerate(FILTERS, start=1):
        x = layers.Activation("relu", name=f"activation_{2 * block - 1}")(next_bn(next_conv(x, filters)))
        if block < 4:
            x = layers.Activation("relu", name=f"activation_{2 * block}")(next_bn(next_conv(x, filters)))
            x = layers.MaxPooling2D((2, 2), strides=2, name=f"max_pooling2d_{block}")(x)
        else:
            x = next_conv(x, filters, name="audio_embedding_layer")
    x = layers.MaxPooling2D(POOL_SIZES[input_repr][embedding_size], padding="same", name="embedding_pool")(x)
    outputs = layers.Flatten(name="embedding")(x)
    return keras.Model(inputs, outputs, name=f"openl3_audio_{input_repr}_{embedding_size}")


def weight_layers(model) -> list:
    """The layers of ``model`` that hold weights, in order (what an HDF5 weight file lists)."""
    return [layer for layer in model.layers if layer.weights]


# --------------------------------------------------------------------------
# the official weight files
# --------------------------------------------------------------------------
#: the weight shapes of the 16 layers, in order, whatever the input representation
def expected_shapes() -> list[list[tuple[int, ...]]]:
    """Shapes of each weighted layer's arrays in file order (BN: gamma, beta, mean, variance; conv: kernel, bias)."""
    shapes = [[(1,)] * 4]
    channels = 1
    for block, filters in enumerate(FILTERS, start=1):
        for k in range(2):
            shapes.append([(3, 3, channels, filters), (filters,)])
            channels = filters
            if not (block == 4 and k == 1):
                shapes.append([(filters,)] * 4)
    return shapes


def _decompressed(path: Path) -> tuple[Path, bool]:
    """A readable HDF5 path for ``path`` (a gzipped file is decompressed to a temporary file)."""
    with open(path, "rb") as handle:
        magic = handle.read(2)
    if magic != b"\x1f\x8b":
        return path, False
    fd, tmp = tempfile.mkstemp(suffix=".h5", prefix="openl3-")
    try:
        with gzip.open(path, "rb") as source, os.fdopen(fd, "wb") as target:
            shutil.copyfileobj(source, target, 1 << 20)
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        os.unlink(tmp)
        raise ArtifactError(f"{path}: truncated or corrupt gzip file ({exc}); download it again") from None
    except BaseException:
        os.unlink(tmp)
        raise
    return Path(tmp), True


def read_weight_file(path: str | os.PathLike) -> list[tuple[str, list[np.ndarray]]]:
    """The weights of an OpenL3 audio weight file: ``[(layer name, [arrays])]`` for the 16 weighted layers.

    Reads the Keras 2 HDF5 weight layout the published files use (root
    attribute ``layer_names``; each layer's group lists ``weight_names``;
    a ``model_weights`` group when the file is a whole saved model); layers
    without weights are skipped, as Keras's own loader does. Gzipped files
    (as published) are decompressed to a temporary file first.

    Raises
    ------
    ArtifactError
        (one line naming the file) not gzip/HDF5 or truncated, not in the
        Keras weight layout, or not 16 weighted layers of the L3-Net audio
        shapes (the first mismatch is named).
    """
    import h5py

    path = Path(path)
    if not path.is_file():
        raise ArtifactError(f"{path}: OpenL3 weight file not found")
    readable, temporary = _decompressed(path)
    try:
        try:
            handle = h5py.File(readable, "r")
        except OSError as exc:
            raise ArtifactError(f"{path}: not a readable HDF5 weight file ({str(exc).splitlines()[0]}); "
                                "truncated? download it again") from None
        with handle:
            group = handle["model_weights"] if "model_weights" in handle else handle
            if "layer_names" not in group.attrs:
                raise ArtifactError(f"{path}: not a Keras HDF5 weight file (no 'layer_names' attribute)")
            found = []
            try:
                for raw in group.attrs["layer_names"]:
                    name = raw.decode() if isinstance(raw, bytes) else str(raw)
                    names = [w.decode() if isinstance(w, bytes) else str(w)
                             for w in group[name].attrs.get("weight_names", [])]
                    if names:
                        found.append((name, [np.asarray(group[name][w][()]) for w in names]))
            except (KeyError, OSError) as exc:
                raise ArtifactError(f"{path}: incomplete weight file ({str(exc).splitlines()[0]}); "
                                    "download it again") from None
    finally:
        if temporary:
            os.unlink(readable)
    shapes = expected_shapes()
    if len(found) != len(shapes):
        raise ArtifactError(f"{path}: holds weights for {len(found)} layers, the OpenL3 audio model has "
                            f"{len(shapes)} (is it an openl3_audio_* weight file?)")
    for (name, arrays), wanted in zip(found, shapes):
        got = [a.shape for a in arrays]
        if got != wanted:
            raise ArtifactError(f"{path}: layer {name} holds weights of shapes {got}, the OpenL3 audio model "
                                f"needs {wanted} there (is it an openl3_audio_* weight file?)")
    return found


def load_weights(model, path: str | os.PathLike, weights: list | None = None) -> None:
    """Set ``model``'s 16 weighted layers from ``path`` in order (see :func:`read_weight_file`)."""
    weights = read_weight_file(path) if weights is None else weights
    for layer, (_, arrays) in zip(weight_layers(model), weights):
        layer.set_weights(arrays)


_NAME = re.compile(r"openl3_audio_(linear|mel128|mel256)_(music|env)")


class OpenL3Extractor(Extractor):
    """OpenL3 embeddings of 1 s windows (see the module docstring)."""

    name = "openl3"
    sample_rate = SAMPLE_RATE
    window = 1.0
    center = True

    def __init__(self, weights, input_repr: str, content_type: str, embedding_size: int, hop: float) -> None:
        if input_repr not in INPUT_REPRS:
            raise ConfigError(f"openl3: --input-repr must be one of {', '.join(INPUT_REPRS)}, got {input_repr!r}")
        if content_type not in CONTENT_TYPES:
            raise ConfigError(f"openl3: --content-type must be music or env, got {content_type!r}")
        if int(embedding_size) not in EMBEDDING_SIZES:
            raise ConfigError(f"openl3: --embedding-size must be 6144 or 512, got {embedding_size}")
        if float(hop) <= 0:
            raise ConfigError(f"openl3: --hop must be positive seconds, got {hop}")
        if weights is None:
            raise ConfigError(
                f"extractor openl3 needs --weights FILE: get {weight_file_name(input_repr, content_type)} with "
                f"`asctool download openl3 --input-repr {input_repr} --content-type {content_type} --out-dir DIR`")
        self.weights = check_file(weights, "OpenL3 weight", "--weights")
        match = _NAME.search(self.weights.name)
        if match and match.groups() != (input_repr, content_type):
            raise ConfigError(f"{self.weights}: the file name says {match.group(1)}/{match.group(2)}, the options "
                              f"ask for --input-repr {input_repr} --content-type {content_type}")
        read_weight_file(self.weights)  # refuse a bad file before any worker starts
        self.input_repr, self.content_type = input_repr, content_type
        self.embedding_size, self.hop = int(embedding_size), float(hop)
        self.sha256 = file_sha256(self.weights)
        self.input_files = (self.weights,)
        self._model = None

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "input_repr": self.input_repr, "content_type": self.content_type,
                "embedding_size": self.embedding_size, "weights": self.weights.name, "weights_sha256": self.sha256,
                "frontend": "tensorflow ops reproducing kapre 0.3 (docs/embed.md)", "licence": LICENCE}

    def load(self) -> None:
        if self._model is None:
            model = build_model(self.input_repr, self.embedding_size)
            load_weights(model, self.weights)
            self._model = model

    def embed(self, windows: np.ndarray) -> np.ndarray:
        self.load()
        return np.asarray(self._model.predict_on_batch(np.asarray(windows, dtype=np.float32)), dtype=np.float32)


@register("openl3", "OpenL3 (L3-Net audio, Cramer et al. 2019): 1 s windows at 48 kHz, 512 or 6144 dimensions",
          licence=LICENCE)
def openl3_extractor(*, weights: str | None = None, input_repr: str = "mel256", content_type: str = "music",
                     embedding_size: int = 6144, hop: float = 0.1, sample_rate: int | None = None) -> OpenL3Extractor:
    """The ``openl3`` extractor; ``sample_rate`` may only be 48000 (clips at other rates are resampled)."""
    if sample_rate is not None and int(sample_rate) != SAMPLE_RATE:
        raise ConfigError(f"openl3 takes {SAMPLE_RATE} Hz input (clips at other rates are resampled with soxr); "
                          f"--sample-rate {sample_rate} is not possible")
    return OpenL3Extractor(weights, input_repr, content_type, embedding_size, hop)
