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
"""
from __future__ import annotations

import streamlit as st

from ui.resources import db

__all__ = ["ROLES", "USER_KEY", "current_user", "refresh_user", "login_page", "require_role",
           "logout", "sidebar_user_ui", "sso_enabled"]

ROLES = ("radiologist", "admin")
USER_KEY = "user"
_SSO_REFUSED = "sso_refused"   # the identity that signed in but has no (active) account


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
    with db() as session:
        user = authenticate_sso(session, email if isinstance(email, str) else None,
                                # some providers send the claim as the string "false"
                                email_verified=verified if isinstance(verified, (bool, str))
                                else None)
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
        if not _sso_signed_in() or _SSO_REFUSED in st.session_state:
            return None
        user = _sso_account()
        if user is None:
            return None
        st.session_state[USER_KEY] = user
    with db() as session:
        fresh = get_user(session, user["id"])
    if fresh is None or not fresh.active:
        logout()
        return None
    if fresh.role != user["role"]:
        st.session_state[USER_KEY] = user = _as_session_user(fresh, via=user.get("via"))
    return user


def _as_session_user(user, via: str | None = "password") -> dict:
    return {"id": int(user.id), "name": str(user.username), "role": str(user.role), "via": via}


def _audit(action: str, user: dict | None, **detail) -> None:
    from core.db.audit import audit

    with db() as session:
        audit(session, user["id"] if user else None, action, **detail)


def _first_admin_ui() -> None:
    from core.db.auth import MIN_PASSWORD_LENGTH, AuthError, create_first_admin

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
            st.session_state[USER_KEY] = _as_session_user(user)
    except AuthError as err:
        st.error(str(err))
        return
    st.rerun()


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
    if user is None:
        st.error("Wrong user name or password.")
        return
    st.session_state[USER_KEY] = _as_session_user(user)
    st.rerun()


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


def logout() -> bool:
    """Forget the logged-in user; also end the single sign-on identity when there is one
    (returns True then: the browser is being redirected, so callers must not ``st.rerun()``,
    which could drop that redirect)."""
    user = st.session_state.pop(USER_KEY, None)
    if user:
        _audit("logout", user)
    # Forget everything this browser session held (uploads, selections), not the shared caches.
    for key in list(st.session_state.keys()):
        del st.session_state[key]
    if _sso_signed_in():
        st.logout()   # clears the identity cookie (and the provider's session if it can)
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
