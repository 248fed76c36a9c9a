"""ORM models (SQLAlchemy 2 typed declarative). Every change here needs an Alembic revision
under ``core/db/migrations/versions``; ``tests/test_db_migrations.py`` fails otherwise.

Times are stored as naive UTC and returned as timezone-aware UTC (:class:`UTCDateTime`).
Nothing here holds PHI: scans are identified by the SHA-256 of their bytes, their summary is
the masked one produced by ``core.imaging``, their display name is the upload's file name with
identifiers masked (``core.imaging.phi.mask_upload_name``) and their thumbnail holds pixels only.
"""
from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (JSON, Boolean, CheckConstraint, DateTime, Float, ForeignKey, Integer,
                        LargeBinary, MetaData, String, Text, UniqueConstraint)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

__all__ = ["Base", "UTCDateTime", "utcnow", "User", "Scan", "Prediction", "SRResult", "Rating",
           "Study", "StudyItem", "StudyImage", "StudyCase", "StudyReader", "StudyResponse",
           "Case", "CaseEmbedding", "AuditLog", "TrainingJob", "JobProgress", "JobWorker",
           "RegistryState", "LoginSession",
           "LoginThrottle",
           "ROLES", "JOB_KINDS", "JOB_STATUSES", "STUDY_STATES", "STUDY_PRESENTATIONS",
           "STUDY_REFERENCES"]

ROLES = ("radiologist", "admin")
# What a background job runs (the job runner's ``JOB_COMMANDS`` maps each to its command line).
JOB_KINDS = ("classifier", "sr", "segmentation", "embeddings", "study_images", "pretrain")
JOB_STATUSES = ("queued", "running", "succeeded", "failed", "cancelled")
STUDY_STATES = ("draft", "open", "closed")
STUDY_PRESENTATIONS = ("single", "side_by_side")
STUDY_REFERENCES = ("lr", "original")

