"""Reader studies: a fixed set of images (scan × view) that every reader rates in their own
shuffled order, optionally blinded.

* Order: each reader gets a permutation derived from ``sha256(f"{seed}:{reader_id}")``, so it is
  stable across sessions and restarts, and differs between readers.
* Blinding: readers see "Image 3 of 12"; the method, model version and scan hash are withheld
  from :class:`StudyItemView` and ratings go through :func:`rate_study_item` by item id.
* Pixels: the 8-bit PNG of each item's processed view (e.g. the super-resolved output) is stored
  in the ``study_images`` table (deduplicated by hash), so the database alone holds the study;
  fetch with :func:`study_image_bytes`.
"""
from __future__ import annotations

import hashlib
import random
import secrets
import struct
from collections.abc import Mapping, Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.db.audit import audit
from core.db.errors import NotFound, StudyError
from core.db.models import Rating, Scan, Study, StudyImage, StudyItem, User
from core.db.ratings import _method, save_rating
from core.db.records import _scan
from core.db.views import StudyItemView, StudyProgress, StudyView

__all__ = ["create_study", "list_studies", "get_study", "study_queue", "next_unrated",
           "study_progress", "study_reader_progress", "study_image_bytes", "set_study_image",
           "rate_study_item", "set_study_active", "reader_order", "png_info",
           "study_rating_rows", "study_conditions", "study_readers", "RATING_QUESTIONS"]

# The questions each rating answers (columns of ``ratings``), in display order.
RATING_QUESTIONS = ("image_quality", "diagnostic_usefulness")

_PNG_SIG = b"\x89PNG\r\n\x1a\n"
ItemSpec = tuple[str, str, str | None] | tuple[str, str, str | None, bytes | None]


def png_info(png: bytes) -> tuple[int, int, int]:
    """(width, height, bit depth) from a PNG's IHDR; :class:`StudyError` if it is not a PNG."""
    if not isinstance(png, bytes | bytearray) or len(png) < 33 or png[:8] != _PNG_SIG \
            or png[12:16] != b"IHDR":
        raise StudyError("Study images must be PNG files.")
    width, height, depth = struct.unpack(">IIB", png[16:25])
    return width, height, depth


def _store_image(session: Session, png: bytes) -> StudyImage:
    width, height, depth = png_info(png)
    if depth != 8:
        raise StudyError(f"Study images must be 8-bit PNGs (got {depth}-bit).")
    sha = hashlib.sha256(png).hexdigest()
    image = session.scalar(select(StudyImage).where(StudyImage.sha256 == sha))
    if image is None:
        image = StudyImage(sha256=sha, png=bytes(png), width=width, height=height)
        session.add(image)
        session.flush()
    return image


def _study_view(session: Session, study: Study) -> StudyView:
    n = session.scalar(select(func.count()).select_from(StudyItem)
                       .where(StudyItem.study_id == study.id)) or 0
    creator = (session.scalar(select(User.username).where(User.id == study.created_by))
               if study.created_by is not None else None)
    return StudyView(id=study.id, name=study.name, blinded=study.blinded, seed=study.seed,
                     active=study.active, n_items=n, created_by=creator,
                     created_at=study.created_at)


def create_study(session: Session, name: str, created_by: int | None,
                 scan_hashes_with_methods: Sequence[ItemSpec], blinded: bool = True,
                 seed: int | None = None,
                 images: Mapping[tuple[str, str, str | None], bytes] | None = None) -> StudyView:
    """A study over ``(scan_sha256, method, model_version[, png_bytes])`` items.

    Pixels come from the optional 4th tuple element or ``images[(sha, method, version)]``; items
    without a PNG can get one later with :func:`set_study_image`. Scans must be recorded first.
    ``seed`` defaults to a random one (stored, so orders stay fixed).
    """
    name = (name or "").strip()
    if not name or len(name) > 120:
        raise StudyError("A study needs a name of 1–120 characters.")
    if session.scalar(select(Study.id).where(Study.name == name)) is not None:
        raise StudyError(f"A study named {name!r} already exists.")
    if not scan_hashes_with_methods:
        raise StudyError("A study needs at least one image.")
    seen: set[tuple[str, str, str]] = set()
    study = Study(name=name, created_by=created_by, blinded=bool(blinded),
                  seed=secrets.randbits(31) if seed is None else int(seed), active=True)
    session.add(study)
    session.flush()
    # Insert in a seeded random order, so that item ids and positions say nothing about the
    # method (an admin typically lists scan × method in a regular pattern).
    specs = list(scan_hashes_with_methods)
    random.Random(study.seed).shuffle(specs)
    for position, spec in enumerate(specs):
        if len(spec) not in (3, 4):
            raise StudyError("Each study item is (scan_sha256, method, model_version[, png]).")
        sha, method, version = spec[0], _method(spec[1]), spec[2] or None
        png = spec[3] if len(spec) == 4 else (images or {}).get((sha, spec[1], spec[2]))
        scan = _scan(session, sha)
        key = (scan.sha256, method, version or "")
        if key in seen:
            raise StudyError(f"Duplicate study item: {method} {version or ''} of scan "
                             f"{scan.sha256[:12]}….")
        seen.add(key)
        image = _store_image(session, png) if png is not None else None
        session.add(StudyItem(study_id=study.id, scan_id=scan.id, method=method,
                              model_version=version or "", position=position,
                              image_id=image.id if image else None))
    session.flush()
    audit(session, created_by, "study_create", study_id=study.id,
          n_items=len(scan_hashes_with_methods), blinded=study.blinded)
    return _study_view(session, study)


