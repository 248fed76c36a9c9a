"""AppTest: the reader-study page (blinding, keyboard, time, coming back to the same place,
closed studies) and the admin page's stored-cases design and study states."""
from __future__ import annotations

import numpy as np
import pytest
from app_env import app_env, logged_in, tiny_weights  # noqa: F401

from core.db import init_db, session_scope

FORBIDDEN = ("original", "bicubic", "srcnn", "rrdb", "esrgan", "patient_", "secret",
             "glioma", "prediction", "reader2", ".png")


def _png(value: int) -> bytes:
    import cv2

    yy, xx = np.mgrid[:40, :40]
    img = (((xx - 20) ** 2 + (yy - 20) ** 2 < 150) * value + xx).astype(np.uint8)
    ok, buf = cv2.imencode(".png", img)
    assert ok
    return buf.tobytes()


@pytest.fixture()
def folder(tmp_path):
    root = tmp_path / "cases"
    for i, label in enumerate(["glioma", "glioma", "notumor"]):
        (root / label).mkdir(parents=True, exist_ok=True)
        (root / label / f"patient_{i}_secret.png").write_bytes(_png(90 + 50 * i))
    return root


def _study(env, folder, **kw) -> tuple[int, list[str]]:
    """An open, blinded, side-by-side study (original vs bicubic, ×2) rated by nobody yet,
    with a second reader who rated one item. Returns its id and the scan hashes."""
    from core.db import auth
    from core.db.studies import open_study, rate_study_item, study_queue
    from core.studies.design import StudyDesign, design_study, folder_sources
    from core.studies.generate import generate_study_images

    engine = init_db(env["MEDSCAN_DATABASE_URL"])
    sources = folder_sources(folder)
    with session_scope(engine) as s:
        other = auth.create_user(s, "reader2", "a long password 1", "radiologist").id
        if "readers" in kw:
            kw["readers"] = (*kw["readers"], other)
        study = design_study(s, StudyDesign(
            name="Blind pilot", conditions=("original", "bicubic"), scale=2,
            presentation="side_by_side", reference="original", repeat_fraction=0.34, seed=9,
            **kw), sources, env["ids"]["admin"], folder=folder)
    generate_study_images(engine, study.id)
    with session_scope(engine) as s:
        open_study(s, study.id, env["ids"]["admin"])
        first = study_queue(s, study.id, other)[0]
        rate_study_item(s, reader_id=other, item_id=first.item_id, image_quality=1,
                        diagnostic_usefulness=1, comment="bicubic looks soft")
    return study.id, [x.sha256 for x in sources]


def _texts(at) -> str:
    """Every text a reader can see on the page, lower-cased."""
    parts = []
    for kind in ("title", "markdown", "caption", "info", "warning", "error", "success",
                 "subheader", "header", "text", "toast"):
        parts += [str(e.value) for e in at.get(kind)]
    for r in at.radio:
        parts += [str(r.label), *map(str, r.options)]
    parts += [str(b.proto.label) for b in at.button]
    parts += [str(s.label) for s in at.selectbox] + [str(o) for s in at.selectbox
                                                     for o in s.options]
    for img in at.get("image"):
        parts += [i.caption for i in img.proto.imgs]
    return " ".join(parts).lower()


