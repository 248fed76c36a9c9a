"""Typed errors of the storage layer; messages are meant for the user."""
from __future__ import annotations

from datetime import datetime

from core.errors import MedScanError

__all__ = ["DBError", "NotFound", "AuthError", "PolicyError", "UserExists", "LockedOut",
           "PermissionDenied", "SetupDone", "RatingError", "StudyError", "JobError", "StorageError"]


class DBError(MedScanError):
    """Base class for errors from ``core.db``."""


class NotFound(DBError, LookupError):
    """No such user / scan / study / job."""


class AuthError(DBError):
    """Base class for account errors."""


class PolicyError(AuthError, ValueError):
    """A username or password does not meet the policy (the message says which rule)."""


class UserExists(AuthError):
    """That username is taken."""


class LockedOut(AuthError):
    """Too many failed logins; ``until`` is when the next attempt is allowed (aware UTC)."""

    def __init__(self, until: datetime) -> None:
        self.until = until
        super().__init__(f"Too many failed logins. Try again after "
                         f"{until.strftime('%H:%M')} UTC, or ask an admin to unlock the account.")


class PermissionDenied(AuthError):
    """The user's role does not allow this."""


class SetupDone(AuthError):
    """The first admin can only be created while there are no users."""


class RatingError(DBError, ValueError):
    """A rating value is out of range or a field is invalid."""


class StudyError(DBError, ValueError):
    """A reader study definition is invalid."""


class JobError(DBError):
    """A training job could not be started or changed."""


class StorageError(DBError):
    """The database refused a read or write (read-only file, full disk, I/O error, locked for
    too long, server gone). Nothing of the failed transaction was saved; ``reason`` says why in
    words and the message is meant for the page."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"The database could not save this: {reason}. Nothing was saved; "
                         "ask an administrator to check the server's disk and database.")
