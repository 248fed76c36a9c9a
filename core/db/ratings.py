"""Reader ratings (1–5 image quality and diagnostic usefulness) of one view of a scan.

Readers only ever get their own rows back (``my_ratings``, ``get_my_rating``); all readers' rows
leave only through the admin functions ``export_ratings`` / ``export_ratings_csv`` /
``rating_summary`` (the page must gate them with ``require_role(user, "admin")``). Scans are
identified by hash and by the PHI-masked display name and thumbnail the app gave them
(``scans.label_scan``); a rating records the view it was given on (frame, SR scale and mode,
ESRGAN α).
"""
from __future__ import annotations

import csv
import io
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.db.audit import audit
from core.db.engine import upsert_insert
from core.db.errors import RatingError
from core.db.tables import Rating, Scan, Study, User, utcnow
from core.db.scans import _scan, check_sha256
from core.db.rows import RatingView

__all__ = ["save_rating", "my_ratings", "get_my_rating", "export_ratings",
           "export_ratings_csv", "write_ratings_csv", "rating_summary", "EXPORT_COLUMNS"]

# What was rated: "original", "gradcam" or an SR method of core.sr.methods; any lower-case name
# of this shape is accepted, so a new method needs no change here.
_METHOD = re.compile(r"[a-z][a-z0-9_.-]{0,31}")
MAX_COMMENT = 2000
#: ``file_name`` is the scan's PHI-masked display name; ``view`` says what was rated in words and
#: ``frame`` (1-based, as the app shows it), ``scale``, ``mode``, ``alpha`` are its parts (empty
#: where not applicable or for ratings made before they were recorded).
EXPORT_COLUMNS = ("rating_id", "reader", "scan_sha256", "file_name", "method", "model_version",
                  "view", "frame", "scale", "mode", "alpha", "study_id", "study", "image_quality",
                  "diagnostic_usefulness", "comment", "created_at", "updated_at")


