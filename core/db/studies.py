"""Reader studies: a fixed set of images (case × condition) that every reader rates in their
own shuffled order, optionally blinded. Tables only; the design of a study from stored cases is
:mod:`core.studies.design`, the condition images :mod:`core.studies.generate`.

* States: ``draft`` → ``open`` → ``closed`` (:func:`open_study`, :func:`close_study`). A study
  opens only when every item (and, side by side, every reference) has its image; from then on
  its items, images and the readers' seeds are immutable. A closed study accepts no ratings;
  reopening it is audited (``study_reopen``). Deleting a study with ratings needs
  ``confirm=True`` and is audited (``study_delete``).
* Readers: a ``study_readers`` row per reader holds their order seed (derived from the study's
  seed and the user id when they are assigned or join, and recorded) and their place. A study
  designed with a reader list admits those readers only; an ``open_to_all`` study admits anyone
  signed in.
* Order: :func:`reader_sequence`: the reader's seeded permutation of the items, plus, for a
  ``repeat_fraction`` of them, a second showing placed at least :data:`MIN_REPEAT_GAP` showings
  after the first. Stable across sessions and restarts.
* Blinding: readers get :class:`Showing` objects ("Image 3 of 12"): for a blinded study without
  the method, model version, scan hash, file name or label; ratings go through
  :func:`rate_study_item` by item id.
* Ratings: one ``study_responses`` row per (item, reader, showing) with the time spent (summed
  over visits), the optional diagnosis and comment; the first showing is also saved in
  ``ratings`` (the reader's own list, the global export). A reader changes a rating until the
  study closes.
* Pixels: 8-bit PNGs in ``study_images``, deduplicated by hash (stored once).
"""
from __future__ import annotations

import hashlib
import random
import secrets
import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.db.audit import audit
from core.db.errors import NotFound, StudyError
from core.db.tables import (STUDY_PRESENTATIONS, STUDY_REFERENCES, STUDY_STATES, Case, Rating,
                            Scan, Study, StudyCase, StudyImage, StudyItem, StudyReader,
                            StudyResponse, User, utcnow)
from core.db.ratings import _method, save_rating
from core.db.scans import _scan
from core.db.rows import StudyProgress, StudyView

__all__ = ["create_study", "list_studies", "get_study", "study_queue", "next_unrated",
           "study_progress", "study_reader_progress", "study_image_bytes", "set_study_image",
           "study_reference_bytes", "set_case_reference", "rate_study_item", "set_study_active",
           "open_study", "close_study", "delete_study", "set_study_readers", "reader_order",
           "reader_sequence", "reader_place", "set_reader_place", "png_info",
           "study_rating_rows", "study_response_rows", "study_conditions", "study_readers",
           "study_items_missing_images", "study_case_rows", "set_study_job", "study_source",
           "StudyInfo",
           "Showing", "RATING_QUESTIONS", "STUDY_STATES", "MIN_REPEAT_GAP", "library_cases"]

# The questions each rating answers (columns of ``ratings``), in display order.
RATING_QUESTIONS = ("image_quality", "diagnostic_usefulness")
# A repeated item comes back at least this many showings after its first showing.
MIN_REPEAT_GAP = 3

_PNG_SIG = b"\x89PNG\r\n\x1a\n"
ItemSpec = tuple[str, str, str | None] | tuple[str, str, str | None, bytes | None]


@dataclass(frozen=True)
class StudyInfo(StudyView):
    """A study as the admin sees it (``active`` is ``state == "open"``)."""
    state: str = "open"
    presentation: str = "single"
    reference: str | None = None
    repeat_fraction: float = 0.0
    scale: int | None = None
    alpha: float | None = None
    ask_comment: bool = True
    diagnosis_choices: tuple[str, ...] | None = None
    open_to_all: bool = True
    readers: tuple[str, ...] = ()           # usernames in study_readers
    n_cases: int = 0
    n_ready: int = 0                        # items with their image
    job_id: int | None = None
    opened_at: datetime | None = None
    closed_at: datetime | None = None

    @property
    def ready(self) -> bool:
        return self.n_items > 0 and self.n_ready == self.n_items


