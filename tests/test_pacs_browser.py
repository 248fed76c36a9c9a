"""In a real browser: the app configured with a PACS in its secrets (``[dicomweb]``) opens a
study from the test Orthanc on Analyze (search by accession, retrieve) and shows a prediction;
then sends the Grad-CAM back. Screenshots go to ``$MEDSCAN_PACS_SCREENSHOTS`` when set."""
from __future__ import annotations

import os

import pytest

from app_env import CLASSES
from browser.harness import app_server, browser_page, login, require_browser, wait_idle
from pacs_fixtures import PASSWORD, STUDY_A, USER, orthanc  # noqa: F401

pytestmark = pytest.mark.browser


def test_open_a_study_from_the_pacs_on_analyze(orthanc):
    from app_env import PASSWORDS

    require_browser()
    secrets = (f'[dicomweb]\nurl = "{orthanc.url}"\nusername = "{USER}"\n'
               f'password = "{PASSWORD}"\n')
    shots = os.environ.get("MEDSCAN_PACS_SCREENSHOTS")
    with app_server(secrets=lambda _url: secrets) as (url, env):
        with browser_page() as page:
            login(page, url, "reader", PASSWORDS["reader"])
            page.get_by_text("Open from PACS").first.click()
            page.get_by_label("Accession number").fill(STUDY_A["AccessionNumber"])
            page.get_by_role("button", name="Search the PACS").click()
            wait_idle(page)
            page.get_by_text("Study (1 found").wait_for()
            study_box = page.locator('[data-testid="stSelectbox"]').filter(has_text="Study (1")
            assert "****0315" in study_box.inner_html()         # masked identifiers only
            assert STUDY_A["AccessionNumber"] not in page.content()
            assert page.get_by_label("Accession number").input_value() == ""
            if shots:
                page.screenshot(path=f"{shots}/pacs_search.png", full_page=True)
            page.get_by_role("button", name="Open in MedScan").click()
            wait_idle(page)
            page.get_by_text("Loaded 2 instance(s) from the PACS").wait_for()
            metric = page.locator('[data-testid="stMetric"]').first
            metric.wait_for()
            assert metric.locator('[data-testid="stMetricValue"]').inner_text().strip() in CLASSES
            if shots:
                page.screenshot(path=f"{shots}/pacs_study_loaded.png", full_page=True)
            page.get_by_role("button", name="Send to PACS").click()
            wait_idle(page)
            page.get_by_text("Stored 1 object(s) in the PACS").wait_for()
            if shots:
                page.get_by_text("Stored 1 object(s) in the PACS").scroll_into_view_if_needed()
                page.screenshot(path=f"{shots}/pacs_sent.png")
