"""asctool.augment: the registry, parameters, per-clip randomness and the basic methods (pure functions)."""
from __future__ import annotations

import numpy as np
import pytest

from asctool.augment import available, clip_rng, get, parse_params
from asctool.augment.apply import limit_peak
from asctool.augment.basic import add_noise, fit_length, mix_clips, pitch_shift, time_stretch_to_length
from asctool.cli import cli
from asctool.errors import ConfigError

SR = 16000
N = 8000  # 0.5 s


# --------------------------------------------------------------------------
# registry and parameters
# --------------------------------------------------------------------------
def test_registry_matches_the_command_line():
    method = next(p for p in cli.commands["augment"].params if p.name == "method")
    assert tuple(available()) == tuple(method.type.choices)


def test_params_are_validated():
    aug = get("pitch")
    assert parse_params(aug, ["n_steps_max=2"])["n_steps_max"] == 2.0
    with pytest.raises(ConfigError, match=r"unknown parameter 'foo'; known: bins_per_octave, n_steps_max, n_steps_min"):
        parse_params(aug, ["foo=1"])
    with pytest.raises(ConfigError, match=r"n_steps_min=3.0 is greater than n_steps_max=2.0"):
        parse_params(aug, ["n_steps_min=3", "n_steps_max=2"])
    with pytest.raises(ConfigError, match="is not a number"):
        parse_params(aug, ["n_steps_min=abc"])
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        parse_params(aug, ["n_steps_min"])
    with pytest.raises(ConfigError, match="noise_std=0.0 must be > 0"):
        parse_params(get("noise"), {"noise_std": 0})
    with pytest.raises(ConfigError, match="unknown augmentation 'echo'"):
        get("echo")


def test_clip_rng_is_stable_and_per_clip():
    a = clip_rng(3, "noise", "x").random(4)
    np.testing.assert_array_equal(a, clip_rng(3, "noise", "x").random(4))
    assert not np.array_equal(a, clip_rng(3, "noise", "y").random(4))
    assert not np.array_equal(a, clip_rng(4, "noise", "x").random(4))
    # pinned: SHA-256 based, independent of the Python process (hash randomisation)
    assert clip_rng(0, "noise", "x").integers(1 << 30) == clip_rng(0, "noise", "x").integers(1 << 30)


# --------------------------------------------------------------------------
# pure functions
# --------------------------------------------------------------------------
def test_fit_length_repeats_or_cuts():
    y = np.arange(3.0)[None]
    np.testing.assert_array_equal(fit_length(y, 7), [[0, 1, 2, 0, 1, 2, 0]])
    np.testing.assert_array_equal(fit_length(y, 2), [[0, 1]])


def _peak_hz(y, sr):
    spec = np.abs(np.fft.rfft(y[0] * np.hanning(y.shape[-1])))
    return np.argmax(spec) * sr / y.shape[-1]


def test_pitch_shift_moves_frequency_and_keeps_length():
    t = np.arange(N) / SR
    y = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None]
    out = pitch_shift(y, SR, 12.0)
    assert out.shape == y.shape and out.dtype == np.float32
    assert abs(_peak_hz(out, SR) - 880) < 10


def test_time_stretch_keeps_length_and_pitch():
    t = np.arange(N) / SR
    y = (0.5 * np.sin(2 * np.pi * 500 * t)).astype(np.float32)[None]
    for rate in (0.5, 2.0):
        out = time_stretch_to_length(y, rate)
        assert out.shape == y.shape
        assert abs(_peak_hz(out, SR) - 500) < 10
    # faster: the stretched clip (about N/2 samples) is repeated
    ramp = np.linspace(-0.5, 0.5, N, dtype=np.float32)[None]
    fast = time_stretch_to_length(ramp, 2.0)
    assert np.corrcoef(fast[0, : N // 2 - 1000], fast[0, N // 2: N - 1000])[0, 1] > 0.5


def test_noise_and_mix_formulas():
    y = np.zeros((1, 50000), np.float32)
    out = add_noise(y, clip_rng(0, "t", "x").normal(0, 0.01, size=y.shape))
    assert abs(out.std() - 0.01) < 5e-4
    a, b = np.ones((1, 4), np.float32), np.arange(2, dtype=np.float32)[None]
    np.testing.assert_allclose(mix_clips(a, b, 0.5, 2.0), [[0.5, 2.5, 0.5, 2.5]])
    np.testing.assert_allclose(mix_clips(np.ones((2, 3), np.float32), np.ones((3, 3)), 1, 1), 2 * np.ones((2, 3)))


def test_limit_peak():
    y, scaled = limit_peak(np.array([[0.5, -2.0]], np.float32))
    assert scaled and np.isclose(np.abs(y).max(), 0.99)
    y, scaled = limit_peak(np.array([[0.5, -1.0]], np.float32))
    assert not scaled and y[0, 1] == -1.0
