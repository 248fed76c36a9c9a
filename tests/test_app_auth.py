"""AppTest: login gate, first-admin set-up, throttling, log out, role-gated pages."""
from __future__ import annotations

import re

from streamlit.testing.v1 import AppTest

from app_env import APP, PASSWORDS, TIMEOUT, app_env, logged_in, tiny_weights  # noqa: F401


def _login(at: AppTest, name: str, password: str) -> AppTest:
    at.text_input(key="login_name").input(name)
    at.text_input(key="login_password").input(password)
    return at.button(key="login_submit").click().run()


def test_first_start_offers_first_admin_form(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDSCAN_DATABASE_URL", f"sqlite:///{tmp_path / 'empty.db'}")
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    assert not at.exception
    assert "No accounts exist yet" in at.info[0].value
    at.text_input(key="first_admin_name").input("chief")
    at.text_input(key="first_admin_password").input("short")
    at.text_input(key="first_admin_password2").input("short")
    at.button(key="first_admin_submit").click().run()
    assert at.error and "10" in at.error[0].value          # policy message from core.db.auth
    pw = "a-long-admin-password"
    at.text_input(key="first_admin_password").input(pw)
    at.text_input(key="first_admin_password2").input(pw)
    at.button(key="first_admin_submit").click().run()
    assert not at.exception
    assert at.session_state["user"]["role"] == "admin"
    assert at.title[0].value == "Analyze"


def test_login_wrong_then_right_then_logout(app_env):
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    assert not at.exception and at.title[0].value == "MedScan"
    _login(at, "reader", "wrong-password-123")
    assert at.error[0].value == "Wrong user name or password."
    assert "user" not in at.session_state
    _login(at, "reader", PASSWORDS["reader"])
    assert not at.exception
    assert at.session_state["user"]["role"] == "radiologist"
    assert at.title[0].value == "Analyze"
    at.sidebar.button(key="logout_button").click().run()
    assert "user" not in at.session_state
    assert at.title[0].value == "MedScan"


def test_failed_logins_are_throttled(app_env):
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    for _ in range(5):
        _login(at, "reader", "wrong-password-123")
    _login(at, "reader", PASSWORDS["reader"])   # right password, but locked now
    assert "Too many failed logins" in at.error[0].value
    assert "user" not in at.session_state


def test_radiologist_cannot_open_admin_pages(app_env):
    at = logged_in("radiologist", app_env["ids"]).run()
    assert not at.exception
    # Not in the navigation: switching there is impossible ...
    try:
        at.switch_page("app_pages/admin_users.py")
        raise AssertionError("admin page registered for a radiologist")
    except ValueError:
        pass
    # ... and the page itself refuses when run directly (as a URL would).
    for page in ("admin_users", "admin_training", "admin_models", "admin_studies",
                 "admin_export"):
        direct = AppTest.from_file(f"../app_pages/{page}.py", default_timeout=TIMEOUT)
        direct.session_state["user"] = at.session_state["user"]
        direct.run()
        assert not direct.exception, page
        assert "for admin accounts" in direct.error[0].value, page
        assert not direct.title, page  # stopped before drawing anything


def test_admin_sees_admin_pages(app_env):
    at = logged_in("admin", app_env["ids"]).run()
    at.switch_page("app_pages/admin_users.py").run()
    assert not at.exception
    assert at.title[0].value == "Users"
    users = at.dataframe[0].value
    assert set(users["user"]) == {"admin", "reader"}


def test_deactivated_user_is_logged_out_and_role_changes_apply(app_env):
    from core.db import init_db, session_scope
    from core.db.auth import set_active, set_role

    at = logged_in("radiologist", app_env["ids"]).run()
    assert at.title[0].value == "Analyze"
    engine = init_db(app_env["MEDSCAN_DATABASE_URL"])
    with session_scope(engine) as s:
        set_role(s, "reader", "admin")
    at.run()
    assert at.session_state["user"]["role"] == "admin"
    at.switch_page("app_pages/admin_users.py").run()
    assert at.title[0].value == "Users"
    with session_scope(engine) as s:
        set_active(s, "reader", False)
    at.run()
    assert "user" not in at.session_state and at.title[0].value == "MedScan"


# ---- single sign-on (st.login / OIDC), with the identity seeded through AppTest.user ----------
SSO_SECRETS = {"redirect_uri": "http://localhost:8501/oauth2callback",
               "cookie_secret": "test-cookie-secret-0123456789", "client_id": "medscan",
               "client_secret": "medscan-secret",
               "server_metadata_url": "http://127.0.0.1:9/.well-known/openid-configuration"}


def _sso_app(identity: dict | None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.secrets["auth"] = dict(SSO_SECRETS)
    at.user = identity if identity is not None else {"is_logged_in": False}
    return at


def _button_keys(at: AppTest) -> set:
    return {b.key for b in at.button}


def _set_sso(app_env, username: str, email: str | None) -> None:
    from core.db import init_db, session_scope
    from core.db.auth import set_sso_email

    with session_scope(init_db(app_env["MEDSCAN_DATABASE_URL"])) as s:
        set_sso_email(s, username, email)


def test_login_page_offers_sso_only_when_configured(app_env):
    plain = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    assert "sso_login" not in _button_keys(plain)
    at = _sso_app(None).run()
    assert not at.exception and at.title[0].value == "MedScan"
    assert "sso_login" in _button_keys(at) and "user" not in at.session_state
    _login(at, "reader", PASSWORDS["reader"])           # passwords still work beside SSO
    assert at.session_state["user"]["via"] == "password"


def test_sso_identity_logs_into_its_account_and_out_again(app_env):
    from core.db import init_db, session_scope
    from core.db.audit import recent_audit

    _set_sso(app_env, "reader", "Reader@Hospital.example.org")
    at = _sso_app({"is_logged_in": True, "email": "reader@hospital.example.org",
                   "email_verified": True, "name": "Dr Reader"}).run()
    assert not at.exception
    assert at.title[0].value == "Analyze"
    assert at.session_state["user"] == {"id": app_env["ids"]["reader"], "name": "reader",
                                        "role": "radiologist", "via": "sso"}
    at.run()                                             # one sign-in, not one per rerun
    with session_scope(init_db(app_env["MEDSCAN_DATABASE_URL"])) as s:
        actions = [e.action for e in recent_audit(s, limit=20)]
    assert actions.count("login_sso_ok") == 1
    at.sidebar.button(key="logout_button").click().run()
    assert not at.exception
    assert at.user.get("is_logged_in") is False          # st.logout() ended the identity
    assert "user" not in at.session_state
    at.run()                              # the browser follows st.logout()'s redirect
    assert at.title[0].value == "MedScan" and "sso_login" in _button_keys(at)


def test_sso_identity_without_account_is_refused(app_env):
    at = _sso_app({"is_logged_in": True, "email": "stranger@hospital.example.org"}).run()
    assert not at.exception and at.title[0].value == "MedScan"
    assert "user" not in at.session_state
    assert "stranger@hospital.example.org" in at.error[0].value
    assert "sso_logout" in _button_keys(at) and "sso_login" not in _button_keys(at)
    at.button(key="sso_logout").click().run()
    assert at.user.get("is_logged_in") is False
    at.run()                              # the browser follows st.logout()'s redirect
    assert "sso_login" in _button_keys(at) and not at.error
    # an unverified e-mail is refused even when an account has it
    _set_sso(app_env, "reader", "reader@hospital.example.org")
    unverified = _sso_app({"is_logged_in": True, "email": "reader@hospital.example.org",
                           "email_verified": False}).run()
    assert "user" not in unverified.session_state and unverified.error
    as_text = _sso_app({"is_logged_in": True, "email": "reader@hospital.example.org",
                        "email_verified": "false"}).run()
    assert "user" not in as_text.session_state and as_text.error


def test_deactivating_an_sso_user_ends_the_identity_session(app_env):
    from core.db import init_db, session_scope
    from core.db.auth import set_active

    _set_sso(app_env, "reader", "reader@hospital.example.org")
    at = _sso_app({"is_logged_in": True, "email": "reader@hospital.example.org"}).run()
    assert at.session_state["user"]["via"] == "sso"
    with session_scope(init_db(app_env["MEDSCAN_DATABASE_URL"])) as s:
        set_active(s, "reader", False)
    at.run()
    assert "user" not in at.session_state and at.title[0].value == "MedScan"
    assert at.user.get("is_logged_in") is False


def test_admin_sets_a_users_sso_email(app_env):
    from core.db import init_db, session_scope
    from core.db.auth import list_users

    at = logged_in("admin", app_env["ids"]).run()
    at.switch_page("app_pages/admin_users.py").run()
    at.selectbox(key="edit_user").set_value("reader").run()
    at.radio(key="edit_action").set_value("SSO e-mail").run()
    at.text_input(key="edit_sso").input("Reader@Hospital.example.org")
    at.button(key="edit_sso_submit").click().run()
    assert not at.exception and not at.error
    with session_scope(init_db(app_env["MEDSCAN_DATABASE_URL"])) as s:
        emails = {u.username: u.sso_email for u in list_users(s)}
    assert emails == {"admin": None, "reader": "reader@hospital.example.org"}
    assert "reader@hospital.example.org" in list(at.dataframe[0].value["SSO e-mail"])
    at.text_input(key="edit_sso").input("not an e-mail")
    at.button(key="edit_sso_submit").click().run()
    assert at.error                                      # the policy message, no traceback


# ---- issue 15 items 6, 7; issue 14 items 4, 8 ---------------------------------------------------
def _read_only(app_env, monkeypatch) -> None:
    """From now on the app opens the same database read-only (as a full disk or a read-only
    mount would refuse every write)."""
    path = app_env["MEDSCAN_DATABASE_URL"].removeprefix("sqlite:///")
    monkeypatch.setenv("MEDSCAN_DATABASE_URL", f"sqlite:///file:{path}?mode=ro&uri=true")


def test_unknown_name_locks_like_a_real_one(app_env):
    answers = {}
    for name in ("reader", "no-such-user"):
        at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
        for _ in range(5):
            _login(at, name, "wrong-password-123")
            assert at.error[0].value == "Wrong user name or password."
        _login(at, name, "wrong-password-123")
        assert not at.exception
        answers[name] = at.error[0].value
    assert answers["reader"].startswith("Too many failed logins")
    # the same words; the "after HH:MM UTC" may differ by a minute between the two lockouts
    same = {k: re.sub(r"\d\d:\d\d", "HH:MM", v) for k, v in answers.items()}
    assert same["reader"] == same["no-such-user"]


def test_read_only_database_login_is_refused_in_words(app_env, monkeypatch):
    _read_only(app_env, monkeypatch)
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    _login(at, "reader", PASSWORDS["reader"])
    assert not at.exception
    assert "user" not in at.session_state
    message = at.error[0].value
    assert message.startswith("Could not log you in. The database could not save this: the "
                              "database is read-only. Nothing was saved")


def test_read_only_database_users_page_and_logout(app_env, monkeypatch):
    at = logged_in("admin", app_env["ids"]).run()
    _read_only(app_env, monkeypatch)
    at.switch_page("app_pages/admin_users.py").run()
    assert not at.exception
    at.text_input(key="new_user_name").input("carol")
    at.text_input(key="new_user_password").input("carol-pass-12345")
    at.button(key="new_user_submit").click().run()
    assert not at.exception
    assert any("database is read-only" in e.value and "Nothing was saved" in e.value
               for e in at.error)
    assert set(at.dataframe[0].value["user"]) == {"admin", "reader"}
    at.sidebar.button(key="logout_button").click().run()
    assert not at.exception
    assert "user" not in at.session_state and at.title[0].value == "MedScan"


def test_first_admin_on_a_read_only_database(tmp_path, monkeypatch):
    from core.db import init_db

    path = tmp_path / "empty.db"
    init_db(f"sqlite:///{path}")
    monkeypatch.setenv("MEDSCAN_DATABASE_URL", f"sqlite:///file:{path}?mode=ro&uri=true")
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    pw = "a-long-admin-password"
    at.text_input(key="first_admin_name").input("chief")
    at.text_input(key="first_admin_password").input(pw)
    at.text_input(key="first_admin_password2").input(pw)
    at.button(key="first_admin_submit").click().run()
    assert not at.exception
    assert "database is read-only" in at.error[0].value and "user" not in at.session_state


def test_users_page_lists_a_new_user_at_once_and_last_login(app_env):
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    _login(at, "admin", PASSWORDS["admin"])
    at.switch_page("app_pages/admin_users.py").run()
    table = at.dataframe[0].value
    admin_row = table[table["user"] == "admin"].iloc[0]
    assert admin_row["last login (UTC)"] != ""          # set by the password login
    at.text_input(key="new_user_name").input("carol")
    at.text_input(key="new_user_password").input("carol-pass-12345")
    at.button(key="new_user_submit").click().run()
    assert not at.exception
    assert set(at.dataframe[0].value["user"]) == {"admin", "carol", "reader"}
    assert at.success[0].value.startswith("Added carol")


def test_cookie_session_logs_in_and_ends_with_a_new_password(app_env, monkeypatch):
    """What a reload does: a new Streamlit session whose browser sends the session cookie."""
    from core.db import init_db, session_scope
    from core.db.auth import set_password
    from core.db.sessions import redeem_handoff, start_login_session
    from ui import session_cookie

    engine = init_db(app_env["MEDSCAN_DATABASE_URL"])
    with session_scope(engine) as s:
        code = start_login_session(s, app_env["ids"]["reader"])
    with session_scope(engine) as s:
        token = redeem_handoff(s, code)
    monkeypatch.setattr(session_cookie, "cookie_token", lambda: token)
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    assert not at.exception
    assert at.title[0].value == "Analyze" and at.session_state["user"]["name"] == "reader"
    reload_ = AppTest.from_file(APP, default_timeout=TIMEOUT).run()   # another tab
    assert reload_.title[0].value == "Analyze"
    with session_scope(engine) as s:
        set_password(s, "reader", "another-pass-12345")
    at.run()
    assert "user" not in at.session_state and at.title[0].value == "MedScan"
    assert AppTest.from_file(APP, default_timeout=TIMEOUT).run().title[0].value == "MedScan"


def test_login_with_cookie_routes_hands_the_browser_a_one_time_code(app_env, monkeypatch):
    from core.db import init_db, session_scope
    from core.db.sessions import redeem_handoff
    from ui import session_cookie

    monkeypatch.setattr(session_cookie, "MOUNTED", True)
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    _login(at, "reader", PASSWORDS["reader"])
    assert not at.exception
    script = at.get("html")[0].proto.body      # the page's path is checked in Chromium
    assert script.startswith('<script>window.location.replace("/medscan-auth/session?code=')
    assert "&next=%2F" in script
    code = script.split("code=")[1].split("&")[0]
    with session_scope(init_db(app_env["MEDSCAN_DATABASE_URL"])) as s:
        assert redeem_handoff(s, code)               # the browser's redirect gets the token
    with session_scope(init_db(app_env["MEDSCAN_DATABASE_URL"])) as s:
        assert redeem_handoff(s, code) is None       # once



def test_cookie_session_on_a_read_only_database_still_logs_in(app_env, monkeypatch):
    from datetime import timedelta

    from core.db import init_db, session_scope
    from core.db.tables import utcnow
    from core.db.sessions import TOUCH_EVERY, redeem_handoff, start_login_session
    from ui import session_cookie

    engine = init_db(app_env["MEDSCAN_DATABASE_URL"])
    earlier = utcnow() - TOUCH_EVERY - timedelta(seconds=5)      # so a run wants to write
    with session_scope(engine) as s:
        code = start_login_session(s, app_env["ids"]["reader"], now=earlier)
    with session_scope(engine) as s:
        token = redeem_handoff(s, code, now=earlier)
    monkeypatch.setattr(session_cookie, "cookie_token", lambda: token)
    _read_only(app_env, monkeypatch)
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    assert not at.exception
    assert at.title[0].value == "Analyze"