def _study(session: Session, study_id: int) -> Study:
    study = session.get(Study, study_id)
    if study is None:
        raise NotFound(f"No reader study with id {study_id}.")
    return study


def get_study(session: Session, study_id: int) -> StudyView:
    return _study_view(session, _study(session, study_id))


def list_studies(session: Session, *, active_only: bool = False) -> list[StudyView]:
    q = select(Study).order_by(Study.id.desc())
    if active_only:
        q = q.where(Study.active.is_(True))
    return [_study_view(session, s) for s in session.scalars(q)]


def set_study_active(session: Session, study_id: int, active: bool) -> StudyView:
    study = _study(session, study_id)
    study.active = bool(active)
    session.flush()
    return _study_view(session, study)


def reader_order(seed: int, reader_id: int, n: int) -> list[int]:
    """The permutation of ``range(n)`` reader ``reader_id`` sees (deterministic)."""
    digest = hashlib.sha256(f"{seed}:{reader_id}".encode()).digest()
    order = list(range(n))
    random.Random(int.from_bytes(digest[:8], "big")).shuffle(order)
    return order


def study_queue(session: Session, study_id: int, reader_id: int) -> list[StudyItemView]:
    """All items in this reader's order, with their own rating (if any) attached."""
    study = _study(session, study_id)
    items = list(session.execute(
        select(StudyItem, Scan.sha256).join(Scan, Scan.id == StudyItem.scan_id)
        .where(StudyItem.study_id == study_id).order_by(StudyItem.position)))
    mine = {(r.scan_id, r.method, r.model_version): r for r in session.scalars(
        select(Rating).where(Rating.reader_id == reader_id, Rating.study_key == study_id))}
    n = len(items)
    views = []
    for index, i in enumerate(reader_order(study.seed, reader_id, n), start=1):
        item, sha = items[i]
        rating = mine.get((item.scan_id, item.method, item.model_version))
        version = item.model_version or None
        if study.blinded:
            label = f"Image {index} of {n}"
        else:
            label = f"{item.method}{f' {version}' if version else ''} · {sha[:8]} ({index}/{n})"
        views.append(StudyItemView(
            item_id=item.id, study_id=study_id, index=index, total=n, label=label,
            blinded=study.blinded, method=None if study.blinded else item.method,
            model_version=None if study.blinded else version,
            scan_sha256=None if study.blinded else sha, has_image=item.image_id is not None,
            rated=rating is not None,
            image_quality=rating.image_quality if rating else None,
            diagnostic_usefulness=rating.diagnostic_usefulness if rating else None,
            comment=rating.comment if rating else None))
    return views


def next_unrated(session: Session, study_id: int, reader_id: int) -> StudyItemView | None:
    """The first item in this reader's order they have not rated; ``None`` when finished."""
    return next((v for v in study_queue(session, study_id, reader_id) if not v.rated), None)


def study_progress(session: Session, study_id: int, reader_id: int) -> StudyProgress:
    queue = study_queue(session, study_id, reader_id)
    return StudyProgress(study_id=study_id, reader_id=reader_id,
                         rated=sum(v.rated for v in queue), total=len(queue))


def study_reader_progress(session: Session, study_id: int) -> list[StudyProgress]:
    """Admin: how far each reader who started got (counts only, no scores)."""
    total = _study_view(session, _study(session, study_id)).n_items
    rows = session.execute(select(Rating.reader_id, func.count(Rating.id))
                           .where(Rating.study_key == study_id).group_by(Rating.reader_id))
    return [StudyProgress(study_id=study_id, reader_id=rid, rated=n, total=total)
            for rid, n in rows]


