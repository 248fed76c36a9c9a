"""The two HTTP routes of the login-session cookie (ui.session_cookie), with Starlette's test
client: the cookie's flags, single use, no open redirect, no cookie for a cross-site request."""
from __future__ import annotations

import pytest

pytest.importorskip("httpx")   # starlette's test client; installed with oidc-provider-mock
from starlette.applications import Starlette  # noqa: E402
from starlette.testclient import TestClient  # noqa: E402

from core.db import auth, init_db, session_scope  # noqa: E402
from core.db.sessions import session_user, start_login_session  # noqa: E402
from ui import session_cookie  # noqa: E402


@pytest.fixture()
def client_and_code(sqlite_url):
    engine = init_db(sqlite_url)
    with session_scope(engine) as s:
        uid = auth.create_user(s, "ann", "a long password 1").id
    with session_scope(engine) as s:
        code = start_login_session(s, uid)
    app = Starlette(routes=session_cookie.routes())
    return TestClient(app, base_url="http://testserver"), code, engine


def _start(client, code, nxt="/super_resolution", **headers):
    return client.get(session_cookie.START_PATH, params={"code": code, "next": nxt},
                      headers=headers, follow_redirects=False)


def test_code_becomes_an_http_only_strict_cookie_once(client_and_code):
    client, code, engine = client_and_code
    r = _start(client, code, **{"sec-fetch-site": "same-origin"})
    assert r.status_code == 303 and r.headers["location"] == "/super_resolution"
    cookie = r.headers["set-cookie"]
    assert cookie.startswith("medscan_session=")
    for flag in ("HttpOnly", "Path=/", "SameSite=strict", "Max-Age=43200"):
        assert flag in cookie
    assert "Secure" not in cookie
    token = cookie.split(";")[0].split("=", 1)[1]
    with session_scope(engine) as s:
        assert session_user(s, token).username == "ann"
    again = _start(client, code)
    assert again.status_code == 303 and "set-cookie" not in again.headers


def test_secure_behind_an_https_proxy(client_and_code):
    client, code, _ = client_and_code
    r = _start(client, code, **{"x-forwarded-proto": "https"})
    assert "Secure" in r.headers["set-cookie"]


def test_cross_site_request_gets_no_cookie(client_and_code):
    client, code, _ = client_and_code
    r = _start(client, code, **{"sec-fetch-site": "cross-site"})
    assert r.status_code == 303 and "set-cookie" not in r.headers


@pytest.mark.parametrize("nxt", ["https://evil.example/", "//evil.example/x", "/\\evil",
                                 "/medscan-auth/session", "", "relative"])
def test_no_open_redirect(client_and_code, nxt):
    client, code, _ = client_and_code
    assert _start(client, code, nxt=nxt).headers["location"] == "/"


def test_logout_route_deletes_the_cookie(client_and_code):
    client, _, _ = client_and_code
    r = client.get(session_cookie.LOGOUT_PATH, params={"next": "/"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/"
    assert r.headers["set-cookie"].startswith('medscan_session=""') or \
        "Max-Age=0" in r.headers["set-cookie"]
