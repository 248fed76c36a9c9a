"""Accounts: argon2id hashing, policy, throttling, first admin, roles."""
from __future__ import annotations

from datetime import timedelta

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select

from core.db import init_db, session_scope
from core.db import auth
from core.db import tables as m
from core.db.audit import recent_audit
from core.db.errors import NotFound

PW = "correct horse battery"


@pytest.fixture()
def engine(db_url):
    return init_db(db_url)


def test_hash_is_argon2id_and_round_trips(engine):
    with session_scope(engine) as s:
        user = auth.create_user(s, "  Alice ", PW, "radiologist")
        assert user.username == "alice" and user.role == "radiologist"
        row = s.get(m.User, user.id)
        assert row.password_hash.startswith("$argon2id$") and PW not in row.password_hash
    with session_scope(engine) as s:
        assert auth.authenticate(s, "ALICE", PW).id == user.id
        assert auth.authenticate(s, "alice", PW + "x") is None
        assert auth.authenticate(s, "nobody", PW) is None


def test_rehash_when_parameters_change(engine, monkeypatch):
    with session_scope(engine) as s:
        user = auth.create_user(s, "bob", PW)
    monkeypatch.setattr(auth, "_hasher", PasswordHasher(time_cost=2, memory_cost=2048,
                                                        parallelism=1))
    with session_scope(engine) as s:
        assert auth.authenticate(s, "bob", PW) is not None
        assert "m=2048,t=2" in s.get(m.User, user.id).password_hash


@pytest.mark.parametrize("name, password, fragment", [
    ("carol", "short", "at least 10"),
    ("carol12345", "CAROL12345", "not be the username"),
    ("carol", "aaaaaaaaaaaa", "repetitive"),
    ("x", PW, "Username"),
    ("bad name!", PW, "Username"),
])
def test_policy_errors(engine, name, password, fragment):
    with session_scope(engine) as s, pytest.raises(auth.PolicyError, match=fragment) as err:
        auth.create_user(s, name, password)
    assert isinstance(err.value, ValueError) and isinstance(err.value, auth.AuthError)


def test_duplicate_username_and_bad_role(engine):
    with session_scope(engine) as s:
        auth.create_user(s, "dave", PW)
        with pytest.raises(auth.UserExists):
            auth.create_user(s, "DAVE", PW)
        with pytest.raises(auth.PolicyError, match="Role"):
            auth.create_user(s, "erin", PW, "superuser")


def test_lockout_after_failures_then_unlock_after_time(engine):
    with session_scope(engine) as s:
        auth.create_user(s, "frank", PW)
    t0 = m.utcnow()
    for i in range(auth.MAX_FAILURES):
        with session_scope(engine) as s:
            assert auth.authenticate(s, "frank", "wrong password!", now=t0) is None
    # locked: even the right password is refused until the lock expires
    with pytest.raises(auth.LockedOut) as err:
        with session_scope(engine) as s:
            auth.authenticate(s, "frank", PW, now=t0 + timedelta(seconds=30))
    assert err.value.until == t0 + timedelta(minutes=1)
    with session_scope(engine) as s:
        assert auth.authenticate(s, "frank", PW, now=t0 + timedelta(minutes=1, seconds=1))
        assert s.scalar(select(m.User.failed_logins)) == 0
        actions = [a.action for a in recent_audit(s, 20)]
    assert actions.count("login_failed") == auth.MAX_FAILURES
    assert "login_locked" in actions and actions[0] == "login_ok"


def test_lock_grows_with_more_failures(engine):
    with session_scope(engine) as s:
        auth.create_user(s, "gina", PW)
    now = m.utcnow()
    for _ in range(auth.MAX_FAILURES):
        with session_scope(engine) as s:
            auth.authenticate(s, "gina", "nope nope nope", now=now)
    now += timedelta(minutes=2)  # lock (1 min) expired; fail again -> 2 min lock
    with session_scope(engine) as s:
        assert auth.authenticate(s, "gina", "nope nope nope", now=now) is None
        assert s.scalar(select(m.User.locked_until)) == now + timedelta(minutes=2)
    with session_scope(engine) as s:
        auth.unlock_user(s, "gina")
    with session_scope(engine) as s:
        assert auth.authenticate(s, "gina", PW, now=now) is not None