@dataclass(frozen=True)
class Showing:
    """One showing of a study item to one reader, in that reader's sequence.

    When the study is blinded, ``method``, ``model_version`` and ``scan_sha256`` are ``None``
    and ``label`` is opaque ("Image 3 of 12"). Fetch pixels with :func:`study_image_bytes` (and
    :func:`study_reference_bytes` side by side); rate with :func:`rate_study_item`.
    """
    item_id: int
    study_id: int
    index: int                      # 1-based position in this reader's sequence
    total: int
    label: str
    blinded: bool
    is_repeat: bool                 # the second showing of a repeated item
    method: str | None
    model_version: str | None
    scan_sha256: str | None
    has_image: bool
    has_reference: bool
    rated: bool
    image_quality: int | None = None          # this reader's own answer, if any
    diagnostic_usefulness: int | None = None
    diagnosis: str | None = None
    comment: str | None = None
    seconds: float | None = None


def png_info(png: bytes) -> tuple[int, int, int]:
    """(width, height, bit depth) from a PNG's IHDR; :class:`StudyError` if it is not a PNG."""
    if not isinstance(png, bytes | bytearray) or len(png) < 33 or png[:8] != _PNG_SIG \
            or png[12:16] != b"IHDR":
        raise StudyError("Study images must be PNG files.")
    width, height, depth = struct.unpack(">IIB", png[16:25])
    return width, height, depth


def _check_png(png: bytes) -> tuple[int, int]:
    width, height, depth = png_info(png)
    if depth != 8:
        raise StudyError(f"Study images must be 8-bit PNGs (got {depth}-bit).")
    return width, height


def _store_image(session: Session, png: bytes) -> StudyImage:
    """The image row of these PNG bytes, stored once (by SHA-256)."""
    width, height = _check_png(png)
    sha = hashlib.sha256(png).hexdigest()
    image = session.scalar(select(StudyImage).where(StudyImage.sha256 == sha))
    if image is None:
        image = StudyImage(sha256=sha, png=bytes(png), width=width, height=height)
        session.add(image)
        session.flush()
    return image


def _study_view(session: Session, study: Study) -> StudyInfo:
    n = session.scalar(select(func.count()).select_from(StudyItem)
                       .where(StudyItem.study_id == study.id)) or 0
    ready = session.scalar(select(func.count()).select_from(StudyItem)
                           .where(StudyItem.study_id == study.id,
                                  StudyItem.image_id.is_not(None))) or 0
    n_cases = session.scalar(select(func.count()).select_from(StudyCase)
                             .where(StudyCase.study_id == study.id)) or 0
    creator = (session.scalar(select(User.username).where(User.id == study.created_by))
               if study.created_by is not None else None)
    readers = tuple(session.scalars(
        select(User.username).join(StudyReader, StudyReader.user_id == User.id)
        .where(StudyReader.study_id == study.id).order_by(User.username)))
    return StudyInfo(id=study.id, name=study.name, blinded=study.blinded, seed=study.seed,
                     active=study.state == "open", n_items=n, created_by=creator,
                     created_at=study.created_at, state=study.state,
                     presentation=study.presentation, reference=study.reference,
                     repeat_fraction=study.repeat_fraction, scale=study.scale, alpha=study.alpha,
                     ask_comment=study.ask_comment,
                     diagnosis_choices=(tuple(study.diagnosis_choices)
                                        if study.diagnosis_choices else None),
                     open_to_all=study.open_to_all, readers=readers, n_cases=n_cases,
                     n_ready=ready, job_id=study.job_id, opened_at=study.opened_at,
                     closed_at=study.closed_at)


def _reader_seed(study_seed: int, user_id: int) -> int:
    """A reader's order seed (31 bits): derived, so re-assigning gives the same order."""
    digest = hashlib.sha256(f"{study_seed}:{user_id}".encode()).digest()
    return int.from_bytes(digest[:4], "big") >> 1


