"""Accounts: argon2id password hashes, login throttling, roles. No default password anywhere.

Passwords are hashed with argon2-cffi's ``PasswordHasher`` (argon2id, RFC 9106 parameters) and
re-hashed on the next successful login when those parameters change. After
``MAX_FAILURES`` consecutive failed logins an account is locked for 1, 2, 4 … minutes (capped
at ``MAX_LOCK_MINUTES``); an admin can unlock it. Unknown usernames cost the same as known ones
(a dummy hash is verified), and they are throttled exactly like accounts (table
``login_throttle``, keyed by the SHA-256 of the normalised name; inactive accounts count there
too), so neither the answer nor the lock reveals which names exist. A new password or a
deactivation ends the user's login sessions (``core.db.sessions``).

Single sign-on (OIDC): an admin links an account to the e-mail of the user's identity at the
hospital's provider (``users.sso_email``, lower-cased, unique); :func:`authenticate_sso` maps
a signed-in identity to that account. SSO never creates accounts and leaves the password state
(hash, failed logins, lock) alone.
"""
from __future__ import annotations

import hashlib
import re
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from core.db.audit import audit
from core.db.errors import (AuthError, LockedOut, NotFound, PermissionDenied, PolicyError,
                            SetupDone, UserExists)
from core.db.engine import upsert_insert
from core.db.tables import ROLES, LoginThrottle, User, utcnow
from core.db.sessions import end_user_sessions
from core.db.rows import UserView

__all__ = ["AuthError", "LockedOut", "PolicyError", "UserExists", "PermissionDenied",
           "SetupDone", "ROLES", "MIN_PASSWORD_LENGTH", "MAX_FAILURES", "normalize_username",
           "check_password_policy", "create_user", "authenticate", "needs_first_admin",
           "create_first_admin", "require_role", "get_user", "list_users", "set_password",
           "set_active", "set_role", "unlock_user", "to_view", "MAX_EMAIL_LENGTH",
           "normalize_email", "set_sso_email", "authenticate_sso"]

MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 1024          # argon2 handles more; this bounds the work per attempt
MAX_FAILURES = 5                    # failed logins before the first lock
MAX_LOCK_MINUTES = 60
_USERNAME = re.compile(r"[a-z0-9][a-z0-9._-]{1,31}")
MAX_EMAIL_LENGTH = 254
# Deliberately simple: local@domain, a dot inside the domain, no spaces or control characters.
_EMAIL = re.compile(r"[^@\s\x00-\x1f\x7f]+@[^@\s\x00-\x1f\x7f.]+(?:\.[^@\s\x00-\x1f\x7f.]+)+")

_hasher = PasswordHasher()
_dummy_hash: str | None = None


def _dummy() -> str:
    global _dummy_hash
    if _dummy_hash is None:
        _dummy_hash = _hasher.hash("not-a-real-password-just-for-timing")
    return _dummy_hash


def to_view(user: User) -> UserView:
    return UserView.of(user)


def normalize_username(username: str) -> str:
    """Strip and lower-case; 2–32 characters of a–z, 0–9, ``.``, ``_``, ``-``."""
    name = (username or "").strip().lower()
    if not _USERNAME.fullmatch(name):
        raise PolicyError("Username must be 2–32 characters: letters, digits, '.', '_' or '-', "
                          "starting with a letter or digit.")
    return name


def normalize_email(email: str) -> str:
    """Strip and lower-case an SSO e-mail; raise :class:`PolicyError` unless it looks like
    ``local@domain.tld`` (no spaces, at most 254 characters)."""
    value = (email if isinstance(email, str) else "").strip().lower()
    if not value:
        raise PolicyError("E-mail address is empty.")
    if len(value) > MAX_EMAIL_LENGTH:
        raise PolicyError(f"E-mail address must be at most {MAX_EMAIL_LENGTH} characters long.")
    if not _EMAIL.fullmatch(value):
        raise PolicyError("E-mail address must look like name@example.org (one '@', a dot in "
                          "the domain, no spaces).")
    return value


