"""asctool augment reverb / reverb-drc: alignment, measured and simulated IRs, compressor."""
from __future__ import annotations

import numpy as np
import pytest

from asctool.audio import read_audio, write_audio
from asctool.augment import clip_rng
from asctool.augment.drc import CURVES, compress, envelope, transfer_curve
from asctool.augment.reverb import (
    convolve_aligned, load_rirs, measure_rt60, normalize_rir, prepare_rir, simulate_room, trim_tail,
)
from asctool.errors import AudioError
from asctool.manifest import Clip, read_manifest, write_manifest
from asctool.stages.augment import run

SR = 16000
N = 8000


def decaying_ir(sr=SR, rt60=0.3, length=0.4, delay=0.01, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(int(length * sr)) / sr
    h = rng.standard_normal(t.size) * 10 ** (-3 * t / rt60) * 0.05
    h[: int(delay * sr)] = 0
    h[int(delay * sr)] = 0.8  # direct path
    return h


def one_clip(root, y, stem="metro-riga-1-1-a", sr=SR):
    (root / "audio").mkdir(parents=True, exist_ok=True)
    write_audio(root / "audio" / f"{stem}.wav", y, sr)
    return write_manifest(root / "m.tsv", [Clip(id=stem, path=f"audio/{stem}.wav", scene="metro", device="a",
                                                city="riga", location="metro-riga-1")])


def test_unit_impulse_returns_the_aligned_ir():
    h = decaying_ir()
    y = np.zeros((1, N), np.float32)
    y[0, 0] = 1.0
    out = convolve_aligned(y, h)
    peak = int(np.argmax(np.abs(h)))
    np.testing.assert_allclose(out[0, : len(h) - peak], h[peak:], atol=1e-6)
    assert out.shape == y.shape and np.abs(out[0, len(h) - peak:]).max() < 1e-9


def test_reverb_run_with_an_impulse_gives_the_normalised_aligned_ir(tmp_path):
    h = decaying_ir()
    write_audio(tmp_path / "rirs" / "room.flac", h[None].astype(np.float32), SR)
    y = np.zeros((1, N), np.float32)
    y[0, 100] = 0.5
    manifest = one_clip(tmp_path / "d", y)
    summary = run("reverb", manifest, out_dir=tmp_path / "o", out_manifest=tmp_path / "o.tsv",
                  rir_dir=tmp_path / "rirs", params=["trim_tail=0"])
    assert summary["written"] == 1 and (tmp_path / "o.rirs.tsv").exists()
    out = read_manifest(tmp_path / "o.tsv")
    got, _ = read_audio(out.audio_path(out.clips[0]))
    stored, _ = read_audio(tmp_path / "rirs" / "room.flac")
    ref = normalize_rir(stored[0])
    peak = int(np.argmax(np.abs(ref)))
    expect = np.zeros(N)
    expect[100: 100 + len(ref) - peak] = 0.5 * ref[peak:]
    np.testing.assert_allclose(got[0], expect, atol=1e-5)


def test_real_measured_irs(shared_data, tmp_path):
    rirs = load_rirs(shared_data / "rirs")
    names = [name for name, *_ in rirs]
    assert len(rirs) == 12 and any(n.startswith("smard/") for n in names) and any(n.startswith("mardy/") for n in names)
    rng = np.random.default_rng(0)
    y = (0.1 * rng.standard_normal((1, 44100))).astype(np.float32)
    for name, h, sr, info in rirs:
        assert sr == 48000
        g = prepare_rir(h, sr, 44100, source=name)
        assert np.isclose(np.sum(g.astype(np.float64) ** 2), 1.0, rtol=1e-4)
        # the 12 s SMARD IRs are cut where their decay meets the noise floor
        assert len(g) < 1.5 * 44100, (name, len(g) / 44100)
        out = convolve_aligned(y, g)
        assert out.shape == y.shape and np.all(np.isfinite(out))
        assert 0.03 < out.std() < 0.3
    smard = [info for name, _, _, info in rirs if name.startswith("smard/")]
    assert all(info["duration_s"] == 12.0 and info["trimmed_s"] < 1.0 for info in smard)
    # end to end on a 24-bit SMARD and a 16-bit MARDY file, with compression
    manifest = one_clip(tmp_path / "d", y, sr=44100)
    summary = run("reverb-drc", manifest, out_dir=tmp_path / "o", out_manifest=tmp_path / "o.tsv",
                  rir_dir=shared_data / "rirs", seed=3)
    assert summary["written"] == 1 and summary["impulse_responses"] == 12
    got, sr = read_audio(tmp_path / "o" / "metro-riga-1-1-a_reverbdrc.flac")
    assert sr == 44100 and got.shape == y.shape and 0 < np.abs(got).max() <= 1.0


def test_bad_impulse_responses(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("no audio")
    with pytest.raises(AudioError, match=r"empty: no impulse responses"):
        load_rirs(tmp_path / "empty")
    write_audio(tmp_path / "zero" / "z.wav", np.zeros((1, 100), np.float32), SR)
    with pytest.raises(AudioError, match=r"z\.wav: impulse response is all zero"):
        load_rirs(tmp_path / "zero")
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "j.wav").write_bytes(b"RIFF....not a wave")
    with pytest.raises(AudioError, match=r"j\.wav: unreadable audio"):
        load_rirs(tmp_path / "junk")
    manifest = one_clip(tmp_path / "d", np.zeros((1, N), np.float32))
    with pytest.raises(AudioError, match="no impulse responses"):
        run("reverb", manifest, out_dir=tmp_path / "o", out_manifest=tmp_path / "o.tsv", rir_dir=tmp_path / "empty")
    assert not (tmp_path / "o").exists()


def test_trim_tail_cuts_noise_floor_only():
    h = decaying_ir(rt60=0.2, length=2.0)
    noisy = h + 1e-4 * np.random.default_rng(1).standard_normal(h.size)
    cut = trim_tail(noisy, SR)
    assert 0.1 * SR < len(cut) < 0.6 * SR
    # cut where the decay (-60 dB per 0.2 s from -26 dB) meets the -80 dB floor: about 0.18 s
    assert abs(len(cut) / SR - 0.19) < 0.05
    assert len(trim_tail(np.pad(noisy, (0, SR)), SR)) == len(cut)  # trailing zero padding ignored


def test_measure_rt60_of_an_exponential_decay():
    h = decaying_ir(rt60=0.5, length=1.5, seed=2)
    assert abs(measure_rt60(h, SR) - 0.5) < 0.05


@pytest.mark.parametrize("index", [0, 1, 2])
def test_simulated_room_rt60_matches_its_target(index):
    import pyroomacoustics as pra

    h, info = simulate_room(clip_rng(0, "simulate-rooms", f"room{index}"), SR)
    measured = pra.experimental.measure_rt60(h, SR, decay_db=30)  # independent Schroeder implementation
    assert abs(measured / info["rt60_target_s"] - 1) < 0.2, info
    assert 3 <= info["length_m"] <= 10 and 2.5 <= info["height_m"] <= 4 and info["distance_m"] >= 1


def test_simulate_rooms_run_writes_room_table(tmp_path):
    y = (0.1 * np.random.default_rng(0).standard_normal((1, N))).astype(np.float32)
    manifest = one_clip(tmp_path / "d", y)
    summary = run("reverb", manifest, out_dir=tmp_path / "o", out_manifest=tmp_path / "o.tsv", simulate_rooms=2,
                  params=["rt60_max=0.4"])
    assert summary["impulse_responses"] == 2
    lines = (tmp_path / "o.rooms.tsv").read_text().splitlines()
    header = lines[0].split("\t")
    assert len(lines) == 3 and {"rt60_target_s", "rt60_measured_s", "absorption", "length_m"} <= set(header)
    for line in lines[1:]:
        rec = dict(zip(header, line.split("\t")))
        assert float(rec["rt60_target_s"]) <= 0.4 and abs(float(rec["rt60_measured_s"]) / float(rec["rt60_target_s"]) - 1) < 0.2


# --------------------------------------------------------------------------
# compressor
# --------------------------------------------------------------------------
def test_transfer_curves():
    levels = np.array([-120.0, -90.0, -45.0, 0.0, 6.0])
    np.testing.assert_allclose(transfer_curve(levels, CURVES["-90,-70"], knee_db=0),
                               [-100, -70, -70 + 45 * 70 / 90, 0, 6])
    np.testing.assert_allclose(transfer_curve(levels, CURVES["0,0"]), levels)
    # soft knee: continuous, monotonic, equal to the hard curve outside the knee
    x = np.linspace(-100, 10, 11001)
    soft = transfer_curve(x, CURVES["-60,-40"], knee_db=6)
    hard = transfer_curve(x, CURVES["-60,-40"], knee_db=0)
    assert np.all(np.diff(soft) > 0) and np.max(np.abs(np.diff(soft))) < 0.02
    outside = np.abs(x + 60) > 3
    np.testing.assert_allclose(soft[outside & (np.abs(x) > 3)], hard[outside & (np.abs(x) > 3)], atol=1e-9)
    assert 0 < np.max(soft - hard) < 6 / 8 + 1e-9


def test_envelope_attack_and_release_times():
    sr = 1000
    x = np.concatenate([np.zeros(2000), np.ones(2000), np.zeros(2000)])
    env = envelope(x, sr, attack=0.2, release=0.3)
    rise = np.argmax(env[2000:] >= 1 - np.exp(-1)) / sr
    fall = np.argmax(env[4000:] <= env[3999] * np.exp(-1)) / sr
    assert abs(rise - 0.2) < 0.01 and abs(fall - 0.3) < 0.01


def test_compress_gain():
    rng = np.random.default_rng(0)
    y = (0.01 * rng.standard_normal((2, 20000))).astype(np.float32)
    np.testing.assert_allclose(compress(y, SR, points=CURVES["0,0"], makeup_db=0.0), y, rtol=1e-5)
    np.testing.assert_allclose(compress(y, SR, points=CURVES["0,0"], makeup_db=6.0), y * 10 ** (6 / 20), rtol=1e-4)
    # -60,-40: a quiet signal (about -42 dB mean level) is raised by about 14 dB
    out = compress(y, SR, points=CURVES["-60,-40"])
    gain_db = 20 * np.log10(out[:, 5000:].std() / y[:, 5000:].std())
    assert 12 < gain_db < 16