def create_study(session: Session, name: str, created_by: int | None,
                 scan_hashes_with_methods: Sequence[ItemSpec], blinded: bool = True,
                 seed: int | None = None,
                 images: Mapping[tuple[str, str, str | None], bytes] | None = None, *,
                 state: str = "open", presentation: str = "single",
                 reference: str | None = None, repeat_fraction: float = 0.0,
                 scale: int | None = None, alpha: float | None = None,
                 ask_comment: bool = True, diagnosis_choices: Sequence[str] | None = None,
                 readers: Iterable[int] | None = None,
                 cases: Mapping[str, Mapping] | None = None,
                 source: Mapping | None = None) -> StudyInfo:
    """A study over ``(scan_sha256, method, model_version[, png_bytes])`` items.

    Pixels come from the optional 4th tuple element or ``images[(sha, method, version)]``; items
    without a PNG can get one later with :func:`set_study_image`. Scans must be recorded first.
    ``seed`` defaults to a random one (stored, so orders stay fixed). ``state`` is ``"open"``
    (the images are at hand: the upload path) or ``"draft"`` (images generated later, then
    :func:`open_study`). ``readers``: user ids who alone may read (default: anyone).
    ``cases``: per scan hash optional ``{"case_id", "label"}`` (hidden from readers).
    """
    name = (name or "").strip()
    if not name or len(name) > 120:
        raise StudyError("A study needs a name of 1–120 characters.")
    if state not in ("draft", "open"):
        raise StudyError(f"A new study is 'draft' or 'open', not {state!r}.")
    if presentation not in STUDY_PRESENTATIONS:
        raise StudyError(f"Presentation must be one of {', '.join(STUDY_PRESENTATIONS)}.")
    if presentation == "side_by_side" and reference not in STUDY_REFERENCES:
        raise StudyError("A side-by-side study needs a reference: "
                         f"{' or '.join(STUDY_REFERENCES)}.")
    if presentation == "single":
        reference = None
    if not 0.0 <= float(repeat_fraction) <= 1.0:
        raise StudyError("The fraction of repeated items must be between 0 and 1.")
    choices = [str(c).strip() for c in (diagnosis_choices or []) if str(c).strip()]
    if len(set(choices)) != len(choices) or any(len(c) > 64 for c in choices):
        raise StudyError("Diagnosis choices must be distinct, each at most 64 characters.")
    if session.scalar(select(Study.id).where(Study.name == name)) is not None:
        raise StudyError(f"A study named {name!r} already exists.")
    if not scan_hashes_with_methods:
        raise StudyError("A study needs at least one image.")
    seen: set[tuple[str, str, str]] = set()
    reader_ids = sorted({int(r) for r in (readers or [])})
    now = utcnow()
    study = Study(name=name, created_by=created_by, blinded=bool(blinded),
                  seed=secrets.randbits(31) if seed is None else int(seed), state=state,
                  presentation=presentation, reference=reference,
                  repeat_fraction=float(repeat_fraction), scale=scale,
                  alpha=None if alpha is None else float(alpha), ask_comment=bool(ask_comment),
                  diagnosis_choices=choices or None,
                  source=dict(source) if source else None, open_to_all=not reader_ids,
                  opened_at=now if state == "open" else None)
    session.add(study)
    session.flush()
    # Insert in a seeded random order, so that item ids and positions say nothing about the
    # method (an admin typically lists scan × method in a regular pattern).
    specs = list(scan_hashes_with_methods)
    random.Random(study.seed).shuffle(specs)
    case_rows: dict[int, StudyCase] = {}
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
        if scan.id not in case_rows:
            info = (cases or {}).get(scan.sha256) or {}
            case_rows[scan.id] = StudyCase(study_id=study.id, scan_id=scan.id,
                                           case_id=info.get("case_id"),
                                           label=(str(info["label"])[:64]
                                                  if info.get("label") else None))
            session.add(case_rows[scan.id])
        image = _store_image(session, png) if png is not None else None
        session.add(StudyItem(study_id=study.id, scan_id=scan.id, method=method,
                              model_version=version or "", position=position,
                              image_id=image.id if image else None))
    for user_id in reader_ids:
        _add_reader(session, study, user_id)
    session.flush()
    audit(session, created_by, "study_create", study_id=study.id,
          n_items=len(scan_hashes_with_methods), blinded=study.blinded, state=state,
          presentation=presentation, repeat_fraction=study.repeat_fraction,
          n_readers=len(reader_ids))
    return _study_view(session, study)


def _add_reader(session: Session, study: Study, user_id: int, *,
                check: bool = True) -> StudyReader:
    if check and session.get(User, user_id) is None:
        raise NotFound(f"No user with id {user_id}.")
    row = StudyReader(study_id=study.id, user_id=user_id,
                      seed=_reader_seed(study.seed, user_id), position=0)
    session.add(row)
    return row


def _study(session: Session, study_id: int) -> Study:
    study = session.get(Study, study_id)
    if study is None:
        raise NotFound(f"No reader study with id {study_id}.")
    return study


def get_study(session: Session, study_id: int) -> StudyInfo:
    return _study_view(session, _study(session, study_id))


