"""Login, first-admin set-up, log out and role checks.

The logged-in user lives in ``st.session_state["user"]`` as a plain dict
``{"id", "name", "role", "via"}``: one per browser session (each tab's websocket session), gone
on log out. Passwords, hashing and failed-login throttling are ``core.db.auth``'s job; this
module only draws the forms and shows its messages.

Single sign-on: when ``.streamlit/secrets.toml`` has an ``[auth]`` section (Streamlit's OIDC
settings), the login page also offers "Sign in with single sign-on" (``st.login``). The
identity's e-mail must be the SSO e-mail an admin gave a local account (Users page or
``python -m core users set-sso-email``); the role comes from that account. Streamlit keeps the
identity in a signed, HTTP-only cookie, so an SSO user stays logged in across page reloads and
new tabs until "Log out" (which also ends the identity-provider session when it supports it).

Password logins survive a reload too when the server has the session-cookie routes
(``serve.py``, see :mod:`ui.session_cookie`): the login starts a server-side session
(``core.db.sessions``) and the browser gets its token as an HTTP-only cookie; every run checks
it, so Log out, a deactivation or a new password ends it everywhere at the next click. Without
the routes (plain ``streamlit run app.py``, AppTest) a password login lasts as long as the tab.

Database failures (read-only or full disk: ``core.db.errors.StorageError``) are shown in words;
they never reach Streamlit's error page.
"""
from __future__ import annotations

import streamlit as st

from core.db.errors import DBError
from ui import session_cookie
from ui.engine_and_models import db

__all__ = ["ROLES", "USER_KEY", "current_user", "refresh_user", "login_page", "require_role",
           "logout", "sidebar_user_ui", "sso_enabled"]

ROLES = ("radiologist", "admin")
USER_KEY = "user"
_SSO_REFUSED = "sso_refused"   # the identity that signed in but has no (active) account
_TOKEN = "session_token"       # this tab's login-session token (from the cookie)
RESUMED_KEY = "_resumed_login"  # this tab took over a login session from its cookie (a reload)


def sso_enabled() -> bool:
    """True when the server's secrets configure Streamlit's OIDC login (an ``[auth]`` section)."""
    try:
        return "auth" in st.secrets
    except Exception:  # no secrets file at all (FileNotFoundError / StreamlitSecretNotFoundError)
        return False


def _sso_signed_in() -> bool:
    return sso_enabled() and bool(st.user.get("is_logged_in"))


def _sso_account() -> dict | None:
    """The local account of the signed-in SSO identity (audited), else None; a refused
    identity is remembered for the login page's message."""
    from core.db.auth import authenticate_sso

    email = st.user.get("email")
    verified = st.user.get("email_verified")
    try:
        with db() as session:
            user = authenticate_sso(session, email if isinstance(email, str) else None,
                                    # some providers send the claim as the string "false"
                                    email_verified=verified if isinstance(verified, (bool, str))
                                    else None)
    except DBError as err:   # StorageError: the sign-in could not be recorded
        st.error(f"Could not sign you in. {err}", icon=":material/database:")
        return None
    if user is None:
        st.session_state[_SSO_REFUSED] = str(email or "an identity without an e-mail address")
        return None
    st.session_state.pop(_SSO_REFUSED, None)
    return _as_session_user(user, via="sso")


def current_user() -> dict | None:
    return st.session_state.get(USER_KEY)


def refresh_user() -> dict | None:
    """Re-read the logged-in account (one query per run): a user an admin deactivated is logged
    out at once, a changed role applies at once."""
    from core.db.auth import get_user

    user = current_user()
    if user is None:
        token = session_cookie.cookie_token()
        if token and not st.session_state.get("_dead_token") == token:
            fresh = _session_user(token)
            if fresh is not None:        # a reload or a new tab of a password login
                st.session_state[_TOKEN] = token
                st.session_state[RESUMED_KEY] = True   # ui.scratch_uploads restores uploads
                st.session_state[USER_KEY] = user = _as_session_user(fresh)
                return user
            st.session_state["_dead_token"] = token   # checked once per tab, not every run
        if not _sso_signed_in() or _SSO_REFUSED in st.session_state:
            return None
        user = _sso_account()
        if user is None:
            return None
        st.session_state[USER_KEY] = user
    if st.session_state.get(_TOKEN):   # the session may have ended in another tab
        fresh = _session_user(st.session_state[_TOKEN])
    else:
        with db() as session:
            fresh = get_user(session, user["id"])
    if fresh is None or not fresh.active:
        logout(ended=True)
        return None
    if fresh.role != user["role"]:
        st.session_state[USER_KEY] = user = _as_session_user(fresh, via=user.get("via"))
    return user


def _session_user(token: str):
    """The user of this login session (``core.db.sessions.session_user``); on a database that
    refuses writes, checked read-only so the app stays usable for reading."""
    from core.db.sessions import session_user

    try:
        with db() as session:
            return session_user(session, token)
    except DBError:
        with db() as session:
            return session_user(session, token, write=False)


def _as_session_user(user, via: str | None = "password") -> dict:
    return {"id": int(user.id), "name": str(user.username), "role": str(user.role), "via": via}


def _audit(action: str, user: dict | None, **detail) -> None:
    from core.db.audit import audit

    try:
        with db() as session:
            audit(session, user["id"] if user else None, action, **detail)
    except DBError as err:        # logged by core.db; the action itself went ahead
        st.warning(f"Not recorded in the audit log. {err}", icon=":material/database:")


