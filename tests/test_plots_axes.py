"""Charts with honest axes (issue 18): PSNR / SSIM as dots on axes that span the values shown,
not bars from zero that make 29 and 32 dB look alike; fixed decimals."""
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
