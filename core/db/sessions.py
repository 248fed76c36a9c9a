"""Server-side login sessions for password users, so a page reload keeps them logged in.

Life of a session:

1. :func:`start_login_session` right after a successful password login: a row with a one-time
   hand-off ``code`` (random, valid for ``HANDOFF_TTL``), returned to the page.
2. The browser takes the code to the web server's ``/medscan-auth/session`` route, which calls
   :func:`redeem_handoff`: the code is spent and a random session ``token``
   (``secrets.token_urlsafe``) is issued and set as an HTTP-only cookie. Only the SHA-256 of
   the code and of the token is ever stored, so a copy of the database cannot be replayed.
3. Every script run calls :func:`session_user` with the cookie's token: the active user, or
   ``None`` once the session ended or expired (``IDLE_TIMEOUT`` without a request, or
   ``MAX_AGE`` after the login, whichever comes first).
4. :func:`end_session` (Log out) and :func:`end_user_sessions` (deactivation, new password)
   end it; ended and expired rows are deleted after ``KEEP_ENDED``.
"""
from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

from core.db.audit import audit
from core.db.tables import LoginSession, User, utcnow
from core.db.rows import UserView

__all__ = ["IDLE_TIMEOUT", "MAX_AGE", "HANDOFF_TTL", "hash_secret", "start_login_session",
           "redeem_handoff", "session_user", "end_session", "end_user_sessions",
           "prune_sessions"]

IDLE_TIMEOUT = timedelta(hours=2)     # no request for this long: log in again
MAX_AGE = timedelta(hours=12)         # one working shift, however active
HANDOFF_TTL = timedelta(seconds=60)   # the code only has to survive one redirect
TOUCH_EVERY = timedelta(minutes=1)    # last_seen_at is written at most this often
KEEP_ENDED = timedelta(days=7)        # ended / expired rows are deleted after this


def hash_secret(value: str) -> str:
    """Hex SHA-256 of a token or code (tokens are 256-bit random, so no salt or slow hash)."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def start_login_session(session: Session, user_id: int, *, now: datetime | None = None) -> str:
    """A new (not yet redeemed) session for ``user_id``; returns its one-time hand-off code."""
    now = now or utcnow()
    prune_sessions(session, now=now)
    code = secrets.token_urlsafe(32)
    session.add(LoginSession(user_id=user_id, code_hash=hash_secret(code), created_at=now,
                             last_seen_at=now, expires_at=now + MAX_AGE))
    session.flush()
    return code


def redeem_handoff(session: Session, code: str, *, now: datetime | None = None) -> str | None:
    """Spend a hand-off code: the new session token, or ``None`` if the code is unknown,
    already used, older than ``HANDOFF_TTL`` or its user is inactive."""
    now = now or utcnow()
    if not isinstance(code, str) or not 10 <= len(code) <= 128:
        return None
    row = session.scalar(select(LoginSession).where(LoginSession.code_hash == hash_secret(code),
                                                    LoginSession.ended_at.is_(None)))
    if row is None:
        return None
    row.code_hash = None          # single use, whatever happens next
    user = session.get(User, row.user_id)
    if now > row.created_at + HANDOFF_TTL or user is None or not user.active:
        row.ended_at, row.end_reason = now, "handoff_expired"
        session.flush()
        return None
    token = secrets.token_urlsafe(32)
    row.token_hash, row.last_seen_at = hash_secret(token), now
    session.flush()
    return token


def _end(row: LoginSession, now: datetime, reason: str) -> None:
    row.ended_at, row.end_reason = now, reason


def session_user(session: Session, token: str | None, *, now: datetime | None = None,
                 write: bool = True) -> UserView | None:
    """The active user of the session with this token, or ``None`` (no such session, ended,
    idle for ``IDLE_TIMEOUT``, older than ``MAX_AGE``, user deactivated). Refreshes
    ``last_seen_at`` (at most once per ``TOUCH_EVERY``) and marks a session it finds over
    its limits as ended; ``write=False`` only reads (a read-only database)."""

    if not token or not isinstance(token, str) or len(token) > 128:
        return None
    now = now or utcnow()
    row = session.scalar(select(LoginSession).where(
        LoginSession.token_hash == hash_secret(token), LoginSession.ended_at.is_(None)))
    if row is None:
        return None
    user = session.get(User, row.user_id)
    reason = ("expired" if now >= row.expires_at else
              "idle" if now >= row.last_seen_at + IDLE_TIMEOUT else
              "inactive" if user is None or not user.active else None)
    if not write:
        return None if reason else UserView.of(user)
    if reason:
        _end(row, now, reason)
    elif now - row.last_seen_at >= TOUCH_EVERY:
        row.last_seen_at = now
    session.flush()
    return None if reason else UserView.of(user)


def end_session(session: Session, token: str | None, *, reason: str = "logout",
                now: datetime | None = None) -> bool:
    """End the session with this token (Log out); False if there was none to end."""
    if not token or not isinstance(token, str) or len(token) > 128:
        return False
    now = now or utcnow()
    row = session.scalar(select(LoginSession).where(
        LoginSession.token_hash == hash_secret(token), LoginSession.ended_at.is_(None)))
    if row is None:
        return False
    _end(row, now, reason)
    session.flush()
    return True


def end_user_sessions(session: Session, user_id: int, *, reason: str,
                      now: datetime | None = None, by_user_id: int | None = None) -> int:
    """End every open session of ``user_id`` (deactivation, new password); how many ended."""
    now = now or utcnow()
    n = session.execute(update(LoginSession)
                        .where(LoginSession.user_id == user_id, LoginSession.ended_at.is_(None))
                        .values(ended_at=now, end_reason=reason, code_hash=None)).rowcount or 0
    if n:
        audit(session, by_user_id, "sessions_end", of_user=user_id, n=n, reason=reason)
    return n


def prune_sessions(session: Session, *, now: datetime | None = None) -> int:
    """Delete sessions that ended, or expired, more than ``KEEP_ENDED`` ago."""
    cutoff = (now or utcnow()) - KEEP_ENDED
    return session.execute(delete(LoginSession).where(or_(
        LoginSession.ended_at < cutoff, LoginSession.expires_at < cutoff))).rowcount or 0