def test_reader_page_is_blinded_and_works_by_keyboard(app_env, folder):
    from core.db.tables import StudyResponse
    from core.db.studies import reader_place

    study_id, shas = _study(app_env, folder)
    at = logged_in("reader", app_env["ids"]).run()
    at.switch_page("app_pages/reader_study.py").run()
    assert not at.exception, at.exception
    text = _texts(at)
    for word in FORBIDDEN + tuple(sha[:8] for sha in shas):
        assert word not in text, word
    assert "reference" in text and "image 1 of 8" in text       # 6 items + 2 repeats
    assert "0 of 8 rated" in at.get("progress")[0].proto.text
    prefix = next(r.key for r in at.radio if r.key.endswith("_quality"))[: -len("_quality")]
    at.button(key=f"{prefix}_k4").click().run()       # 4 answers image quality ...
    at.button(key=f"{prefix}_k2").click().run()       # ... then 2 diagnostic usefulness
    assert at.radio(key=f"{prefix}_quality").value == 4
    assert at.radio(key=f"{prefix}_usefulness").value == 2
    at.button(key=f"{prefix}_submit").click().run()   # Enter: save and next
    assert not at.exception, at.exception
    assert "1 of 8 rated" in at.get("progress")[0].proto.text
    assert any("Image 2 of 8" in m.value for m in at.markdown)
    at.button(key="study_prev").click().run()         # ←: back; the answer is still there
    assert at.radio(key=f"{prefix}_quality").value == 4
    at.button(key="study_next").click().run()
    at.button(key="study_next").click().run()         # on image 3
    for word in FORBIDDEN:
        assert word not in _texts(at), word

    engine = init_db(app_env["MEDSCAN_DATABASE_URL"])
    with session_scope(engine) as s:
        mine = s.query(StudyResponse).filter_by(reader_id=app_env["ids"]["reader"]).one()
        assert (mine.image_quality, mine.diagnostic_usefulness) == (4, 2)
        assert mine.seconds is not None and mine.seconds >= 0
        assert reader_place(s, study_id, app_env["ids"]["reader"]) == 2
    again = logged_in("reader", app_env["ids"]).run()    # a new browser session
    again.switch_page("app_pages/reader_study.py").run()
    assert any("Image 3 of 8" in m.value for m in again.markdown)   # same place


def test_closed_and_unassigned_studies_are_not_offered(app_env, folder):
    from core.db.studies import close_study

    study_id, _ = _study(app_env, folder, readers=(app_env["ids"]["admin"],))
    at = logged_in("reader", app_env["ids"]).run()
    at.switch_page("app_pages/reader_study.py").run()
    assert not at.exception
    assert any("No reader study is open for you" in i.value for i in at.info)
    with session_scope(init_db(app_env["MEDSCAN_DATABASE_URL"])) as s:
        close_study(s, study_id, app_env["ids"]["admin"])
    admin = logged_in("admin", app_env["ids"]).run()
    admin.switch_page("app_pages/reader_study.py").run()
    assert any("No reader study is open for you" in i.value for i in admin.info)


def test_admin_designs_from_a_folder_opens_closes_and_exports(app_env, folder):
    from core.db.studies import list_studies
    from core.studies.generate import generate_study_images

    at = logged_in("admin", app_env["ids"]).run()
    at.switch_page("app_pages/admin_studies.py").run()
    assert not at.exception, at.exception
    at.radio(key="study_how").set_value("cases").run()
    at.radio(key="design_source").set_value("folder").run()
    at.text_input(key="design_folder").input(str(folder))
    at.multiselect(key="design_conditions").set_value(["original", "bicubic", "srcnn"])
    at.radio(key="design_present").set_value("side_by_side")
    at.text_input(key="design_name").input("Folder pilot").run()
    at.button(key="design_create").click().run()
    assert not at.exception, at.exception
    assert "3 cases, 9 images" in at.success[0].value
    engine = init_db(app_env["MEDSCAN_DATABASE_URL"])
    with session_scope(engine) as s:
        study = list_studies(s)[0]
    assert study.state == "draft" and study.presentation == "side_by_side"
    assert at.button(key=f"study_open_{study.id}").disabled       # images not made yet
    at.multiselect(key=f"study_readers_{study.id}").set_value(["reader"])
    at.button(key=f"study_readers_save_{study.id}").click().run()
    with session_scope(engine) as s:
        assert list_studies(s)[0].readers == ("reader",)
    generate_study_images(engine, study.id)                      # what the job does
    at.run()
    at.button(key=f"study_open_{study.id}").click().run()
    assert not at.exception, at.exception
    with session_scope(engine) as s:
        assert list_studies(s)[0].state == "open"
    at.button(key=f"study_toggle_{study.id}").click().run()       # close
    with session_scope(engine) as s:
        assert list_studies(s)[0].state == "closed"
    at.button(key=f"study_toggle_{study.id}").click().run()       # reopen (audited)
    with session_scope(engine) as s:
        from core.db.audit import recent_audit

        assert list_studies(s)[0].state == "open"
        assert "study_reopen" in [a.action for a in recent_audit(s, 10)]
    at.button(key=f"study_delete_{study.id}").click().run()       # no ratings: deleted
    with session_scope(engine) as s:
        assert list_studies(s) == []
