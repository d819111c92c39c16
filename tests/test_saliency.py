"""asctool.saliency: Grad-CAM maps and their upsampling."""
from __future__ import annotations

import numpy as np

from asctool.saliency import upsample


def test_upsample_keeps_constant_and_orientation():
    np.testing.assert_allclose(upsample(np.full((2, 3), 0.5), (8, 12)), 0.5)
    ramp = upsample(np.array([[0.0], [1.0]]), (8, 4))
    assert ramp.shape == (8, 4)
    assert (np.diff(ramp[:, 0]) >= 0).all() and ramp[0, 0] == 0.0 and ramp[-1, 0] == 1.0
