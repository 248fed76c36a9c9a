"""Scans, predictions, SR results, ratings and the audit log."""
from __future__ import annotations

import csv
import hashlib
import io
import math

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from core.db import auth, dispose_engines, init_db, session_scope
from core.db import tables as m
from core.db.audit import MASK, audit, recent_audit
from core.db.errors import NotFound, RatingError
from core.db.ratings import (export_ratings, export_ratings_csv, get_my_rating, my_ratings,
                             rating_summary, save_rating)
from core.db.scans import (get_scan, record_prediction, record_scan, record_sr_result,
                             scan_sr_results)

SHA = hashlib.sha256(b"scan one").hexdigest()
SHA2 = hashlib.sha256(b"scan two").hexdigest()
PHI = {"PatientName": "DOE^JANE", "patient_id": "123-45-678", "StudyDate": "20240101",
       "filename": "jane_doe_chest.dcm"}


@pytest.fixture()
def env(db_url):
    engine = init_db(db_url)
    with session_scope(engine) as s:
        ids = {name: auth.create_user(s, name, "a long password 1", "radiologist").id
               for name in ("ann", "ben")}
        record_scan(s, SHA, {"modality": "CT", "rows": 64} | PHI, "dicom", "CT", (64, 64),
                    ids["ann"])
        record_scan(s, SHA2, {"modality": "XR"}, "png", None, [32, 32], ids["ben"])
    yield engine, ids
    dispose_engines()


def _rate(s, reader, sha=SHA, method="esrgan", version="v1", iq=3, du=4, **kw):
    return save_rating(s, reader_id=reader, scan_sha256=sha, method=method, model_version=version,
                       image_quality=iq, diagnostic_usefulness=du, **kw)


def test_record_scan_is_idempotent_and_masks_phi(env):
    engine, ids = env
    with session_scope(engine) as s:
        again = record_scan(s, SHA.upper(), {"other": 1}, "png", "XR", (1, 1), ids["ben"])
        assert again.source_format == "dicom" and again.shape == (64, 64)
        assert s.scalar(select(func.count()).select_from(m.Scan)) == 2
        stored = get_scan(s, SHA).summary
    assert stored["rows"] == 64 and stored["modality"] == "CT"
    for key, value in PHI.items():
        assert stored[key] == MASK and value not in str(stored)


def test_predictions_and_sr_results(env):
    engine, ids = env
    with session_scope(engine) as s:
        p = record_prediction(s, scan_sha256=SHA, model_version="clf-1", label="tumor",
                              probabilities={"tumor": 0.9, "normal": 0.1}, calibrated=True,
                              user_id=ids["ann"])
        assert p.label == "tumor" and p.probabilities["tumor"] == 0.9
        record_sr_result(s, scan_sha256=SHA, method="bicubic", scale=4, mode="degrade",
                         psnr=math.inf, ssim=None)
        record_sr_result(s, scan_sha256=SHA, method="esrgan", scale=4, mode="degrade",
                         model_version="sr-2", alpha=0.8, psnr=31.5, ssim=0.91)
        with pytest.raises(NotFound):
            record_prediction(s, scan_sha256="0" * 64, model_version="x", label="x",
                              probabilities={}, calibrated=False)
    with session_scope(engine) as s:
        rows = {r.method: r for r in scan_sr_results(s, SHA)}
    assert rows["bicubic"].psnr == math.inf and rows["bicubic"].model_version is None
    assert rows["esrgan"].ssim == pytest.approx(0.91) and rows["esrgan"].alpha == 0.8


