"""Password sessions that survive a reload (issue 14 item 4), in Chromium against the app as
``make run`` serves it (``serve.py``: app.py plus the session-cookie routes).

Log in on a page's own URL, upload, reload: still logged in, on the same page, the upload still
listed. The cookie is HTTP-only and SameSite=Strict. Log out, reload: the login page (never
"Page not found"). A new password ends the session of another tab."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from browser.harness import CHROMIUM, app_server, open_page, require_browser, upload, wait_idle

pytestmark = pytest.mark.browser
SHOTS = Path(os.environ.get("MEDSCAN_SHOTS", "/tmp/medscan-session-shots"))


@pytest.fixture(scope="module")
def server():
    require_browser()
    with app_server(entry="serve.py") as (url, env):
        yield url, env


def _login_form(page, name: str, password: str) -> None:
    page.get_by_label("User name").fill(name)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Log in").click()


def _shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"))


def test_password_session_survives_reload_and_ends(server, tmp_path):
    from playwright.sync_api import sync_playwright

    from app_env import PASSWORDS, brain_png_bytes
    from browser.harness import CHROMIUM_ARGS, VIEWPORT

    url, env = server
    scan = tmp_path / "session_brain.png"
    scan.write_bytes(brain_png_bytes(96))
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport=VIEWPORT)
            page = context.new_page()
            page.set_default_timeout(90_000)
            try:
                _flow(page, context, url, env, scan, PASSWORDS)
            except Exception as err:  # noqa: BLE001 - re-raised with what the page showed
                _shot(page, "failure")
                log = Path(env["tmp"], "streamlit.log")
                raise AssertionError(
                    f"{err}\n--- page {page.url}:\n{page.inner_text('body')[:2000]}\n"
                    f"--- streamlit log:\n{log.read_text()[-3000:] if log.exists() else ''}"
                ) from err
        finally:
            browser.close()


def _flow(page, context, url, env, scan, passwords) -> None:
    # A page's own URL while logged out: the login form, not "Page not found".
    page.goto(f"{url}/super_resolution")
    page.get_by_role("button", name="Log in").wait_for()
    wait_idle(page)
    assert "Page not found" not in page.inner_text("body")
    _login_form(page, "reader", passwords["reader"])
    page.get_by_role("heading", name="Super-resolution").first.wait_for()
    wait_idle(page)
    assert page.url.rstrip("/").endswith("/super_resolution")

    cookie = next(c for c in context.cookies() if c["name"] == "medscan_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert not cookie["secure"]                   # plain http here; Secure over https
    assert page.evaluate("document.cookie").find("medscan_session") == -1

    upload(page, scan)
    page.get_by_text("session_brain.png").first.wait_for()
    _shot(page, "1-uploaded")

    page.reload()                                 # a new Streamlit session
    page.get_by_role("heading", name="Super-resolution").first.wait_for()
    wait_idle(page)
    body = page.inner_text("body")
    assert "Page not found" not in body
    assert "Logged in as" in page.locator('[data-testid="stSidebar"]').inner_text()
    page.get_by_text("session_brain.png").first.wait_for()   # the upload is still listed
    _shot(page, "2-after-reload")

    open_page(page, "Analyze")                    # and on the other page too
    page.get_by_text("session_brain.png").first.wait_for()

    # A second tab shares the cookie; a new password (set by an admin) ends both.
    other = context.new_page()
    other.goto(url)
    other.get_by_role("heading", name="Analyze").first.wait_for()
    from core.db import init_db, session_scope
    from core.db.auth import set_password

    with session_scope(init_db(env["MEDSCAN_DATABASE_URL"])) as s:
        set_password(s, "reader", "a-new-reader-pass-1")
    other.reload()
    other.get_by_role("button", name="Log in").wait_for()
    other.close()

    # Log in again, then Log out: a reload shows the login page.
    page.reload()
    page.get_by_role("button", name="Log in").wait_for()
    _login_form(page, "reader", "a-new-reader-pass-1")
    page.get_by_role("heading", name="Analyze").first.wait_for()
    wait_idle(page)
    page.get_by_role("button", name="Log out").click()
    page.get_by_role("button", name="Log in").wait_for()
    wait_idle(page)
    assert not any(c["name"] == "medscan_session" for c in context.cookies())
    page.reload()
    page.get_by_role("button", name="Log in").wait_for()
    wait_idle(page)
    assert page.get_by_role("heading", name="Analyze").count() == 0
    _shot(page, "3-logged-out")
