"""Users (admin): add accounts, change roles, passwords and single sign-on e-mails, deactivate,
unlock. The audit log has its own page (Audit log).

Every change reruns the page, so the table above always shows the change; the result message
survives that rerun (``_FLASH``). Database failures are shown in words (``DBError``)."""
from __future__ import annotations

import streamlit as st

from ui import auth
from ui.engine_and_models import db

admin = auth.require_role("admin")
st.title("Users")

from core.db.auth import (MIN_PASSWORD_LENGTH, ROLES, create_user, list_users,  # noqa: E402
                          set_active, set_password, set_role, set_sso_email, unlock_user)
from core.db.errors import DBError  # noqa: E402

_FLASH = "users_flash"


def _done(message: str) -> None:
    """Show ``message`` after the rerun that redraws the table with the change."""
    st.session_state[_FLASH] = message
    st.rerun()


flash = st.session_state.pop(_FLASH, None)
if flash:
    st.success(flash, icon=":material/check_circle:")

with db() as session:
    users = list_users(session)
st.dataframe(
    [{"user": u.username, "role": u.role, "active": u.active, "SSO e-mail": u.sso_email or "",
      "locked until (UTC)": u.locked_until.strftime("%Y-%m-%d %H:%M") if u.locked_until else "",
      "last login (UTC)": u.last_login_at.strftime("%Y-%m-%d %H:%M") if u.last_login_at else "",
      "created (UTC)": u.created_at.strftime("%Y-%m-%d")} for u in users],
    hide_index=True, key="users_table")

col_add, col_edit = st.columns(2, gap="large")
with col_add, st.form("add_user_form", clear_on_submit=True):
    st.subheader("Add a user")
    name = st.text_input("User name", key="new_user_name",
                         help="2–32 characters: lower-case letters, digits, '.', '_' or '-'.")
    role = st.selectbox("Role", ROLES, key="new_user_role")
    pw = st.text_input(f"Initial password (at least {MIN_PASSWORD_LENGTH} characters)",
                       type="password", key="new_user_password")
    email = st.text_input("Single sign-on e-mail (optional)", key="new_user_sso",
                          help="The e-mail the hospital's identity provider reports for this "
                               "person; lets them sign in with single sign-on." + (
                                   "" if auth.sso_enabled() else " Single sign-on is not "
                                   "configured on this server (see the README)."))
    if st.form_submit_button("Add user", type="primary", key="new_user_submit"):
        try:
            with db() as session:
                added = create_user(session, name, pw, role, by_user_id=admin["id"],
                                    sso_email=email.strip() or None)
        except DBError as err:     # policy, name taken, or the database refused (in words)
            st.error(str(err))
        else:
            _done(f"Added {added.username} ({role}). Give them the password over a safe "
                  "channel.")

with col_edit:
    st.subheader("Change a user")
    names = [u.username for u in users]
    target = st.selectbox("User", names, key="edit_user")
    current = next(u for u in users if u.username == target)
    action = st.radio("Change", ["Role", "Password", "SSO e-mail", "Activate / deactivate",
                                 "Unlock"], horizontal=True, key="edit_action")
    try:
        if action == "Role":
            new_role = st.selectbox("New role", ROLES, index=ROLES.index(current.role),
                                    key="edit_role")
            if st.button("Set role", key="edit_role_submit"):
                with db() as session:
                    set_role(session, target, new_role, by_user_id=admin["id"])
                _done(f"{target} is now {new_role}.")
        elif action == "Password":
            new_pw = st.text_input("New password", type="password", key="edit_password")
            if st.button("Set password", key="edit_password_submit"):
                with db() as session:
                    set_password(session, target, new_pw, by_user_id=admin["id"])
                _done(f"Password of {target} changed (any lock cleared, their login sessions "
                      "ended).")
        elif action == "SSO e-mail":
            new_email = st.text_input("Single sign-on e-mail (empty: none)",
                                      value=current.sso_email or "", key="edit_sso")
            if st.button("Set SSO e-mail", key="edit_sso_submit"):
                with db() as session:
                    set_sso_email(session, target, new_email.strip() or None,
                                  by_user_id=admin["id"])
                _done(f"SSO e-mail of {target} saved.")
        elif action == "Activate / deactivate":
            label = "Deactivate" if current.active else "Activate"
            st.caption("Deactivated users cannot log in; their ratings are kept.")
            if st.button(f"{label} {target}", key="edit_active_submit"):
                with db() as session:
                    set_active(session, target, not current.active, by_user_id=admin["id"])
                _done(f"{target} deactivated (their login sessions ended)." if current.active
                      else f"{target} activated.")
        else:
            if st.button(f"Unlock {target}", key="edit_unlock_submit",
                         disabled=current.locked_until is None):
                with db() as session:
                    unlock_user(session, target, by_user_id=admin["id"])
                _done(f"{target} unlocked.")
    except DBError as err:    # last admin, bad e-mail, or the database refused (in words)
        st.error(str(err))

st.page_link("app_pages/admin_audit.py", label="Every login and change is in the Audit log",
             icon=":material/history:")