def test_rerating_updates_the_readers_own_row(env):
    engine, ids = env
    with session_scope(engine) as s:
        first = _rate(s, ids["ann"], iq=2, du=2, comment="blurry")
    with session_scope(engine) as s:
        second = _rate(s, ids["ann"], iq=5, du=4, comment="  ")
        assert second.id == first.id
        assert (second.image_quality, second.diagnostic_usefulness, second.comment) == (5, 4, None)
        assert second.updated_at >= first.updated_at and second.created_at == first.created_at
        assert s.scalar(select(func.count()).select_from(m.Rating)) == 1
        # other keys are separate rows: no model version, another method, another reader
        _rate(s, ids["ann"], method="bicubic", version=None)
        _rate(s, ids["ann"], method="bicubic", version="")      # same as None
        _rate(s, ids["ann"], method="original", version=None)
        _rate(s, ids["ben"])
        assert s.scalar(select(func.count()).select_from(m.Rating)) == 4
        mine = get_my_rating(s, reader_id=ids["ann"], scan_sha256=SHA, method="bicubic")
        assert mine is not None and mine.model_version is None


@pytest.mark.parametrize("bad", [0, 6, -1, 2.5, True, "3", None])
def test_out_of_range_scores_are_rejected(env, bad):
    engine, ids = env
    with session_scope(engine) as s, pytest.raises(RatingError, match="1 to 5"):
        _rate(s, ids["ann"], iq=bad)


@pytest.mark.parametrize("column, value", [("image_quality", 0), ("image_quality", 6),
                                           ("diagnostic_usefulness", 0),
                                           ("diagnostic_usefulness", 6)])
def test_check_constraint_rejects_0_and_6(env, column, value):
    engine, ids = env
    scores = {"image_quality": 3, "diagnostic_usefulness": 3} | {column: value}
    with pytest.raises(IntegrityError, match="(?i)check"):
        with session_scope(engine) as s:
            scan_id = s.scalar(select(m.Scan.id).where(m.Scan.sha256 == SHA))
            s.add(m.Rating(reader_id=ids["ann"], scan_id=scan_id, method="esrgan", **scores))


def test_unique_key_holds_in_the_database(env):
    engine, ids = env
    with pytest.raises(IntegrityError):
        with session_scope(engine) as s:
            scan_id = s.scalar(select(m.Scan.id).where(m.Scan.sha256 == SHA))
            for _ in range(2):
                s.add(m.Rating(reader_id=ids["ann"], scan_id=scan_id, method="original",
                               image_quality=3, diagnostic_usefulness=3))
                s.flush()


def test_readers_only_see_their_own_ratings(env):
    engine, ids = env
    with session_scope(engine) as s:
        _rate(s, ids["ann"], iq=1, comment="ann's note")
        _rate(s, ids["ben"], iq=5, comment="ben's note")
        _rate(s, ids["ben"], sha=SHA2, method="bicubic", version=None)
    with session_scope(engine) as s:
        ann = my_ratings(s, ids["ann"])
        assert [r.reader_id for r in ann] == [ids["ann"]] and ann[0].comment == "ann's note"
        assert {r.reader_id for r in my_ratings(s, ids["ben"])} == {ids["ben"]}
        assert get_my_rating(s, reader_id=ids["ann"], scan_sha256=SHA2, method="bicubic") is None
        assert get_my_rating(s, reader_id=ids["ann"], scan_sha256=SHA, method="esrgan",
                             model_version="v1").image_quality == 1


def test_admin_export_and_summary(env):
    engine, ids = env
    with session_scope(engine) as s:
        _rate(s, ids["ann"], iq=2, du=3, comment="=HYPERLINK(\"x\")")
        _rate(s, ids["ben"], iq=4, du=5)
        rows = export_ratings(s)
        text = export_ratings_csv(s)
        summary = rating_summary(s)
    assert {r["reader"] for r in rows} == {"ann", "ben"}
    assert all(r["scan_sha256"] == SHA for r in rows)
    assert "DOE" not in text and "jane" not in text
    parsed = list(csv.DictReader(io.StringIO(text)))
    assert len(parsed) == 2 and parsed[0]["comment"].startswith("'=")  # no formula injection
    assert summary == [{"method": "esrgan", "model_version": "v1", "n_ratings": 2,
                        "n_readers": 2, "mean_image_quality": 3.0,
                        "mean_diagnostic_usefulness": 4.0}]


