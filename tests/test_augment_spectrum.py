"""asctool augment spectrum-correction: estimate over all devices (docs/reference.md 7.5), apply, errors."""
from __future__ import annotations

import numpy as np
import pytest

from asctool.audio import read_audio, write_audio
from asctool.augment.spectrum import apply_response, pair_ratio_sum, read_response
from asctool.errors import ManifestError
from asctool.manifest import Clip, read_manifest, write_manifest
from asctool.stages.augment import run

SR = 16000
N = 8000
GAINS = {"a": 1.0, "b": 0.5, "s1": 2.0}


def make_parallel(root, segments, devices=("a", "b", "s1")):
    """Segments recorded on several devices: device d = GAINS[d] * the device-a noise."""
    rng = np.random.default_rng(0)
    (root / "audio").mkdir(parents=True)
    clips = []
    for k, segment in enumerate(segments):
        base = (0.1 * rng.standard_normal((1, N))).astype(np.float32)
        for device in devices:
            stem = f"{segment}-{device}"
            write_audio(root / "audio" / f"{stem}.wav", GAINS[device] * base, SR)
            scene, city, loc, _ = segment.split("-")
            clips.append(Clip(id=stem, path=f"audio/{stem}.wav", scene=scene, device=device, city=city,
                              location=f"{scene}-{city}-{loc}"))
    return write_manifest(root / "train.tsv", clips)


def test_pair_ratio_and_apply_response_are_consistent():
    rng = np.random.default_rng(1)
    a = rng.standard_normal(4096) * 0.1
    total, frames = pair_ratio_sum(a, 0.25 * a, n_fft=512, hop_length=256)
    np.testing.assert_allclose(total / frames, 0.25, rtol=1e-4)
    y = a[None].astype(np.float32)
    out = apply_response(y, np.full(257, 0.25), n_fft=512, hop_length=256)
    assert out.shape == y.shape
    np.testing.assert_allclose(out, 0.25 * y, atol=1e-5)


def test_response_averages_all_target_devices(tmp_path):
    manifest = make_parallel(tmp_path / "d", ["bus-lyon-1-1", "bus-lyon-1-2", "park-lyon-2-3"])
    out_manifest = tmp_path / "sc.tsv"
    summary = run("spectrum-correction", manifest, out_dir=tmp_path / "sc", out_manifest=out_manifest,
                  params=["n_fft=512", "hop_length=256"])
    assert summary["n_pairs"] == {"b": 3, "s1": 3} and summary["sources"] == 3
    est = read_response(tmp_path / "sc.response.npz")
    assert est.devices == ["b", "s1"] and list(est.n_pairs) == [3, 3]
    np.testing.assert_allclose(est.for_device("b"), 0.5, rtol=1e-3)
    np.testing.assert_allclose(est.for_device("s1"), 2.0, rtol=1e-3)
    # all pairs of all devices, not only the last device (docs/reference.md 7.5)
    np.testing.assert_allclose(est.response, 1.25, rtol=1e-3)
    with np.load(tmp_path / "sc.response.npz") as data:
        assert data["freqs"].shape == (257,) and data["freqs"][-1] == SR / 2
    out = read_manifest(out_manifest)
    assert sorted(c.id for c in out) == [f"{s}-a_speccorr" for s in ["bus-lyon-1-1", "bus-lyon-1-2", "park-lyon-2-3"]]
    src = read_manifest(manifest)
    for clip in out:
        y, _ = read_audio(out.audio_path(clip))
        x, _ = read_audio(src.audio_path(next(c for c in src if c.id == clip.source_id)))
        np.testing.assert_allclose(y, 1.25 * x, atol=1e-3)


def test_per_device_copies(tmp_path):
    manifest = make_parallel(tmp_path / "d", ["bus-lyon-1-1", "park-lyon-2-3"])
    summary = run("spectrum-correction", manifest, out_dir=tmp_path / "sc", out_manifest=tmp_path / "sc.tsv",
                  per_device=True, params=["n_fft=512", "hop_length=256"])
    assert summary["output_clips"] == 4
    out = read_manifest(tmp_path / "sc.tsv")
    clip = next(c for c in out if c.id == "bus-lyon-1-1-a_speccorr_s1")
    assert clip.augmentation == "spectrum-correction:s1" and clip.device == "a"
    y, _ = read_audio(out.audio_path(clip))
    x, _ = read_audio(tmp_path / "d" / "audio" / "bus-lyon-1-1-a.wav")
    np.testing.assert_allclose(y, 2.0 * x, atol=2e-3)


def test_spectrum_errors(tmp_path):
    lonely = make_parallel(tmp_path / "d", ["bus-lyon-1-1"], devices=("a",))
    with pytest.raises(ManifestError, match="no parallel recordings found"):
        run("spectrum-correction", lonely, out_dir=tmp_path / "o", out_manifest=tmp_path / "o.tsv")
    write_manifest(tmp_path / "plain.tsv", [Clip(id="x1", path="d/audio/bus-lyon-1-1-a.wav", scene="bus", device="a")])
    with pytest.raises(ManifestError, match="needs device and segment information"):
        run("spectrum-correction", tmp_path / "plain.tsv", out_dir=tmp_path / "o", out_manifest=tmp_path / "o.tsv")
    assert not (tmp_path / "o").exists()


def test_guarded_locations_are_left_out_of_the_estimate(tmp_path):
    manifest = make_parallel(tmp_path / "d", ["bus-lyon-1-1", "park-lyon-2-3"])
    evaluation = tmp_path / "eval.tsv"
    evaluation.write_text("id\tpath\nbus-lyon-1-7-c\tx.wav\n")
    summary = run("spectrum-correction", manifest, out_dir=tmp_path / "sc", out_manifest=tmp_path / "sc.tsv",
                  exclude_locations=evaluation, params=["n_fft=512", "hop_length=256"])
    assert summary["excluded_by_location"] == 3 and summary["n_pairs"] == {"b": 1, "s1": 1}
    assert [c.source_id for c in read_manifest(tmp_path / "sc.tsv")] == ["park-lyon-2-3-a"]