def test_inactive_user_cannot_log_in(engine):
    with session_scope(engine) as s:
        auth.create_user(s, "admin1", PW, "admin")
        auth.create_user(s, "hank", PW)
        auth.set_active(s, "hank", False)
        assert auth.authenticate(s, "hank", PW) is None
        with pytest.raises(auth.AuthError, match="last active admin"):
            auth.set_active(s, "admin1", False)


def test_first_admin_only_once(engine):
    with session_scope(engine) as s:
        assert auth.needs_first_admin(s)
        admin = auth.create_first_admin(s, "Root", PW)
        assert admin.role == "admin" and admin.is_admin
    with session_scope(engine) as s:
        assert not auth.needs_first_admin(s)
        with pytest.raises(auth.SetupDone):
            auth.create_first_admin(s, "root2", PW)


def test_require_role(engine):
    with session_scope(engine) as s:
        admin = auth.create_user(s, "ivy", PW, "admin")
        reader = auth.create_user(s, "jack", PW, "radiologist")
    auth.require_role(admin, "admin")
    auth.require_role(admin, "radiologist")  # admins can do what readers can
    auth.require_role(reader, "radiologist")
    with pytest.raises(auth.PermissionDenied):
        auth.require_role(reader, "admin")
    with pytest.raises(auth.PermissionDenied):
        auth.require_role(None, "radiologist")


def test_no_password_in_audit(engine):
    with session_scope(engine) as s:
        auth.create_user(s, "kim", PW)
        auth.authenticate(s, "kim", "a wrong password")
        auth.set_password(s, "kim", "another good password")
        events = recent_audit(s, 50)
    assert all(PW not in str(e.detail) and "wrong" not in str(e.detail) for e in events)


# --- single sign-on (OIDC) e-mails -----------------------------------------------------------

@pytest.mark.parametrize("raw, expected", [
    ("alice@example.org", "alice@example.org"),
    ("  Alice.Smith@Hospital.Example.ORG ", "alice.smith@hospital.example.org"),
    ("a+tag@sub.example.co.uk", "a+tag@sub.example.co.uk"),
    ("x@y.z", "x@y.z"),
    ("alice@example.org\n", "alice@example.org"),
    ("o'brien@example.org", "o'brien@example.org"),
    ("a" * 64 + "@" + "b" * 185 + ".org", "a" * 64 + "@" + "b" * 185 + ".org"),  # 254 chars
])
def test_normalize_email_accepts(raw, expected):
    assert auth.normalize_email(raw) == expected


@pytest.mark.parametrize("raw, fragment", [
    ("", "empty"),
    ("   ", "empty"),
    (None, "empty"),
    ("alice", "look like"),
    ("alice@localhost", "look like"),
    ("@example.org", "look like"),
    ("alice@", "look like"),
    ("alice@@example.org", "look like"),
    ("a@b@example.org", "look like"),
    ("alice smith@example.org", "look like"),
    ("alice@exa mple.org", "look like"),
    ("alice@example.", "look like"),
    ("alice@.example.org", "look like"),
    ("alice@example..org", "look like"),
    ("alice\t@example.org", "look like"),
    ("a" * 64 + "@" + "b" * 186 + ".org", "at most 254"),   # 255 chars
])
def test_normalize_email_rejects(raw, fragment):
    with pytest.raises(auth.PolicyError, match=fragment) as err:
        auth.normalize_email(raw)
    assert isinstance(err.value, ValueError)


def test_create_user_with_sso_email(engine):
    with session_scope(engine) as s:
        user = auth.create_user(s, "lena", PW, "radiologist", sso_email=" Lena@Hospital.ORG ")
        plain = auth.create_user(s, "lars", PW)
        blank = auth.create_user(s, "lou", PW, sso_email="")
    assert user.sso_email == "lena@hospital.org"
    assert plain.sso_email is None and blank.sso_email is None
    with session_scope(engine) as s:
        assert s.get(m.User, user.id).sso_email == "lena@hospital.org"
        assert auth.get_user(s, user.id).sso_email == "lena@hospital.org"
        add = recent_audit(s, 10, action="user_add")
    assert {e.detail["username"]: e.detail.get("sso_email") for e in add} == {
        "lena": "lena@hospital.org", "lars": None, "lou": None}


