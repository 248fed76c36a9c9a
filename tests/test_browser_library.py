"""In a real browser (issue 9): with a case library imported from the command line, a
radiologist uploads a slice on Analyze, sees its similar cases with their labels, and compares
one with the scan; an admin sees the Case library page."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from browser.harness import app_server, browser_page, login, open_page, require_browser, upload, \
    wait_idle

pytestmark = pytest.mark.browser

DATA = Path(__file__).parent / "data" / "brain-mri"
REPO = Path(__file__).resolve().parent.parent


def test_upload_and_see_similar_cases(tmp_path):
    from app_env import PASSWORDS

    require_browser()
    with app_server() as (url, env):
        run = subprocess.run([sys.executable, "-m", "core", "library", "import", str(DATA),
                              "--label-from-folder", "--name", "fixture", "--json"],
                             cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, run.stderr
        query = sorted((DATA / "glioma").iterdir())[0]
        shots = os.environ.get("MEDSCAN_SCREENSHOTS")
        with browser_page() as page:
            login(page, url, "reader", PASSWORDS["reader"])
            upload(page, query)
            page.get_by_role("heading", name="Similar cases").wait_for()
            page.get_by_text("of 6 similar cases").wait_for()
            buttons = page.get_by_role("button", name="Compare")
            assert buttons.count() == 6
            page.get_by_text("1.000 · case").first.wait_for()      # the slice itself, first
            buttons.first.click()
            wait_idle(page)
            page.get_by_text("next to").first.wait_for()
            if shots:
                page.get_by_role("heading", name="Similar cases").scroll_into_view_if_needed()
                page.wait_for_timeout(1500)     # lazy-loaded thumbnails
                page.screenshot(path=f"{shots}/analyze_similar_cases.png")
                page.get_by_text("next to").first.scroll_into_view_if_needed()
                page.wait_for_timeout(1500)
                page.screenshot(path=f"{shots}/analyze_compare.png")
        with browser_page() as page:
            login(page, url, "admin", PASSWORDS["admin"])
            open_page(page, "Case library")
            page.get_by_text("Every case is searchable.").wait_for()
            assert page.locator('[data-testid="stMetricValue"]').first.inner_text().strip() \
                == str(len(list(DATA.rglob("*.jpg"))))
            if shots:
                page.screenshot(path=f"{shots}/case_library.png")
            page.locator('[class*="st-key-library_open_"] button').first.click()
            wait_idle(page)
            try:
                page.get_by_role("button", name="Save label").wait_for()
            finally:
                if shots:
                    page.get_by_role("button", name="Save label").scroll_into_view_if_needed()
                    page.wait_for_timeout(1000)
                    page.screenshot(path=f"{shots}/case_library_case.png")
