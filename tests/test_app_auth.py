"""AppTest: login gate, first-admin set-up, throttling, log out, role-gated pages."""
from __future__ import annotations

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
