"""Schema: the Alembic migrations build exactly the ORM metadata; SQLite settings."""
from __future__ import annotations

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError

from core.db import dispose_engines, get_engine, init_db, session_scope, upgrade_to_head
from core.db import models as m
from core.db.migrate import current_revision, head_revision, schema_diff


@pytest.fixture()
def url(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDSCAN_DATA_DIR", str(tmp_path))
    url = f"sqlite:///{tmp_path / 'db' / 'medscan.db'}"
    monkeypatch.setenv("MEDSCAN_DATABASE_URL", url)
    yield url
    dispose_engines()


def test_migrated_schema_equals_models(url):
    engine = upgrade_to_head(url)
    assert current_revision(engine) == head_revision()
    assert schema_diff(engine) == [], "models.py changed without an Alembic revision"
    tables = set(inspect(engine).get_table_names())
    assert set(m.Base.metadata.tables) <= tables


def test_upgrade_is_idempotent_and_default_url_is_config(url):
    engine = init_db()  # from MEDSCAN_DATABASE_URL
    assert str(engine.url) == url
    assert get_engine() is engine
    upgrade_to_head(engine, force=True)
    assert current_revision(engine) == head_revision()


def test_downgrade_to_base_and_back(url):
    from alembic import command

    from core.db.migrate import alembic_config

    engine = init_db(url)
    cfg = alembic_config(engine)
    command.downgrade(cfg, "base")
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    upgrade_to_head(engine, force=True)
    assert schema_diff(engine) == []


def test_sqlite_wal_foreign_keys_busy_timeout(url):
    engine = init_db(url)
    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar().lower() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert conn.execute(text("PRAGMA busy_timeout")).scalar() >= 5000


def test_foreign_keys_are_enforced(url):
    engine = init_db(url)
    with pytest.raises(IntegrityError):
        with session_scope(engine) as s:
            s.add(m.Prediction(scan_id=12345, model_version="v", label="x", probabilities={},
                               calibrated=False))


def test_times_come_back_as_aware_utc(url):
    engine = init_db(url)
    with session_scope(engine) as s:
        s.add(m.AuditLog(action="x_test", detail={}))
    with session_scope(engine) as s:
        row = s.query(m.AuditLog).one()
        assert row.at.tzinfo is not None and row.at.utcoffset().total_seconds() == 0


def test_migrations_render_for_postgresql(capsys):
    """Offline mode: the same revisions produce valid PostgreSQL DDL (no server needed)."""
    from alembic import command

    from core.db.migrate import alembic_config

    cfg = alembic_config()
    cfg.set_main_option("sqlalchemy.url", "postgresql://medscan@localhost/medscan")
    command.upgrade(cfg, "head", sql=True)
    ddl = capsys.readouterr().out
    assert "CREATE TABLE ratings" in ddl and "BYTEA" in ddl and "SERIAL" in ddl
    assert "CHECK (image_quality BETWEEN 1 AND 5)" in ddl
