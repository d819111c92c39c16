"""rawnet (Jung et al., Interspeech 2020, Table 1): shapes and the parameter count by hand."""
from __future__ import annotations

import numpy as np
import pytest

from asctool.models import build


def _expected_params(channels, classes, first=128, blocks=(64, 64, 128, 128, 128, 128, 128), code=64):
    bn = lambda f: 4 * f                                  # gamma, beta, moving mean, moving variance
    total = 12 * channels * first + first + bn(first)     # strided conv 1x12 (bias) + BN
    previous = first
    for f in blocks:
        total += 3 * previous * f + f + bn(f)             # conv 1x3 + BN
        total += 3 * f * f + f + bn(f)                    # conv 1x3 + BN
        if f != previous:
            total += previous * f + f                     # 1x1 skip convolution
        previous = f
    total += 2 * previous * code + code                   # [avg ; max] -> code
    return total + code * classes + classes


def test_rawnet_parameter_count_matches_table_1():
    model = build("rawnet", 10, (1, 479999, 2))
    assert model.count_params() == _expected_params(2, 10) == 573_450   # the sum done on paper, layer by layer:
    # stem 3,712; block 1 (128 -> 64, with its 1x1 skip) 45,760; block 2 25,216; block 3 (64 -> 128) 83,328;
    # blocks 4-7 4 x 99,584; code 16,448; output 650
    # 479,999 samples / 12 = 39,999 frames, then 7 max-poolings of 3 (ceil): 19 frames of 128 filters
    assert tuple(model.get_layer("features_out").output.shape) == (None, 1, 19, 128)


def test_rawnet_small_runs_and_options():
    blocks = (8, 8, 16)
    model = build("rawnet", 3, (1, None, 1), first_filters=8, block_filters=blocks, code=16)
    assert model.count_params() == _expected_params(1, 3, 8, blocks, 16)
    out = model.predict_on_batch(np.random.default_rng(0).normal(size=(2, 1, 12 * 81, 1)).astype(np.float32))
    assert out.shape == (2, 3)
    np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-5)


@pytest.mark.slow
def test_rawnet_trains_on_waveform_features(tmp_path):
    from helpers import make_features

    from asctool.stages.train import run as train

    data = make_features(tmp_path / "raw.h5", 24, shape=(1, 12 * 81, 1), config={"frontend": "raw", "sr": 8000})
    summary = train([data], "rawnet", tmp_path / "run", profile="demo", epochs=2, batch_size=8, valid_split=0.25,
                    model_options={"first_filters": 8, "block_filters": "8,8,16", "code": 16})
    assert summary["epochs_run"] == 2 and (tmp_path / "run" / "model.keras").is_file()


def test_rawnet_pool_bn_option_normalises_the_pooled_vector():
    plain = build("rawnet", 3, (1, None, 1), first_filters=8, block_filters=(8, 16), code=16)
    normed = build("rawnet", 3, (1, None, 1), first_filters=8, block_filters=(8, 16), code=16, pool_bn=True)
    assert normed.count_params() - plain.count_params() == 4 * 2 * 16   # gamma, beta, mean, variance of [avg ; max]
    assert normed.get_layer("pool_bn").output.shape[-1] == 32
