"""Tiled inference, network interpolation, degradation, compare() and available_methods()."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from core import registry
from core.models.rrdbnet import build_rrdbnet
from core.sr import SR_METHODS, available_methods, bicubic_upscale, compare, degrade
from core.sr.upscalers import (BicubicSR, InterpolatedSR, KerasSR, interpolate_weights,
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
    assert set(SR_METHODS) == {"bicubic", "srcnn", "srresnet", "srgan", "rrdb_psnr", "esrgan",
                               "zero_filled"}


#: Every tile size the CLI (``--tile``) and the app accept, from the smallest up; 0 is untiled.
TILE_SIZES = (8, 12, 16, 24, 32, 48, 64, 96, 128)


def _edgy_lr(shape=(88, 120), seed=7):
    import cv2

    rng = np.random.default_rng(seed)
    lr = cv2.GaussianBlur(rng.random(shape).astype(np.float32), (0, 0), 1.5)
    return np.clip(lr * 3 - 1, 0, 1).astype(np.float32)          # contrast, edges


def _worst_tiled_error(model, lr, **kw) -> dict[int, float]:
    untiled = model.upscale(lr, tile=0, **kw)
    return {tile: float(np.abs(model.upscale(lr, tile=tile, **kw) - untiled).max()) * 255
            for tile in TILE_SIZES}


@pytest.mark.parametrize("method,scale", [("srcnn", 4), ("rrdb_psnr", 4), ("esrgan", 4),
                                          ("srresnet", 4), ("srgan", 4),
                                          ("rrdb_psnr", 2), ("srcnn", 2)])
def test_shipped_models_tiled_equal_untiled_for_every_tile_size(method, scale):
    """The shipped models (weights/, in the repository): every tile size the CLI and the app
    accept gives the untiled result within half a grey level (so the 8-bit images agree within
    1/255), with the context margin each model measures for itself (no fixed overlap)."""
    model = load_sr_model(method, scale, weights_dir=REPO_WEIGHTS)
    assert 0 < model.context <= model.radius
    worst = _worst_tiled_error(model, _edgy_lr(), alpha=0.8)
    assert max(worst.values()) <= 0.5, (model.context, worst)


@pytest.mark.parametrize("scale", [2, 4])
def test_srresnet_tiled_equals_untiled_for_every_tile_size(scale):
    """SRResNet at the shipped depth (16 blocks: the receptive field does not depend on the
    width) with 8 features and random weights, batch norm statistics moved off identity."""
    import keras

    from core.models.srresnet import build_srresnet

    keras.utils.set_random_seed(3)
    net = {"scale": scale, "num_blocks": 16, "features": 8, "global_residual": True}
    model = build_srresnet(**net)
    rng = np.random.default_rng(0)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            g, b, mean, var = layer.get_weights()
            layer.set_weights([g, b, rng.normal(0, 0.1, mean.shape),
                               rng.uniform(0.5, 2, var.shape)])
    sr = KerasSR(model, {"architecture": "srresnet", "network": net, "scale": scale}, "srresnet")
    assert sr.radius == 40 and sr.context <= sr.radius
    worst = _worst_tiled_error(sr, _edgy_lr((72, 100)))
    assert max(worst.values()) <= 0.5, (sr.context, worst)


def test_overlap_at_the_receptive_radius_is_exact():
    """With the theoretical radius as overlap nothing outside a window can reach its core."""
    sr = KerasSR(_rrdb(6, gain=3.0), _card("rrdb_psnr", "t"), "rrdb_psnr")
    assert sr.radius == 2 + 15 + 2        # conv_first, 1 RRDB (15 convs), conv_body, HR convs
    lr = _edgy_lr((50, 70))
    untiled = sr.upscale(lr, tile=0)
    np.testing.assert_allclose(sr.upscale(lr, tile=8, overlap=sr.radius), untiled, atol=1e-5)


@pytest.mark.parametrize("tile", [-1, 1, 7, 2.5])
def test_tile_sizes_below_the_minimum_are_refused(tile):
    from core.errors import MedScanError

    sr = KerasSR(_rrdb(6), _card("rrdb_psnr", "t"), "rrdb_psnr")
    with pytest.raises(MedScanError, match="Tile size"):
        sr.upscale(np.zeros((20, 20), np.float32), tile=tile)


def test_default_tile_follows_the_memory_budget(monkeypatch):
    """Untiled while the activations fit MEDSCAN_SR_MEMORY_MB; otherwise as few equal cores
    as fit, each window within the budget."""
    from core.sr.tiling import MIN_AUTO_TILE, auto_tile

    per_px = 8601.6                                     # the shipped ×4 RRDB's estimate
    assert auto_tile(128, 128, 14, per_px, budget_mb=2048) == 0
    assert auto_tile(512, 512, 14, per_px, budget_mb=4096) == 0
    tile = auto_tile(512, 512, 14, per_px, budget_mb=2048)
    assert tile == 256                                  # two cores a side, not 470 + 42
    assert (tile + 28) ** 2 * per_px <= 2048 * 2**20
    assert auto_tile(4096, 4096, 14, per_px, budget_mb=1) == MIN_AUTO_TILE
    monkeypatch.setenv("MEDSCAN_SR_MEMORY_MB", "64")
    sr = KerasSR(_rrdb(6), _card("rrdb_psnr", "t"), "rrdb_psnr")
    assert sr.tile_for(40, 40) == 0 and sr.tile_for(200, 200) > 0
