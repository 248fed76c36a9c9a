"""Server-side login sessions (core.db.sessions): hand-off code, hashed token, idle and absolute
expiry, ended by log out, deactivation and a new password."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from core.db import auth, init_db, session_scope
from core.db import tables as m
from core.db import sessions as ss

PW = "correct horse battery"


@pytest.fixture()
def env(db_url):
    engine = init_db(db_url)
    with session_scope(engine) as s:
        auth.create_user(s, "boss", PW, "admin")
        uid = auth.create_user(s, "ann", PW).id
    return engine, uid


def _login(engine, uid, now=None):
    with session_scope(engine) as s:
        code = ss.start_login_session(s, uid, now=now)
    with session_scope(engine) as s:
        token = ss.redeem_handoff(s, code, now=now)
    return code, token


def test_code_is_single_use_and_only_hashes_are_stored(env):
    engine, uid = env
    code, token = _login(engine, uid)
    assert token and len(token) >= 40 and token != code
    with session_scope(engine) as s:
        assert ss.redeem_handoff(s, code) is None                 # spent
        row = s.scalars(select(m.LoginSession)).one()
        assert row.token_hash == ss.hash_secret(token) and row.code_hash is None
        dump = " ".join(str(v) for v in vars(row).values())
        assert token not in dump and code not in dump
        user = ss.session_user(s, token)
    assert user is not None and user.username == "ann"
    with session_scope(engine) as s:
        assert ss.session_user(s, token + "x") is None
        assert ss.session_user(s, None) is None


def test_late_code_is_refused(env):
    engine, uid = env
    t0 = m.utcnow()
    with session_scope(engine) as s:
        code = ss.start_login_session(s, uid, now=t0)
    with session_scope(engine) as s:
        assert ss.redeem_handoff(s, code, now=t0 + ss.HANDOFF_TTL + timedelta(seconds=1)) is None


def test_idle_and_absolute_expiry(env):
    engine, uid = env
    t0 = m.utcnow()
    _, token = _login(engine, uid, now=t0)
    t = t0
    with session_scope(engine) as s:   # active use keeps it alive up to the absolute limit
        while t + ss.IDLE_TIMEOUT / 2 < t0 + ss.MAX_AGE:
            t += ss.IDLE_TIMEOUT / 2
            assert ss.session_user(s, token, now=t) is not None
        assert ss.session_user(s, token, now=t0 + ss.MAX_AGE) is None
        assert s.scalars(select(m.LoginSession)).one().end_reason == "expired"
    _, token2 = _login(engine, uid, now=t0)
    with session_scope(engine) as s:
        assert ss.session_user(s, token2, now=t0 + ss.IDLE_TIMEOUT) is None
        assert ss.session_user(s, token2, now=t0) is None          # ended for good
        assert s.scalars(select(m.LoginSession.end_reason)
                         .where(m.LoginSession.id == 2)).one() == "idle"


@pytest.mark.parametrize("how", ["logout", "deactivate", "password"])
def test_sessions_end(env, how):
    engine, uid = env
    _, mine = _login(engine, uid)
    _, other_tab = _login(engine, uid)
    with session_scope(engine) as s:
        if how == "logout":
            assert ss.end_session(s, mine)
        elif how == "deactivate":
            auth.set_active(s, "ann", False)
        else:
            auth.set_password(s, "ann", "a brand new password")
    with session_scope(engine) as s:
        assert ss.session_user(s, mine) is None
        # Log out ends this browser's session only; the others end every session of the user
        assert (ss.session_user(s, other_tab) is not None) == (how == "logout")


def test_old_sessions_are_pruned(env):
    engine, uid = env
    t0 = m.utcnow() - ss.MAX_AGE - ss.KEEP_ENDED - timedelta(hours=1)
    _login(engine, uid, now=t0)
    _login(engine, uid)
    with session_scope(engine) as s:
        assert s.query(m.LoginSession).count() == 1


def test_read_only_check_writes_nothing(env):
    engine, uid = env
    t0 = m.utcnow()
    _, token = _login(engine, uid, now=t0)
    with session_scope(engine) as s:
        assert ss.session_user(s, token, now=t0 + ss.IDLE_TIMEOUT, write=False) is None
        assert ss.session_user(s, token, now=t0 + ss.TOUCH_EVERY * 2, write=False) is not None
        row = s.scalars(select(m.LoginSession)).one()
        assert row.ended_at is None and row.last_seen_at == t0
