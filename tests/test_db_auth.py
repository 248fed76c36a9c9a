"""Accounts: argon2id hashing, policy, throttling, first admin, roles."""
from __future__ import annotations

from datetime import timedelta

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select

from core.db import init_db, session_scope
from core.db import auth
from core.db import models as m
from core.db.audit import recent_audit

PW = "correct horse battery"


@pytest.fixture()
def engine(sqlite_url):
    return init_db(sqlite_url)


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