def _score(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 5:
        raise RatingError(f"{name.replace('_', ' ')} must be a whole number from 1 to 5; "
                          f"got {value!r}.")
    return value


def _method(method: str) -> str:
    if not isinstance(method, str) or not _METHOD.fullmatch(method):
        raise RatingError(f"Invalid view/method name {method!r}.")
    return method


def _view(r: Rating, sha: str, scan_name: str | None = None,
          thumbnail: bytes | None = None) -> RatingView:
    return RatingView(id=r.id, reader_id=r.reader_id, scan_sha256=sha, method=r.method,
                      model_version=r.model_version or None, study_id=r.study_id,
                      image_quality=r.image_quality,
                      diagnostic_usefulness=r.diagnostic_usefulness, comment=r.comment,
                      created_at=r.created_at, updated_at=r.updated_at, frame=r.frame,
                      scale=r.scale, mode=r.mode, alpha=r.alpha, scan_name=scan_name,
                      thumbnail=thumbnail)


def _view_fields(frame: int | None, scale: int | None, mode: str | None,
                 alpha: float | None) -> dict[str, Any]:
    if frame is not None and (isinstance(frame, bool) or int(frame) < 0):
        raise RatingError(f"Invalid frame {frame!r}.")
    if scale is not None and (isinstance(scale, bool) or int(scale) < 1):
        raise RatingError(f"Invalid scale {scale!r}.")
    if mode is not None and not _METHOD.fullmatch(str(mode)[:16]):
        raise RatingError(f"Invalid mode {mode!r}.")
    return {"frame": None if frame is None else int(frame),
            "scale": None if scale is None else int(scale),
            "mode": None if mode is None else str(mode)[:16],
            "alpha": None if alpha is None else round(float(alpha), 4)}


RATING_KEY = ("reader_id", "scan_id", "method", "model_version", "study_key")  # the unique key


def _key_filter(reader_id: int, scan_id: int, method: str, model_version: str | None,
                study_id: int | None):
    return (Rating.reader_id == reader_id, Rating.scan_id == scan_id, Rating.method == method,
            Rating.model_version == (model_version or ""), Rating.study_key == (study_id or 0))


def save_rating(session: Session, *, reader_id: int, scan_sha256: str, method: str,
                model_version: str | None, image_quality: int, diagnostic_usefulness: int,
                comment: str | None = None, study_id: int | None = None,
                frame: int | None = None, scale: int | None = None, mode: str | None = None,
                alpha: float | None = None) -> RatingView:
    """Insert the reader's rating of this view, or update their earlier one (upsert).

    ``frame`` / ``scale`` / ``mode`` / ``alpha`` record the view the scores were given on; they
    are not part of the unique key, so rating another view of the same (scan, method, model
    version) replaces the earlier rating and its view (see ``models.Rating``)."""
    view = _view_fields(frame, scale, mode, alpha)
    iq = _score("image_quality", image_quality)
    du = _score("diagnostic_usefulness", diagnostic_usefulness)
    method = _method(method)
    comment = (comment or "").strip()[:MAX_COMMENT] or None
    scan = _scan(session, scan_sha256)
    now = utcnow()
    # One atomic statement (INSERT ... ON CONFLICT DO UPDATE), not read-then-insert: two first
    # submissions at once (two tabs, a double click) would otherwise both find no row and the
    # second INSERT would hit the unique key. The last submission wins; created_at stays.
    insert = upsert_insert(session)(Rating).values(
        reader_id=reader_id, scan_id=scan.id, method=method, model_version=model_version or "",
        study_id=study_id, study_key=study_id or 0, image_quality=iq, diagnostic_usefulness=du,
        comment=comment, created_at=now, updated_at=now, **view)
    rating_id = session.scalar(insert.on_conflict_do_update(
        index_elements=list(RATING_KEY),
        set_={"image_quality": iq, "diagnostic_usefulness": du, "comment": comment,
              "updated_at": now, **view}).returning(Rating.id))
    row = session.scalars(select(Rating).where(Rating.id == rating_id)
                          .execution_options(populate_existing=True)).one()
    audit(session, reader_id, "rate", scan=scan.sha256, method=method,
          model_version=model_version, study_id=study_id)
    return _view(row, scan.sha256)


def get_my_rating(session: Session, *, reader_id: int, scan_sha256: str, method: str,
                  model_version: str | None = None,
                  study_id: int | None = None) -> RatingView | None:
    """This reader's rating of this view, if any (to pre-fill the sliders)."""
    sha = check_sha256(scan_sha256)
    scan_id = session.scalar(select(Scan.id).where(Scan.sha256 == sha))
    if scan_id is None:
        return None
    row = session.scalar(select(Rating).where(
        *_key_filter(reader_id, scan_id, method, model_version, study_id)))
    return None if row is None else _view(row, sha)


#: The ``method`` a reader sees for their own rating of a blinded study's image.
BLINDED = "blinded"


def _blinded(v: RatingView) -> RatingView:
    """A rating of a blinded study's image as its reader may see it: no method, model, scale,
    mode, α, file name or thumbnail (any of them could tell the condition)."""
    return replace(v, method=BLINDED, model_version=None, frame=None, scale=None, mode=None,
                   alpha=None, scan_name=None, thumbnail=None)


def my_ratings(session: Session, reader_id: int) -> list[RatingView]:
    """All of this reader's ratings, newest first, with each scan's display name and thumbnail.
    Never other readers' rows. Ratings in a blinded reader study come back blinded
    (:func:`_blinded`), so a reader cannot learn the conditions from this list."""
    rows = session.execute(select(Rating, Scan.sha256, Scan.display_name, Scan.thumbnail,
                                  Study.blinded)
                           .join(Scan, Scan.id == Rating.scan_id)
                           .outerjoin(Study, Study.id == Rating.study_id)
                           .where(Rating.reader_id == reader_id)
                           .order_by(Rating.updated_at.desc(), Rating.id.desc()))
    return [_blinded(_view(r, sha, name, thumb)) if blinded else _view(r, sha, name, thumb)
            for r, sha, name, thumb, blinded in rows]


def export_ratings(session: Session) -> list[dict[str, Any]]:
    """Admin only: every rating as a flat dict (``EXPORT_COLUMNS``), times in ISO 8601 UTC."""
    rows = session.execute(
        select(Rating, Scan.sha256, Scan.display_name, User.username, Study.name)
        .join(Scan, Scan.id == Rating.scan_id).join(User, User.id == Rating.reader_id)
        .outerjoin(Study, Study.id == Rating.study_id).order_by(Rating.id))
    out = []
    for r, sha, name, reader, study in rows:
        v = _view(r, sha, name)
        out.append({"rating_id": r.id, "reader": reader, "scan_sha256": sha, "file_name": name,
                    "method": r.method, "model_version": r.model_version or None,
                    "view": v.view, "frame": None if r.frame is None else r.frame + 1,
                    "scale": r.scale, "mode": r.mode, "alpha": r.alpha,
                    "study_id": r.study_id, "study": study, "image_quality": r.image_quality,
                    "diagnostic_usefulness": r.diagnostic_usefulness, "comment": r.comment,
                    "created_at": r.created_at.isoformat(),
                    "updated_at": r.updated_at.isoformat()})
    return out


def _cell(value: Any) -> Any:
    # Spreadsheet formula injection: a comment starting with = + - @ would run as a formula.
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return "" if value is None else value


def write_ratings_csv(rows: list[dict[str, Any]], out: Path | str | io.TextIOBase) -> None:
    if isinstance(out, str | Path):
        with open(out, "w", newline="", encoding="utf-8") as fh:
            write_ratings_csv(rows, fh)
        return
    writer = csv.DictWriter(out, fieldnames=list(EXPORT_COLUMNS))
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _cell(row.get(k)) for k in EXPORT_COLUMNS})


def export_ratings_csv(session: Session) -> str:
    """Admin only: ``export_ratings`` as CSV text (for a download button)."""
    buf = io.StringIO()
    write_ratings_csv(export_ratings(session), buf)
    return buf.getvalue()


def rating_summary(session: Session) -> list[dict[str, Any]]:
    """Admin only: per (method, model_version): number of ratings and readers, mean scores."""
    q = (select(Rating.method, Rating.model_version, func.count(Rating.id),
                func.count(func.distinct(Rating.reader_id)), func.avg(Rating.image_quality),
                func.avg(Rating.diagnostic_usefulness))
         .group_by(Rating.method, Rating.model_version)
         .order_by(Rating.method, Rating.model_version))
    return [{"method": m, "model_version": v or None, "n_ratings": n, "n_readers": readers,
             "mean_image_quality": round(float(iq), 3),
             "mean_diagnostic_usefulness": round(float(du), 3)}
            for m, v, n, readers, iq, du in session.execute(q)]