def list_studies(session: Session, *, active_only: bool = False,
                 reader_id: int | None = None) -> list[StudyInfo]:
    """Newest first. ``active_only``: open studies only; with ``reader_id``, only those this
    user may read (open to all, or they are a listed reader)."""
    q = select(Study).order_by(Study.id.desc())
    if active_only:
        q = q.where(Study.state == "open")
    if reader_id is not None:
        listed = select(StudyReader.study_id).where(StudyReader.user_id == reader_id)
        q = q.where(Study.open_to_all.is_(True) | Study.id.in_(listed))
    return [_study_view(session, s) for s in session.scalars(q)]


def study_items_missing_images(session: Session, study_id: int) -> int:
    """How many items (plus, side by side, case references) still lack their image."""
    study = _study(session, study_id)
    n = session.scalar(select(func.count()).select_from(StudyItem).where(
        StudyItem.study_id == study_id, StudyItem.image_id.is_(None))) or 0
    if study.presentation == "side_by_side":
        n += session.scalar(select(func.count()).select_from(StudyCase).where(
            StudyCase.study_id == study_id, StudyCase.reference_image_id.is_(None))) or 0
    return n


def open_study(session: Session, study_id: int, by_user_id: int | None) -> StudyInfo:
    """Draft → open (every image must be ready), or closed → open (audited as a reopening)."""
    study = _study(session, study_id)
    if study.state == "open":
        return _study_view(session, study)
    missing = study_items_missing_images(session, study_id)
    if missing:
        raise StudyError(f"{missing} image(s) of this study are not ready yet; generate them "
                         "before opening it.")
    if not study.open_to_all and not session.scalar(
            select(func.count()).select_from(StudyReader)
            .where(StudyReader.study_id == study_id)):
        raise StudyError("This study has no readers; add readers before opening it.")
    previous = study.state
    study.state = "open"
    study.closed_at = None
    if previous == "draft":
        study.opened_at = utcnow()
    session.flush()
    audit(session, by_user_id, "study_reopen" if previous == "closed" else "study_open",
          study_id=study.id)
    return _study_view(session, study)


def close_study(session: Session, study_id: int, by_user_id: int | None) -> StudyInfo:
    """Open → closed: no more ratings (audited)."""
    study = _study(session, study_id)
    if study.state == "draft":
        raise StudyError("A draft study has not opened yet; delete it instead of closing it.")
    if study.state == "open":
        study.state, study.closed_at = "closed", utcnow()
        session.flush()
        audit(session, by_user_id, "study_close", study_id=study.id)
    return _study_view(session, study)


def set_study_active(session: Session, study_id: int, active: bool,
                     by_user_id: int | None = None) -> StudyInfo:
    """Open (``True``) or close (``False``) a study: :func:`open_study` / :func:`close_study`."""
    return (open_study if active else close_study)(session, study_id, by_user_id)


def delete_study(session: Session, study_id: int, by_user_id: int | None, *,
                 confirm: bool = False) -> None:
    """Delete a study with its items, cases, readers and ratings. A study that holds ratings
    needs ``confirm=True``; every deletion is audited."""
    study = _study(session, study_id)
    n = session.scalar(select(func.count()).select_from(StudyResponse)
                       .where(StudyResponse.study_id == study_id)) or 0
    n_legacy = session.scalar(select(func.count()).select_from(Rating)
                              .where(Rating.study_key == study_id)) or 0
    if (n or n_legacy) and not confirm:
        raise StudyError(f"Study {study.name!r} holds {max(n, n_legacy)} rating(s); deleting it "
                         "deletes them too. Confirm to delete.")
    session.execute(delete(Rating).where(Rating.study_key == study_id))
    session.delete(study)
    session.flush()
    audit(session, by_user_id, "study_delete", study_id=study_id, study=study.name,
          n_ratings=max(n, n_legacy))


def set_study_readers(session: Session, study_id: int, user_ids: Iterable[int],
                      by_user_id: int | None) -> StudyInfo:
    """The study's reader list (draft or open; a reader who has rated cannot be removed).
    An empty list opens the study to any signed-in user."""
    study = _study(session, study_id)
    if study.state == "closed":
        raise StudyError("The study is closed; reopen it to change its readers.")
    wanted = {int(u) for u in user_ids}
    current = {r.user_id: r for r in session.scalars(
        select(StudyReader).where(StudyReader.study_id == study_id))}
    for user_id, row in current.items():
        if user_id in wanted:
            continue
        if session.scalar(select(func.count()).select_from(StudyResponse).where(
                StudyResponse.study_id == study_id, StudyResponse.reader_id == user_id)):
            raise StudyError(f"Reader {user_id} has rated in this study and cannot be removed.")
        session.delete(row)
    for user_id in sorted(wanted - set(current)):
        _add_reader(session, study, user_id)
    study.open_to_all = not wanted
    session.flush()
    audit(session, by_user_id, "study_readers", study_id=study_id, n_readers=len(wanted))
    return _study_view(session, study)


