"""The inspect stage: descriptions of features, scores, manifests and models."""
from __future__ import annotations

import numpy as np
import pytest

from asctool import artifacts
from asctool.errors import ArtifactError
from asctool.stages.inspect import run as inspect


from helpers import write_tiny_features as _write_features  # noqa: E402


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


def test_inspect_tags(tmp_path):
    from asctool.tagsfile import write_tags

    path = write_tags(tmp_path / "t.h5", ids=["a", "b"], tags=[[0.2, 0.9], [0.4, 0.7]], tag_names=["dog", "siren"],
                      tagger={"name": "birdnet", "options": {}, "sha256": "0" * 64, "pooling": "max"})
    text = inspect(path)
    assert "tags: shape (2, 2) dtype float32" in text and "tag names: dog, siren" in text
    assert '"pooling": "max"' in text and "highest mean tags: siren 0.800, dog 0.300" in text


def test_inspect_counts_no_location_for_clips_without_one(tmp_path):
    """(found on ESC-50-style data) clips without a location were "locations: 1" (the empty string counted)."""
    def write(name, locations):
        with artifacts.FeaturesWriter(tmp_path / name, n=len(locations), feature_shape=(4, 5, 3),
                                      config={"sr": 44100, "n_mels": 4}, ids=[f"c{i}" for i in range(len(locations))],
                                      scenes=["dog"] * len(locations), locations=locations) as writer:
            for i in range(len(locations)):
                writer.write(i, np.zeros((4, 5, 3), np.float32))
        return inspect(tmp_path / name).splitlines()

    assert "locations: (none): 3 clips" in write("none.h5", ["", "", ""])
    assert "locations: 2 (1 clip without a location)" in write("some.h5", ["p-x-1", "", "p-x-2"])
    assert "locations: 2" in write("all.h5", ["p-x-1", "p-x-1", "p-x-2"])
