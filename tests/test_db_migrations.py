"""Schema: the Alembic migrations build exactly the ORM metadata; SQLite settings."""
from __future__ import annotations

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError

from core.db import dispose_engines, get_engine, init_db, session_scope, upgrade_to_head
from core.db import tables as m
from core.db.migrate import current_revision, head_revision, schema_diff


@pytest.fixture()
def url(db_url):
    """A fresh database: SQLite, and PostgreSQL where MEDSCAN_TEST_POSTGRES_URL is set."""
    return db_url


def test_migrated_schema_equals_models(url):
    engine = upgrade_to_head(url)
    assert current_revision(engine) == head_revision()
    assert schema_diff(engine) == [], "tables.py changed without an Alembic revision"
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
    if not url.startswith("sqlite"):
        pytest.skip("SQLite connection settings")
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


def test_upgrade_from_0001_keeps_users_and_their_rows(url):
    """A database made at revision 0001 (before ``users.sso_email``) with a user, a scan, a
    rating and an audit row upgrades to head through the app's engine (SQLite foreign keys ON):
    nothing is lost or cascaded away, and the user has no SSO e-mail."""
    from alembic import command

    from core.db.migrate import alembic_config

    engine = get_engine(url)
    cfg = alembic_config(engine)
    with engine.connect() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0001")
        conn.commit()
    assert current_revision(engine) == "0001"
    assert "sso_email" not in {c["name"] for c in inspect(engine).get_columns("users")}
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO users (id, username, role, password_hash, active, failed_logins, "
            "created_at) VALUES (7, 'olduser', 'radiologist', 'x', :yes, 0, '2026-01-01')"),
            {"yes": True})
        conn.execute(text(
            "INSERT INTO scans (id, sha256, summary, source_format, shape, uploaded_by, "
            "created_at) VALUES (1, :sha, '{}', 'png', '[]', 7, '2026-01-01')"),
            {"sha": "a" * 64})
        conn.execute(text(
            "INSERT INTO ratings (reader_id, scan_id, method, model_version, study_key, "
            "image_quality, diagnostic_usefulness, created_at, updated_at) "
            "VALUES (7, 1, 'original', '', 0, 4, 5, '2026-01-01', '2026-01-01')"))
        conn.execute(text("INSERT INTO audit_log (at, user_id, action, detail) "
                          "VALUES ('2026-01-01', 7, 'login_ok', '{}')"))

    upgrade_to_head(engine, force=True)
    assert current_revision(engine) == head_revision()
    assert schema_diff(engine) == []
    with session_scope(engine) as s:
        user = s.get(m.User, 7)
        assert user.username == "olduser" and user.sso_email is None
        assert s.query(m.Rating).one().reader_id == 7
        assert s.query(m.Scan).one().uploaded_by == 7
        assert s.query(m.AuditLog).one().user_id == 7
    if url.startswith("sqlite"):
        with engine.connect() as conn:
            assert conn.execute(text("PRAGMA foreign_key_check")).fetchall() == []


def test_sso_email_is_unique_in_the_database(url):
    engine = init_db(url)
    with pytest.raises(IntegrityError):
        with session_scope(engine) as s:
            for name in ("u1", "u2"):
                s.add(m.User(username=name, role="radiologist", password_hash="x",
                             sso_email="same@example.org"))
    with session_scope(engine) as s:  # many users without SSO are fine (NULLs are distinct)
        for name in ("u1", "u2"):
            s.add(m.User(username=name, role="radiologist", password_hash="x"))


def test_downgrade_0002_drops_sso_email_and_keeps_users(url):
    from alembic import command

    from core.db.migrate import alembic_config

    engine = init_db(url)
    with session_scope(engine) as s:
        user = m.User(username="keep", role="admin", password_hash="x",
                      sso_email="keep@example.org")
        scan = m.Scan(sha256="b" * 64, source_format="png", uploaded_by=None)
        s.add_all([user, scan])
        s.flush()
        s.add(m.Rating(reader_id=user.id, scan_id=scan.id, method="original",
                       image_quality=3, diagnostic_usefulness=3))
    cfg = alembic_config(engine)
    with engine.connect() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0001")
        conn.commit()
    assert "sso_email" not in {c["name"] for c in inspect(engine).get_columns("users")}
    with engine.connect() as conn:
        assert conn.execute(text("SELECT username FROM users")).scalars().all() == ["keep"]
        assert conn.execute(text("SELECT count(*) FROM ratings")).scalar() == 1  # no cascade
    upgrade_to_head(engine, force=True)
    assert schema_diff(engine) == []


