"""Alembic environment for MedScan (configured in code by ``core.db.migrate``; no alembic.ini)."""
from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from core.db.tables import Base, UTCDateTime

config = context.config
target_metadata = Base.metadata


def _render_item(type_: str, obj, autogen_context):
    """Render app-only column types as plain SQLAlchemy types, so revisions never import them."""
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime()"
    return False


def _configure(**kw) -> None:
    context.configure(target_metadata=target_metadata, render_as_batch=True,  # SQLite ALTERs
                      compare_type=True, render_item=_render_item, **kw)


def run_migrations_offline() -> None:
    _configure(url=config.get_main_option("sqlalchemy.url"), literal_binds=True,
               dialect_opts={"paramstyle": "named"})
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection=connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine(config.get_main_option("sqlalchemy.url"))
    with engine.connect() as connection:
        _configure(connection=connection)
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
