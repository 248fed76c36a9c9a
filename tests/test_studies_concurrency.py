"""Issue 11: 20 readers rating at the same time lose nothing. 20 threads, each its own sessions,
submit 25 ratings each against one database (a SQLite file in WAL mode; PostgreSQL where
MEDSCAN_TEST_POSTGRES_URL is set); all 500 are stored exactly once, in ``study_responses`` and
in the ``ratings`` mirror."""
from __future__ import annotations

import hashlib
import threading

from sqlalchemy import func, select

from core.db import auth, init_db, session_scope
from core.db import tables as m
from core.db.scans import record_scan
from core.db.studies import create_study, rate_study_item, study_progress, study_queue

N_READERS, N_ITEMS = 20, 25
PNG_1PX = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010800000000"
                        "3a7e9b550000000a49444154789c63600000000200013b7c2b6a"
                        "0000000049454e44ae426082")


def test_twenty_readers_rate_at_once_and_nothing_is_lost(db_url):
    engine = init_db(db_url)
    shas = [hashlib.sha256(f"concurrent {i}".encode()).hexdigest() for i in range(5)]
    methods = ["original", "bicubic", "srcnn", "rrdb_psnr", "esrgan"]
    with session_scope(engine) as s:
        boss = auth.create_user(s, "boss", "a long password 1", "admin").id
        readers = [auth.create_user(s, f"reader{i:02d}", "a long password 1",
                                    "radiologist").id for i in range(N_READERS)]
        for sha in shas:
            record_scan(s, sha, {}, "png", "MR", (1, 1), boss)
        study = create_study(s, "Busy study", boss,
                             [(sha, meth, None, PNG_1PX) for sha in shas for meth in methods],
                             seed=11, readers=readers)
    assert study.n_items == N_ITEMS
    start = threading.Barrier(N_READERS)
    errors: list[BaseException] = []

    def work(reader_id: int) -> None:
        try:
            with session_scope(engine) as s:
                queue = study_queue(s, study.id, reader_id)
            start.wait(timeout=60)
            for view in queue:
                with session_scope(engine) as s:
                    rate_study_item(s, reader_id=reader_id, item_id=view.item_id,
                                    image_quality=1 + view.index % 5,
                                    diagnostic_usefulness=1 + reader_id % 5, seconds=0.5)
        except BaseException as err:  # noqa: BLE001 - reported below
            errors.append(err)

    threads = [threading.Thread(target=work, args=(r,)) for r in readers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors, errors[:3]
    with session_scope(engine) as s:
        n = s.scalar(select(func.count()).select_from(m.StudyResponse))
        distinct = s.execute(select(m.StudyResponse.item_id, m.StudyResponse.reader_id)
                             .distinct()).all()
        mirrored = s.scalar(select(func.count()).select_from(m.Rating)
                            .where(m.Rating.study_key == study.id))
        assert n == len(distinct) == mirrored == N_READERS * N_ITEMS
        assert all(study_progress(s, study.id, r).done for r in readers)
        scores = {(r.reader_id, r.item_id): r.diagnostic_usefulness
                  for r in s.scalars(select(m.StudyResponse))}
        assert all(v == 1 + rid % 5 for (rid, _), v in scores.items())


def test_two_tabs_saving_the_same_showing_at_once_keep_one_answer(db_url):
    """The same reader saving the same showing from several tabs at once (and joining an
    open-to-all study at once): one reader row, one answer, one ``ratings`` row; time adds."""
    engine = init_db(db_url)
    sha = hashlib.sha256(b"two tabs").hexdigest()
    with session_scope(engine) as s:
        reader = auth.create_user(s, "tabs", "a long password 1", "radiologist").id
        record_scan(s, sha, {}, "png", "MR", (1, 1), reader)
        study = create_study(s, "Tabs", reader, [(sha, "original", None, PNG_1PX)])
        item = s.scalar(select(m.StudyItem.id))
    n = 8
    start = threading.Barrier(n)
    errors: list[BaseException] = []

    def work(k: int) -> None:
        try:
            start.wait(timeout=60)
            with session_scope(engine) as s:
                rate_study_item(s, reader_id=reader, item_id=item, image_quality=1 + k % 5,
                                diagnostic_usefulness=3, seconds=1.0)
        except BaseException as err:  # noqa: BLE001 - reported below
            errors.append(err)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors[:3]
    with session_scope(engine) as s:
        assert s.scalar(select(func.count()).select_from(m.StudyReader)) == 1
        (answer,) = s.scalars(select(m.StudyResponse)).all()
        assert answer.seconds == n * 1.0
        assert s.scalar(select(func.count()).select_from(m.Rating)
                        .where(m.Rating.study_key == study.id)) == 1
