"""Honest figures on the pages: PSNR / SSIM dots on axes spanning the values (issue 18), and
where Grad-CAM looks against expert masks in "About this model" (issue 10)."""
from __future__ import annotations

import math

from ui.plots import metrics_bars


def test_psnr_and_ssim_axes_span_the_values_with_fixed_decimals():
    fig = metrics_bars({"bicubic": {"psnr": 28.9, "ssim": 0.851},
                        "rrdb_psnr": {"psnr": 30.87, "ssim": 0.885},
                        "esrgan": {"psnr": 26.4, "ssim": 0.8}})
    lo, hi = fig.layout.yaxis.range
    assert 20 < lo < 26.4 and 30.87 < hi < 33            # not from 0 dB
    slo, shi = fig.layout.yaxis2.range
    assert 0.7 < slo < 0.8 and 0.885 < shi < 0.95
    psnr, ssim = fig.data
    assert list(psnr.text) == ["28.90", "30.87", "26.40"]
    assert list(ssim.text) == ["0.8510", "0.8850", "0.8000"]
    assert all(t.type == "scatter" and t.mode == "markers+text" for t in fig.data)


def test_identical_images_show_infinity_at_the_top():
    fig = metrics_bars({"bicubic": {"psnr": 30.0, "ssim": 0.9},
                        "same": {"psnr": math.inf, "ssim": 1.0}})
    psnr = fig.data[0]
    assert list(psnr.text) == ["30.00", "∞"] and psnr.y[1] == fig.layout.yaxis.range[1]


def test_about_this_model_says_where_gradcam_looks():
    """The classifier card's Grad-CAM localization figures (issue 10) reach "About this model"
    in words; a card without them says nothing about it."""
    import json
    from pathlib import Path

    from ui.analysis import localization_card_text

    card = json.loads((Path(__file__).resolve().parent.parent / "weights" / "classifier" /
                       "vgg16_bn-w0.5-96px-20261122" / "model_card.json").read_text())
    text = localization_card_text(card)
    assert "Grad-CAM peak lies on the tumour in 37%" in text and "uniform map: 4%" in text
    assert localization_card_text({"classes": ["a"]}) is None
