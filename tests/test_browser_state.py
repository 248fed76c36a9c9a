"""Issue 14 items 2 and 3 in a real browser (Playwright driving Debian's chromium against
`streamlit run`), as they were found:

- a scan uploaded on Analyze, another uploaded on Super-resolution: the results and the
  "Scan: …" header above them are the new one, and stay so when a setting changes;
- rate a super-resolved output, switch method or scan: the form is empty and titled with the
  right scan.

Screenshots go to ``$MEDSCAN_SHOTS`` (default: the temp dir) / medscan-state/.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from browser.harness import browser_page, choose_radio, login, open_page, upload, wait_idle

pytestmark = pytest.mark.browser
SHOTS = Path(os.environ.get("MEDSCAN_SHOTS", tempfile.gettempdir())) / "medscan-state"


def _shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    wait_idle(page)
    page.wait_for_timeout(500)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def _header(page, wait_for: str | None = None) -> str:
    """The "Scan: …" line above the results (waiting until it names ``wait_for``: an upload's
    rerun may start after the harness's idle wait)."""
    header = page.locator(".st-key-scan_header")
    if wait_for:
        header.filter(has_text=wait_for).wait_for()
        wait_idle(page)
    return header.inner_text()


def _png(path: Path, size: int) -> Path:
    from app_env import brain_png_bytes

    path.write_bytes(brain_png_bytes(size))
    return path


def _box(page, label: str):
    return page.locator('[data-testid="stSelectbox"], [data-testid="stMultiSelect"]').filter(
        has_text=label).first


def _choose(page, label: str, option: str) -> None:
    """Pick the option containing ``option`` in the selectbox or multiselect ``label``."""
    box = _box(page, label)
    box.scroll_into_view_if_needed()        # a popover opened while scrolling closes again
    page.wait_for_timeout(300)
    opener = box.get_by_role("button", name="Open")    # a selectbox; a multiselect has none
    (opener if opener.count() else box.get_by_role("combobox")).first.click()
    page.get_by_role("option").filter(has_text=option).first.click()
    page.keyboard.press("Escape")           # a multiselect stays open after a choice
    wait_idle(page)


def _value(page, label: str) -> str:
    """What the selectbox labelled ``label`` shows."""
    return _box(page, label).get_by_role("combobox").first.input_value()


def _form(page, *texts: str):
    """The rating form, once it shows every one of ``texts`` (elements of the previous run stay
    on screen until the new run replaces them)."""
    form = page.locator('[data-testid="stForm"]').filter(has_text="Rate this")
    for text in texts:
        form = form.filter(has_text=text)
    form.first.wait_for()
    wait_idle(page)
    return form.first


def _checked(form) -> int:
    return form.locator('input[type="radio"]:checked').count()


def test_sr_results_belong_to_the_scan_named_above_them(server, tmp_path):
    """Item 2: emri_small.dcm on Analyze, then a 512² PNG on Super-resolution."""
    from app_env import PASSWORDS
    from pydicom.data import get_testdata_file

    emri = tmp_path / "emri_small.dcm"
    shutil.copy(get_testdata_file("emri_small.dcm"), emri)
    big = _png(tmp_path / "head512.png", 512)
    with browser_page() as page:
        page.set_viewport_size({"width": 1400, "height": 900})
        login(page, server, "reader", PASSWORDS["reader"])
        upload(page, emri)
        assert "emri_small.dcm" in _header(page, "emri_small.dcm")

        open_page(page, "Super-resolution")
        page.get_by_role("heading", name="PSNR / SSIM").wait_for()
        assert "emri_small.dcm" in _header(page)       # the selection follows the reader
        upload(page, big)
        assert "512×512" in _header(page, "head512.png")
        page.get_by_role("heading", name="PSNR / SSIM").wait_for()
        assert "head512.png" in _value(page, "Scan (")   # the list names what is shown
        # The panels are of the new scan: 512² shrunk ×4 is a 128×128 input (emri: 16×16).
        page.get_by_text("Low-res input (128×128)").first.wait_for()
        _shot(page, "item2_sr_after_upload")

        # The next change of settings (adding SRCNN) switched back to emri_small before.
        _choose(page, "Methods", "SRCNN")
        page.get_by_role("heading", name="PSNR / SSIM").wait_for()
        page.get_by_text("Low-res input (128×128)").first.wait_for()
        assert "head512.png" in _header(page)
        assert "head512.png" in _value(page, "Scan (")
        assert page.get_by_text("Low-res input (16×16)").count() == 0
        table = page.locator('[data-testid="stDataFrame"]').first
        table.wait_for()
        _shot(page, "item2_sr_after_setting_change")

        open_page(page, "Analyze")                     # one selected scan across the app
        assert "head512.png" in _header(page)
        _shot(page, "item2_analyze_same_scan")


def test_sr_rating_form_is_empty_and_titled_for_each_image(server, tmp_path):
    """Item 3: rate an SR output 2 / 2 with a comment; another method or another scan gets an
    empty form titled with its own scan; the rated one comes back with its answers."""
    from app_env import PASSWORDS

    first, second = _png(tmp_path / "first.png", 96), _png(tmp_path / "second.png", 128)
    with browser_page() as page:
        page.set_viewport_size({"width": 1400, "height": 900})
        login(page, server, "reader", PASSWORDS["reader"])
        open_page(page, "Super-resolution")
        upload(page, first)
        _header(page, "first.png")
        form = _form(page, "first.png", "ESRGAN ×4")
        choose_radio(page, "Image quality", "2 · poor")
        choose_radio(page, "Diagnostic usefulness", "2 · poor")
        form.get_by_label("Comment (optional)").fill("too smooth")
        form.get_by_role("button", name="Save rating").click()
        page.get_by_text("Rating saved.").wait_for()
        wait_idle(page)
        _shot(page, "item3_rated_first")

        _choose(page, "Rate the output of", "RRDB (PSNR)")   # another method: empty form
        form = _form(page, "RRDB (PSNR)", "first.png")
        assert _checked(form) == 0
        assert form.get_by_label("Comment (optional)").input_value() == ""
        _shot(page, "item3_other_method_empty")

        upload(page, second)                                  # another scan: empty, named
        _header(page, "second.png")
        form = _form(page, "second.png")
        assert "first.png" not in form.inner_text()
        assert "second.png" in _header(page)
        assert _checked(form) == 0
        assert form.get_by_label("Comment (optional)").input_value() == ""
        assert form.get_by_role("button", name="Save rating").count() == 1
        _shot(page, "item3_new_scan_empty")

        # Back to the first scan's ESRGAN output: its own answers come back.
        _choose(page, "Scan (", "first.png")
        _header(page, "first.png")
        _choose(page, "Rate the output of", "ESRGAN")
        form = _form(page, "first.png", "ESRGAN")
        assert _checked(form) == 2
        assert form.get_by_label("Comment (optional)").input_value() == "too smooth"
        form.get_by_role("button", name="Update rating").wait_for()
        _shot(page, "item3_back_to_rated")


def test_multi_file_upload_shows_the_first_file(server, tmp_path):
    """Item 8: after uploading several files at once the first one (as uploaded) is shown, the
    list keeps the upload order, and a later batch selects its own first file."""
    from app_env import PASSWORDS

    batch = [_png(tmp_path / f"b{size}.png", size) for size in (96, 112, 128)]
    later = [_png(tmp_path / f"c{size}.png", size) for size in (80, 72)]
    with browser_page() as page:
        login(page, server, "reader", PASSWORDS["reader"])
        page.set_input_files('[data-testid="stFileUploader"] input[type="file"]',
                             [str(p) for p in batch])
        assert "96×96" in _header(page, "b96.png")
        box = _box(page, "Scan (")
        box.get_by_role("button", name="Open").click()
        options = page.get_by_role("option").all_inner_texts()
        page.keyboard.press("Escape")
        names = [o.split()[0] for o in options]
        assert names[-3:] == ["b96.png", "b112.png", "b128.png"], names
        _shot(page, "item8_first_of_batch")
        page.set_input_files('[data-testid="stFileUploader"] input[type="file"]',
                             [str(p) for p in later])
        assert "80×80" in _header(page, "c80.png")