def test_audit_rows_without_phi(env):
    engine, ids = env
    with session_scope(engine) as s:
        _rate(s, ids["ann"])
        audit(s, ids["ann"], "logout")
        audit(s, ids["ann"], "model_activate", task="classifier", version="v2",
              patient_name="DOE^JANE", nested={"PatientID": "123-45-678", "ok": [1, 2]},
              note="x" * 1000)
        with pytest.raises(ValueError):
            audit(s, None, "Not An Action!")
        events = recent_audit(s, 100)
    actions = [e.action for e in events]
    assert actions[:3] == ["model_activate", "logout", "rate"]
    assert actions.count("upload") == 2 and actions.count("user_add") == 2
    dump = " ".join(str(e.detail) for e in events)
    assert "DOE" not in dump and "123-45-678" not in dump and "jane_doe" not in dump
    detail = events[0].detail
    assert detail["patient_name"] == MASK and detail["nested"]["ok"] == [1, 2]
    assert len(detail["note"]) <= 201 and events[0].username == "ann"


def _first_rating_race(url: str, reader: int, n: int) -> list[BaseException]:
    """``n`` threads, each with its own connection, submit the same first rating at once."""
    import threading

    from core.db import get_engine

    engine = get_engine(url)
    barrier = threading.Barrier(n)
    errors: list[BaseException] = []

    def submit(i: int) -> None:
        barrier.wait()
        try:
            with session_scope(engine) as s:
                _rate(s, reader, sha=SHA2, method="original", version=None, iq=1 + i % 5,
                      du=3, comment=f"tab {i}")
        except BaseException as err:  # noqa: BLE001 - collected and asserted below
            errors.append(err)

    threads = [threading.Thread(target=submit, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


@pytest.mark.parametrize("attempt", range(5))
def test_simultaneous_first_ratings_keep_one_row_and_raise_nothing(env, db_url, attempt):
    """Two tabs or a double click submit the same first rating at once: before the atomic
    upsert, the loser of read-then-insert raised IntegrityError (issue 15 item 4)."""
    engine, ids = env
    errors = _first_rating_race(db_url, ids["ann"], 16)
    assert errors == []
    with session_scope(engine) as s:
        rows = s.scalars(select(m.Rating).where(m.Rating.reader_id == ids["ann"])).all()
        audits = s.scalar(select(func.count()).select_from(m.AuditLog)
                          .where(m.AuditLog.action == "rate"))
    assert len(rows) == 1
    assert rows[0].comment.startswith("tab ") and 1 <= rows[0].image_quality <= 5
    assert audits == 16                      # every submission was saved (the last one wins)


# ---- issue 14 items 3 and 7: which image a rating belongs to ---------------------------------
PNG = b"\x89PNG\r\n\x1a\n" + b"thumbnail"


def test_rating_view_and_scan_name_reach_my_ratings_and_the_export(env):
    from core.db.scans import label_scan

    engine, ids = env
    with session_scope(engine) as s:
        label_scan(s, SHA, display_name="head_***.dcm", thumbnail=PNG)
        label_scan(s, SHA, display_name="renamed.dcm", thumbnail=PNG + b"2")  # first one stays
        _rate(s, ids["ann"], iq=2, du=3, scale=4, mode="simulate", alpha=0.8, frame=2)
        _rate(s, ids["ann"], sha=SHA2, method="bicubic", version=None, scale=2,
              mode="enhance")
    with session_scope(engine) as s:
        mine = {r.scan_sha256: r for r in my_ratings(s, ids["ann"])}
        rows = {r["scan_sha256"]: r for r in export_ratings(s)}
        parsed = list(csv.DictReader(io.StringIO(export_ratings_csv(s))))
        assert get_scan(s, SHA).display_name == "head_***.dcm"
    r = mine[SHA]
    assert (r.scan_name, r.thumbnail, r.frame, r.scale, r.mode, r.alpha) == (
        "head_***.dcm", PNG, 2, 4, "simulate", 0.8)
    assert r.view == "ESRGAN ×4, Simulate mode, α 0.80, model v1, frame 3"
    assert mine[SHA2].scan_name is None and mine[SHA2].view == "Bicubic ×2, Enhance mode"
    assert rows[SHA]["file_name"] == "head_***.dcm" and rows[SHA]["frame"] == 3
    assert rows[SHA]["view"] == r.view and rows[SHA]["alpha"] == 0.8
    first = next(p for p in parsed if p["scan_sha256"] == SHA)
    assert (first["file_name"], first["scale"], first["mode"], first["frame"]) == (
        "head_***.dcm", "4", "simulate", "3")
    assert "thumbnail" not in first          # the CSV carries names, not pixels


def test_rating_another_view_of_the_same_method_replaces_it(env):
    """The unique key stays (reader, scan, method, model version, study): a second view of the
    same method updates the row and records the new view (see models.Rating)."""
    engine, ids = env
    with session_scope(engine) as s:
        first = _rate(s, ids["ann"], alpha=0.8, scale=4)
        second = _rate(s, ids["ann"], alpha=0.5, scale=4, iq=5)
        assert second.id == first.id and (second.alpha, second.image_quality) == (0.5, 5)
        assert s.scalar(select(func.count()).select_from(m.Rating)) == 1


@pytest.mark.parametrize("method, view, words", [
    ("esrgan", {"scale": 4, "mode": "simulate", "alpha": 0.8, "model_version": "v2"},
     "ESRGAN ×4, Simulate mode, α 0.80, model v2"),
    ("rrdb_psnr", {"scale": 2, "mode": "enhance"}, "RRDB (PSNR) ×2, Enhance mode"),
    ("srcnn", {"scale": 4}, "SRCNN ×4"),
    ("original", {"model_version": "clf-1", "frame": 0}, "Original scan, model clf-1, frame 1"),
    ("gradcam", {}, "Grad-CAM overlay"),
    ("new_method", {}, "new_method"),              # unknown names are shown as they are
])
def test_describe_view_uses_the_method_labels(method, view, words):
    """The view is named in the words the menus use (core.sr.METHOD_LABELS, the one table the
    SR page's labels come from too), never in internal keys."""
    from core.db.rows import describe_view
    from core.sr.upscalers import METHOD_LABELS, SR_METHODS
    from ui.sr import METHOD_LABELS as UI_LABELS

    assert describe_view(method, **view) == words
    assert tuple(METHOD_LABELS) == SR_METHODS and UI_LABELS is METHOD_LABELS


@pytest.mark.parametrize("bad", [{"frame": -1}, {"scale": 0}, {"mode": "DROP TABLE"},
                                 {"frame": True}])
def test_invalid_view_is_rejected(env, bad):
    engine, ids = env
    with session_scope(engine) as s, pytest.raises(RatingError):
        _rate(s, ids["ann"], **bad)


def test_label_scan_rejects_non_png_and_unknown_scans(env):
    from core.db.scans import label_scan

    engine, _ = env
    with session_scope(engine) as s:
        with pytest.raises(ValueError, match="PNG"):
            label_scan(s, SHA, thumbnail=b"GIF89a")
        with pytest.raises(NotFound):
            label_scan(s, "0" * 64, display_name="x.png")


def test_upgrade_0003_to_0004_keeps_ratings(tmp_path, fast_hasher):
    """A database at revision 0003 with a user, a scan and a rating upgrades to 0004 through the
    app's engine (SQLite foreign keys ON): the rating survives, its view and the scan's name are
    NULL, and the columns are usable. Down and up again keeps it too."""
    from alembic import command
    from sqlalchemy import inspect, text

    from core.db import get_engine, upgrade_to_head
    from core.db.migrate import alembic_config, schema_diff

    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = get_engine(url)
    cfg = alembic_config(engine)

    def migrate(fn, rev):
        with engine.connect() as conn:
            cfg.attributes["connection"] = conn
            fn(cfg, rev)
            conn.commit()

    migrate(command.upgrade, "0003")
    assert "display_name" not in {c["name"] for c in inspect(engine).get_columns("scans")}
    with engine.begin() as conn:
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
        conn.execute(text(
            "INSERT INTO users (id, username, role, password_hash, active, failed_logins, "
            "created_at) VALUES (7, 'olduser', 'radiologist', 'x', 1, 0, '2026-01-01')"))
        conn.execute(text(
            "INSERT INTO scans (id, sha256, summary, source_format, shape, uploaded_by, "
            "created_at) VALUES (1, :sha, '{}', 'png', '[]', 7, '2026-01-01')"), {"sha": SHA})
        conn.execute(text(
            "INSERT INTO ratings (reader_id, scan_id, method, model_version, study_key, "
            "image_quality, diagnostic_usefulness, comment, created_at, updated_at) "
            "VALUES (7, 1, 'esrgan', 'v1', 0, 4, 5, 'kept', '2026-01-01', '2026-01-01')"))
    upgrade_to_head(engine, force=True)
    assert schema_diff(engine) == []
    with session_scope(engine) as s:
        (old,) = my_ratings(s, 7)
        assert (old.comment, old.image_quality, old.scale, old.alpha, old.scan_name) == (
            "kept", 4, None, None, None)
        assert old.view == "ESRGAN, model v1"
        again = _rate(s, 7, iq=2, scale=4, alpha=0.8)
        assert again.id == old.id and again.alpha == 0.8
    migrate(command.downgrade, "0003")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT image_quality FROM ratings")).scalars().all() == [2]
    upgrade_to_head(engine, force=True)
    with session_scope(engine) as s:
        assert len(my_ratings(s, 7)) == 1


def test_a_readers_own_list_keeps_blinded_study_ratings_blinded(env):
    """A reader of a blinded study must not learn the condition (method, model, scale, α, file
    name, thumbnail) from My ratings; an unblinded study's and a free rating's views show."""
    engine, ids = env
    with session_scope(engine) as s:
        blind = m.Study(name="blind", seed=1, blinded=True, state="open")
        open_ = m.Study(name="open", seed=2, blinded=False, state="open")
        s.add_all([blind, open_])
        s.flush()
        save_rating(s, reader_id=ids["ann"], scan_sha256=SHA, method="esrgan",
                    model_version="v1", image_quality=4, diagnostic_usefulness=3,
                    study_id=blind.id, scale=4, mode="simulate", alpha=0.8)
        save_rating(s, reader_id=ids["ann"], scan_sha256=SHA2, method="bicubic",
                    model_version=None, image_quality=2, diagnostic_usefulness=2,
                    study_id=open_.id, scale=4)
        save_rating(s, reader_id=ids["ann"], scan_sha256=SHA, method="original",
                    model_version=None, image_quality=5, diagnostic_usefulness=5)
    with session_scope(engine) as s:
        rows = {r.study_id: r for r in my_ratings(s, ids["ann"])}
        blind_id = s.scalar(select(m.Study.id).where(m.Study.name == "blind"))
    hidden = rows[blind_id]
    assert hidden.method == "blinded" and hidden.view == "Reader-study image (blinded)"
    assert (hidden.model_version, hidden.scale, hidden.mode, hidden.alpha, hidden.scan_name,
            hidden.thumbnail) == (None,) * 6
    assert hidden.image_quality == 4                   # the reader still sees their own scores
    assert sorted(r.method for sid, r in rows.items() if sid != blind_id) == ["bicubic",
                                                                             "original"]
