"""Alembic migrations, configured in code (scripts in ``core/db/migrations``).

``upgrade_to_head`` runs on app start and before every ``python -m core`` database command. New
revision after changing ``tables.py``::

    python -m core db revision -m "add column x"     # autogenerate, then review the file
"""
from __future__ import annotations

import threading
import weakref
from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from core.db.engine import get_engine
from core.db.tables import Base

__all__ = ["MIGRATIONS_DIR", "alembic_config", "upgrade_to_head", "current_revision",
           "head_revision", "schema_diff", "make_revision"]

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
_upgraded: weakref.WeakSet[Engine] = weakref.WeakSet()  # engines already at head
_lock = threading.Lock()
_PG_LOCK_KEY = 0x4D656453  # "MedS": advisory lock id for migrations


def _engine(engine_or_url: Engine | str | None) -> Engine:
    return engine_or_url if isinstance(engine_or_url, Engine) else get_engine(engine_or_url)


def alembic_config(engine: Engine | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if engine is not None:
        cfg.set_main_option("sqlalchemy.url",
                            engine.url.render_as_string(hide_password=False).replace("%", "%%"))
    return cfg


def upgrade_to_head(engine_or_url: Engine | str | None = None, *, force: bool = False) -> Engine:
    """Bring the database to the newest schema; returns the engine. Cheap after the first call.

    The whole upgrade runs in one transaction that first takes a lock (SQLite: ``BEGIN
    IMMEDIATE``; PostgreSQL: an advisory lock), so two processes starting at once serialise (the
    second finds the schema current) and a failed migration leaves nothing half-done.
    """
    engine = _engine(engine_or_url)
    with _lock:
        if engine in _upgraded and not force:
            return engine
        cfg = alembic_config(engine)
        with engine.connect() as conn:
            if engine.dialect.name == "sqlite":
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            elif engine.dialect.name == "postgresql":  # one migrator at a time
                conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_LOCK_KEY})")
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
            conn.commit()
        _upgraded.add(engine)
    return engine


def current_revision(engine_or_url: Engine | str | None = None) -> str | None:
    with _engine(engine_or_url).connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def schema_diff(engine_or_url: Engine | str | None = None) -> list:
    """Differences between the database schema and the ORM metadata ([] when in sync)."""
    with _engine(engine_or_url).connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        return compare_metadata(ctx, Base.metadata)


def make_revision(message: str, engine_or_url: Engine | str | None = None) -> None:
    """Autogenerate a new revision file from the difference to an up-to-date database."""
    engine = upgrade_to_head(engine_or_url)
    cfg = alembic_config(engine)
    with engine.connect() as conn:
        cfg.attributes["connection"] = conn
        command.revision(cfg, message=message, autogenerate=True)
