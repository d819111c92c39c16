"""The ``asctool backend`` stage: a back-end of the registry fitted on a trained model's codes.

Jung et al., Interspeech 2020 (sec. 4): the raw-waveform baseline's 64-d codes
classified by an SVM. ``asctool backend svm --model RUN --train FEATS.h5
--valid FEATS.h5 --kernel rbf|sigmoid --out BACKEND.h5`` fits it
(:mod:`asctool.backends.svm`, one entry of :mod:`asctool.backends` fitted on
codes); ``predict --backend BACKEND.h5`` uses it.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError
from ..io import claim_outputs, locked_outputs
from ..runs import read_model_metadata

__all__ = ["run"]

log = logging.getLogger(__name__)


def _labels(scenes, metadata, path) -> np.ndarray:
    mapping = metadata.get("label_map") or {}
    classes = [str(c) for c in metadata["classes"]]
    truth = [mapping.get(s, s) for s in scenes]
    outside = sorted(set(truth) - set(classes))
    if outside:
        raise ConfigError(f"{path}: scene(s) {', '.join(map(repr, outside[:3]))} are not classes of the model "
                          f"({', '.join(classes)})")
    return np.array([classes.index(t) for t in truth], dtype=np.int64)


@locked_outputs("out")
def run(
    kind: str,
    model_path: str | os.PathLike,
    train_path: str | os.PathLike,
    valid_path: str | os.PathLike,
    out: str | os.PathLike,
    *,
    kernel: str = "rbf",
    tags_path: str | os.PathLike | None = None,
    batch_size: int = 64,
    seed: int = 0,
    force: bool = False,
) -> dict[str, Any]:
    """Fit an SVM back-end on the codes of ``model_path`` and write it.

    Parameters
    ----------
    kind : str
        A back-end of :mod:`asctool.backends` fitted on codes (``svm``).
    model_path : path
        ``RUN/model.keras`` or a run folder.
    train_path, valid_path : path
        Labelled features files (validation: chooses C and gamma, calibrates the probabilities).
    out : path
        Backend file (HDF5, no pickle).
    kernel : ``rbf`` or ``sigmoid``
    tags_path : path, optional
        Tags of every clip, for a tag-conditioned model.

    Returns
    -------
    dict
        ``out``, the chosen C and gamma, validation accuracy, support vector count.

    Raises
    ------
    ConfigError
        Unknown kind (or a back-end of clip vectors) or kernel; scenes outside the model's classes.
    AsctoolError
        Bad inputs (nothing is written then).
    """
    from .. import backends
    from ..backends.codes import features_codes
    from ..provenance import file_sha256

    entry = backends.spec(kind)
    if entry.fits_on != "codes":
        raise ConfigError(f"backend {kind!r}: fitted on clip vectors, not on a model's codes (asctool train "
                          f"--model {kind}); asctool backend fits {', '.join(backends.available('codes'))}")
    options = backends.check_options(kind, {"kernel": kernel})
    model_path = Path(model_path)
    if model_path.is_dir():
        model_path = model_path / "model.keras"
    out = Path(out)
    claim_outputs([out], force=force, inputs=[model_path, train_path, valid_path, tags_path])
    metadata = read_model_metadata(model_path)
    classes = [str(c) for c in metadata["classes"]]
    train_codes, _, train_scenes, _ = features_codes(model_path, train_path, metadata, tags_path, batch_size)
    valid_codes, _, valid_scenes, _ = features_codes(model_path, valid_path, metadata, tags_path, batch_size)
    log.info("fit back-end %s (%s) on %d codes of %d values", kind, options, *train_codes.shape)
    backend = entry.fit(train_codes, _labels(train_scenes, metadata, train_path), valid_codes,
                        _labels(valid_scenes, metadata, valid_path), classes, seed=seed,
                        model_sha256=file_sha256(model_path), **options)
    entry.write(out, backend, inputs=[model_path, train_path, valid_path],
                extra={"model": str(model_path), "train": str(train_path), "valid": str(valid_path)})
    return {"out": str(out), "kernel": kernel, "C": backend.C, "gamma": backend.gamma,
            "valid_accuracy": backend.info["valid_accuracy"], "support_vectors": int(backend.n_support.sum())}
