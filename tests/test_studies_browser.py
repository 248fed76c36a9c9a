"""Issue 11 end to end in a real browser (Playwright driving Debian's chromium against
``streamlit run``): a reader rates three items of a blinded study by keyboard only (4, 3,
Enter), then the admin opens the study's results."""
from __future__ import annotations

import pytest
from browser.harness import app_server, browser_page, login, open_page, require_browser, wait_idle

pytestmark = pytest.mark.browser


def _seed(env, folder) -> int:
    """An open blinded study (original vs bicubic ×2, three cases) made with the core API."""
    import cv2
    import numpy as np

    from core.db import init_db, session_scope
    from core.db.studies import open_study
    from core.studies.design import StudyDesign, design_study, folder_sources
    from core.studies.generate import generate_study_images

    folder.mkdir()
    for i in range(3):
        yy, xx = np.mgrid[:48, :48]
        img = (((xx - 24) ** 2 + (yy - 24) ** 2 < 200) * (80 + 50 * i) + xx).astype(np.uint8)
        cv2.imwrite(str(folder / f"case_{i}.png"), img)
    engine = init_db(env["MEDSCAN_DATABASE_URL"])
    with session_scope(engine) as s:
        study = design_study(s, StudyDesign(name="Browser pilot", scale=2, seed=1),
                             folder_sources(folder), None, folder=folder)
    generate_study_images(engine, study.id)
    with session_scope(engine) as s:
        open_study(s, study.id, None)
    return study.id


def test_reader_rates_three_items_by_keyboard_and_admin_sees_results(tmp_path):
    from app_env import PASSWORDS

    require_browser()
    with app_server() as (url, env):
        _seed(env, tmp_path / "cases")
        with browser_page() as page:
            login(page, url, "reader", PASSWORDS["reader"])
            open_page(page, "Reader study")
            page.get_by_text("0 of 6 rated").wait_for()
            for n in range(1, 4):
                page.get_by_role("heading", name=f"Image {n} of 6").wait_for()
                page.locator("h1").first.click()          # focus the page, not a field
                for key in ("4", "3"):
                    page.keyboard.press(key)
                    wait_idle(page)
                page.keyboard.press("Enter")
                wait_idle(page)
                page.get_by_text(f"{n} of 6 rated").wait_for()
            assert "bicubic" not in page.content().lower()
        with browser_page() as page:
            login(page, url, "admin", PASSWORDS["admin"])
            open_page(page, "Reader studies")
            page.get_by_role("tab", name="Results").click()
            wait_idle(page)
            page.get_by_role("heading", name="Readers").wait_for()
            page.get_by_text("reference condition").first.wait_for()
            page.get_by_text("Report (HTML, printable)").wait_for()
