"""Audit log: who did what, when. Details are scrubbed of anything that looks like PHI.

Actions used by the app: ``login_ok``, ``login_failed``, ``login_locked``, ``login_sso_ok``,
``login_sso_failed``, ``user_sso_email``, ``logout``, ``sessions_end``, ``upload``,
``predict``, ``super_resolve``, ``rate``, ``study_create``, ``train_start``, ``train_cancel``,
``model_activate``, ``user_add``, ``user_update``, ``study_open``, ``study_close``,
``study_reopen``, ``study_delete``, ``study_readers``, ``case_add``, ``case_label``,
``case_remove``. ``core.db`` functions write their own rows
(login, upload, predict, rate, user_add, train_start...); pages add ``logout`` and
``model_activate``.
"""
from __future__ import annotations

import csv
import io
import json
import math
import re
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.db.tables import AuditLog, User
from core.db.rows import AuditView

__all__ = ["audit", "recent_audit", "search_audit", "audit_actions", "audit_csv", "scrub",
           "MASK", "AUDIT_CSV_COLUMNS", "detail_text"]

AUDIT_CSV_COLUMNS = ("id", "time_utc", "user", "action", "detail")

MASK = "<masked>"
_MAX_STR = 200
# Keys whose values may identify a patient (DICOM (0010,xxxx), dates, UIDs and friends) or leak a
# file name.
_PHI_KEY = re.compile(
    r"patient|birth|date|accession|address|phone|physician|institution|operator|"
    r"^(name|filename|file_name|path|filepath|file|uid|studyinstanceuid|seriesinstanceuid|"
    r"sopinstanceuid|other_patient_ids|issuer)$|instanceuid", re.IGNORECASE)


def scrub(value: Any, *, _depth: int = 0) -> Any:
    """A JSON-safe copy of ``value`` with PHI-like keys masked and long strings truncated."""
    if _depth > 6:
        return MASK
    if isinstance(value, dict):
        return {str(k): (MASK if _PHI_KEY.search(str(k).replace(" ", "")) and v not in (None, "")
                         else scrub(v, _depth=_depth + 1))
                for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [scrub(v, _depth=_depth + 1) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    text = str(value)
    return text if len(text) <= _MAX_STR else text[:_MAX_STR] + "…"


def audit(session: Session, user_id: int | None, action: str, **detail: Any) -> None:
    """Add one audit row (committed with the session). ``detail`` is scrubbed of PHI."""
    if not re.fullmatch(r"[a-z][a-z0-9_]{1,31}", action):
        raise ValueError(f"audit action must be a short snake_case word, got {action!r}")
    session.add(AuditLog(user_id=user_id, action=action, detail=scrub(detail)))


def recent_audit(session: Session, limit: int = 100, *, user_id: int | None = None,
                 action: str | None = None) -> list[AuditView]:
    """Newest first (admin page)."""
    session.flush()
    q = (select(AuditLog, User.username).outerjoin(User, User.id == AuditLog.user_id)
         .order_by(AuditLog.id.desc()).limit(limit))
    if user_id is not None:
        q = q.where(AuditLog.user_id == user_id)
    if action is not None:
        q = q.where(AuditLog.action == action)
    return [AuditView(id=a.id, at=a.at, user_id=a.user_id, username=name, action=a.action,
                      detail=dict(a.detail or {})) for a, name in session.execute(q)]


def _start_of(day: date | datetime) -> datetime:
    if isinstance(day, datetime):
        return day if day.tzinfo else day.replace(tzinfo=UTC)
    return datetime.combine(day, time.min, tzinfo=UTC)


def search_audit(session: Session, *, user_id: int | None = None,
                 actions: list[str] | tuple[str, ...] | None = None,
                 since: date | datetime | None = None, until: date | datetime | None = None,
                 limit: int = 1000) -> list[AuditView]:
    """Audit rows, newest first, filtered by user, actions (any of) and a UTC date range.

    ``since`` / ``until`` are inclusive; a ``date`` means that whole day (UTC), a ``datetime``
    that instant. At most ``limit`` rows (the newest).
    """
    session.flush()
    q = (select(AuditLog, User.username).outerjoin(User, User.id == AuditLog.user_id)
         .order_by(AuditLog.at.desc(), AuditLog.id.desc()).limit(max(1, int(limit))))
    if user_id is not None:
        q = q.where(AuditLog.user_id == user_id)
    if actions:
        q = q.where(AuditLog.action.in_(list(actions)))
    if since is not None:
        q = q.where(AuditLog.at >= _start_of(since))
    if until is not None:
        end = (_start_of(until) + timedelta(days=1) if not isinstance(until, datetime)
               else _start_of(until) + timedelta(microseconds=1))
        q = q.where(AuditLog.at < end)
    return [AuditView(id=a.id, at=a.at, user_id=a.user_id, username=name, action=a.action,
                      detail=dict(a.detail or {})) for a, name in session.execute(q)]


def audit_actions(session: Session) -> list[str]:
    """Every action that occurs in the log, sorted (for a filter)."""
    return sorted(session.scalars(select(AuditLog.action).distinct()))


def _cell(value: Any) -> Any:
    # Spreadsheet formula injection: a value starting with = + - @ would run as a formula.
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return "" if value is None else value


_HEX_HASH = re.compile(r"\b(sha256:)?([0-9a-f]{12})[0-9a-f]{20,}\b")


def _short(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict):
        return "{" + detail_text(value, sep=", ") + "}"
    if isinstance(value, list | tuple):
        return " ".join(_short(v) for v in value if v is not None)
    return _HEX_HASH.sub(lambda m: f"{m.group(1) or ''}{m.group(2)}…", str(value))


def detail_text(detail: dict[str, Any] | None, *, sep: str = "; ") -> str:
    """An audit row's detail for people to read: ``key: value`` pairs joined by ``; ``, None
    and empty values left out, lists joined with spaces, floats to 4 significant digits and
    SHA-256 hex digests shortened to their first 12 characters. For display only: the CSV
    (:func:`audit_csv`) keeps every value in full."""
    return sep.join(f"{str(k).replace('_', ' ')}: {_short(v)}" for k, v in (detail or {}).items()
                     if v is not None and v != "" and v != [] and v != {})


def audit_csv(rows: list[AuditView]) -> str:
    """``rows`` as CSV text (``AUDIT_CSV_COLUMNS``; detail as JSON), for a download button."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(AUDIT_CSV_COLUMNS)
    for r in rows:
        writer.writerow([r.id, r.at.isoformat(), _cell(r.username or ""), r.action,
                         _cell(json.dumps(r.detail, sort_keys=True, ensure_ascii=False))])
    return buf.getvalue()
