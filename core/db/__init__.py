"""Storage, accounts and jobs: SQLAlchemy 2 models with Alembic migrations.

SQLite file (``core.config.database_url()``) by default, WAL mode and foreign keys on; any
SQLAlchemy URL (PostgreSQL) via ``MEDSCAN_DATABASE_URL``. Typical use::

    from core.db import init_db, session_scope
    engine = init_db()                       # get_engine() + upgrade_to_head()
    with session_scope(engine) as s:
        user = auth.authenticate(s, name, password)

API functions take a session and return frozen dataclass views (``core.db.rows``), safe to use
after the session closes.
"""
from __future__ import annotations

from sqlalchemy import Engine

from core.db import tables
from core.db.engine import dispose_engines, get_engine, session_scope
from core.db.migrate import upgrade_to_head

__all__ = ["get_engine", "session_scope", "upgrade_to_head", "init_db", "dispose_engines",
           "tables"]


def init_db(url: str | None = None) -> Engine:
    """The engine for ``url`` (default from config), migrated to the newest schema."""
    return upgrade_to_head(get_engine(url))
