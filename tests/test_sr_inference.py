"""Tiled inference, network interpolation, degradation, compare() and available_methods()."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from core import registry
from core.models.rrdbnet import build_rrdbnet
from core.sr import SR_METHODS, available_methods, bicubic_upscale, compare, degrade
from core.sr.models import (BicubicSR, InterpolatedSR, KerasSR, interpolate_weights,
                            load_sr_model, slot_name)
from core.sr.tiling import tile_starts, upscale_tiled

REPO_WEIGHTS = Path(__file__).resolve().parent.parent / "weights"

NET = {"scale": 4, "num_feat": 8, "num_block": 1, "num_grow_ch": 4, "global_residual": True}


def _rrdb(seed: int, gain: float = 1.0):
    import keras

    keras.utils.set_random_seed(seed)
    model = build_rrdbnet(**NET)
    model.set_weights([w * gain for w in model.get_weights()])
    return model


def _card(method: str, version: str, **extra) -> dict:
    return {"architecture": "rrdbnet", "network": dict(NET), "scale": 4, "method": method,
            "version": version} | extra


def _publish(tmp_weights, method, version, model, **extra):
    registry.save_version("sr", model, _card(method, version, **extra), version=version,
                          activate=True, slot=slot_name(method, 4), weights_dir=tmp_weights)


@pytest.mark.parametrize("length,tile,overlap", [(10, 16, 4), (16, 16, 4), (50, 16, 4),
                                                 (33, 8, 2)])
def test_tile_starts_cover_everything(length, tile, overlap):
    starts = tile_starts(length, tile, overlap)
    covered = np.zeros(length, bool)
    for s in starts:
        covered[s:s + tile] = True
        assert s + min(tile, length) <= length
    assert covered.all() and starts[0] == 0


def test_tiling_is_exact_for_pointwise_model():
    lr = np.random.default_rng(0).random((37, 53, 1)).astype(np.float32)
    predict = lambda x: np.repeat(np.repeat(x, 2, 1), 2, 2) ** 2  # noqa: E731
    tiled = upscale_tiled(predict, lr, 2, tile=16, overlap=4)
    np.testing.assert_allclose(tiled, predict(lr[None])[0], atol=1e-6)


def test_tiled_equals_untiled_within_one_grey_level():
    sr = KerasSR(_rrdb(1, gain=3.0), _card("rrdb_psnr", "t"), "rrdb_psnr")
    lr = degrade(np.random.default_rng(1).random((160, 224)).astype(np.float32), 4)  # 40×56
    untiled = sr.upscale(lr, tile=0)
    tiled = sr.upscale(lr, tile=16, overlap=6)  # 28² windows: tiled in both directions
    assert untiled.shape == tiled.shape == (160, 224)
    assert np.abs(tiled - untiled).max() <= 1 / 255
    assert np.abs(untiled - bicubic_upscale(lr, 4)).max() > 1e-3  # the model does something


def test_interpolation_endpoints_equal_source_models():
    psnr_m, gan_m = _rrdb(2), _rrdb(3, gain=2.0)
    x = np.random.default_rng(2).random((1, 12, 12, 1)).astype(np.float32)
    want_psnr, want_gan = np.asarray(psnr_m(x)), np.asarray(gan_m(x))
    wrapper = InterpolatedSR(gan_m, _card("esrgan", "g"), psnr_m.get_weights(), "p")
    for alpha, want in ((0.0, want_psnr), (1.0, want_gan), (0.0, want_psnr)):
        wrapper.set_alpha(alpha)
        np.testing.assert_array_equal(np.asarray(wrapper.model(x)), want)
    mid = interpolate_weights(psnr_m.get_weights(), gan_m.get_weights(), 0.25)
    np.testing.assert_allclose(mid[0], 0.75 * psnr_m.get_weights()[0]
                               + 0.25 * gan_m.get_weights()[0], rtol=1e-6)
    with pytest.raises(Exception, match="alpha"):
        wrapper.set_alpha(1.5)


def test_degrade_and_bicubic_shapes():
    hr = np.random.default_rng(3).random((64, 48, 3)).astype(np.float32)
    lr = degrade(hr, 4, blur_sigma=1.0, noise_sigma=0.01, rng=np.random.default_rng(0))
    assert lr.shape == (16, 12, 3) and lr.min() >= 0 and lr.max() <= 1
    assert bicubic_upscale(lr, 4).shape == (64, 48, 3)
    with pytest.raises(ValueError, match="divisible"):
        degrade(hr[:63], 4)


def test_compare_simulate_and_enhance(tmp_weights):
    _publish(tmp_weights, "rrdb_psnr", "p1", _rrdb(4))
    _publish(tmp_weights, "esrgan", "g1", _rrdb(5, gain=2.0), init_version="p1")
    assert available_methods(4) == {"bicubic": None, "rrdb_psnr": "p1", "esrgan": "g1"}
    assert available_methods(2) == {"bicubic": None}
    models = {m: load_sr_model(m, 4) for m in ("bicubic", "rrdb_psnr", "esrgan")}
    assert isinstance(models["bicubic"], BicubicSR) and models["esrgan"].psnr_version == "p1"
    image = (np.random.default_rng(4).random((66, 70)) * 255).astype(np.uint8)
    res = compare(image, scale=4, mode="simulate", methods=("bicubic", "rrdb_psnr", "esrgan"),
                  alpha=0.5, tile=8, models=models)
    assert res.hr.shape == (64, 68) and res.lr.shape == (16, 17)
    for m in ("bicubic", "rrdb_psnr", "esrgan"):
        assert res.outputs[m].shape == (64, 68) and res.outputs[m].dtype == np.float32
        assert set(res.metrics[m]) == {"psnr", "ssim"} and math.isfinite(res.metrics[m]["psnr"])
        assert res.diff_maps[m].shape == (64, 68)
    assert res.versions == {"bicubic": None, "rrdb_psnr": "p1", "esrgan": "g1"}
    assert res.metrics_note is None

    rgb = np.random.default_rng(5).random((20, 24, 3)).astype(np.float32)
    enh = compare(rgb, scale=4, mode="enhance", methods=("bicubic", "rrdb_psnr"), tile=0)
    assert enh.hr is None and enh.metrics is None and enh.diff_maps is None
    assert "not applicable" in enh.metrics_note
    assert enh.outputs["rrdb_psnr"].shape == (80, 96, 3)
    assert set(SR_METHODS) == {"bicubic", "srcnn", "rrdb_psnr", "esrgan", "zero_filled"}


@pytest.mark.parametrize("method", ["srcnn", "rrdb_psnr", "esrgan"])
def test_shipped_models_tiled_equal_untiled_for_every_tile_size(method):
    """The shipped ×4 models (weights/, in the repository): every tile size the CLI and the
    app offer gives the untiled result within half a grey level (so the 8-bit images agree
    within 1/255): cores are stitched, no seams blended, and the default 16-pixel context
    covers the models' effective receptive field. The blended seams before measured up to
    0.9/255 here and 2/255 on a 128² slice at tile 48."""
    import cv2

    from core.sr.models import load_sr_model
    from core.sr.tiling import DEFAULT_OVERLAP

    rng = np.random.default_rng(7)
    lr = cv2.GaussianBlur(rng.random((88, 120)).astype(np.float32), (0, 0), 1.5)
    lr = np.clip(lr * 3 - 1, 0, 1).astype(np.float32)          # contrast, edges
    model = load_sr_model(method, 4, weights_dir=REPO_WEIGHTS)
    untiled = model.upscale(lr, tile=0, alpha=0.8)
    worst = {}
    for tile in (8, 16, 24, 32, 48, 64, 128):
        tiled = model.upscale(lr, tile=tile, overlap=DEFAULT_OVERLAP, alpha=0.8)
        worst[tile] = float(np.abs(tiled - untiled).max()) * 255
    assert max(worst.values()) <= 0.5, worst