def _check_sso_email_free(session: Session, email: str, *, except_id: int | None = None) -> None:
    q = select(User.username).where(User.sso_email == email)
    if except_id is not None:
        q = q.where(User.id != except_id)
    owner = session.scalar(q)
    if owner is not None:
        raise UserExists(f"The SSO e-mail {email!r} already belongs to user {owner!r}.")


def check_password_policy(password: str, username: str) -> None:
    """Raise :class:`PolicyError` naming the rule a password breaks."""
    if not isinstance(password, str) or len(password) < MIN_PASSWORD_LENGTH:
        raise PolicyError(f"Password must be at least {MIN_PASSWORD_LENGTH} characters long.")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise PolicyError(f"Password must be at most {MAX_PASSWORD_LENGTH} characters long.")
    if password.strip().lower() == username.strip().lower():
        raise PolicyError("Password must not be the username.")
    if len(set(password)) < 4:
        raise PolicyError("Password is too repetitive; use at least 4 different characters.")


def _check_role(role: str) -> str:
    if role not in ROLES:
        raise PolicyError(f"Role must be one of {', '.join(ROLES)}; got {role!r}.")
    return role


def _find(session: Session, username: str) -> User | None:
    try:
        name = normalize_username(username)
    except PolicyError:
        return None
    return session.scalar(select(User).where(User.username == name))


def _require(session: Session, username: str) -> User:
    user = _find(session, username)
    if user is None:
        raise NotFound(f"No user named {username.strip().lower()!r}.")
    return user


def create_user(session: Session, username: str, password: str, role: str = "radiologist",
                *, by_user_id: int | None = None, sso_email: str | None = None) -> UserView:
    """Add an active user, optionally linked to an SSO e-mail (``None`` or ``""``: no SSO).

    Raises :class:`PolicyError` or :class:`UserExists` (username or SSO e-mail taken).
    """
    name = normalize_username(username)
    _check_role(role)
    check_password_policy(password, name)
    email = normalize_email(sso_email) if sso_email not in (None, "") else None
    if session.scalar(select(User.id).where(User.username == name)) is not None:
        raise UserExists(f"A user named {name!r} already exists.")
    if email is not None:
        _check_sso_email_free(session, email)
    user = User(username=name, role=role, password_hash=_hasher.hash(password), active=True,
                failed_logins=0, sso_email=email)
    session.add(user)
    session.flush()
    extra = {"sso_email": email} if email is not None else {}
    audit(session, by_user_id if by_user_id is not None else user.id, "user_add",
          username=name, role=role, **extra)
    return to_view(user)


def needs_first_admin(session: Session) -> bool:
    """True while the database has no users at all (show the first-admin form)."""
    return not session.scalar(select(func.count()).select_from(User))


def create_first_admin(session: Session, username: str, password: str) -> UserView:
    """Create the first (admin) user; raises :class:`SetupDone` once any user exists."""
    if not needs_first_admin(session):
        raise SetupDone("The first admin already exists; ask an admin for an account.")
    view = create_user(session, username, password, "admin")
    if session.scalar(select(func.count()).select_from(User)) != 1:  # lost a race
        raise SetupDone("The first admin already exists; ask an admin for an account.")
    user = session.get(User, view.id)
    user.last_login_at = utcnow()      # creating the account logs them in
    audit(session, user.id, "login_ok", via="first_admin")
    session.flush()
    return to_view(user)


def _lock_minutes(failures: int) -> int:
    return min(2 ** max(failures - MAX_FAILURES, 0), MAX_LOCK_MINUTES)


THROTTLE_FORGET = timedelta(days=1)   # unknown names untried this long start again from zero


def _name_hash(username: str) -> str:
    try:
        name = normalize_username(username)
    except PolicyError:
        name = (username or "").strip().lower()
    return hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()


