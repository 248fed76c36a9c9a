"""The Cornerstone3D viewer (issue 18) in a real browser (Playwright driving Debian's chromium
against `streamlit run`): on Super-resolution, zooming one panel zooms the others, a left-drag
changes window / level and the values shown, the split comparison against the original moves
with the mouse; on Analyze, Ctrl+wheel scrolls the frames of a multi-frame DICOM and the
read-out shows the pixel under the mouse. Screenshots at 1400 px go to $MEDSCAN_SHOTS (default:
a temporary folder); ``MEDSCAN_SHOTS=screenshots`` refreshes the committed ones."""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from browser.traffic import click_plotly_slider, plotly_graph, plotly_value
from browser.harness import (UPLOADER, app_server, browser_page, login, open_page,
                             require_browser, wait_idle)

pytestmark = pytest.mark.browser

IFRAME = 'iframe[title*="medscan_viewer"]'


@pytest.fixture(scope="module")
def app():
    require_browser()
    with app_server() as (url, env):
        yield url, env


@pytest.fixture(scope="module")
def server(app):
    return app[0]


@pytest.fixture()
def shots() -> Path:
    folder = Path(os.environ.get("MEDSCAN_SHOTS") or tempfile.mkdtemp(prefix="shots-"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _viewer(page):
    """The viewer's frame, once its panels are drawn."""
    frame = page.frame_locator(IFRAME).first
    frame.locator('#root[data-ready="1"]').wait_for(timeout=90_000)
    page.wait_for_timeout(500)
    return frame


def _cells(frame) -> list[dict]:
    return frame.locator(".cell").evaluate_all(
        "cells => cells.map(c => ({label: c.dataset.label, zoom: Number(c.dataset.zoom),"
        " window: c.dataset.window, frame: Number(c.dataset.frame),"
        " wl: c.querySelector('.wl').textContent}))")


def _centre(locator) -> tuple[float, float]:
    box = locator.bounding_box()
    return box["x"] + box["width"] / 2, box["y"] + box["height"] / 2


def _poll(page, check, timeout_ms: int = 15_000):
    """Wait until ``check()`` returns a truthy value (the viewer updates asynchronously)."""
    waited = 0
    while True:
        value = check()
        if value or waited >= timeout_ms:
            return value
        page.wait_for_timeout(200)
        waited += 200


def _shot(page, frame, path: Path) -> None:
    """The page at 1400 px with the viewer in view."""
    frame.locator("#root").scroll_into_view_if_needed()
    page.wait_for_timeout(400)
    page.screenshot(path=str(path))


def test_sr_panels_zoom_window_and_split_together(server, shots):
    from app_env import PASSWORDS, brain_png_bytes

    png = Path(tempfile.mkdtemp()) / "head.png"
    png.write_bytes(brain_png_bytes(128))
    with browser_page() as page:
        page.set_viewport_size({"width": 1400, "height": 1000})
        login(page, server, "reader", PASSWORDS["reader"])
        open_page(page, "Super-resolution")
        page.set_input_files(UPLOADER, str(png))
        wait_idle(page)
        page.get_by_role("heading", name="PSNR / SSIM").wait_for()
        frame = _viewer(page)
        cells = _cells(frame)
        labels = [c["label"] for c in cells]
        assert labels[0].startswith("Low-res input (32×32)") and "Original (reference)" in labels
        assert labels[-1] == "ESRGAN" and all(c["zoom"] == pytest.approx(1.0) for c in cells)
        _shot(page, frame, shots / "viewer-sr-grid.png")

        # Full screen: the viewer fills the screen, and comes back.
        area = frame.locator(".area")
        before_h = area.bounding_box()["height"]
        frame.locator("button.fullscreen").click()
        assert _poll(page, lambda: frame.locator("#root").evaluate(
            "r => document.fullscreenElement === r"))
        _poll(page, lambda: area.bounding_box()["height"] > before_h)
        assert area.bounding_box()["height"] > before_h
        page.wait_for_timeout(500)
        page.screenshot(path=str(shots / "viewer-sr-fullscreen.png"))
        frame.locator("button.fullscreen").click()
        assert _poll(page, lambda: frame.locator("#root").evaluate(
            "r => document.fullscreenElement === null"))
        _poll(page, lambda: abs(area.bounding_box()["height"] - before_h) < 2)

        # Zoom with the wheel over one panel: every panel follows.
        esrgan = frame.locator(".cell").nth(len(cells) - 1)
        page.mouse.move(*_centre(esrgan))
        for _ in range(4):
            page.mouse.wheel(0, -120)
            page.wait_for_timeout(120)
        zoomed = _poll(page, lambda: (lambda c: c if all(x["zoom"] > 1.2 for x in c) else None)(
            _cells(frame)))
        assert zoomed, _cells(frame)
        assert max(c["zoom"] for c in zoomed) - min(c["zoom"] for c in zoomed) < 1e-6
        # Right-drag on another panel zooms all of them further.
        x, y = _centre(frame.locator(".cell").nth(1))
        page.mouse.move(x, y)
        page.mouse.down(button="right")
        page.mouse.move(x, y + 60, steps=6)
        page.mouse.up(button="right")
        more = _poll(page, lambda: (lambda c: c if all(v["zoom"] > zoomed[0]["zoom"] * 1.05
                                                        for v in c) else None)(_cells(frame)))
        assert more, _cells(frame)
        _shot(page, frame, shots / "viewer-sr-zoom.png")

        # Window / level: a left-drag changes the window in force and the values shown, in
        # every panel.
        before = _cells(frame)
        x, y = _centre(frame.locator(".cell").nth(1))
        page.mouse.move(x, y)
        page.mouse.down()
        page.mouse.move(x + 90, y + 50, steps=8)
        page.mouse.up()
        after = _poll(page, lambda: (lambda c: c if c[1]["window"] != before[1]["window"]
                                     else None)(_cells(frame)))
        assert after, _cells(frame)
        assert after[1]["wl"] != before[1]["wl"] and after[1]["wl"].startswith("W ")
        assert len({c["window"] for c in after}) == 1          # linked panels
        assert len({c["wl"] for c in after}) == 1
        _shot(page, frame, shots / "viewer-sr-window.png")
        frame.locator("button.reset").click()
        _poll(page, lambda: all(c["zoom"] == pytest.approx(1.0) and c["wl"] == before[0]["wl"]
                                for c in _cells(frame)))
        assert all(c["wl"] == before[0]["wl"] for c in _cells(frame))

        # Split: the original against the last method, the divider follows the mouse.
        frame.locator('.segmented[data-name="mode"] button[data-value="split"]').click()
        frame.locator('#root[data-mode="split"][data-ready="1"]').wait_for()
        page.wait_for_timeout(500)
        split = _cells(frame)
        assert [c["label"] for c in split] == ["Original (reference)", "ESRGAN"]
        assert frame.locator("select.compare-left").input_value() == str(labels.index(
            "Original (reference)"))
        divider = frame.locator(".divider")
        area = frame.locator(".area").bounding_box()
        x0, y0 = _centre(divider)
        assert abs(x0 - (area["x"] + area["width"] / 2)) < 3
        clips = []
        page.mouse.move(x0, y0)
        page.mouse.down()
        for fraction in (0.45, 0.35, 0.25):
            page.mouse.move(area["x"] + fraction * area["width"], y0, steps=4)
            clips.append(frame.locator(".split-right").evaluate("e => e.style.clipPath"))
        page.mouse.up()
        assert float(frame.locator("#root").get_attribute("data-split")) == pytest.approx(0.25,
                                                                                          abs=0.01)
        assert len(set(clips)) == 3, clips                     # moved continuously
        assert abs(_centre(divider)[0] - (area["x"] + 0.25 * area["width"])) < 3
        # The two sides zoom together in the split too.
        page.mouse.move(area["x"] + 0.7 * area["width"], y0)
        for _ in range(4):
            page.mouse.wheel(0, -120)
            page.wait_for_timeout(120)
        _poll(page, lambda: all(c["zoom"] > 1.1 for c in _cells(frame)))
        split = _cells(frame)
        assert split[0]["zoom"] == pytest.approx(split[1]["zoom"]) and split[0]["zoom"] > 1.1
        # Any two panels: the low-res input against bicubic.
        frame.locator("select.compare-left").select_option(label=labels[0])
        frame.locator("select.compare-right").select_option(label="Bicubic")
        _poll(page, lambda: [c["label"] for c in _cells(frame)] == [labels[0], "Bicubic"])
        assert [c["label"] for c in _cells(frame)] == [labels[0], "Bicubic"]
        frame.locator("select.compare-left").select_option(label="Original (reference)")
        frame.locator("select.compare-right").select_option(label="ESRGAN")
        _poll(page, lambda: [c["label"] for c in _cells(frame)] == ["Original (reference)",
                                                                   "ESRGAN"])
        page.wait_for_timeout(800)
        _shot(page, frame, shots / "viewer-sr-split.png")


def test_analyze_frames_overlay_and_readout(server, shots, tmp_path):
    from app_env import PASSWORDS
    from pydicom.data import get_testdata_file

    dicom = tmp_path / "emri_small.dcm"          # 10 frames of 64×64 MR
    shutil.copy(get_testdata_file("emri_small.dcm"), dicom)
    mr = tmp_path / "MR_small.dcm"               # one 64×64 MR slice with pixel spacing
    shutil.copy(get_testdata_file("MR_small.dcm"), mr)
    with browser_page() as page:
        page.set_viewport_size({"width": 1400, "height": 1000})
        login(page, server, "reader", PASSWORDS["reader"])
        page.set_input_files(UPLOADER, str(mr))
        wait_idle(page)
        page.get_by_text("Grad-CAM of the predicted class").first.wait_for()
        frame = _viewer(page)
        [cell] = _cells(frame)
        assert cell["label"] == "Scan" and cell["wl"] == "W 1600 · L 600"   # the file's window
        # The heat map is on; the Grad-CAM box is there but off until switched on in the viewer.
        assert frame.locator("input[data-name^='overlay-Grad-CAM (']").is_checked()
        assert not frame.locator("input[data-name^='overlay-Grad-CAM box']").is_checked()
        # Read-out: value and position in mm (MR_small has a 0.3125 mm pixel spacing).
        vp = frame.locator(".vp").first
        vp.scroll_into_view_if_needed()
        page.wait_for_timeout(300)
        box = vp.bounding_box()
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        status = frame.locator(".status")
        _poll(page, lambda: "value" in status.inner_text())
        text = status.inner_text()
        import re

        found = re.search(r"x (\d+), y (\d+) px · ([\d.]+) mm, ([\d.]+) mm · value (-?[\d.]+)",
                          text)
        assert found, text
        x_px, y_px, x_mm, y_mm = (float(v) for v in found.groups()[:4])
        assert 30 <= x_px <= 33 and 30 <= y_px <= 33, text       # the middle of 64 × 64
        assert abs(x_mm - 10.0) < 0.4 and abs(y_mm - 10.0) < 0.4, text
        # Window by mouse drag on a DICOM: the values shown change.
        page.mouse.down()
        page.mouse.move(box["x"] + box["width"] / 2 - 120, box["y"] + box["height"] / 2 + 40,
                        steps=8)
        page.mouse.up()
        _poll(page, lambda: _cells(frame)[0]["wl"] != "W 1600 · L 600")
        assert _cells(frame)[0]["wl"] != "W 1600 · L 600"
        _shot(page, frame, shots / "viewer-analyze.png")
        # The viewer's overlays have their own opacity; the static picture's slider runs in
        # the browser and leaves the viewer (and the dragged window) alone.
        opacity = frame.locator("input.opacity").first
        assert float(opacity.input_value()) == pytest.approx(0.4)
        opacity.fill("0.7")
        assert float(opacity.input_value()) == pytest.approx(0.7)
        graph = plotly_graph(page, "cam_picture")
        graph.scroll_into_view_if_needed()
        click_plotly_slider(graph, 0.8)
        _poll(page, lambda: plotly_value(graph, "g.data[1].opacity") >= 0.75)
        wait_idle(page)
        assert float(opacity.input_value()) == pytest.approx(0.7)
        assert _cells(frame)[0]["wl"] != "W 1600 · L 600"      # the dragged window is kept

        page.set_input_files(UPLOADER, str(dicom))
        wait_idle(page)
        page.get_by_text("Grad-CAM of the predicted class").first.wait_for()
        frame = _viewer(page)
        _poll(page, lambda: frame.locator(".cell .frame").first.inner_text().endswith("/ 10"))
        start = _cells(frame)[0]["frame"]
        assert frame.locator(".cell .frame").first.inner_text() == f"Frame {start + 1} / 10"
        vp = frame.locator(".vp").first
        vp.scroll_into_view_if_needed()               # the mouse must be over the image
        page.wait_for_timeout(300)
        page.mouse.move(*_centre(vp))
        for step in (1, 2):                      # Ctrl+wheel down: the next frame
            page.keyboard.down("Control")
            page.mouse.wheel(0, 120)
            page.keyboard.up("Control")
            _poll(page, lambda: _cells(frame)[0]["frame"] == start + step)
            assert _cells(frame)[0]["frame"] == start + step, _cells(frame)
        now = start + 2
        _poll(page, lambda: frame.locator(".cell .frame").first.inner_text()
              == f"Frame {now + 1} / 10")
        assert frame.locator(".cell .frame").first.inner_text() == f"Frame {now + 1} / 10"
        assert frame.locator("input.frames").input_value() == str(now)
        assert _cells(frame)[0]["zoom"] == pytest.approx(1.0)   # Ctrl+wheel did not zoom
        # The slider moves the frames too.
        frame.locator("input.frames").fill("0")
        _poll(page, lambda: _cells(frame)[0]["frame"] == 0)
        assert _cells(frame)[0]["frame"] == 0
        page.mouse.move(*_centre(vp))
        page.keyboard.down("Control")
        page.mouse.wheel(0, 120)
        page.keyboard.up("Control")
        _poll(page, lambda: _cells(frame)[0]["frame"] == 1)
        _shot(page, frame, shots / "viewer-analyze-frames.png")
        assert _cells(frame)[0]["frame"] == 1


def test_reader_study_viewer_gives_the_keyboard_back(app, shots, tmp_path):
    """A reader zooms in the viewer, moves the mouse away and rates with the keys 4, 3."""
    from app_env import PASSWORDS
    from test_studies_browser import _seed

    from core.db import dispose_engines

    server, env = app
    _seed(env, tmp_path / "cases")
    dispose_engines()
    with browser_page() as page:
        page.set_viewport_size({"width": 1400, "height": 1000})
        login(page, server, "reader", PASSWORDS["reader"])
        open_page(page, "Reader study")
        page.get_by_role("heading", name="Image 1 of 6").wait_for()
        frame = _viewer(page)
        assert [c["label"] for c in _cells(frame)] == ["Image to rate"] or [
            c["label"] for c in _cells(frame)] == ["Reference", "Image to rate"]
        vp = frame.locator(".vp").last
        x, y = _centre(vp)
        page.mouse.click(x, y)                        # the iframe now has the keyboard
        for _ in range(3):
            page.mouse.wheel(0, -120)
            page.wait_for_timeout(100)
        _poll(page, lambda: all(c["zoom"] > 1.05 for c in _cells(frame)))
        _shot(page, frame, shots / "viewer-reader-study.png")
        assert page.evaluate("document.activeElement.tagName") == "IFRAME"
        page.mouse.move(5, 500)                       # leave the viewer
        page.wait_for_timeout(300)
        assert page.evaluate("document.activeElement.tagName") != "IFRAME"
        from playwright.sync_api import expect

        for key, question, answer in (("4", "Image quality", "4 · good"),
                                      ("3", "Diagnostic usefulness", "3 · acceptable")):
            page.keyboard.press(key)
            wait_idle(page)
            expect(page.locator('[data-testid="stRadio"]').filter(has_text=question)
                   .get_by_role("radio", name=answer)).to_be_checked(timeout=30_000)
        page.keyboard.press("Enter")
        wait_idle(page)
        page.get_by_text("1 of 6 rated").wait_for(timeout=30_000)
