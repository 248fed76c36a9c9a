"""AppTest: the Super-resolution page with real (tiny) SRCNN / RRDB / ESRGAN models."""
from __future__ import annotations

import pytest
import streamlit as st

import core.sr
from app_env import brain_png_bytes, logged_in, app_env, tiny_weights  # noqa: F401


@pytest.fixture()
def compare_calls(monkeypatch) -> list:
    calls: list = []
    original = core.sr.compare

    def counting(image, **kwargs):
        calls.append(kwargs)
        return original(image, **kwargs)

    monkeypatch.setattr(core.sr, "compare", counting)
    st.cache_data.clear()
    return calls


def _sr_page(app_env):
    at = logged_in("radiologist", app_env["ids"]).run()
    at.switch_page("app_pages/super_resolution.py").run()
    assert at.title[0].value == "Super-resolution"
    at.file_uploader(key="scan").upload("head.png", brain_png_bytes(128), "image/png").run()
    assert not at.exception, at.exception
    return at


def test_psnr_ssim_table_chart_and_cached_rerun(app_env, compare_calls):
    at = _sr_page(app_env)
    table = at.dataframe[0].value
    assert list(table["method"]) == ["Bicubic", "RRDB (PSNR)", "ESRGAN (α 0.80)"]
    assert (table["PSNR (dB)"] > 5).all() and table["SSIM"].between(-1, 1).all()
    assert list(table["model version"]) == ["—", "rrdb-test", "esrgan-test"]
    # every row with the same decimals (31.80, not 31.8)
    import json
    columns = json.loads(at.dataframe[0].proto.columns)
    assert columns["PSNR (dB)"]["type_config"]["format"] == "%.2f"
    assert columns["SSIM"]["type_config"]["format"] == "%.4f"
    assert len(at.get("plotly_chart")) >= 4  # metrics bars, panels, split slider, diff map
    assert len(compare_calls) == 1
    at.selectbox(key="sr_slider_method").set_value("rrdb_psnr").run()
    at.selectbox(key="sr_diff_method").set_value("esrgan").run()
    at.run()
    assert len(compare_calls) == 1
    # Adding SRCNN and moving alpha are new computations; going back is cached.
    at.multiselect(key="sr_methods").select("srcnn").run()
    assert len(compare_calls) == 2
    assert list(at.dataframe[0].value["method"]) == ["Bicubic", "SRCNN", "RRDB (PSNR)",
                                                     "ESRGAN (α 0.80)"]
    at.multiselect(key="sr_methods").unselect("srcnn").run()
    assert len(compare_calls) == 2
    assert not at.exception

    from core.db import init_db, session_scope
    from core.db.scans import scan_sr_results
    from core.imaging import load_scan

    with session_scope(init_db(app_env["MEDSCAN_DATABASE_URL"])) as s:
        rows = scan_sr_results(s, load_scan(brain_png_bytes(128)).sha256)
    assert {r.method for r in rows} == {"bicubic", "srcnn", "rrdb_psnr", "esrgan"}
    assert all(r.psnr is not None for r in rows)


def test_enhance_mode_explains_missing_metrics(app_env, compare_calls):
    at = _sr_page(app_env)
    at.segmented_control(key="sr_mode").set_value("enhance").run()
    assert not at.exception
    assert any("not applicable in enhance mode" in i.value for i in at.info)
    assert not at.dataframe  # no PSNR/SSIM table without a ground truth


def _rating_widget(widgets, suffix: str):
    """The SR rating form's widget; its key is ``sr_rating_<view digest>_<suffix>``."""
    (w,) = [w for w in widgets if (w.key or "").startswith("sr_rating_")
            and w.key.endswith("_" + suffix)]
    return w