def reader_order(seed: int, reader_id: int, n: int) -> list[int]:
    """The permutation of ``range(n)`` a reader with study seed ``seed`` sees (no repeats)."""
    return [i for i, _ in reader_sequence(_reader_seed(seed, reader_id), n, 0.0)]


def reader_sequence(reader_seed: int, n: int, repeat_fraction: float = 0.0,
                    min_gap: int = MIN_REPEAT_GAP) -> list[tuple[int, bool]]:
    """A reader's showings as ``(item index, is_repeat)``: a seeded permutation of
    ``range(n)``; then ``round(repeat_fraction × n)`` items drawn with the same generator are
    shown a second time, each inserted at a random place at least ``min_gap`` showings after
    its first showing (or last, when the sequence is too short). Deterministic."""
    rng = random.Random(int(reader_seed))
    order = list(range(n))
    rng.shuffle(order)
    seq = [(i, False) for i in order]
    k = min(n, max(0, round(float(repeat_fraction) * n)))
    for i in rng.sample(order, k):
        first = seq.index((i, False))
        lo = min(first + 1 + min_gap, len(seq))
        seq.insert(rng.randint(lo, len(seq)), (i, True))
    return seq


def _reader_row(session: Session, study: Study, reader_id: int, *,
                join: bool = True) -> StudyReader:
    """This reader's row; joins an open-to-all study (seed recorded) on first visit.
    :class:`StudyError` if they are not a reader of this study."""
    row = session.scalar(select(StudyReader).where(StudyReader.study_id == study.id,
                                                   StudyReader.user_id == reader_id))
    if row is not None:
        return row
    if not study.open_to_all:
        raise StudyError("You are not a reader of this study.")
    if not join:
        return StudyReader(study_id=study.id, user_id=reader_id,
                           seed=_reader_seed(study.seed, reader_id), position=0)
    try:
        with session.begin_nested():       # a second tab may join at the same moment
            row = _add_reader(session, study, reader_id, check=False)
            session.flush()
    except IntegrityError:
        row = session.scalar(select(StudyReader).where(StudyReader.study_id == study.id,
                                                       StudyReader.user_id == reader_id))
    return row


def _items(session: Session, study_id: int) -> list[tuple[StudyItem, str]]:
    return list(session.execute(
        select(StudyItem, Scan.sha256).join(Scan, Scan.id == StudyItem.scan_id)
        .where(StudyItem.study_id == study_id).order_by(StudyItem.position)).tuples())


def _sequence(session: Session, study: Study, reader: StudyReader,
              items: list | None = None) -> list[tuple[int, bool]]:
    n = len(items) if items is not None else session.scalar(
        select(func.count()).select_from(StudyItem).where(StudyItem.study_id == study.id)) or 0
    return reader_sequence(reader.seed, n, study.repeat_fraction)


def study_queue(session: Session, study_id: int, reader_id: int) -> list[Showing]:
    """All showings in this reader's sequence, each with their own answer (if any) attached.
    Joins an open-to-all study; :class:`StudyError` for a reader not admitted."""
    study = _study(session, study_id)
    reader = _reader_row(session, study, reader_id)
    items = _items(session, study_id)
    refs = {c.scan_id: c.reference_image_id is not None for c in session.scalars(
        select(StudyCase).where(StudyCase.study_id == study_id))}
    mine = {(r.item_id, r.is_repeat): r for r in session.scalars(
        select(StudyResponse).where(StudyResponse.reader_id == reader_id,
                                    StudyResponse.study_id == study_id))}
    seq = _sequence(session, study, reader, items)
    total = len(seq)
    views = []
    for index, (i, repeat) in enumerate(seq, start=1):
        item, sha = items[i]
        r = mine.get((item.id, repeat))
        version = item.model_version or None
        if study.blinded:
            label = f"Image {index} of {total}"
        else:
            label = (f"{item.method}{f' {version}' if version else ''} · {sha[:8]}"
                     f"{' (repeat)' if repeat else ''} ({index}/{total})")
        views.append(Showing(
            item_id=item.id, study_id=study_id, index=index, total=total, label=label,
            blinded=study.blinded, is_repeat=repeat,
            method=None if study.blinded else item.method,
            model_version=None if study.blinded else version,
            scan_sha256=None if study.blinded else sha, has_image=item.image_id is not None,
            has_reference=(study.presentation == "side_by_side"
                           and refs.get(item.scan_id, False)),
            rated=r is not None,
            image_quality=r.image_quality if r else None,
            diagnostic_usefulness=r.diagnostic_usefulness if r else None,
            diagnosis=r.diagnosis if r else None, comment=r.comment if r else None,
            seconds=r.seconds if r else None))
    return views