def _unknown_name_failed(session: Session, key: str, now: datetime) -> int:
    """Count one failure for a name that is no active account (atomic upsert); lock it like an
    account after ``MAX_FAILURES``. Returns the failure count."""
    if session.get(LoginThrottle, key) is None:   # occasional clean-up before a new row
        session.execute(delete(LoginThrottle).where(LoginThrottle.updated_at
                                                    < now - THROTTLE_FORGET))
    insert = upsert_insert(session)(LoginThrottle).values(name_hash=key, failures=1,
                                                         updated_at=now)
    failures = session.scalar(insert.on_conflict_do_update(
        index_elements=["name_hash"],
        set_={"failures": LoginThrottle.failures + 1, "updated_at": now})
        .returning(LoginThrottle.failures))
    row = session.get(LoginThrottle, key, populate_existing=True)
    if failures >= MAX_FAILURES:
        row.locked_until = now + timedelta(minutes=_lock_minutes(failures))
    session.flush()
    return failures


def authenticate(session: Session, username: str, password: str, *,
                 now: datetime | None = None) -> UserView | None:
    """The user when ``password`` is right and the account active, else ``None``.

    Raises :class:`LockedOut` while the account is locked (the audit row is committed first).
    ``now`` (aware UTC) is for tests.
    """
    now = now or utcnow()
    user = _find(session, username)
    if user is None or not user.active:
        # Same answers, same lock schedule as a real account (issue 15 item 7).
        key = _name_hash(username)
        throttle = session.get(LoginThrottle, key)
        if throttle is not None and throttle.locked_until is not None \
                and now < throttle.locked_until:
            audit(session, user.id if user else None, "login_locked",
                  reason="inactive" if user else "unknown_user")
            session.commit()
            raise LockedOut(throttle.locked_until)
        try:
            _hasher.verify(_dummy(), password or "")
        except VerificationError:
            pass
        failures = _unknown_name_failed(session, key, now)
        audit(session, user.id if user else None, "login_failed",
              reason="inactive" if user else "unknown_user", failures=failures)
        return None
    if user.locked_until is not None and now < user.locked_until:
        audit(session, user.id, "login_locked")
        session.commit()
        raise LockedOut(user.locked_until)
    try:
        _hasher.verify(user.password_hash, password or "")
    except (VerifyMismatchError, InvalidHashError, VerificationError):
        user.failed_logins += 1
        if user.failed_logins >= MAX_FAILURES:
            user.locked_until = now + timedelta(minutes=_lock_minutes(user.failed_logins))
        audit(session, user.id, "login_failed", reason="password",
              failures=user.failed_logins)
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    user.failed_logins = 0
    user.locked_until = None
    user.last_login_at = now
    audit(session, user.id, "login_ok")
    session.flush()
    return to_view(user)


def authenticate_sso(session: Session, email: str | None, *, email_verified: bool | None = None,
                     now: datetime | None = None) -> UserView | None:
    """The active user whose ``sso_email`` is ``email`` (the identity the OIDC provider
    vouched for), else ``None``; never raises for a missing or malformed e-mail.

    Refused, with a ``login_sso_failed`` audit row whose ``reason`` is ``no_email`` (missing or
    malformed e-mail), ``unverified_email`` (``email_verified`` is ``False``; ``None`` means the
    provider sent no such claim and is accepted), ``unknown_identity`` (no account linked to it)
    or ``inactive``. On success sets ``last_login_at`` and audits ``login_sso_ok``; the password
    lock and failure count are left as they are. ``now`` (aware UTC) is for tests.
    """
    now = now or utcnow()
    try:
        address = normalize_email(email)  # type: ignore[arg-type]
    except PolicyError:
        audit(session, None, "login_sso_failed", reason="no_email")
        return None
    user = session.scalar(select(User).where(User.sso_email == address))
    unverified = email_verified is False or (isinstance(email_verified, str)
                                             and email_verified.strip().lower() == "false")
    if unverified or user is None or not user.active:
        reason = ("unverified_email" if unverified else
                  "unknown_identity" if user is None else "inactive")
        audit(session, user.id if user else None, "login_sso_failed", reason=reason,
              sso_email=address)
        return None
    user.last_login_at = now
    audit(session, user.id, "login_sso_ok", sso_email=address)
    session.flush()
    return to_view(user)