def test_0003_adds_session_tables_and_downgrade_keeps_users_and_ratings(url):
    """0003 only creates ``login_sessions`` and ``login_throttle``; going down to 0002 and up
    again never touches users or their ratings (no SQLite table rebuild)."""
    from alembic import command

    from core.db.migrate import alembic_config

    engine = init_db(url)
    with session_scope(engine) as s:
        user = m.User(username="keep3", role="admin", password_hash="x")
        scan = m.Scan(sha256="c" * 64, source_format="png", uploaded_by=None)
        s.add_all([user, scan])
        s.flush()
        s.add(m.Rating(reader_id=user.id, scan_id=scan.id, method="original",
                       image_quality=3, diagnostic_usefulness=3))
        s.add(m.LoginSession(user_id=user.id, token_hash="d" * 64,
                             expires_at=m.utcnow()))
    assert {"login_sessions", "login_throttle"} <= set(inspect(engine).get_table_names())
    cfg = alembic_config(engine)
    with engine.connect() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0002")
        conn.commit()
    tables = set(inspect(engine).get_table_names())
    assert "login_sessions" not in tables and "login_throttle" not in tables
    upgrade_to_head(engine, force=True)
    assert schema_diff(engine) == []
    with session_scope(engine) as s:
        assert s.query(m.User).one().username == "keep3"
        assert s.query(m.Rating).count() == 1
        assert s.query(m.LoginSession).count() == 0


def test_0005_widens_job_kinds_and_keeps_jobs_and_their_progress(url):
    """0005 rebuilds ``training_jobs`` on SQLite to change its kind constraint; the jobs and
    their progress rows (the loss curves, which cascade on delete of a job) survive the way
    up and down, and the new kinds are accepted only at 0005."""
    from alembic import command
    from sqlalchemy.exc import IntegrityError

    from core.db.migrate import alembic_config

    engine = init_db(url)
    with session_scope(engine) as s:
        job = m.TrainingJob(kind="classifier", args=["--epochs", "1"], status="succeeded")
        s.add(job)
        s.flush()
        s.add_all([m.JobProgress(job_id=job.id, phase="fit", epoch=i, loss=1.0 / (i + 1))
                   for i in range(3)])
        s.add(m.TrainingJob(kind="segmentation", args=[], status="queued"))
        s.add(m.Case(sha256="e" * 64, storage_key="ee/x.png", width=4, height=4, bit_depth=8,
                     source="test"))
    cfg = alembic_config(engine)
    with engine.connect() as conn:   # a job of a new kind blocks the way down
        cfg.attributes["connection"] = conn
        with pytest.raises(RuntimeError, match="segmentation"):
            command.downgrade(cfg, "0004")
        conn.rollback()
    with session_scope(engine) as s:
        s.query(m.TrainingJob).filter_by(kind="segmentation").delete()
    with engine.connect() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0004")
        conn.commit()
    assert "cases" not in set(inspect(engine).get_table_names())
    with engine.connect() as conn, pytest.raises(IntegrityError):
        conn.execute(text("INSERT INTO training_jobs (kind, args, status, created_at, fraction) "
                          "VALUES ('embeddings', '[]', 'queued', '2026-01-01', 0)"))
    upgrade_to_head(engine, force=True)
    assert schema_diff(engine) == []
    with session_scope(engine) as s:
        assert s.query(m.TrainingJob).one().kind == "classifier"
        assert [p.epoch for p in s.query(m.JobProgress).order_by(m.JobProgress.epoch)] == [0, 1, 2]
        s.add(m.TrainingJob(kind="embeddings", args=[], status="queued"))