def _logged_in(user) -> None:
    """Remember ``user`` in this tab; with the cookie routes, also start a server-side session
    and send the browser to pick up its cookie (the page reloads, logged in, on this page)."""
    from core.db.sessions import start_login_session

    st.session_state[USER_KEY] = _as_session_user(user)
    if not session_cookie.routes_mounted():
        st.rerun()
    try:
        with db() as session:
            code = start_login_session(session, user.id)
    except DBError as err:
        st.warning(f"You are logged in for this browser tab only. {err}")
        return
    st.caption("Signing you in…")
    session_cookie.go_to(session_cookie.start_url(code))
    st.stop()


def _first_admin_ui() -> None:
    from core.db.auth import MIN_PASSWORD_LENGTH, create_first_admin

    st.title("Welcome to MedScan")
    st.info("No accounts exist yet. Create the first administrator account; it can then add "
            "radiologists on the Users page. There is no default password.")
    st.caption("On the server you can instead run `python -m core users add NAME --role admin`.")
    with st.form("first_admin_form"):
        name = st.text_input("Administrator user name", key="first_admin_name")
        pw = st.text_input(f"Password (at least {MIN_PASSWORD_LENGTH} characters)",
                           type="password", key="first_admin_password")
        pw2 = st.text_input("Repeat password", type="password", key="first_admin_password2")
        submitted = st.form_submit_button("Create administrator", type="primary",
                                          key="first_admin_submit")
    if not submitted:
        return
    if pw != pw2:
        st.error("The two passwords differ.")
        return
    try:
        with db() as session:
            user = create_first_admin(session, name, pw)
    except DBError as err:   # AuthError (policy, set-up done) or StorageError: in words
        st.error(str(err))
        return
    _logged_in(user)


def _login_ui() -> None:
    from core.db.auth import AuthError, authenticate

    st.title("MedScan")
    st.caption("Scan analysis, explanation and super-resolution for radiologists. "
               "Research software: not a medical device.")
    if sso_enabled():
        refused = st.session_state.get(_SSO_REFUSED)
        if refused and _sso_signed_in():
            st.error(f"You signed in as **{refused}**, but no active MedScan account has that "
                     "single sign-on e-mail. Ask an administrator to add it on the Users page.",
                     icon=":material/person_off:")
            if st.button("Sign out of single sign-on", key="sso_logout"):
                st.session_state.pop(_SSO_REFUSED, None)
                st.logout()
                st.stop()     # the browser follows the redirect
        else:
            st.session_state.pop(_SSO_REFUSED, None)
            if st.button("Sign in with single sign-on", key="sso_login", type="primary",
                         icon=":material/badge:", width="stretch"):
                st.login()
        st.caption("or with a MedScan user name and password:")
    with st.form("login_form"):
        name = st.text_input("User name", key="login_name")
        pw = st.text_input("Password", type="password", key="login_password")
        submitted = st.form_submit_button("Log in", type="primary", key="login_submit")
    if not submitted:
        return
    try:
        with db() as session:  # commits the failed-login count too
            user = authenticate(session, name, pw)
    except AuthError as err:  # LockedOut: too many failed logins; its message says until when
        st.error(str(err), icon=":material/lock_clock:")
        return
    except DBError as err:    # StorageError: the login could not be recorded, so no login
        st.error(f"Could not log you in. {err}", icon=":material/database:")
        return
    if user is None:
        st.error("Wrong user name or password.")
        return
    _logged_in(user)


def login_page() -> None:
    """The only page a visitor who is not logged in can reach."""
    from core.db.auth import needs_first_admin

    with db() as session:
        first = needs_first_admin(session)
    _, centre, _ = st.columns([1, 2, 1])
    with centre:
        if first:
            _first_admin_ui()
        else:
            _login_ui()


def logout(*, ended: bool = False) -> bool:
    """Forget the logged-in user, end their login session and scratch uploads; also end the
    single sign-on identity when there is one. Returns True when the browser is being
    redirected (callers must then ``st.stop()``, not ``st.rerun()``, which could drop the
    redirect). ``ended``: the session already ended elsewhere (deactivation, new password,
    another tab's Log out): only this tab's state is cleared."""
    from core import scratch
    from core.db.sessions import end_session

    user = st.session_state.pop(USER_KEY, None)
    token = st.session_state.get(_TOKEN)
    if user and not ended:
        _audit("logout", user)
        if token:
            try:
                with db() as session:
                    end_session(session, token)
            except DBError as err:
                st.warning(f"The login session could not be ended. {err}")
        scratch.clear(user["id"])
    dead = st.session_state.get("_dead_token")
    # Forget everything this browser session held (uploads, selections), not the shared caches.
    for key in list(st.session_state.keys()):
        del st.session_state[key]
    if token or dead:
        st.session_state["_dead_token"] = token or dead   # do not log in again from the cookie
    if _sso_signed_in():
        st.logout()   # clears the identity cookie (and the provider's session if it can)
        return True
    if token and not ended and session_cookie.routes_mounted():
        session_cookie.go_to(session_cookie.logout_url())   # clear the (now dead) cookie
        return True
    return False


def require_role(*roles: str) -> dict:
    """Stop the page unless the logged-in user has one of ``roles``. Every admin page calls this
    first, so opening it by URL is refused even if navigation would not list it."""
    user = current_user()
    if user is None:
        st.error("Please log in.")
        st.stop()
    if roles and user["role"] not in roles:
        st.error(f"This page is for {' / '.join(roles)} accounts; you are logged in as "
                 f"{user['role']}.")
        st.stop()
    return user


def sidebar_user_ui(user: dict) -> None:
    with st.sidebar:
        st.caption(f"Logged in as **{user['name']}** ({user['role']})")
        if st.button("Log out", key="logout_button", icon=":material/logout:"):
            if logout():
                st.stop()     # let st.logout()'s redirect reach the browser
            st.rerun()
