"""The cookie that keeps a password login across page reloads, and the two HTTP routes that set
and clear it.

Streamlit pages talk to the browser over a websocket and cannot set cookies, and a cookie set by
JavaScript can always be read by JavaScript (never ``HttpOnly``). So the cookie is set by an
ordinary HTTP response from two small routes mounted next to Streamlit's own (``serve.py``:
``st.App("app.py", routes=routes())``; ``make run`` starts that):

``GET /medscan-auth/session?code=…&next=/page``
    spends the one-time hand-off code the login form created (``core.db.sessions``), sets
    ``medscan_session=<token>`` (``HttpOnly; SameSite=Strict; Path=/``, ``Secure`` when the
    request came over https, max-age the session's absolute limit) and redirects to ``next``.
``GET /medscan-auth/logout?next=/``
    clears the cookie and redirects (the session itself was already ended in the database).

After a password login the page sends the browser to the first route (one line of JavaScript,
:func:`go_to`); the reload that follows is a new Streamlit session that finds the cookie in
``st.context.cookies`` (:func:`cookie_token`). When the app is started as plain
``streamlit run app.py`` the routes are absent (:data:`MOUNTED` stays False) and a password login
lasts as long as the browser tab's session, as before.
"""
from __future__ import annotations

import json
import logging

__all__ = ["COOKIE", "START_PATH", "LOGOUT_PATH", "MOUNTED", "routes", "cookie_token",
           "routes_mounted", "start_url", "logout_url", "go_to", "safe_next"]

COOKIE = "medscan_session"
START_PATH = "/medscan-auth/session"
LOGOUT_PATH = "/medscan-auth/logout"
MOUNTED = False           # set by routes(): the server this process runs has the routes
_log = logging.getLogger("medscan.session")


def safe_next(value: str | None) -> str:
    """A same-site path to go to after the redirect (never another host: no open redirect)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value \
            or any(ord(c) < 32 for c in value) or value.startswith(("/medscan-auth/",)):
        return "/"
    return value[:512]


def _https(request) -> bool:
    proto = request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
    return request.url.scheme == "https" or proto == "https"


def _start(request):
    from starlette.responses import RedirectResponse

    from core.db import get_engine, session_scope
    from core.db.errors import DBError
    from core.db.sessions import MAX_AGE, redeem_handoff

    token = None
    # Only a navigation started by the app's own page may spend a code: another site linking
    # here (login CSRF: logging the victim into the attacker's account) gets no cookie.
    site = request.headers.get("sec-fetch-site")
    if site in (None, "same-origin"):
        try:
            with session_scope(get_engine()) as session:
                token = redeem_handoff(session, request.query_params.get("code", ""))
        except DBError as err:   # logged by core.db; the user lands on the login page again
            _log.error("login session not started: %s", err)
    response = RedirectResponse(safe_next(request.query_params.get("next")), status_code=303)
    response.headers["Cache-Control"] = "no-store"
    if token:
        response.set_cookie(COOKIE, token, max_age=int(MAX_AGE.total_seconds()), path="/",
                            httponly=True, samesite="strict", secure=_https(request))
    return response


def _logout(request):
    from starlette.responses import RedirectResponse

    response = RedirectResponse(safe_next(request.query_params.get("next")), status_code=303)
    response.headers["Cache-Control"] = "no-store"
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict",
                           secure=_https(request))
    return response


def routes() -> list:
    """The Starlette routes for ``st.App(..., routes=routes())``; marks them mounted."""
    from starlette.routing import Route

    global MOUNTED
    MOUNTED = True
    return [Route(START_PATH, _start, methods=["GET"]),
            Route(LOGOUT_PATH, _logout, methods=["GET"])]


# ---- used by the page scripts ----------------------------------------------------------------

def routes_mounted() -> bool:
    return MOUNTED


def cookie_token() -> str | None:
    """The session token the browser sent when this Streamlit session connected, if any."""
    import streamlit as st

    try:
        value = st.context.cookies.get(COOKIE)
    except Exception:  # noqa: BLE001 - no browser (AppTest, bare script run)
        return None
    return value if isinstance(value, str) and 10 <= len(value) <= 128 else None


def _current_path() -> str:
    import streamlit as st
    from urllib.parse import urlsplit

    try:
        url = st.context.url
    except Exception:  # noqa: BLE001
        url = None
    return safe_next(urlsplit(url).path if url else "/")


def start_url(code: str) -> str:
    from urllib.parse import urlencode

    return f"{START_PATH}?{urlencode({'code': code, 'next': _current_path()})}"


def logout_url() -> str:
    return f"{LOGOUT_PATH}?next=/"


def go_to(url: str) -> None:
    """Send the browser to ``url`` (a same-site path) now, replacing this history entry."""
    import streamlit as st

    st.html(f"<script>window.location.replace({json.dumps(url)});</script>",
            unsafe_allow_javascript=True)
