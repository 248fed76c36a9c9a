"""Reruns that send little (issue 18), in a real browser: a widget that touches one view reruns
that view's fragment only, so the browser receives a handful of messages, not the page again;
choosing a view shown before is answered from Streamlit's message cache. Counts of messages and
bytes, not timings (timings are benchmarks/bench_reruns.py's job)."""
from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from browser.harness import UPLOADER, browser_page, login, open_page, wait_idle
from browser.traffic import (FIRST_QUIET_S, RERUN_QUIET_S, Traffic, choose_plotly_menu,
                             click_plotly_button, click_plotly_slider, measure, measure_client,
                             plotly_graph, plotly_value)

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


def test_analyze_gradcam_controls_and_viewer_section_run_in_the_browser(server):
    """Analyze's Grad-CAM picture (opacity slider, box switch, the menu of every class's map by
    either method) and the viewer's section (collapse, expand) change the page and run nothing
    in the app: no message but keep-alives arrives."""
    with browser_page() as page:
        traffic, png = _logged_in(page, server)
        _upload(page, traffic, png, "Prediction")

        graph = plotly_graph(page, "cam_picture")
        graph.scroll_into_view_if_needed()
        opacity = "g.data[1].opacity"
        before = plotly_value(graph, opacity)
        measure_client(page, traffic, lambda: click_plotly_slider(graph, 0.9),
                       quiet=RERUN_QUIET_S,
                       changed=lambda: plotly_value(graph, opacity) >= 0.85 > before)
        # the box of the map shown: a line trace, switched through its opacity
        box = ("(g.data.find(t => t.type === 'scatter' && t.visible === true) "
               "|| {opacity: -1}).opacity")
        assert plotly_value(graph, box) == 0
        measure_client(page, traffic, lambda: click_plotly_button(graph, "Grad-CAM box"),
                       quiet=RERUN_QUIET_S, changed=lambda: plotly_value(graph, box) == 1)

        # the menu: another class by Grad-CAM++, its own map and box, the box switch kept on
        menu = "g.layout.updatemenus.find(m => m.type === 'dropdown')"
        labels = plotly_value(graph, f"{menu}.buttons.map(b => b.label)")
        current = labels[plotly_value(graph, f"{menu}.active")]
        assert "(predicted) · Grad-CAM" in current and len(labels) == 8, labels
        other = next(lb for lb in labels if "(predicted)" not in lb and lb.endswith("++"))
        shown = "g.data.findIndex(t => t.type === 'image' && t.visible === true)"
        first = plotly_value(graph, shown)
        measure_client(page, traffic, lambda: choose_plotly_menu(graph, current, other),
                       quiet=RERUN_QUIET_S,
                       changed=lambda: plotly_value(graph, shown) == labels.index(other) + 1)
        assert plotly_value(graph, shown) != first
        assert plotly_value(graph, f"g.data[{labels.index(other) + 1}].opacity") >= 0.85
        # a map with no region over the threshold has no box; any box shown keeps the switch
        assert plotly_value(graph, box) in (1, -1)

        # the viewer's section folds and unfolds in the browser, the viewer still there after
        section = page.locator('[data-testid="stExpander"]').filter(
            has_text="Interactive viewer").first
        section.scroll_into_view_if_needed()
        frame = section.locator("iframe").first
        assert frame.is_visible()
        header = section.locator("summary").first
        measure_client(page, traffic, header.click, quiet=RERUN_QUIET_S,
                       changed=lambda: not frame.is_visible())
        measure_client(page, traffic, header.click, quiet=RERUN_QUIET_S,
                       changed=frame.is_visible)
        page.frame_locator('[data-testid="stExpander"] iframe').first.locator(
            '#root[data-ready="1"]').wait_for(timeout=30_000)
