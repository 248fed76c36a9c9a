"""Issue 14 item 5 in a real browser (Playwright driving Debian's chromium against
`streamlit run`): MR and CT uploaded together; the MR offers no CT presets, the centre / width
fields show the window in force, a manual window stays with its scan and comes back with it.
Screenshots go to $MEDSCAN_SHOTS (default: a temporary folder)."""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from browser.harness import browser_page, login, wait_idle

pytestmark = pytest.mark.browser


def _combobox(page, label: str):
    """A selectbox's input (Streamlit 1.67: a react-aria combobox named by its label)."""
    return page.get_by_role("combobox", name=label, exact=True)


def _open(page, label: str):
    box = page.locator('[data-testid="stSelectbox"]').filter(has=_combobox(page, label))
    box.get_by_role("button", name="Open").click()
    items = page.get_by_role("option")
    items.first.wait_for()
    return items


def _options(page, label: str) -> list[str]:
    texts = [t.strip() for t in _open(page, label).all_inner_texts()]
    page.keyboard.press("Escape")
    page.wait_for_timeout(300)
    return texts


def _choose(page, label: str, option: str) -> None:
    _open(page, label).filter(has_text=option).first.click()
    wait_idle(page)
    assert option in _combobox(page, label).input_value()


def _field(page, label: str):
    return page.locator('[data-testid="stNumberInput"]').filter(
        has=page.get_by_text(label, exact=True)).first.locator("input")


def _expect_fields(page, centre: str, width: str) -> None:
    """The centre / width fields show these values (waiting for the rerun to land)."""
    from playwright.sync_api import expect

    expect(_field(page, "Centre")).to_have_value(centre, timeout=30_000)
    expect(_field(page, "Width")).to_have_value(width, timeout=30_000)


def _expect_caption(page, text: str) -> None:
    from playwright.sync_api import expect

    expect(page.locator('[data-testid="stImage"]').first).to_contain_text(text, timeout=30_000)


def _image_src(page) -> str:
    return page.locator('[data-testid="stImage"] img').first.get_attribute("src") or ""


def _pixels(page):
    """The scan image as the browser shows it (an element screenshot, RGB array)."""
    import io

    import numpy as np
    from PIL import Image

    png = page.locator('[data-testid="stImage"] img').first.screenshot()
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.float32)


def _type(page, label: str, value: str) -> None:
    """Type a window value and wait until the re-windowed image has replaced the old one (the
    field shows typed text at once, the image only after the rerun)."""
    before = _image_src(page)
    box = _field(page, label)
    box.fill(value)
    box.press("Enter")
    page.wait_for_function(
        """old => { const img = document.querySelector('[data-testid="stImage"] img');
                    return img && img.getAttribute('src') !== old; }""", arg=before,
        timeout=30_000)
    wait_idle(page)


def _caption(page) -> str:
    return page.locator('[data-testid="stImage"]').first.inner_text()


def _shown(page, name: str) -> None:
    """Wait until the scan image is captioned with ``name`` (the rerun after a pick)."""
    page.locator('[data-testid="stImage"]').first.filter(has_text=name).wait_for()
    wait_idle(page)


def test_mr_ct_windows_per_modality_and_per_scan(server, tmp_path):
    from app_env import PASSWORDS
    from pydicom.data import get_testdata_file

    shots = Path(os.environ.get("MEDSCAN_SHOTS") or tempfile.mkdtemp(prefix="shots-"))
    shots.mkdir(parents=True, exist_ok=True)
    mr, ct = tmp_path / "MR_small", tmp_path / "CT_small.dcm"
    shutil.copy(get_testdata_file("MR_small.dcm"), mr)
    shutil.copy(get_testdata_file("CT_small.dcm"), ct)
    with browser_page() as page:
        page.set_viewport_size({"width": 1400, "height": 1000})
        login(page, server, "reader", PASSWORDS["reader"])
        page.set_input_files('[data-testid="stFileUploader"] input[type="file"]',
                             [str(mr), str(ct)])
        wait_idle(page)
        page.get_by_text("Grad-CAM of the predicted class").first.wait_for()
        if "MR_small" not in _caption(page):        # the batch's first file is selected
            _choose(page, _scan_label(page), "MR_small")
        _expect_caption(page, "MR_small")

        # MR: its own window, no CT presets; the fields show the window in force.
        options = _options(page, "Window")
        assert not any(o.startswith("CT ") or "brain" in o.lower() for o in options), options
        assert {"File window", "Min–max", "Percentile 1–99 %", "Manual"} <= set(options)
        _expect_fields(page, "600", "1600")
        file_window = _pixels(page)
        page.screenshot(path=str(shots / "window_mr_file.png"), full_page=True)
        _choose(page, "Window", "Min–max")
        _expect_fields(page, "1136", "2018")
        _choose(page, "Window", "Manual")
        _type(page, "Centre", "1300")
        _type(page, "Width", "300")
        _expect_fields(page, "1300", "300")
        _expect_caption(page, "manual")
        manual = _pixels(page)
        assert abs(manual - file_window).mean() > 10        # a visibly different window
        page.screenshot(path=str(shots / "window_mr_manual.png"), full_page=True)

        # CT: CT presets offered, its own min–max in force; the MR's manual window did not
        # carry over.
        _choose(page, _scan_label(page), "CT_small")
        _shown(page, "CT_small")
        _expect_fields(page, "135.5", "2063")
        options = _options(page, "Window")
        assert "CT brain (C 40 / W 80)" in options and options[0] == "Min–max"
        _choose(page, "Window", "CT brain (C 40 / W 80)")
        _expect_fields(page, "40", "80")
        _expect_caption(page, "preset brain")
        page.screenshot(path=str(shots / "window_ct_brain.png"), full_page=True)

        # Back to the MR: its manual window is back.
        _choose(page, _scan_label(page), "MR_small")
        _shown(page, "MR_small")
        _expect_fields(page, "1300", "300")
        _expect_caption(page, "manual")
        assert not _field(page, "Centre").is_disabled()
        back = _pixels(page)
        assert back.shape == manual.shape and abs(back - manual).mean() < 1   # the same image
        page.screenshot(path=str(shots / "window_mr_back.png"), full_page=True)


def _scan_label(page) -> str:
    """The scan picker's label ("Scan (2 uploaded in this session)" or similar)."""
    return page.get_by_role("combobox", name="Scan (").first.get_attribute("aria-label")