def test_create_user_refuses_bad_or_duplicate_sso_email(engine):
    with session_scope(engine) as s:
        auth.create_user(s, "mia", PW, sso_email="mia@hospital.org")
    with session_scope(engine) as s:
        with pytest.raises(auth.UserExists, match="mia@hospital.org"):
            auth.create_user(s, "mia2", PW, sso_email="MIA@Hospital.org")
        with pytest.raises(auth.PolicyError, match="E-mail"):
            auth.create_user(s, "mia3", PW, sso_email="not an e-mail")
        with pytest.raises(auth.UserExists, match="named 'mia'"):  # username checked first
            auth.create_user(s, "mia", PW, sso_email="other@hospital.org")
    with session_scope(engine) as s:
        assert [u.username for u in auth.list_users(s)] == ["mia"]


def test_set_and_clear_sso_email(engine):
    with session_scope(engine) as s:
        admin = auth.create_user(s, "nora", PW, "admin")
        auth.create_user(s, "omar", PW)
        auth.create_user(s, "pia", PW, sso_email="pia@hospital.org")
    with session_scope(engine) as s:
        view = auth.set_sso_email(s, "OMAR", "Omar@Hospital.org", by_user_id=admin.id)
        assert view.sso_email == "omar@hospital.org" and view.username == "omar"
        # setting one's own e-mail again (any case) is not a duplicate
        assert auth.set_sso_email(s, "omar", "OMAR@hospital.org").sso_email == \
            "omar@hospital.org"
        with pytest.raises(auth.UserExists, match="pia@hospital.org"):
            auth.set_sso_email(s, "omar", "PIA@hospital.org")
        with pytest.raises(auth.PolicyError):
            auth.set_sso_email(s, "omar", "omar at hospital")
        with pytest.raises(NotFound):
            auth.set_sso_email(s, "nobody", "x@hospital.org")
    with session_scope(engine) as s:
        assert s.scalar(select(m.User.sso_email).where(m.User.username == "omar")) == \
            "omar@hospital.org"
        assert auth.set_sso_email(s, "omar", None, by_user_id=admin.id).sso_email is None
        assert auth.set_sso_email(s, "pia", "").sso_email is None
        # the freed address can be given to someone else
        assert auth.set_sso_email(s, "omar", "pia@hospital.org").sso_email == "pia@hospital.org"
        events = recent_audit(s, 20, action="user_sso_email")
    assert [(e.detail["username"], e.detail["sso_email"]) for e in reversed(events)] == [
        ("omar", "omar@hospital.org"), ("omar", "omar@hospital.org"), ("omar", None),
        ("pia", None), ("omar", "pia@hospital.org")]
    assert events[-1].user_id == admin.id and events[-1].username == "nora"


def test_authenticate_sso_ok_is_case_insensitive_and_leaves_password_state(engine):
    with session_scope(engine) as s:
        user = auth.create_user(s, "quinn", PW, sso_email="quinn@hospital.org")
    t0 = m.utcnow()
    for _ in range(auth.MAX_FAILURES):  # lock the password login
        with session_scope(engine) as s:
            auth.authenticate(s, "quinn", "wrong password!", now=t0)
    now = t0 + timedelta(seconds=5)
    with session_scope(engine) as s:
        view = auth.authenticate_sso(s, "  Quinn@HOSPITAL.org", email_verified=True, now=now)
        assert view is not None and view.id == user.id and view.username == "quinn"
        assert view.last_login_at == now and view.sso_email == "quinn@hospital.org"
    with session_scope(engine) as s:
        row = s.get(m.User, user.id)
        assert row.last_login_at == now
        assert row.failed_logins == auth.MAX_FAILURES and row.locked_until is not None
        ok = recent_audit(s, 5, action="login_sso_ok")
        assert auth.authenticate_sso(s, "quinn@hospital.org") is not None  # no claim: accepted
    assert len(ok) == 1 and ok[0].user_id == user.id
    assert ok[0].detail == {"sso_email": "quinn@hospital.org"}