def test_sr_rating_lands_in_database(app_env, compare_calls):
    at = _sr_page(app_env)
    at.selectbox(key="sr_rate_method").set_value("esrgan").run()
    _rating_widget(at.radio, "quality").set_value(3)
    _rating_widget(at.radio, "usefulness").set_value(4)
    _rating_widget(at.button, "submit").click().run()
    assert not at.exception and at.success[0].value == "Rating saved."

    from core.db import init_db, session_scope
    from core.db.ratings import my_ratings

    with session_scope(init_db(app_env["MEDSCAN_DATABASE_URL"])) as s:
        rows = my_ratings(s, app_env["ids"]["reader"])
    assert [(r.method, r.model_version, r.image_quality, r.diagnostic_usefulness)
            for r in rows] == [("esrgan", "esrgan-test", 3, 4)]
    assert (rows[0].scale, rows[0].mode, rows[0].alpha, rows[0].scan_name) == (
        4, "simulate", 0.8, "head.png")


def test_large_enhance_asks_first(app_env, compare_calls):
    at = logged_in("radiologist", app_env["ids"]).run()
    at.switch_page("app_pages/super_resolution.py").run()
    at.file_uploader(key="scan").upload("big.png", brain_png_bytes(300), "image/png").run()
    n = len(compare_calls)
    at.segmented_control(key="sr_mode").set_value("enhance").run()
    assert any("can take a minute" in w.value for w in at.warning)
    assert len(compare_calls) == n
    at.button(key="sr_confirm").click().run()
    assert not at.exception and len(compare_calls) == n + 1
    assert at.get("plotly_chart")


def test_image_figures_have_bare_axes():
    """Image panels, the split slider and the difference map show no tick marks or labels on
    any axis (a tick without a number is only clutter)."""
    import numpy as np

    from ui import plots

    img = np.zeros((16, 16), np.uint8)
    figs = [plots.image_panels({"a": img, "b": img, "c": img, "d": img}, cols=3),
            plots.split_compare(img, img, left_name="a", right_name="b"),
            plots.difference_map(img.astype(float), title="|a − b|")]
    for fig in figs:
        axes = [getattr(fig.layout, k) for k in fig.layout if k.startswith(("xaxis", "yaxis"))]
        assert axes
        for axis in axes:
            assert (axis.ticks, axis.showticklabels, axis.showline) == ("", False, False)


def test_kspace_degradation_adds_the_zero_filled_reference(app_env, compare_calls):
    from core.db import init_db, session_scope
    from core.db.tables import SRResult

    at = _sr_page(app_env)
    at.segmented_control(key="sr_degradation").set_value("kspace").run()
    assert not at.exception, at.exception
    assert compare_calls[-1]["degradation"] == "kspace"
    assert list(at.dataframe[0].value["method"])[:2] == ["Bicubic", "Zero-filled (sinc)"]
    assert any("made by k-space truncation" in c.value for c in at.caption)
    with session_scope(init_db(app_env["MEDSCAN_DATABASE_URL"])) as s:
        modes = {(r.method, r.mode) for r in s.query(SRResult)}
    assert ("zero_filled", "simulate-kspace") in modes and ("bicubic", "simulate") in modes
    assert "sr_degradation" in [w.key for w in at.get("button_group")]
    at.segmented_control(key="sr_mode").set_value("enhance").run()   # no degradation there
    assert not at.exception
    assert "sr_degradation" not in [w.key for w in at.get("button_group")]


CURVE = {"points": [{"alpha": a / 5, "psnr": 30.0 - a * 0.5, "ssim": 0.9 - a * 0.01}
                    for a in range(6)],
         "bicubic": {"psnr": 28.5, "ssim": 0.85}, "images": 40, "psnr_version": "srresnet-test",
         "degradation": "bicubic downscaling"}


