"""MRI-true degradation (issue 13): k-space truncation, zero-filled (sinc) reference, Rician
noise; in ``degrade``, ``compare``, ``evaluate sr --degradation``, training patches and the
Super-resolution page."""
from __future__ import annotations

import json

import numpy as np
import pytest

from core.sr.data import DegradationConfig
from core.sr.degrade import (add_rician_noise, degrade, kspace_downsample, rician_sigma,
                             zero_filled_upscale)


def _band_limited(h: int, w: int, scale: int, seed: int = 0) -> np.ndarray:
    """A real image whose spectrum lies strictly inside the central 1/scale per axis."""
    rng = np.random.default_rng(seed)
    fy, fx = np.fft.fftfreq(h) * h, np.fft.fftfreq(w) * w
    mask = (np.abs(fy)[:, None] < h / (2 * scale)) & (np.abs(fx)[None, :] < w / (2 * scale))
    img = np.real(np.fft.ifft2((rng.normal(size=(h, w)) + 1j * rng.normal(size=(h, w))) * mask))
    return ((img - img.min()) / (img.max() - img.min()) * 0.8 + 0.1).astype(np.float32)


@pytest.mark.parametrize("shape,scale", [((64, 64), 4), ((48, 80), 2), ((96, 64), 4)])
def test_kspace_crop_of_a_band_limited_image_is_exact(shape, scale):
    img = _band_limited(*shape, scale)
    lr = kspace_downsample(img, scale)
    assert lr.shape == (shape[0] // scale, shape[1] // scale)
    # no aliasing: zero-filling its spectrum gives the HR image back
    assert np.abs(zero_filled_upscale(lr, scale) - img).max() < 1e-5


def test_kspace_lr_pixels_sit_where_bicubic_puts_them():
    """Both LR grids put pixel m at HR position m·s + (s−1)/2 (centres half a pixel in from
    the field of view's edge): on a smooth image the two LR images agree to > 50 dB, where a
    bare DFT crop (sampling at m·s, 1.5 px off at ×4) does not."""
    import cv2

    from core.sr.metrics import psnr

    x = np.zeros((256, 256), np.float32)
    cv2.circle(x, (128, 128), 80, 0.7, -1)
    x = cv2.GaussianBlur(x, (0, 0), 4)
    assert psnr(degrade(x, 4), degrade(x, 4, kind="kspace"), crop_border=2) > 50
    bare = np.abs(np.fft.ifft2(np.fft.ifftshift(
        np.fft.fftshift(np.fft.fft2(x))[96:160, 96:160]))) / 16
    assert psnr(degrade(x, 4), bare.astype(np.float32), crop_border=2) < 40


def test_kspace_keeps_intensity_and_a_window_smooths():
    rng = np.random.default_rng(1)
    img = rng.random((64, 64)).astype(np.float32)
    lr = kspace_downsample(img, 4)
    assert abs(float(lr.mean()) - float(img.mean())) < 0.02
    edge = np.full((64, 64), 0.2, np.float32)
    edge[:, 16:48] = 0.8                       # sharp edges ring (Gibbs) without a window
    plain = zero_filled_upscale(kspace_downsample(edge, 4), 4)
    tapered = zero_filled_upscale(kspace_downsample(edge, 4, window="hamming"), 4)
    assert plain.max() > 0.83 and tapered.max() < 0.81
    with pytest.raises(ValueError, match="divisible"):
        kspace_downsample(img[:63], 4)
    with pytest.raises(ValueError, match="window"):
        kspace_downsample(img, 4, window="boxcar")


def test_rician_noise_statistics():
    img = np.zeros((400, 400), np.float32)
    img[100:300, 100:300] = 0.6
    sigma = rician_sigma(img, 12)
    assert sigma == pytest.approx(0.05)
    noisy = add_rician_noise(img, 12, np.random.default_rng(2))
    background = noisy[:80, :80]               # no signal: Rayleigh, mean sigma * sqrt(pi / 2)
    assert background.mean() == pytest.approx(sigma * np.sqrt(np.pi / 2), rel=0.03)
    assert (background >= 0).all()
    signal = noisy[120:280, 120:280]           # high SNR: mean ~ sqrt(A^2 + sigma^2)
    assert signal.mean() == pytest.approx(np.sqrt(0.6 ** 2 + sigma ** 2), rel=0.01)
    assert signal.std() == pytest.approx(sigma, rel=0.05)
    with pytest.raises(ValueError):
        rician_sigma(img, 0)


def test_degrade_kinds_and_training_mixture():
    hr = _band_limited(64, 64, 2)
    bic = degrade(hr, 4)
    ks = degrade(hr, 4, kind="kspace")
    assert bic.shape == ks.shape == (16, 16) and not np.allclose(bic, ks)
    noisy = degrade(hr, 4, kind="kspace", rician_snr=10, rng=np.random.default_rng(0))
    assert 0 <= noisy.min() and noisy.max() <= 1 and not np.allclose(noisy, ks)
    with pytest.raises(ValueError, match="Unknown degradation"):
        degrade(hr, 4, kind="nearest")
    mixed = DegradationConfig(kspace_fraction=0.5)
    rng = np.random.default_rng(3)
    outs = [mixed.apply(hr, 4, rng) for _ in range(20)]
    n_kspace = sum(np.allclose(o, np.clip(ks, 0, 1), atol=1e-6) for o in outs)
    assert 3 <= n_kspace <= 17 and sum(np.allclose(o, bic) for o in outs) == 20 - n_kspace
    card = mixed.describe()
    assert card["kind"] == "mixed" and card["kspace_fraction"] == 0.5


def test_compare_in_kspace_mode_adds_zero_filled_and_says_so():
    from core.sr import compare

    hr = _band_limited(64, 64, 4)
    res = compare(hr, scale=4, methods=("bicubic",), degradation="kspace")
    assert list(res.outputs) == ["bicubic", "zero_filled"]
    assert "k-space truncation" in res.degradation
    # a band-limited image: zero-filling restores it, bicubic does not
    assert res.metrics["zero_filled"]["psnr"] > 60 > res.metrics["bicubic"]["psnr"]
    assert compare(hr, scale=4, methods=("bicubic",)).degradation == "bicubic downscaling"


def test_evaluate_sr_kspace_json(tmp_weights, data_dir, capsys):
    from core.cli import main

    rc = main(["evaluate", "sr", "--data", str(data_dir / "brain-mri-hr"), "--scale", "4",
               "--limit", "2", "--methods", "bicubic", "--degradation", "kspace",
               "--window", "tukey", "--rician-snr", "40", "--json"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(out["methods"]) == {"bicubic", "zero_filled"}
    assert out["degradation"]["kind"] == "kspace" and out["degradation"]["window"] == "tukey"
    assert out["degradation"]["rician_snr"] == 40
    for d in out["methods"].values():
        assert 15 < d["psnr"] < 60 and 0 < d["ssim"] <= 1