def test_0006_study_states_and_responses_keep_study_ratings(url):
    """0006 turns ``studies.active`` into ``state`` (open / closed), gives every study its cases
    and copies its ratings into ``study_responses``; nothing referencing ``studies`` is
    rebuilt (ratings and items survive on SQLite with foreign keys ON). The way down refuses
    while repeated showings exist, then restores ``active``."""
    from alembic import command

    from core.db.migrate import alembic_config

    engine = get_engine(url)
    cfg = alembic_config(engine)
    with engine.connect() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0005")
        conn.commit()
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO users (id, username, role, password_hash, active, failed_logins, "
            "created_at) VALUES (7, 'reader7', 'radiologist', 'x', :yes, 0, '2026-01-01')"),
            {"yes": True})
        conn.execute(text(
            "INSERT INTO scans (id, sha256, summary, source_format, shape, created_at) "
            "VALUES (1, :sha, '{}', 'png', '[]', '2026-01-01')"), {"sha": "f" * 64})
        for sid, active in ((1, True), (2, False)):
            conn.execute(text(
                "INSERT INTO studies (id, name, blinded, seed, active, created_at) "
                "VALUES (:id, :name, :yes, 3, :active, '2026-01-01')"),
                {"id": sid, "name": f"s{sid}", "yes": True, "active": active})
            conn.execute(text(
                "INSERT INTO study_items (id, study_id, scan_id, method, model_version, "
                "position) VALUES (:id, :id, 1, 'bicubic', '', 0)"), {"id": sid})
        conn.execute(text(
            "INSERT INTO ratings (reader_id, scan_id, method, model_version, study_id, "
            "study_key, image_quality, diagnostic_usefulness, created_at, updated_at) "
            "VALUES (7, 1, 'bicubic', '', 1, 1, 4, 2, '2026-01-01', '2026-01-01')"))

    upgrade_to_head(engine, force=True)
    assert schema_diff(engine) == []
    with session_scope(engine) as s:
        assert {x.id: x.state for x in s.query(m.Study)} == {1: "open", 2: "closed"}
        assert s.query(m.StudyCase).count() == 2
        resp = s.query(m.StudyResponse).one()
        assert (resp.item_id, resp.reader_id, resp.image_quality, resp.is_repeat,
                resp.seconds) == (1, 7, 4, False, None)
        assert s.query(m.Rating).count() == 1 and s.query(m.StudyItem).count() == 2
        s.add(m.StudyResponse(study_id=1, item_id=1, reader_id=7, is_repeat=True,
                              image_quality=3, diagnostic_usefulness=3))
    with engine.connect() as conn:
        cfg.attributes["connection"] = conn
        with pytest.raises(RuntimeError, match="repeated"):
            command.downgrade(cfg, "0005")
        conn.rollback()
    with session_scope(engine) as s:
        s.query(m.StudyResponse).filter_by(is_repeat=True).delete()
        s.get(m.Study, 2).state = "draft"
    with engine.connect() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0005")
        conn.commit()
    tables = set(inspect(engine).get_table_names())
    assert not {"study_cases", "study_readers", "study_responses"} & tables
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT id, active FROM studies ORDER BY id")).all()
        assert [(i, bool(a)) for i, a in rows] == [(1, True), (2, False)]
        assert conn.execute(text("SELECT count(*) FROM ratings")).scalar() == 1
        assert conn.execute(text("SELECT count(*) FROM study_items")).scalar() == 2
    upgrade_to_head(engine, force=True)
    assert schema_diff(engine) == []
    if url.startswith("sqlite"):
        with engine.connect() as conn:
            assert conn.execute(text("PRAGMA foreign_key_check")).fetchall() == []


def test_0009_accepts_pretrain_jobs_and_keeps_progress_and_worker_links(url):
    """0009 rebuilds ``training_jobs`` on SQLite for the ``pretrain`` kind; the jobs, their loss
    curves (cascade on delete) and the workers' links to them (set null on delete) survive up
    and down, and a pre-training job blocks the way down."""
    from alembic import command

    from core.db.migrate import alembic_config

    engine = init_db(url)
    with session_scope(engine) as s:
        job = m.TrainingJob(kind="classifier", args=["--epochs", "1"], status="running")
        s.add(job)
        s.flush()
        s.add_all([m.JobProgress(job_id=job.id, phase="fit", epoch=i, loss=1.0 / (i + 1))
                   for i in range(3)])
        s.add(m.JobWorker(name="w:1", host="w", pid=1, kinds=None, job_id=job.id, jobs_done=0))
        s.add(m.TrainingJob(kind="pretrain", args=[], status="queued"))
    cfg = alembic_config(engine)
    with engine.connect() as conn:
        cfg.attributes["connection"] = conn
        with pytest.raises(RuntimeError, match="pre-training"):
            command.downgrade(cfg, "0008")
        conn.rollback()
    with session_scope(engine) as s:
        s.query(m.TrainingJob).filter_by(kind="pretrain").delete()
    with engine.connect() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0008")
        conn.commit()
    with engine.connect() as conn, pytest.raises(IntegrityError):
        conn.execute(text("INSERT INTO training_jobs (kind, args, status, created_at, fraction, "
                          "cancel_requested) VALUES ('pretrain', '[]', 'queued', '2026-01-01', "
                          "0, false)"))
    with session_scope(engine) as s:
        job_id = s.query(m.TrainingJob).one().id
        assert s.query(m.JobWorker).one().job_id == job_id
    upgrade_to_head(engine, force=True)
    assert schema_diff(engine) == []
    with session_scope(engine) as s:
        assert s.query(m.TrainingJob).one().kind == "classifier"
        assert [p.epoch for p in s.query(m.JobProgress).order_by(m.JobProgress.epoch)] == [0, 1, 2]
        assert s.query(m.JobWorker).one().job_id == job_id
        s.add(m.TrainingJob(kind="pretrain", args=[], status="queued"))