@pytest.fixture()
def srgan_env(app_env, tiny_weights, tmp_path, monkeypatch) -> dict:
    """The tiny weights plus an SRResNet and an SRGAN (with an α curve in its card)."""
    import shutil

    from core import registry
    from core.models.srresnet import build_srresnet

    root = tmp_path / "weights"
    shutil.copytree(tiny_weights, root)
    net = {"scale": 4, "num_blocks": 1, "features": 8, "global_residual": True}
    for method, version, extra in (
            ("srresnet", "srresnet-test", {}),
            ("srgan", "srgan-test", {"init_version": "srresnet-test",
                                     "metrics": {"alpha_curve": CURVE}})):
        registry.save_version("sr", build_srresnet(**net), {
            "architecture": "srresnet", "network": net, "scale": 4, "method": method} | extra,
            version=version, activate=True, slot=f"{method}_x4", weights_dir=root)
    monkeypatch.setenv("MEDSCAN_WEIGHTS_DIR", str(root))
    return app_env | {"MEDSCAN_WEIGHTS_DIR": str(root)}


def test_srgan_and_srresnet_with_the_alpha_curve(srgan_env, compare_calls):
    """SRResNet and SRGAN are offered from the methods table; with a GAN chosen the α slider has
    the curve from its card beside it (ESRGAN's card has none: said so), the table labels both
    GANs with α, and the difference map says plainly that GAN output can invent structure."""
    import json

    at = _sr_page(srgan_env)
    ms = at.multiselect(key="sr_methods")
    assert list(ms.options) == ["SRCNN", "SRResNet (PSNR)", "SRGAN", "RRDB (PSNR)", "ESRGAN"]
    ms.select("srresnet").select("srgan").run()
    assert not at.exception, at.exception
    table = list(at.dataframe[0].value["method"])
    # The slider starts at SRGAN's recommended α (0.4: the largest beating bicubic's 28.5 dB /
    # 0.85 in both; 0.6 only ties in PSNR); ESRGAN's card has no curve (its own default 0.8).
    assert at.slider(key="sr_alpha").value == pytest.approx(0.4)
    assert any("Starts at α 0.4, the smallest" in c.value and "no trade-off curve" in c.value
               for c in at.caption)
    table = list(at.dataframe[0].value["method"])
    assert table == ["Bicubic", "SRResNet (PSNR)", "SRGAN (α 0.40)", "RRDB (PSNR)",
                     "ESRGAN (α 0.40)"]
    assert compare_calls[-1]["methods"] == ("bicubic", "srresnet", "srgan", "rrdb_psnr", "esrgan")

    def curve_chart():
        charts = [c for c in at.get("plotly_chart") if "sr_alpha_curve" in str(c.proto.id)]
        assert len(charts) == 1
        return json.loads(charts[0].proto.spec)

    spec = curve_chart()
    names = {t.get("name") for t in spec["data"]}
    assert names == {"SRGAN"}                     # ESRGAN's card has no curve
    assert [round(x, 1) for x in spec["data"][0]["x"]] == [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    rules = [s for s in spec["layout"]["shapes"] if s.get("x0") == s.get("x1")]
    assert {r["x0"] for r in rules} == {0.4}       # one rule per panel (PSNR, SSIM)
    assert any("No α curve recorded for ESRGAN" in c.value for c in at.caption)
    assert any("over 40 images" in c.value for c in at.caption)
    assert any("plausible structure that is not in the scan" in w.value for w in at.warning)

    at.slider(key="sr_alpha").set_value(0.2).run()
    assert not at.exception
    rules = [s for s in curve_chart()["layout"]["shapes"] if s.get("x0") == s.get("x1")]
    assert {r["x0"] for r in rules} == {0.2}
    assert "SRGAN (α 0.20)" in list(at.dataframe[0].value["method"])

    from core.db import init_db, session_scope
    from core.db.tables import SRResult

    with session_scope(init_db(srgan_env["MEDSCAN_DATABASE_URL"])) as s:
        rows = {(r.method, r.alpha) for r in s.query(SRResult)}
    assert ("srgan", 0.2) in rows and ("srresnet", None) in rows


def test_no_gan_chosen_no_slider_and_no_gan_note(srgan_env, compare_calls):
    at = _sr_page(srgan_env)
    at.multiselect(key="sr_methods").unselect("esrgan").run()
    assert not at.exception
    assert not [s for s in at.slider if s.key == "sr_alpha"]
    assert not any("plausible structure" in w.value for w in at.warning)
