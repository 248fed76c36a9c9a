"""Reader studies: per-reader deterministic shuffles, blinding, images, progress."""
from __future__ import annotations

import hashlib
import struct
import zlib

import pytest

from core.db import auth, dispose_engines, init_db, session_scope
from core.db.errors import StudyError
from core.db.ratings import my_ratings
from core.db.scans import record_scan
from core.db.studies import (create_study, list_studies, next_unrated, rate_study_item,
                             reader_order, set_study_image, study_image_bytes, study_progress,
                             study_queue, study_reader_progress)

SHAS = [hashlib.sha256(f"scan {i}".encode()).hexdigest() for i in range(4)]
METHODS = [("bicubic", None), ("esrgan", "sr-7")]


def png(width: int = 2, height: int = 2, depth: int = 8, value: int = 0) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data)))
    raw = b"".join(b"\0" + bytes([value]) * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, depth,
                                                               0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


@pytest.fixture()
def env(db_url):
    engine = init_db(db_url)
    with session_scope(engine) as s:
        ids = {n: auth.create_user(s, n, "a long password 1", "admin" if n == "boss" else
                                   "radiologist").id for n in ("boss", "r1", "r2")}
        for sha in SHAS:
            record_scan(s, sha, {}, "png", "XR", (8, 8), ids["boss"])
        items = [(sha, method, version, png(value=i))
                 for i, (sha, (method, version)) in enumerate(
                     (sha, mv) for sha in SHAS for mv in METHODS)]
        blinded = create_study(s, "Blinded SR study", ids["boss"], items, seed=42)
        open_ = create_study(s, "Open study", ids["boss"], [(SHAS[0], "esrgan", "sr-7")],
                             blinded=False, seed=1)
    yield engine, ids, blinded, open_
    dispose_engines()


def test_queue_is_deterministic_per_reader_and_differs_between_readers(env):
    engine, ids, study, _ = env
    with session_scope(engine) as s:
        q1 = [v.item_id for v in study_queue(s, study.id, ids["r1"])]
        q1_again = [v.item_id for v in study_queue(s, study.id, ids["r1"])]
        q2 = [v.item_id for v in study_queue(s, study.id, ids["r2"])]
    assert q1 == q1_again and sorted(q1) == sorted(q2) and q1 != q2
    assert len(q1) == 8 and reader_order(42, 7, 8) == reader_order(42, 7, 8)


def test_blinded_labels_hide_the_method(env):
    engine, ids, study, open_ = env
    with session_scope(engine) as s:
        queue = study_queue(s, study.id, ids["r1"])
        shown = study_queue(s, open_.id, ids["r1"])
    assert [v.label for v in queue] == [f"Image {i} of 8" for i in range(1, 9)]
    for v in queue:
        assert v.blinded and v.method is None and v.model_version is None
        assert v.scan_sha256 is None
        assert "esrgan" not in v.label and "bicubic" not in v.label and "sr-7" not in v.label
    assert shown[0].method == "esrgan" and "esrgan" in shown[0].label and not shown[0].blinded


def test_images_progress_and_rating_without_revealing_method(env):
    engine, ids, study, _ = env
    with session_scope(engine) as s:
        first = next_unrated(s, study.id, ids["r1"])
        assert first.index == 1 and first.has_image
        image = study_image_bytes(s, first.item_id)
        assert image.startswith(b"\x89PNG")
        progress = rate_study_item(s, reader_id=ids["r1"], item_id=first.item_id,
                                   image_quality=4, diagnostic_usefulness=3)
        assert (progress.rated, progress.total) == (1, 8)
        # re-rating the same item updates, does not add
        progress = rate_study_item(s, reader_id=ids["r1"], item_id=first.item_id,
                                   image_quality=5, diagnostic_usefulness=3)
        assert progress.rated == 1
        assert next_unrated(s, study.id, ids["r1"]).index == 2
        assert study_progress(s, study.id, ids["r2"]).rated == 0
        queue = study_queue(s, study.id, ids["r1"])
        assert queue[0].rated and queue[0].image_quality == 5
        assert not any(v.rated for v in study_queue(s, study.id, ids["r2"]))
        assert [r.study_id for r in my_ratings(s, ids["r1"])] == [study.id]
        for item in queue[1:]:
            rate_study_item(s, reader_id=ids["r1"], item_id=item.item_id, image_quality=3,
                            diagnostic_usefulness=3)
        assert next_unrated(s, study.id, ids["r1"]) is None
        assert study_progress(s, study.id, ids["r1"]).done
        per_reader = {p.reader_id: p.rated for p in study_reader_progress(s, study.id)}
    assert per_reader == {ids["r1"]: 8, ids["r2"]: 0}   # r2 joined (opened the queue)


def test_list_studies_and_images(env):
    engine, ids, study, open_ = env
    with session_scope(engine) as s:
        studies = list_studies(s)
        assert [x.name for x in studies] == ["Open study", "Blinded SR study"]
        assert studies[1].n_items == 8 and studies[1].created_by == "boss"
        item = study_queue(s, open_.id, ids["r1"])[0]
        assert study_image_bytes(s, item.item_id) is None and not item.has_image
        set_study_image(s, item.item_id, png(4, 3))
        assert study_image_bytes(s, item.item_id) == png(4, 3)
        with pytest.raises(StudyError, match="8-bit"):
            set_study_image(s, item.item_id, png(depth=16))
        with pytest.raises(StudyError, match="PNG"):
            set_study_image(s, item.item_id, b"GIF89a not a png at all, sorry.......")


def test_study_validation(env):
    engine, ids, *_ = env
    with session_scope(engine) as s:
        with pytest.raises(StudyError, match="already exists"):
            create_study(s, "Open study", ids["boss"], [(SHAS[0], "original", None)])
        with pytest.raises(StudyError, match="at least one"):
            create_study(s, "Empty", ids["boss"], [])
        with pytest.raises(StudyError, match="Duplicate"):
            create_study(s, "Dup", ids["boss"], [(SHAS[0], "original", None),
                                                 (SHAS[0], "original", "")])


def _draft(s, ids, name="Draft", **kw):
    items = [(sha, method, version) for sha in SHAS for method, version in METHODS]
    return create_study(s, name, ids["boss"], items, seed=7, state="draft", **kw)


def test_states_draft_open_closed_and_audited_reopen(env):
    from core.db.audit import recent_audit
    from core.db.studies import close_study, open_study, study_case_rows

    engine, ids, *_ = env
    with session_scope(engine) as s:
        study = _draft(s, ids)
        assert study.state == "draft" and not study.active and study.n_ready == 0
        queue = study_queue(s, study.id, ids["r1"])
        with pytest.raises(StudyError, match="not opened"):
            rate_study_item(s, reader_id=ids["r1"], item_id=queue[0].item_id, image_quality=3,
                            diagnostic_usefulness=3)
        with pytest.raises(StudyError, match="8 image"):
            open_study(s, study.id, ids["boss"])
        for n, case in enumerate(study_case_rows(s, study.id)):
            for item_id, *_ in case["items"]:
                set_study_image(s, item_id, png(value=n))
        set_study_image(s, queue[0].item_id, png(value=99))     # a draft's images may change
        opened = open_study(s, study.id, ids["boss"])
        assert opened.state == "open" and opened.ready and opened.opened_at is not None
        with pytest.raises(StudyError, match="cannot change"):
            set_study_image(s, queue[0].item_id, png(value=5))   # immutable once open
        rate_study_item(s, reader_id=ids["r1"], item_id=queue[0].item_id, image_quality=3,
                        diagnostic_usefulness=3)
        assert close_study(s, study.id, ids["boss"]).state == "closed"
        with pytest.raises(StudyError, match="closed"):
            rate_study_item(s, reader_id=ids["r1"], item_id=queue[0].item_id, image_quality=4,
                            diagnostic_usefulness=4)
        assert [v.name for v in list_studies(s, active_only=True)] != ["Draft"]
        open_study(s, study.id, ids["boss"])
        actions = [a.action for a in recent_audit(s, 20)]
    assert {"study_open", "study_close", "study_reopen"} <= set(actions)


def test_assigned_readers_only(env):
    from core.db.studies import get_study, set_study_readers

    engine, ids, *_ = env
    with session_scope(engine) as s:
        study = create_study(s, "Assigned", ids["boss"], [(SHAS[0], "original", None, png())],
                             readers=[ids["r1"]])
        assert not study.open_to_all and study.readers == ("r1",)
        assert len(study_queue(s, study.id, ids["r1"])) == 1
        with pytest.raises(StudyError, match="not a reader"):
            study_queue(s, study.id, ids["r2"])
        assert study.id not in [v.id for v in list_studies(s, reader_id=ids["r2"])]
        assert study.id in [v.id for v in list_studies(s, reader_id=ids["r1"])]
        item = study_queue(s, study.id, ids["r1"])[0].item_id
        rate_study_item(s, reader_id=ids["r1"], item_id=item, image_quality=2,
                        diagnostic_usefulness=2)
        with pytest.raises(StudyError, match="cannot be removed"):
            set_study_readers(s, study.id, [ids["r2"]], ids["boss"])
        set_study_readers(s, study.id, [ids["r1"], ids["r2"]], ids["boss"])
        assert get_study(s, study.id).readers == ("r1", "r2")


@pytest.mark.parametrize("n, fraction, repeats", [(8, 0.0, 0), (8, 0.25, 2), (8, 0.5, 4),
                                                  (3, 1.0, 3), (1, 0.5, 0), (20, 0.1, 2)])
def test_reader_sequence_repeats(n, fraction, repeats):
    from core.db.studies import MIN_REPEAT_GAP, reader_sequence

    seq = reader_sequence(1234, n, fraction)
    assert seq == reader_sequence(1234, n, fraction)            # deterministic
    assert sorted(i for i, r in seq if not r) == list(range(n))
    again = [i for i, r in seq if r]
    originals = [i for i, r in seq if not r]
    assert len(again) == repeats and len(set(again)) == repeats
    for i in again:
        first, second = seq.index((i, False)), seq.index((i, True))
        assert second > first
        # far enough apart, unless the first showing was among the last few
        assert second - first > MIN_REPEAT_GAP or originals.index(i) >= n - MIN_REPEAT_GAP
    assert reader_sequence(1235, n, fraction) != seq or n < 3


def test_repeats_time_place_and_changing_a_rating(env):
    from core.db.tables import Rating, StudyResponse
    from core.db.studies import reader_place, set_reader_place, study_response_rows

    engine, ids, *_ = env
    with session_scope(engine) as s:
        items = [(sha, m, v, png(value=i)) for i, (sha, (m, v)) in
                 enumerate((sha, mv) for sha in SHAS for mv in METHODS)]
        study = create_study(s, "Repeats", ids["boss"], items, seed=5, repeat_fraction=0.25,
                             diagnosis_choices=["glioma", "no tumor"])
        queue = study_queue(s, study.id, ids["r1"])
        assert len(queue) == 10 and sum(v.is_repeat for v in queue) == 2
        assert study_progress(s, study.id, ids["r1"]).total == 10
        first = next(v for v in queue if not v.is_repeat)
        with pytest.raises(StudyError, match="not repeated"):
            rate_study_item(s, reader_id=ids["r1"], item_id=first.item_id, image_quality=3,
                            diagnostic_usefulness=3, repeat=True)
        with pytest.raises(StudyError, match="not one of"):
            rate_study_item(s, reader_id=ids["r1"], item_id=first.item_id, image_quality=3,
                            diagnostic_usefulness=3, diagnosis="meningioma")
        for v in queue:
            rate_study_item(s, reader_id=ids["r1"], item_id=v.item_id, image_quality=3,
                            diagnostic_usefulness=4, repeat=v.is_repeat, seconds=2.5,
                            diagnosis="glioma")
        # change one rating later: scores replaced, time added
        rate_study_item(s, reader_id=ids["r1"], item_id=first.item_id, image_quality=5,
                        diagnostic_usefulness=5, seconds=1.25, diagnosis="no tumor")
        assert study_progress(s, study.id, ids["r1"]).done
        assert s.query(StudyResponse).count() == 10
        assert s.query(Rating).filter(Rating.study_key == study.id).count() == 8
        again = {(v.item_id, v.is_repeat): v for v in study_queue(s, study.id, ids["r1"])}
        assert again[(first.item_id, False)].image_quality == 5
        assert again[(first.item_id, False)].seconds == pytest.approx(3.75)
        rows = study_response_rows(s, study.id)
        assert len(rows) == 10 and sum(r["repeat"] for r in rows) == 2
        assert sorted(r["diagnosis"] for r in rows).count("no tumor") == 1
        set_reader_place(s, study.id, ids["r1"], 7)
    with session_scope(engine) as s:     # another session: same order, same place
        assert [(v.item_id, v.is_repeat) for v in study_queue(s, study.id, ids["r1"])] == \
            [(v.item_id, v.is_repeat) for v in queue]
        assert reader_place(s, study.id, ids["r1"]) == 7


def test_delete_needs_confirmation_when_rated_and_is_audited(env):
    from core.db.audit import recent_audit
    from core.db.tables import Rating, StudyItem
    from core.db.studies import delete_study

    engine, ids, study, open_ = env
    with session_scope(engine) as s:
        item = study_queue(s, study.id, ids["r1"])[0].item_id
        rate_study_item(s, reader_id=ids["r1"], item_id=item, image_quality=2,
                        diagnostic_usefulness=2)
        delete_study(s, open_.id, ids["boss"])           # no ratings: no confirmation needed
        with pytest.raises(StudyError, match="Confirm"):
            delete_study(s, study.id, ids["boss"])
        delete_study(s, study.id, ids["boss"], confirm=True)
    with session_scope(engine) as s:
        assert list_studies(s) == [] and s.query(StudyItem).count() == 0
        assert s.query(Rating).count() == 0
        assert [a.action for a in recent_audit(s, 5)][:2] == ["study_delete", "study_delete"]