def next_unrated(session: Session, study_id: int, reader_id: int) -> Showing | None:
    """The first showing in this reader's sequence they have not rated; ``None`` when done."""
    return next((v for v in study_queue(session, study_id, reader_id) if not v.rated), None)


def reader_place(session: Session, study_id: int, reader_id: int) -> int:
    """0-based index of the showing this reader was last on (where they come back to)."""
    study = _study(session, study_id)
    row = _reader_row(session, study, reader_id)
    n = len(_sequence(session, study, row))
    return max(0, min(row.position, n - 1)) if n else 0


def set_reader_place(session: Session, study_id: int, reader_id: int, index: int) -> None:
    study = _study(session, study_id)
    row = _reader_row(session, study, reader_id)
    row.position = max(0, int(index))
    session.flush()


def study_progress(session: Session, study_id: int, reader_id: int) -> StudyProgress:
    """Showings this reader answered, of all their showings (repeats included)."""
    study = _study(session, study_id)
    reader = _reader_row(session, study, reader_id, join=False)
    total = len(_sequence(session, study, reader))
    rated = session.scalar(select(func.count()).select_from(StudyResponse).where(
        StudyResponse.study_id == study_id, StudyResponse.reader_id == reader_id)) or 0
    return StudyProgress(study_id=study_id, reader_id=reader_id, rated=rated, total=total)


def study_reader_progress(session: Session, study_id: int) -> list[StudyProgress]:
    """Admin: how far each reader got (counts only, no scores): listed readers and anyone who
    rated, by user id."""
    study = _study(session, study_id)
    counts = dict(session.execute(
        select(StudyResponse.reader_id, func.count(StudyResponse.id))
        .where(StudyResponse.study_id == study_id).group_by(StudyResponse.reader_id)).all())
    readers = {r.user_id: r for r in session.scalars(
        select(StudyReader).where(StudyReader.study_id == study_id))}
    out = []
    for rid in sorted(set(counts) | set(readers)):
        row = readers.get(rid) or StudyReader(study_id=study_id, user_id=rid,
                                              seed=_reader_seed(study.seed, rid))
        out.append(StudyProgress(study_id=study_id, reader_id=rid, rated=counts.get(rid, 0),
                                 total=len(_sequence(session, study, row))))
    return out


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


def study_reference_bytes(session: Session, item_id: int) -> bytes | None:
    """The reference PNG shown next to this item (side-by-side studies), else ``None``."""
    item = _item(session, item_id)
    if item.study.presentation != "side_by_side":
        return None
    return session.scalar(
        select(StudyImage.png).join(StudyCase, StudyCase.reference_image_id == StudyImage.id)
        .where(StudyCase.study_id == item.study_id, StudyCase.scan_id == item.scan_id))


def set_study_image(session: Session, item_id: int, png: bytes) -> None:
    """Attach the 8-bit PNG of an item. Once a study has opened its images are fixed: only an
    item still without one can get it."""
    item = _item(session, item_id)
    _check_png(png)
    if item.study.state != "draft" and item.image_id is not None:
        raise StudyError("The study has opened: its images cannot change.")
    item.image_id = _store_image(session, png).id
    session.flush()


def set_case_reference(session: Session, study_id: int, scan_sha256: str, png: bytes) -> None:
    """Attach the side-by-side reference PNG of one case of a draft study."""
    study = _study(session, study_id)
    scan = _scan(session, scan_sha256)
    case = session.scalar(select(StudyCase).where(StudyCase.study_id == study_id,
                                                  StudyCase.scan_id == scan.id))
    if case is None:
        raise NotFound(f"Scan {scan.sha256[:12]}… is not a case of study {study_id}.")
    _check_png(png)
    if study.state != "draft" and case.reference_image_id is not None:
        raise StudyError("The study has opened: its images cannot change.")
    case.reference_image_id = _store_image(session, png).id
    session.flush()


