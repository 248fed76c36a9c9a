"""Single sign-on end to end in a real browser: the app (``streamlit run``) with an ``[auth]``
section pointing at a mock OpenID Connect provider (oidc-provider-mock, in this process). The
user signs in at the provider, lands on Analyze as the account that has that SSO e-mail, stays
logged in across a page reload (Streamlit's identity cookie), and logs out for good."""
from __future__ import annotations

from pathlib import Path

import pytest

from browser.harness import app_server, browser_page, open_page, require_browser, wait_idle

pytestmark = pytest.mark.browser
EMAIL = "reader@hospital.example.org"


@pytest.fixture(scope="module")
def provider():
    require_browser()
    mock = pytest.importorskip("oidc_provider_mock")
    mp = pytest.MonkeyPatch()
    mp.setenv("AUTHLIB_INSECURE_TRANSPORT", "1")   # plain http on localhost, tests only
    with mock.run_server_in_thread(port=0) as server:
        yield f"http://localhost:{server.server_port}"
    mp.undo()


def _secrets(provider_url: str):
    def toml(app_url: str) -> str:
        return (f'[auth]\nredirect_uri = "{app_url}/oauth2callback"\n'
                'cookie_secret = "browser-test-cookie-secret-0123456789"\n'
                'client_id = "medscan"\nclient_secret = "medscan-secret"\n'
                f'server_metadata_url = "{provider_url}/.well-known/openid-configuration"\n')
    return toml


def test_sso_sign_in_survives_reload_and_logs_out(provider):
    with app_server(secrets=_secrets(provider)) as (url, env):
        from core.db import init_db, session_scope
        from core.db.auth import set_sso_email

        with session_scope(init_db(env["MEDSCAN_DATABASE_URL"])) as s:
            set_sso_email(s, "reader", EMAIL)
        with browser_page() as page:
            try:
                _flow(page, url)
            except Exception as err:   # noqa: BLE001 - re-raised with what the page showed
                log = Path(env["tmp"], "streamlit.log")
                raise AssertionError(
                    f"{err}\n--- page {page.url}:\n{page.inner_text('body')[:2000]}\n"
                    f"--- streamlit log:\n{log.read_text()[-3000:] if log.exists() else ''}"
                ) from err


def _flow(page, url: str) -> None:
    page.goto(url)
    page.get_by_role("button", name="Sign in with single sign-on").click()
    page.locator('input[name="sub"]').fill(EMAIL)     # the provider's own page
    page.get_by_role("button", name="Authorize").click()
    page.get_by_role("heading", name="Analyze").wait_for()
    wait_idle(page)
    assert "Logged in as" in page.locator('[data-testid="stSidebar"]').inner_text()
    assert "reader" in page.locator('[data-testid="stSidebar"]').inner_text()

    page.reload()                                     # a new session: still signed in
    page.get_by_role("heading", name="Analyze").wait_for()
    open_page(page, "My ratings")

    page.get_by_role("button", name="Log out").click()
    end = page.get_by_role("button", name="End session")  # provider's logout page
    try:
        end.wait_for(timeout=15_000)
        end.click()
    except Exception:   # noqa: BLE001 - providers without an end-session page
        pass
    page.get_by_role("button", name="Sign in with single sign-on").wait_for()
    page.goto(url)                                    # the identity cookie is gone
    page.get_by_role("button", name="Sign in with single sign-on").wait_for()
    assert page.get_by_role("heading", name="Analyze").count() == 0

    # an identity without an account is refused with its e-mail named
    page.get_by_role("button", name="Sign in with single sign-on").click()
    page.locator('input[name="sub"]').fill("stranger@hospital.example.org")
    page.get_by_role("button", name="Authorize").click()
    page.get_by_text("no active MedScan account").wait_for()
    assert "stranger@hospital.example.org" in page.inner_text("body")
