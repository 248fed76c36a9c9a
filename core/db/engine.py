"""Engines and sessions.

SQLite (the default, ``core.config.database_url()``) gets, on every new connection: WAL journal
(readers never block the writer, and the training process can write progress while pages read),
``foreign_keys=ON`` (SQLite leaves them off by default) and a 30 s busy timeout. Any other
SQLAlchemy URL (e.g. ``postgresql+psycopg://user:pw@host/medscan``) is used as is.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DatabaseError, IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from core.db.errors import StorageError

__all__ = ["get_engine", "session_scope", "dispose_engines", "upsert_insert", "storage_error",
           "BUSY_TIMEOUT_S"]

BUSY_TIMEOUT_S = 30  # how long a writer waits for SQLite's write lock before "database is locked"
_log = logging.getLogger("core.db")

# Driver messages (SQLite's and PostgreSQL's) → the reason shown to the user, first match wins.
_REASONS = (
    ("readonly", "the database is read-only"),
    ("read-only", "the database is read-only"),
    ("disk is full", "the server's disk is full"),
    ("no space left", "the server's disk is full"),
    ("could not extend file", "the server's disk is full"),
    ("disk i/o error", "the disk could not be written (full, removed or failing)"),
    ("database is locked", f"the database stayed busy for more than {BUSY_TIMEOUT_S} seconds"),
    ("unable to open database", "the database file could not be opened"),
    ("malformed", "the database file is damaged"),
    ("not a database", "the database file is damaged"),
    ("connection", "the database server could not be reached"),
)

_engines: dict[str, Engine] = {}
_lock = threading.Lock()


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cur = dbapi_connection.cursor()
    try:
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_S * 1000}")
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")  # safe with WAL; fewer fsyncs
    finally:
        cur.close()


def _create(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        db = parsed.database
        if db and db != ":memory:" and not db.startswith("file:"):
            Path(db).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_S,
                                                  "check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True)


def get_engine(url: str | None = None) -> Engine:
    """The engine for ``url`` (default: ``core.config.database_url()``), created once per URL."""
    if url is None:
        from core.config import database_url

        url = database_url()
    url = str(url)
    with _lock:
        engine = _engines.get(url)
        if engine is None:
            engine = _engines[url] = _create(url)
        return engine


def dispose_engines() -> None:
    """Close every cached engine's connections (tests, process shutdown)."""
    with _lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()


@contextmanager
def session_scope(engine: Engine | None = None) -> Iterator[Session]:
    """A session that commits on success and rolls back on error.

    Objects are not expired on commit, but prefer the dataclass views the API functions return.

    A database that refuses the work (read-only, full disk, I/O error, busy for too long,
    server gone: SQLAlchemy's ``OperationalError`` / ``DatabaseError``, but not an
    ``IntegrityError``, which is a bug or a rule broken) raises :class:`StorageError`, whose
    message says in words that nothing was saved; the cause is logged (driver message only,
    never the statement's parameters).
    """
    factory = sessionmaker(bind=engine or get_engine(), expire_on_commit=False)
    session = factory()
    try:
        yield session
        session.commit()
    except DatabaseError as err:
        _rollback(session)
        if isinstance(err, IntegrityError):
            raise
        raise storage_error(err) from err
    except BaseException:
        _rollback(session)
        raise
    finally:
        session.close()


def _rollback(session: Session) -> None:
    try:
        session.rollback()
    except DatabaseError:  # the connection itself is broken; closing the session is enough
        _log.warning("rollback failed after a database error", exc_info=False)


def storage_error(err: DatabaseError) -> StorageError:
    """The :class:`StorageError` for a driver error, logged with the driver's own message."""
    orig = getattr(err, "orig", None) or err
    text = str(orig.args[0] if getattr(orig, "args", None) else orig)
    reason = next((words for needle, words in _REASONS if needle in text.lower()),
                  "the database refused the change")
    _log.error("database error (%s): %s", type(orig).__name__, text.splitlines()[0][:300])
    return StorageError(reason)


def upsert_insert(session: Session):
    """The dialect's ``insert`` construct that has ``on_conflict_do_update`` /
    ``on_conflict_do_nothing`` (SQLite 3.24+ and PostgreSQL 9.5+ both speak ``INSERT ... ON
    CONFLICT``), for atomic upserts instead of read-then-insert."""
    name = session.get_bind().dialect.name
    if name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    elif name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        raise NotImplementedError(f"no atomic upsert for the {name!r} database dialect")
    return insert
