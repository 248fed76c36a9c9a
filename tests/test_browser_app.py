"""End to end in a real browser (Playwright driving Debian's chromium against `streamlit run`):
log in, upload a DICOM, see class / probabilities / Grad-CAM, see PSNR/SSIM on the
super-resolution page, rate, reload and find the rating again."""
from __future__ import annotations

import shutil

import pytest

from browser.harness import browser_page, choose_radio, login, open_page, upload, wait_idle

pytestmark = pytest.mark.browser


def test_login_analyze_sr_rate_reload(server, tmp_path):
    from app_env import CLASSES, PASSWORDS
    from pydicom.data import get_testdata_file

    dicom = tmp_path / "MR_small"            # DICOM without an extension
    shutil.copy(get_testdata_file("MR_small.dcm"), dicom)
    with browser_page() as page:
        page.goto(server)
        page.get_by_label("User name").fill("reader")
        page.get_by_label("Password", exact=True).fill("wrong-password-1")
        page.get_by_role("button", name="Log in").click()
        page.get_by_text("Wrong user name or password.").wait_for()
        login(page, server, "reader", PASSWORDS["reader"])
        assert page.locator('[data-testid="stSidebarNav"]').get_by_text("Users").count() == 0

        upload(page, dicom)
        metric = page.locator('[data-testid="stMetric"]').first
        metric.wait_for()
        assert metric.locator('[data-testid="stMetricValue"]').inner_text().strip() in CLASSES
        assert "calibrated probability" in metric.inner_text()
        chart = page.locator('[data-testid="stPlotlyChart"]').filter(
            has_text="calibrated probability").first
        chart.wait_for()
        for name in CLASSES:                     # every class has a bar in the chart
            assert chart.locator("text", has_text=name).count() >= 1
        page.get_by_text("Grad-CAM of the predicted class").first.wait_for()
        assert page.locator('[data-testid="stImage"] img').count() >= 1  # the scan
        assert page.locator(".st-key-cam_picture .js-plotly-plot").count() == 1  # the overlay

        open_page(page, "Super-resolution")      # the upload is kept for this session
        page.get_by_role("heading", name="PSNR / SSIM").wait_for()
        assert page.locator('[data-testid="stDataFrame"]').count() >= 1
        bars = page.locator('[data-testid="stPlotlyChart"]').filter(
            has_text="PSNR (dB, higher is better)")
        bars.wait_for()
        assert "SSIM (higher is better)" in bars.inner_text()

        choose_radio(page, "Image quality", "4 · good")
        choose_radio(page, "Diagnostic usefulness", "3 · acceptable")
        page.get_by_role("button", name="Save rating").click()
        page.get_by_text("Rating saved.").wait_for()

        page.reload()        # a new browser session of the same login (session cookie)
        page.get_by_role("heading", name="Super-resolution").first.wait_for()
        wait_idle(page)
        assert page.get_by_label("Password", exact=True).count() == 0
        open_page(page, "My ratings")
        page.get_by_text("1 rating(s), newest first").wait_for()
        open_page(page, "Super-resolution")
        upload(page, dicom)
        page.get_by_role("button", name="Update rating").wait_for()
        page.get_by_text("You rated this on").wait_for()
        wait_idle(page)