@pytest.mark.parametrize("email, verified, reason", [
    ("nobody@hospital.org", True, "unknown_identity"),
    ("ruth@hospital.org", False, "unverified_email"),
    ("ruth@hospital.org", "false", "unverified_email"),   # some providers send strings
    ("sam@hospital.org", True, "inactive"),
    (None, True, "no_email"),
    ("", None, "no_email"),
    ("not-an-email", True, "no_email"),
    ("x" * 300 + "@hospital.org", True, "no_email"),
])
def test_authenticate_sso_refusals(engine, email, verified, reason):
    with session_scope(engine) as s:
        auth.create_user(s, "admin1", PW, "admin")
        ruth = auth.create_user(s, "ruth", PW, sso_email="ruth@hospital.org")
        sam = auth.create_user(s, "sam", PW, sso_email="sam@hospital.org")
        auth.set_active(s, "sam", False)
    with session_scope(engine) as s:
        assert auth.authenticate_sso(s, email, email_verified=verified) is None
    with session_scope(engine) as s:
        failed = recent_audit(s, 5, action="login_sso_failed")
        assert not recent_audit(s, 5, action="login_sso_ok")
        assert s.scalar(select(m.User.last_login_at).where(m.User.id == ruth.id)) is None
    assert len(failed) == 1 and failed[0].detail["reason"] == reason
    expected_user = {"ruth@hospital.org": ruth.id, "sam@hospital.org": sam.id}
    assert failed[0].user_id == (expected_user.get(email) if isinstance(email, str) else None)


def _fail_n(engine, name, n, now):
    for _ in range(n):
        with session_scope(engine) as s:
            assert auth.authenticate(s, name, "wrong password!", now=now) is None


@pytest.mark.parametrize("name", ["ghost", "Not A Valid Name!", "inactive1"])
def test_unknown_and_inactive_names_lock_exactly_like_accounts(engine, name):
    """Issue 15 item 7: after 5 failures a real name answered "Too many failed logins" while an
    unknown one kept answering "wrong password", which told an attacker which accounts exist."""
    with session_scope(engine) as s:
        auth.create_user(s, "real1", PW)
        auth.create_user(s, "inactive1", PW)
        auth.set_active(s, "inactive1", False)
    t0 = m.utcnow()
    _fail_n(engine, "real1", auth.MAX_FAILURES, t0)
    _fail_n(engine, name, auth.MAX_FAILURES, t0)
    answers = []
    for who in ("real1", name):
        with pytest.raises(auth.LockedOut) as err:
            with session_scope(engine) as s:
                auth.authenticate(s, who, PW, now=t0 + timedelta(seconds=30))
        answers.append((str(err.value), err.value.until))
    assert answers[0] == answers[1]
    assert answers[0][0].startswith("Too many failed logins")
    # the lock runs out and grows the same way
    t1 = t0 + timedelta(minutes=2)
    for who in ("real1", name):
        with session_scope(engine) as s:
            assert auth.authenticate(s, who, "wrong password!", now=t1) is None
    with session_scope(engine) as s:
        lock = s.scalar(select(m.LoginThrottle.locked_until))
        assert lock == t1 + timedelta(minutes=2)
        assert s.scalar(select(m.User.locked_until).where(m.User.username == "real1")) == lock
        # no user row was made for the unknown name, and its name is not stored readable
        assert {u.username for u in s.scalars(select(m.User))} == {"real1", "inactive1"}
        assert name.lower() not in s.scalar(select(m.LoginThrottle.name_hash))


def test_unknown_name_throttle_is_case_insensitive_and_forgotten_after_a_day(engine):
    t0 = m.utcnow()
    _fail_n(engine, "Ghost", 3, t0)
    _fail_n(engine, " ghost ", 2, t0)
    with pytest.raises(auth.LockedOut):
        with session_scope(engine) as s:
            auth.authenticate(s, "GHOST", PW, now=t0)
    # a day later the stale row is pruned when another name fails
    _fail_n(engine, "other", 1, t0 + auth.THROTTLE_FORGET + timedelta(minutes=1))
    with session_scope(engine) as s:
        assert s.query(m.LoginThrottle).count() == 1


def test_first_admin_counts_as_logged_in(engine):
    with session_scope(engine) as s:
        admin = auth.create_first_admin(s, "root", PW)
    assert admin.last_login_at is not None
