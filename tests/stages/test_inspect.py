"""The inspect stage: descriptions of features, scores, manifests and models."""
from __future__ import annotations

import numpy as np
import pytest

from asctool import artifacts
from asctool.errors import ArtifactError
from asctool.stages.inspect import run as inspect


def _write_features(path, ids, config=None, value=None, dtype="float16"):
    config = config or {"sr": 44100, "n_mels": 4}
    with artifacts.FeaturesWriter(
        path, n=len(ids), feature_shape=(4, 5, 3), config=config, ids=ids,
        scenes=["bus"] * len(ids), devices=["a"] * len(ids), locations=["bus-x-1"] * len(ids), dtype=dtype,
    ) as writer:
        for i in range(len(ids)):
            writer.write(i, np.full((4, 5, 3), i if value is None else value, dtype=np.float32))
    return path



def test_inspect_features_and_scores(tmp_path):
    path = _write_features(tmp_path / "f.h5", ["a", "b"])
    text = inspect(path)
    assert "features: shape (2, 4, 5, 3) dtype float16" in text
    assert "scenes: bus: 2" in text and "devices: a: 2" in text
    spath = tmp_path / "s.h5"
    artifacts.write_scores(spath, ids=["a", "b"], scores=[[1, 0], [0, 1]], classes=["bus", "tram"])
    text = inspect(spath)
    assert "classes: bus, tram" in text and "predicted: bus: 1, tram: 1" in text
    with pytest.raises(ArtifactError, match="unknown artifact type"):
        (tmp_path / "x.bin").write_bytes(b"")
        inspect(tmp_path / "x.bin")