# Deterministic constraint names, so later migrations (and SQLite batch mode) can refer to them.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator):
    """Aware UTC datetimes in Python, naive UTC in the database (same on SQLite and PostgreSQL)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use an aware UTC datetime")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON, list[Any]: JSON}


class User(Base):
    __tablename__ = "users"
    __table_args__ = (CheckConstraint("role IN ('radiologist', 'admin')", name="role"),
                      CheckConstraint("failed_logins >= 0", name="failed_logins"))

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(32), unique=True)
    # Lower-cased e-mail of the user's single sign-on (OIDC) identity; NULL = no SSO. Unique
    # through a unique *index* (ix_users_sso_email), not a table constraint: SQLite can add an
    # index to an existing table, but a constraint only by rebuilding ``users``, and dropping the
    # old table would fire the ON DELETE CASCADE / SET NULL of every table referencing it.
    sso_email: Mapped[str | None] = mapped_column(String(254), unique=True, index=True,
                                                  nullable=True)
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None]
    last_login_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Scan(Base):
    """One uploaded file, by content hash. ``summary`` is the masked (PHI-free) summary."""

    __tablename__ = "scans"

    id: Mapped[int] = mapped_column(primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    summary: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    source_format: Mapped[str] = mapped_column(String(16))
    modality: Mapped[str | None] = mapped_column(String(16))
    shape: Mapped[list[Any]] = mapped_column(JSON, default=list)
    uploaded_by: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # What a person recognises the scan by (My ratings, the export): the file name it was first
    # uploaded under, already PHI-masked by the app, and a ≤128 px PNG of the displayed image
    # (pixels only, no header). NULL for scans recorded before revision 0004.
    display_name: Mapped[str | None] = mapped_column(String(255))
    thumbnail: Mapped[bytes | None] = mapped_column(LargeBinary)


class Prediction(Base):
    __tablename__ = "predictions"

    id: Mapped[int] = mapped_column(primary_key=True)
    scan_id: Mapped[int] = mapped_column(ForeignKey("scans.id", ondelete="CASCADE"), index=True)
    model_version: Mapped[str] = mapped_column(String(64))
    label: Mapped[str] = mapped_column(String(64))
    probabilities: Mapped[dict[str, Any]] = mapped_column(JSON)
    calibrated: Mapped[bool] = mapped_column(Boolean, default=False)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class SRResult(Base):
    __tablename__ = "sr_results"

    id: Mapped[int] = mapped_column(primary_key=True)
    scan_id: Mapped[int] = mapped_column(ForeignKey("scans.id", ondelete="CASCADE"), index=True)
    method: Mapped[str] = mapped_column(String(32))          # bicubic | rrdb_psnr | esrgan | ...
    scale: Mapped[int] = mapped_column(Integer)
    mode: Mapped[str] = mapped_column(String(32))            # e.g. "degrade" | "upscale"
    model_version: Mapped[str | None] = mapped_column(String(64))
    alpha: Mapped[float | None] = mapped_column(Float)       # network interpolation weight
    psnr: Mapped[float | None] = mapped_column(Float)
    ssim: Mapped[float | None] = mapped_column(Float)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Rating(Base):
    """A reader's 1–5 scores for one view of one scan.

    One row per (reader, scan, method, model_version, study), so a re-rating updates the reader's
    own row. SQL unique keys treat NULLs as distinct, so the key is kept NULL-free:
    ``model_version`` is ``""`` for views without a model (original, bicubic) and ``study_key``
    is ``study_id or 0``. The API maps both back to ``None``.
    """

    __tablename__ = "ratings"
    __table_args__ = (
        CheckConstraint("image_quality BETWEEN 1 AND 5", name="image_quality"),
        CheckConstraint("diagnostic_usefulness BETWEEN 1 AND 5", name="diagnostic_usefulness"),
        UniqueConstraint("reader_id", "scan_id", "method", "model_version", "study_key"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    reader_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    scan_id: Mapped[int] = mapped_column(ForeignKey("scans.id", ondelete="CASCADE"), index=True)
    method: Mapped[str] = mapped_column(String(32))   # original | gradcam | bicubic | esrgan ...
    model_version: Mapped[str] = mapped_column(String(64), default="")
    study_id: Mapped[int | None] = mapped_column(
        ForeignKey("studies.id", ondelete="CASCADE"), index=True)
    study_key: Mapped[int] = mapped_column(Integer, default=0)
    image_quality: Mapped[int] = mapped_column(Integer)
    diagnostic_usefulness: Mapped[int] = mapped_column(Integer)
    comment: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    # The view the scores were given on (revision 0004; NULL = not applicable or not recorded):
    # the frame of a multi-frame file, the SR scale factor and mode ("simulate" | "enhance")
    # and ESRGAN's interpolation weight α. Not part of the unique key above (SQLite cannot
    # change a table constraint without rebuilding ``ratings``), so a reader's rating of one
    # (scan, method, model version) is replaced when they rate another view of it; the form
    # says so first (ui.rating).
    frame: Mapped[int | None] = mapped_column(Integer)
    scale: Mapped[int | None] = mapped_column(Integer)
    mode: Mapped[str | None] = mapped_column(String(16))
    alpha: Mapped[float | None] = mapped_column(Float)


class Study(Base):
    """A reader study: a fixed list of images each reader rates in their own shuffled order.

    ``state``: ``draft`` (being designed, images being made) → ``open`` (readers rate) →
    ``closed`` (no ratings accepted; reopening is audited). The item list, the readers' order
    seeds and the images are immutable once the study has opened. Presentation: ``single``
    image, or ``side_by_side`` with a ``reference`` (``lr``: the low-resolution input;
    ``original``) that readers only ever see labelled "reference". ``repeat_fraction`` of the
    items are shown to each reader a second time (intra-reader consistency). ``scale`` and
    ``alpha`` are the SR factor and ESRGAN interpolation weight of the study's conditions.
    ``source`` is the design the condition images are generated from (``core.studies.design``);
    ``job_id`` the background job (``training_jobs``) that generates them, if any.
    ``state``, ``presentation`` and ``reference`` are checked by ``core.db.studies`` rather
    than by CHECK constraints: SQLite adds a constraint only by rebuilding ``studies``, and
    dropping the old table would cascade to its items and ratings.
    """

    __tablename__ = "studies"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    blinded: Mapped[bool] = mapped_column(Boolean, default=True)
    seed: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Revision 0006 (replaces the boolean ``active``):
    state: Mapped[str] = mapped_column(String(16), default="draft")
    presentation: Mapped[str] = mapped_column(String(16), default="single")
    reference: Mapped[str | None] = mapped_column(String(16))
    repeat_fraction: Mapped[float] = mapped_column(Float, default=0.0)
    scale: Mapped[int | None] = mapped_column(Integer)
    alpha: Mapped[float | None] = mapped_column(Float)
    ask_comment: Mapped[bool] = mapped_column(Boolean, default=True)
    diagnosis_choices: Mapped[list[Any] | None] = mapped_column(JSON)
    source: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    job_id: Mapped[int | None] = mapped_column(Integer)     # training_jobs.id, no cascade
    # False: only the readers listed in ``study_readers`` by the admin may rate; True: any
    # signed-in user may join (each gets a ``study_readers`` row, with their seed, on joining).
    open_to_all: Mapped[bool] = mapped_column(Boolean, default=True)
    opened_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]

    items: Mapped[list[StudyItem]] = relationship(
        back_populates="study", order_by="StudyItem.position", cascade="all, delete-orphan")


class StudyImage(Base):
    """The 8-bit PNG a reader sees for a study item (already processed, e.g. super-resolved).

    Stored in the database (deduplicated by the PNG's SHA-256) so that a backup of the database
    is a backup of the study, on SQLite and PostgreSQL alike.
    """

    __tablename__ = "study_images"

    id: Mapped[int] = mapped_column(primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    png: Mapped[bytes] = mapped_column(LargeBinary)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class StudyItem(Base):
    __tablename__ = "study_items"
    __table_args__ = (UniqueConstraint("study_id", "position"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"),
                                          index=True)
    scan_id: Mapped[int] = mapped_column(ForeignKey("scans.id", ondelete="CASCADE"))
    method: Mapped[str] = mapped_column(String(32))
    model_version: Mapped[str] = mapped_column(String(64), default="")
    position: Mapped[int] = mapped_column(Integer)       # 0-based, seeded shuffle of input
    image_id: Mapped[int | None] = mapped_column(ForeignKey("study_images.id"))

    study: Mapped[Study] = relationship(back_populates="items")


class StudyCase(Base):
    """One case (source image) of a study (revision 0006): the scan its items show, the library
    case it came from, its ground-truth label (never shown to readers; scores the optional
    diagnosis question) and the side-by-side reference image."""

    __tablename__ = "study_cases"
    __table_args__ = (UniqueConstraint("study_id", "scan_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"),
                                          index=True)
    scan_id: Mapped[int] = mapped_column(ForeignKey("scans.id", ondelete="CASCADE"))
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id", ondelete="SET NULL"))
    label: Mapped[str | None] = mapped_column(String(64))
    reference_image_id: Mapped[int | None] = mapped_column(ForeignKey("study_images.id"))


class StudyReader(Base):
    """A reader of a study (revision 0006): their order seed (recorded when assigned, so the
    order is the same in every session) and where they were (index into their sequence)."""

    __tablename__ = "study_readers"
    __table_args__ = (UniqueConstraint("study_id", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"),
                                          index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    seed: Mapped[int] = mapped_column(Integer)
    position: Mapped[int] = mapped_column(Integer, default=0)
    assigned_at: Mapped[datetime] = mapped_column(default=utcnow)


class StudyResponse(Base):
    """A reader's answer to one showing of a study item (revision 0006): the study's own record
    of the rating, with the time spent and whether it was the repeated (second) showing. The
    first showing is also kept in ``ratings`` (the reader's list, the global export)."""

    __tablename__ = "study_responses"
    __table_args__ = (
        CheckConstraint("image_quality BETWEEN 1 AND 5", name="image_quality"),
        CheckConstraint("diagnostic_usefulness BETWEEN 1 AND 5", name="diagnostic_usefulness"),
        CheckConstraint("seconds IS NULL OR seconds >= 0", name="seconds"),
        UniqueConstraint("item_id", "reader_id", "is_repeat"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"),
                                          index=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("study_items.id", ondelete="CASCADE"),
                                         index=True)
    reader_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"),
                                           index=True)
    is_repeat: Mapped[bool] = mapped_column(Boolean, default=False)
    image_quality: Mapped[int] = mapped_column(Integer)
    diagnostic_usefulness: Mapped[int] = mapped_column(Integer)
    diagnosis: Mapped[str | None] = mapped_column(String(64))
    comment: Mapped[str | None] = mapped_column(Text)
    seconds: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Case(Base):
    """One de-identified image of the case library (``core.library``).

    The pixels (the displayed image as the app renders it, an 8- or 16-bit grey PNG, no DICOM
    header) live in the pixel store under ``storage_key``; this row holds what describes them.
    ``sha256`` is the content hash of the pixel array (dtype, shape and bytes), so the same
    image is stored once whatever file it came from. ``source`` is the import's name (or
    ``"upload"``), ``source_path`` the PHI-masked path of the file within that import.
    """

    __tablename__ = "cases"

    id: Mapped[int] = mapped_column(primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    storage_key: Mapped[str] = mapped_column(String(255))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    bit_depth: Mapped[int] = mapped_column(Integer, default=8)
    label: Mapped[str | None] = mapped_column(String(64), index=True)
    label_source: Mapped[str | None] = mapped_column(String(16))   # import | admin
    modality: Mapped[str | None] = mapped_column(String(16))
    body_part: Mapped[str | None] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(120), index=True)
    source_path: Mapped[str | None] = mapped_column(String(255))
    added_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    thumbnail: Mapped[bytes | None] = mapped_column(LargeBinary)


class CaseEmbedding(Base):
    """A case's retrieval vector under one classifier version (float32 bytes, L2-normalised)."""

    __tablename__ = "case_embeddings"
    __table_args__ = (UniqueConstraint("case_id", "model_version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    model_version: Mapped[str] = mapped_column(String(64), index=True)
    dim: Mapped[int] = mapped_column(Integer)
    vector: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AuditLog(Base):
    """Who did what, when. ``detail`` never holds PHI (see ``core.db.audit.scrub``)."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"),
                                                index=True)
    action: Mapped[str] = mapped_column(String(32), index=True)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class TrainingJob(Base):
    __tablename__ = "training_jobs"
    __table_args__ = (
        CheckConstraint("kind IN ('classifier', 'sr', 'segmentation', 'embeddings', "
                        "'study_images', 'pretrain')", name="kind"),
        CheckConstraint("status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')",
                        name="status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    args: Mapped[list[Any]] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(16), default="queued", index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    host: Mapped[str | None] = mapped_column(String(255))   # pid is only meaningful there
    pid: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    updated_at: Mapped[datetime | None]                      # last progress write (heartbeat)
    progress: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    fraction: Mapped[float] = mapped_column(Float, default=0.0)
    result_version: Mapped[str | None] = mapped_column(String(64))
    error: Mapped[str | None] = mapped_column(Text)
    log_path: Mapped[str | None] = mapped_column(String(1024))
    # Who runs it: a worker's name (``host:pid``, ``job_workers.name``), or the process that
    # started it directly; NULL while it waits in the queue. Set once, by an atomic claim.
    claimed_by: Mapped[str | None] = mapped_column(String(255))
    claimed_at: Mapped[datetime | None]
    # Set by a cancel (``request_cancel``); the worker running the job sees it and SIGTERMs the
    # training process.
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)


class JobWorker(Base):
    """A ``python -m core worker`` process: its heartbeat says it is alive (``core.db.jobs``).

    One row per worker process start; ``name`` (``host:pid``) is what ``training_jobs.claimed_by``
    holds. A worker that exits sets ``stopped_at``; one that dies stops beating.
    """

    __tablename__ = "job_workers"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(255), index=True)
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    kinds: Mapped[list[Any] | None] = mapped_column(JSON)      # NULL: every kind
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    heartbeat_at: Mapped[datetime] = mapped_column(default=utcnow)
    stopped_at: Mapped[datetime | None]
    job_id: Mapped[int | None] = mapped_column(ForeignKey("training_jobs.id",
                                                          ondelete="SET NULL"))
    jobs_done: Mapped[int] = mapped_column(Integer, default=0)


class JobProgress(Base):
    """Progress history of a job (for the loss curve): one row per written report."""

    __tablename__ = "job_progress"

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("training_jobs.id", ondelete="CASCADE"),
                                        index=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    phase: Mapped[str] = mapped_column(String(32))
    epoch: Mapped[int] = mapped_column(Integer, default=0)
    epochs: Mapped[int] = mapped_column(Integer, default=0)
    step: Mapped[int] = mapped_column(Integer, default=0)
    steps: Mapped[int] = mapped_column(Integer, default=0)
    loss: Mapped[float | None] = mapped_column(Float)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    fraction: Mapped[float] = mapped_column(Float, default=0.0)


class RegistryState(Base):
    """The model registry's active pointer of one task and slot, shared by every app server
    (``core.db.registry_state``; ``core.registry`` writes it with the audited activation and
    rollback, and it wins over the file pointers ``weights/<task>/ACTIVE[.slot]``).

    ``slot`` is ``""`` for a task's default slot (a NULL would not be unique). ``generation``
    counts the writes of the row, so a server that cached a model of an older generation
    reloads it; ``previous`` is what was active before.
    """

    __tablename__ = "registry_state"

    task: Mapped[str] = mapped_column(String(32), primary_key=True)
    slot: Mapped[str] = mapped_column(String(64), primary_key=True, default="")
    version: Mapped[str] = mapped_column(String(64))
    previous: Mapped[str | None] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(16), default="activate")   # or "rollback"
    generation: Mapped[int] = mapped_column(Integer, default=1)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    username: Mapped[str | None] = mapped_column(String(64))     # as given (CLI --user too)


class LoginSession(Base):
    """A password login that survives a page reload (``core.db.sessions``).

    The browser holds a random token in an HTTP-only cookie; only its SHA-256 is stored here.
    A session starts as a one-time hand-off code (``code_hash``, valid for a minute) that the
    web server swaps for the token while it sets the cookie. Ended by log out, idle or absolute
    expiry, deactivation of the user or a new password (``ended_at``, ``end_reason``).
    """

    __tablename__ = "login_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str | None] = mapped_column(String(64), unique=True, index=True)
    code_hash: Mapped[str | None] = mapped_column(String(64), unique=True, index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]                              # absolute limit
    ended_at: Mapped[datetime | None]
    end_reason: Mapped[str | None] = mapped_column(String(32))


class LoginThrottle(Base):
    """Failed logins for user names that are not an active account, so that they lock exactly
    like real accounts (the lockout must not reveal which names exist). Keyed by the SHA-256 of
    the normalised name: a password typed into the name field is not stored readable."""

    __tablename__ = "login_throttle"
    __table_args__ = (CheckConstraint("failures >= 0", name="failures"),)

    name_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