def study_source(session: Session, study_id: int) -> dict:
    """Admin / generator: the design the images are made from (folder paths included, so
    never for readers)."""
    return dict(_study(session, study_id).source or {})


def set_study_job(session: Session, study_id: int, job_id: int | None) -> None:
    """Record the background job generating this draft study's images."""
    _study(session, study_id).job_id = job_id
    session.flush()


def study_case_rows(session: Session, study_id: int) -> list[dict]:
    """Admin / generator: the study's cases: ``scan_sha256``, ``case_id``, ``label``,
    ``has_reference`` and the items ``[(item_id, method, model_version, has_image)]``."""
    _study(session, study_id)
    cases = list(session.execute(
        select(StudyCase, Scan.sha256).join(Scan, Scan.id == StudyCase.scan_id)
        .where(StudyCase.study_id == study_id).order_by(StudyCase.id)).tuples())
    items: dict[int, list] = {}
    for item in session.scalars(select(StudyItem).where(StudyItem.study_id == study_id)
                                .order_by(StudyItem.id)):
        items.setdefault(item.scan_id, []).append(
            (item.id, item.method, item.model_version or None, item.image_id is not None))
    return [{"scan_sha256": sha, "case_id": c.case_id, "label": c.label,
             "has_reference": c.reference_image_id is not None,
             "items": items.get(c.scan_id, [])} for c, sha in cases]


def library_cases(session: Session, *, label: str | None = None, source: str | None = None,
                  case_ids: Iterable[int] | None = None) -> list[Case]:
    """Case-library rows to build a study from: by label, by import (source), by id, or all."""
    q = select(Case).order_by(Case.id)
    if label is not None:
        q = q.where(Case.label == label)
    if source is not None:
        q = q.where(Case.source == source)
    if case_ids is not None:
        q = q.where(Case.id.in_([int(i) for i in case_ids]))
    return list(session.scalars(q))


def _check_score(name: str, value: int) -> int:
    if isinstance(value, bool) or int(value) != value or not 1 <= int(value) <= 5:
        raise StudyError(f"{name.replace('_', ' ').capitalize()} must be 1–5, got {value!r}.")
    return int(value)


def rate_study_item(session: Session, *, reader_id: int, item_id: int, image_quality: int,
                    diagnostic_usefulness: int, comment: str | None = None,
                    diagnosis: str | None = None, seconds: float | None = None,
                    repeat: bool = False) -> StudyProgress:
    """Save (or change) this reader's answer to one showing of a study item, without revealing
    its method. ``repeat``: the second showing of a repeated item. ``seconds``: time spent on
    this visit (added to earlier visits). Only while the study is open; only its readers."""
    item = _item(session, item_id)
    study = item.study
    if study.state != "open":
        raise StudyError("This reader study is closed." if study.state == "closed" else
                         "This reader study has not opened yet.")
    reader = _reader_row(session, study, reader_id)
    iq = _check_score("image_quality", image_quality)
    du = _check_score("diagnostic_usefulness", diagnostic_usefulness)
    if diagnosis is not None:
        diagnosis = str(diagnosis).strip() or None
    if diagnosis is not None and diagnosis not in (study.diagnosis_choices or []):
        raise StudyError(f"Diagnosis {diagnosis!r} is not one of this study's choices.")
    if seconds is not None and not (float(seconds) >= 0):
        raise StudyError("Time spent must be a non-negative number of seconds.")
    comment = (comment or "").strip() or None if study.ask_comment else None
    if repeat:
        items = _items(session, study.id)
        index = next(i for i, (it, _) in enumerate(items) if it.id == item.id)
        if (index, True) not in _sequence(session, study, reader, items):
            raise StudyError("This item is not repeated for you.")
    # Write first, read never, inside the savepoint: on SQLite a transaction that read before
    # it writes can fail at once when another writer got in between (WAL snapshot), while a
    # first write waits for the lock (busy timeout). Two tabs saving the same showing at once:
    # the loser's INSERT fails on the unique key and it updates instead.
    now = utcnow()
    key = (StudyResponse.item_id == item.id, StudyResponse.reader_id == reader_id,
           StudyResponse.is_repeat.is_(bool(repeat)))
    values = {"image_quality": iq, "diagnostic_usefulness": du, "diagnosis": diagnosis,
              "comment": comment, "updated_at": now}
    if seconds is not None:
        values["seconds"] = (func.coalesce(StudyResponse.seconds, 0.0)
                             + round(float(seconds), 3))
    for attempt in range(2):
        try:
            with session.begin_nested():
                done = session.execute(update(StudyResponse).where(*key).values(**values)
                                       .execution_options(synchronize_session=False))
                if not done.rowcount:
                    session.add(StudyResponse(
                        study_id=study.id, item_id=item.id, reader_id=reader_id,
                        is_repeat=bool(repeat), image_quality=iq, diagnostic_usefulness=du,
                        diagnosis=diagnosis, comment=comment, created_at=now, updated_at=now,
                        seconds=None if seconds is None else round(float(seconds), 3)))
                    session.flush()
            break
        except IntegrityError:
            if attempt:
                raise
    if not repeat:
        sha = session.scalar(select(Scan.sha256).where(Scan.id == item.scan_id))
        save_rating(session, reader_id=reader_id, scan_sha256=sha, method=item.method,
                    model_version=item.model_version or None, image_quality=iq,
                    diagnostic_usefulness=du, comment=comment, study_id=item.study_id)
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


