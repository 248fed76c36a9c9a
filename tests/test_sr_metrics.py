"""PSNR/SSIM contract: agree with scikit-image, inf / 1.0 for identical images, border crop."""
from __future__ import annotations

import math

import numpy as np
import pytest
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from core.sr.metrics import diff_map, psnr, ssim


def _pair(shape, seed=0):
    rng = np.random.default_rng(seed)
    ref = rng.random(shape).astype(np.float32)
    out = np.clip(ref + rng.normal(0, 0.05, shape), 0, 1).astype(np.float32)
    return ref, out


@pytest.mark.parametrize("shape", [(40, 48), (40, 48, 3)])
@pytest.mark.parametrize("crop", [0, 2, 4])
def test_agrees_with_skimage(shape, crop):
    ref, out = _pair(shape)
    sl = (slice(crop, -crop or None), slice(crop, -crop or None))
    r, o = ref[sl].astype(np.float64), out[sl].astype(np.float64)
    assert psnr(ref, out, crop_border=crop) == pytest.approx(
        peak_signal_noise_ratio(r, o, data_range=1.0), abs=1e-9)
    expected = structural_similarity(r, o, data_range=1.0, gaussian_weights=True, sigma=1.5,
                                     use_sample_covariance=False,
                                     channel_axis=-1 if len(shape) == 3 else None)
    assert ssim(ref, out, crop_border=crop) == pytest.approx(expected, abs=1e-9)


def test_psnr_known_value():
    ref = np.zeros((16, 16), np.float32)
    out = np.full((16, 16), 0.1, np.float32)
    assert psnr(ref, out) == pytest.approx(20.0, abs=1e-4)  # MSE 0.01 → 20 dB


@pytest.mark.parametrize("shape", [(32, 32), (32, 32, 3)])
def test_identical_images(shape):
    ref, _ = _pair(shape)
    assert math.isinf(psnr(ref, ref.copy(), crop_border=4))
    assert ssim(ref, ref.copy(), crop_border=4) == 1.0


def test_border_crop_ignores_the_border():
    ref, _ = _pair((32, 32))
    out = ref.copy()
    out[:4] = 0.0
    assert math.isinf(psnr(ref, out, crop_border=4))
    assert psnr(ref, out, crop_border=0) < 30


def test_shape_mismatch_and_diff_map():
    ref, out = _pair((20, 20, 3))
    with pytest.raises(ValueError, match="shapes differ"):
        psnr(ref, out[:-1])
    with pytest.raises(ValueError, match="shapes differ"):
        ssim(ref, out[..., :1])
    d = diff_map(ref, out)
    assert d.shape == (20, 20) and d.dtype == np.float32
    np.testing.assert_allclose(d, np.abs(out - ref).mean(-1), atol=1e-6)
