"""Reader studies: per-reader deterministic shuffles, blinding, images, progress."""
from __future__ import annotations

import hashlib
import struct
import zlib

import pytest

from core.db import auth, dispose_engines, init_db, session_scope
from core.db.errors import StudyError
from core.db.ratings import my_ratings
from core.db.records import record_scan
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
    assert per_reader == {ids["r1"]: 8}


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