def _item(session: Session, item_id: int) -> StudyItem:
    item = session.get(StudyItem, item_id)
    if item is None:
        raise NotFound(f"No study item with id {item_id}.")
    return item


def study_image_bytes(session: Session, item_id: int) -> bytes | None:
    """The PNG a reader sees for this item, or ``None`` if none was stored."""
    item = _item(session, item_id)
    if item.image_id is None:
        return None
    return session.scalar(select(StudyImage.png).where(StudyImage.id == item.image_id))


def set_study_image(session: Session, item_id: int, png: bytes) -> None:
    """Attach (or replace) the 8-bit PNG of an item."""
    item = _item(session, item_id)
    item.image_id = _store_image(session, png).id
    session.flush()


def rate_study_item(session: Session, *, reader_id: int, item_id: int, image_quality: int,
                    diagnostic_usefulness: int, comment: str | None = None) -> StudyProgress:
    """Save (or update) this reader's rating of a study item without revealing its method."""
    item = _item(session, item_id)
    if not item.study.active:
        raise StudyError("This reader study is closed.")
    sha = session.scalar(select(Scan.sha256).where(Scan.id == item.scan_id))
    save_rating(session, reader_id=reader_id, scan_sha256=sha, method=item.method,
                model_version=item.model_version or None, image_quality=image_quality,
                diagnostic_usefulness=diagnostic_usefulness, comment=comment,
                study_id=item.study_id)
    return study_progress(session, item.study_id, reader_id)


def _condition_names(session: Session, study_id: int) -> dict[tuple[str, str], str]:
    """``(method, model_version) -> condition``: the method, with ``@version`` only where the
    study holds one method under more than one model version."""
    pairs = set(session.execute(select(StudyItem.method, StudyItem.model_version)
                                .where(StudyItem.study_id == study_id)).tuples())
    versions: dict[str, int] = {}
    for method, _ in pairs:
        versions[method] = versions.get(method, 0) + 1
    return {(m, v): (f"{m}@{v}" if versions[m] > 1 and v else m) for m, v in pairs}


def study_conditions(session: Session, study_id: int) -> dict[str, int]:
    """Admin: condition -> number of items (cases) in the study, sorted by condition."""
    _study(session, study_id)
    names = _condition_names(session, study_id)
    counts: dict[str, int] = {}
    for method, version, n in session.execute(
            select(StudyItem.method, StudyItem.model_version, func.count(StudyItem.id))
            .where(StudyItem.study_id == study_id)
            .group_by(StudyItem.method, StudyItem.model_version)):
        name = names[(method, version)]
        counts[name] = counts.get(name, 0) + n
    return dict(sorted(counts.items()))


def study_readers(session: Session, study_id: int) -> list[tuple[str, int]]:
    """Admin: ``(username, items rated)`` of each reader who rated in the study, by name."""
    _study(session, study_id)
    return [(name, n) for name, n in session.execute(
        select(User.username, func.count(Rating.id)).join(User, User.id == Rating.reader_id)
        .where(Rating.study_key == study_id).group_by(User.username)
        .order_by(User.username))]


def study_rating_rows(session: Session, study_id: int) -> list[tuple[str, str, str, str, int]]:
    """Admin: a study's ratings as long rows ``(case, condition, reader, question, score)``
    for :func:`core.studies.results.study_results`: case = the scan's SHA-256, condition = the
    item's method (``method@version`` where one method appears under several model versions),
    reader = username, one row per question of :data:`RATING_QUESTIONS`."""
    _study(session, study_id)
    names = _condition_names(session, study_id)
    q = (select(Scan.sha256, StudyItem.method, StudyItem.model_version, User.username,
                Rating.image_quality, Rating.diagnostic_usefulness)
         .join(Scan, Scan.id == StudyItem.scan_id)
         .join(Rating, (Rating.study_key == StudyItem.study_id)
               & (Rating.scan_id == StudyItem.scan_id) & (Rating.method == StudyItem.method)
               & (Rating.model_version == StudyItem.model_version))
         .join(User, User.id == Rating.reader_id)
         .where(StudyItem.study_id == study_id)
         .order_by(StudyItem.position, User.username))
    rows = []
    for sha, method, version, reader, quality, usefulness in session.execute(q):
        rows.extend((sha, names[(method, version)], reader, question, score)
                    for question, score in zip(RATING_QUESTIONS, (quality, usefulness)))
    return rows
