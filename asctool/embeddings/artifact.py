"""The embeddings artifact writer (``asctool embed``; layout in docs/embed.md).

embeddings file (``asctool_kind = "embeddings"``)
    ``embeddings``  (N, T, D) float32: T windows per clip (the same T for every
    clip of a file), D dimensions, one clip per chunk
    ``id``, ``scene``, ``device``, ``location``  UTF-8 strings, length N (as features files)
    ``window_times``  (T,) float64, seconds: the centre of each window from the clip start
    attribute ``extractor``: JSON (name, every option, the weight file's SHA-256,
    sample rate, window and hop in seconds, licence)
    and the provenance every artifact carries (``asctool_kind``, ``schema_version``,
    ``asctool_version``, ``created``, ``command``, ``inputs``).

The reader lives in :mod:`asctool.artifacts` beside the other readers.
"""
from __future__ import annotations

import os
from typing import Any, Mapping, Sequence

import h5py
import numpy as np

from ..artifacts import KIND_EMBEDDINGS, FeaturesWriter
from ..errors import ArtifactError

__all__ = ["EmbeddingsWriter", "KIND_EMBEDDINGS"]


class EmbeddingsWriter(FeaturesWriter):
    """Write an embeddings file clip by clip, atomically (a :class:`~asctool.artifacts.FeaturesWriter`).

    Parameters
    ----------
    path : final file; a temporary file until the block ends with every clip written
    n : number of clips
    window_times : (T,) seconds, the centre of each window
    dim : D, the embedding size
    extractor : the ``extractor`` attribute (JSON-serialisable mapping)
    ids, scenes, devices, locations, inputs, extra_attrs : as :class:`FeaturesWriter`

    ``write_block(start, block)`` stores ``block`` (k, T, D) at clips ``start..start+k-1``.
    """

    kind = KIND_EMBEDDINGS
    dataset = "embeddings"
    config_attr = "extractor"

    def __init__(self, path: str | os.PathLike, *, n: int, window_times: Sequence[float], dim: int,
                 extractor: Mapping[str, Any], ids: Sequence[str], scenes: Sequence[str] | None = None,
                 devices: Sequence[str] | None = None, locations: Sequence[str] | None = None,
                 inputs: Sequence[str | os.PathLike] = (), extra_attrs: Mapping[str, Any] | None = None) -> None:
        self.window_times = np.asarray(window_times, dtype=np.float64)
        if self.window_times.ndim != 1 or not len(self.window_times) or int(dim) < 1:
            raise ArtifactError(f"{path}: embeddings need at least one window and one dimension "
                                f"(got {self.window_times.shape} windows, {dim} dimensions)")
        super().__init__(path, n=n, feature_shape=(len(self.window_times), int(dim)), config=extractor, ids=ids,
                         scenes=scenes, devices=devices, locations=locations, dtype="float32", inputs=inputs,
                         extra_attrs=extra_attrs)

    def _write_extra(self, handle: h5py.File) -> None:
        handle.create_dataset("window_times", data=self.window_times)