def require_role(user: UserView | User | None, *roles: str) -> None:
    """Raise :class:`PermissionDenied` unless ``user`` is active and has one of ``roles``.

    Admins pass every check (they can do everything a radiologist can).
    """
    if user is None or not user.active:
        raise PermissionDenied("Please log in.")
    if user.role != "admin" and user.role not in roles:
        raise PermissionDenied(f"This needs the {' or '.join(roles)} role.")


def get_user(session: Session, user_id: int) -> UserView | None:
    user = session.get(User, user_id)
    return None if user is None else to_view(user)


def list_users(session: Session) -> list[UserView]:
    return [to_view(u) for u in session.scalars(select(User).order_by(User.username))]


def set_password(session: Session, username: str, password: str, *,
                 by_user_id: int | None = None) -> UserView:
    """New password (policy checked); also clears a lock."""
    user = _require(session, username)
    check_password_policy(password, user.username)
    user.password_hash = _hasher.hash(password)
    user.failed_logins, user.locked_until = 0, None
    audit(session, by_user_id, "user_update", username=user.username, change="password")
    end_user_sessions(session, user.id, reason="password", by_user_id=by_user_id)
    session.flush()
    return to_view(user)


def set_active(session: Session, username: str, active: bool, *,
               by_user_id: int | None = None) -> UserView:
    """Deactivate (can no longer log in; ratings are kept) or reactivate a user.

    Refuses to deactivate the last active admin.
    """
    user = _require(session, username)
    if not active and user.role == "admin" and user.active and _active_admins(session) <= 1:
        raise AuthError("Cannot deactivate the last active admin.")
    user.active = active
    audit(session, by_user_id, "user_update", username=user.username,
          change="activate" if active else "deactivate")
    if not active:
        end_user_sessions(session, user.id, reason="deactivated", by_user_id=by_user_id)
    session.flush()
    return to_view(user)


def set_role(session: Session, username: str, role: str, *,
             by_user_id: int | None = None) -> UserView:
    user = _require(session, username)
    _check_role(role)
    if user.role == "admin" and role != "admin" and user.active and _active_admins(session) <= 1:
        raise AuthError("Cannot demote the last active admin.")
    user.role = role
    audit(session, by_user_id, "user_update", username=user.username, change="role", role=role)
    session.flush()
    return to_view(user)


def set_sso_email(session: Session, username: str, email: str | None, *,
                  by_user_id: int | None = None) -> UserView:
    """Link a user to an SSO e-mail, or unlink (``None`` or ``""``).

    Raises :class:`NotFound`, :class:`PolicyError` (malformed e-mail) or :class:`UserExists`
    (another user has that e-mail).
    """
    user = _require(session, username)
    address = normalize_email(email) if email not in (None, "") else None
    if address is not None:
        _check_sso_email_free(session, address, except_id=user.id)
    user.sso_email = address
    audit(session, by_user_id, "user_sso_email", username=user.username, sso_email=address)
    session.flush()
    return to_view(user)


def unlock_user(session: Session, username: str, *, by_user_id: int | None = None) -> UserView:
    user = _require(session, username)
    user.failed_logins, user.locked_until = 0, None
    audit(session, by_user_id, "user_update", username=user.username, change="unlock")
    session.flush()
    return to_view(user)


def _active_admins(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(User)
                          .where(User.role == "admin", User.active.is_(True))) or 0