def study_readers(session: Session, study_id: int) -> list[tuple[str, int, int]]:
    """Admin: ``(username, showings answered, showings in their sequence)`` of each listed
    reader or reader who rated, by name."""
    _study(session, study_id)
    names = dict(session.execute(select(User.id, User.username)).all())
    return sorted((names.get(p.reader_id, str(p.reader_id)), p.rated, p.total)
                  for p in study_reader_progress(session, study_id))


def _response_query(study_id: int):
    return (select(StudyResponse, StudyItem.method, StudyItem.model_version, Scan.sha256,
                   StudyCase.label, User.username)
            .join(StudyItem, StudyItem.id == StudyResponse.item_id)
            .join(Scan, Scan.id == StudyItem.scan_id)
            .outerjoin(StudyCase, (StudyCase.study_id == StudyItem.study_id)
                       & (StudyCase.scan_id == StudyItem.scan_id))
            .join(User, User.id == StudyResponse.reader_id)
            .where(StudyResponse.study_id == study_id)
            .order_by(StudyItem.position, User.username, StudyResponse.is_repeat))


def study_rating_rows(session: Session, study_id: int, *, repeats: bool = False
                      ) -> list[tuple[str, str, str, str, int]]:
    """Admin: a study's first-showing ratings as long rows ``(case, condition, reader,
    question, score)`` for :func:`core.studies.results.study_results`: case = the scan's
    SHA-256, condition = the item's method (``method@version`` where one method appears under
    several model versions), reader = username, one row per question of
    :data:`RATING_QUESTIONS`. ``repeats=True`` adds the second showings too."""
    _study(session, study_id)
    names = _condition_names(session, study_id)
    rows = []
    for r, method, version, sha, _, reader in session.execute(_response_query(study_id)):
        if r.is_repeat and not repeats:
            continue
        rows.extend((sha, names[(method, version)], reader, question, score)
                    for question, score in zip(RATING_QUESTIONS,
                                               (r.image_quality, r.diagnostic_usefulness)))
    return rows


def study_response_rows(session: Session, study_id: int) -> list[dict]:
    """Admin: every answer of the study, one dict per reader × showing: ``reader``,
    ``item_id``, ``case`` (scan SHA-256), ``case_label``, ``condition``, ``repeat``,
    ``image_quality``, ``diagnostic_usefulness``, ``diagnosis``, ``comment``, ``seconds``,
    ``updated_at`` (ISO 8601 UTC)."""
    _study(session, study_id)
    names = _condition_names(session, study_id)
    return [{"reader": reader, "item_id": r.item_id, "case": sha, "case_label": label,
             "condition": names[(method, version)], "repeat": bool(r.is_repeat),
             "image_quality": r.image_quality,
             "diagnostic_usefulness": r.diagnostic_usefulness, "diagnosis": r.diagnosis,
             "comment": r.comment, "seconds": r.seconds,
             "updated_at": r.updated_at.isoformat()}
            for r, method, version, sha, label, reader in
            session.execute(_response_query(study_id))]
