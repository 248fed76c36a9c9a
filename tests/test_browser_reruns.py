"""Reruns that send little (issue 18), in a real browser: a widget that touches one view reruns
that view's fragment only, so the browser receives a handful of messages, not the page again;
choosing a view shown before is answered from Streamlit's message cache. Counts of messages and
bytes, not timings (timings are benchmarks/bench_reruns.py's job)."""
from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from browser.harness import UPLOADER, browser_page, login, open_page, wait_idle
from browser.traffic import (FIRST_QUIET_S, RERUN_QUIET_S, Traffic, click_plotly_button,
                             click_plotly_slider, measure, measure_client, plotly_graph,
                             plotly_value)

pytestmark = pytest.mark.browser


def _deltas(traffic: Traffic, since: int) -> int:
    return sum(1 for _, _, kind in traffic.frames[since:] if kind == "delta")


def _pick(page, label: str, option: str) -> None:
    box = page.locator('[data-testid="stSelectbox"]').filter(has_text=label).first
    box.scroll_into_view_if_needed()
    box.click()
    page.locator('[role="listbox"] [role="option"]').filter(has_text=option).first.click()


def _upload(page, traffic: Traffic, png: Path, ready: str):
    sample = measure(page, traffic, lambda: page.set_input_files(UPLOADER, str(png)),
                     quiet=FIRST_QUIET_S, timeout=300,
                     ready=lambda: page.get_by_role("heading", name=ready).first.is_visible())
    wait_idle(page)
    return sample


def _logged_in(page, server) -> tuple[Traffic, Path]:
    """A 1400 px page logged in as the reader, recording its traffic; and a scan to upload."""
    from app_env import PASSWORDS, brain_png_bytes

    png = Path(tempfile.mkdtemp()) / "head.png"
    png.write_bytes(brain_png_bytes(128))
    page.set_viewport_size({"width": 1400, "height": 1000})
    traffic = Traffic(page)
    login(page, server, "reader", PASSWORDS["reader"])
    return traffic, png


def test_sr_view_choices_rerun_their_fragment_only(server):
    with browser_page() as page:
        traffic, png = _logged_in(page, server)
        open_page(page, "Super-resolution")
        start = len(traffic.frames)
        first = _upload(page, traffic, png, "PSNR / SSIM")
        page_deltas = _deltas(traffic, start)
        assert page_deltas > 40 and first.ws_bytes > 50_000

        for label, option in (("Download", "ESRGAN"), ("Rate the output of", "RRDB (PSNR)")):
            start = len(traffic.frames)
            sample = measure(page, traffic, lambda: _pick(page, label, option),
                             quiet=RERUN_QUIET_S, timeout=120)
            deltas = _deltas(traffic, start)
            assert 0 < deltas < page_deltas / 3, (label, deltas, page_deltas)
            assert sample.ws_bytes < 30_000, (label, sample)

        page.get_by_role("tab", name="Slider comparison").click()
        sizes = []
        for option in ("RRDB (PSNR)", "ESRGAN", "RRDB (PSNR)"):
            start = len(traffic.frames)
            sample = measure(page, traffic,
                             lambda: _pick(page, "Compare the low-res input with", option),
                             quiet=RERUN_QUIET_S, timeout=120)
            assert 0 < _deltas(traffic, start) < page_deltas / 3
            sizes.append(sample.ws_bytes)
        # The split figure is sent once per method; coming back to one is a cached message.
        assert sizes[0] > 10_000 and sizes[2] < sizes[0] / 4, sizes


def test_analyze_opacity_box_in_the_browser_explained_class_reruns_the_analysis_only(server):
    with browser_page() as page:
        traffic, png = _logged_in(page, server)
        start = len(traffic.frames)
        _upload(page, traffic, png, "Prediction")
        page_deltas = _deltas(traffic, start)

        # The Grad-CAM picture's opacity slider and box switch run in the browser: the page
        # changes and the app runs nothing.
        graph = plotly_graph(page, "cam_picture")
        graph.scroll_into_view_if_needed()
        opacity = "g.data[1].opacity"
        before = plotly_value(graph, opacity)
        measure_client(page, traffic, lambda: click_plotly_slider(graph, 0.9),
                       quiet=RERUN_QUIET_S,
                       changed=lambda: plotly_value(graph, opacity) >= 0.85 > before)
        box = "g.layout.shapes[0].visible"
        assert plotly_value(graph, box) is False
        measure_client(page, traffic, lambda: click_plotly_button(graph, "Grad-CAM box"),
                       quiet=RERUN_QUIET_S, changed=lambda: plotly_value(graph, box) is True)
        start = len(traffic.frames)
        measure(page, traffic, lambda: _pick(page, "Explain class", "meningioma"),
                quiet=RERUN_QUIET_S, timeout=120)
        explain_deltas = _deltas(traffic, start)
        assert 0 < explain_deltas < page_deltas, (explain_deltas, page_deltas)
        # not the page: no navigation, no title, no uploader again
        kinds = {kind for _, _, kind in traffic.frames[start:]}
        assert "navigation" not in kinds and "page_info_changed" not in kinds, kinds
        assert page.get_by_text("Grad-CAM for “meningioma”").first.is_visible()
