"""The same API on PostgreSQL. Skipped unless ``MEDSCAN_TEST_POSTGRES_URL`` names an empty
database the test may fill and wipe, e.g. ``postgresql+psycopg://medscan@127.0.0.1/medscan``."""
from __future__ import annotations

import hashlib
import math
import os
import sys

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

URL = os.environ.get("MEDSCAN_TEST_POSTGRES_URL")
pytestmark = [pytest.mark.postgres,
              pytest.mark.skipif(not URL, reason="MEDSCAN_TEST_POSTGRES_URL not set")]
SHA = hashlib.sha256(b"pg scan").hexdigest()
PW = "a long password 1"


@pytest.fixture()
def engine(tmp_path, monkeypatch, fast_hasher):
    from core.db import dispose_engines, get_engine, init_db
    from core.db.tables import Base

    monkeypatch.setenv("MEDSCAN_DATA_DIR", str(tmp_path))
    eng = get_engine(URL)
    with eng.begin() as conn:
        Base.metadata.drop_all(conn)
        conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
    yield init_db(URL)
    dispose_engines()


def test_postgres_schema_and_api(engine):
    from core.db import auth, session_scope
    from core.jobs import runner, service
    from core.db import tables as m
    from core.db.migrate import schema_diff
    from core.db.ratings import export_ratings, my_ratings, save_rating
    from core.db.scans import record_scan, record_sr_result
    from core.db.studies import create_study, rate_study_item, study_queue

    assert schema_diff(engine) == []
    with session_scope(engine) as s:
        admin = auth.create_first_admin(s, "root", PW)
        record_scan(s, SHA, {"PatientName": "X^Y"}, "dicom", "CT", (8, 8), admin.id)
        record_sr_result(s, scan_sha256=SHA, method="bicubic", scale=4, mode="degrade",
                         psnr=math.inf)
        for iq in (2, 5):
            save_rating(s, reader_id=admin.id, scan_sha256=SHA, method="bicubic",
                        model_version=None, image_quality=iq, diagnostic_usefulness=3)
        study = create_study(s, "pg study", admin.id, [(SHA, "original", None)])
        rate_study_item(s, reader_id=admin.id, item_id=study_queue(s, study.id, admin.id)[0]
                        .item_id, image_quality=4, diagnostic_usefulness=4)
    with session_scope(engine) as s:
        assert auth.authenticate(s, "ROOT", PW).id == admin.id
        assert [r.image_quality for r in my_ratings(s, admin.id)] == [4, 5]
        assert len(export_ratings(s)) == 2
    with pytest.raises(IntegrityError):
        with session_scope(engine) as s:
            s.add(m.Rating(reader_id=admin.id, scan_id=1, method="x", image_quality=6,
                           diagnostic_usefulness=1))
    with session_scope(engine) as s:
        job = service.start_training_job(s, "sr", [], admin.id, argv=[
            sys.executable, "-c",
            "import sys; from core.progress import Progress; from core.db.jobs import "
            "progress_callback as p; p(int(sys.argv[2]))(Progress('sr', 'done', "
            "message='version=v9'))", "--job-id", "{job_id}"])
    assert runner.children.pop(job.id).wait(timeout=60) == 0
    with session_scope(engine) as s:
        done = service.get_job(s, job.id)
    assert done.status == "succeeded" and done.result_version == "v9"
