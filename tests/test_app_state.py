"""AppTest: state a person can see belongs to what it is about (DESIGN.md convention 14, issue 14
items 2, 3, 7, 8): one selected scan across Analyze and Super-resolution, named above the
results; rating forms keyed to the image they rate; ratings traceable to their image; a failed
save keeps what was typed."""
from __future__ import annotations

from pathlib import Path

import pytest
import streamlit as st

import core.sr
from app_env import brain_png_bytes, logged_in, mr_dicom_bytes, app_env, tiny_weights  # noqa: F401


@pytest.fixture()
def compare_calls(monkeypatch) -> list:
    """The (H, W) of every image core.sr.compare really ran on (not cached)."""
    calls: list = []
    original = core.sr.compare

    def recording(image, **kwargs):
        calls.append(image.shape[:2])
        return original(image, **kwargs)

    monkeypatch.setattr(core.sr, "compare", recording)
    st.cache_data.clear()
    return calls


def _emri() -> bytes:
    from pydicom.data import get_testdata_file

    return Path(get_testdata_file("emri_small.dcm")).read_bytes()


def header(at) -> str:
    """The 'Scan: …' line above the results."""
    lines = [m.value for m in at.markdown if m.value.startswith("**Scan:**")]
    assert len(lines) == 1, lines
    return lines[0].replace("\\", "")


def form(at, prefix: str, suffix: str):
    """The rating form's widget ending in ``suffix`` (its key is ``prefix_<view digest>_…``)."""
    kinds = {"quality": "radio", "usefulness": "radio", "comment": "text_area",
             "submit": "button"}
    found = [w for w in getattr(at, kinds[suffix])
             if (w.key or "").startswith(prefix + "_") and w.key.endswith("_" + suffix)]
    assert len(found) == 1, [w.key for w in getattr(at, kinds[suffix])]
    return found[0]


def form_title(at, prefix: str) -> str:
    key = form(at, prefix, "quality").key.removesuffix("_quality")
    texts = [m.value for m in at.markdown if m.value.startswith("**Rate this")]
    assert texts, key
    return texts[0].replace("\\", "")


def _pngs(*sizes: int) -> list[tuple[str, bytes, str]]:
    return [(f"head{s}.png", brain_png_bytes(s), "image/png") for s in sizes]


def test_sr_upload_becomes_the_scan_named_and_stays_after_a_setting_change(app_env,
                                                                            compare_calls):
    """Item 2 as found: emri_small uploaded on Analyze, a PNG uploaded on Super-resolution."""
    at = logged_in("radiologist", app_env["ids"]).run()
    at.file_uploader(key="scan").upload("emri_small.dcm", _emri()).run()
    assert "emri_small.dcm" in header(at) and "frame" in header(at)
    at.switch_page("app_pages/super_resolution.py").run()
    assert "emri_small.dcm" in header(at)          # the selection follows to the other page
    at.file_uploader(key="scan").upload("head.png", brain_png_bytes(128), "image/png").run()
    assert not at.exception, at.exception
    assert "head.png" in header(at) and "128×128" in header(at)
    pick = at.selectbox(key="sr_pick")
    assert "head.png" in pick.format_func(pick.value)    # the list names the scan shown
    assert compare_calls[-1] == (128, 128)
    # The next change of settings keeps the new scan (it switched back before).
    at.multiselect(key="sr_methods").select("srcnn").run()
    assert "head.png" in header(at) and compare_calls[-1] == (128, 128)
    assert "head.png" in pick.format_func(at.selectbox(key="sr_pick").value)
    at.segmented_control(key="sr_scale").set_value(4).run()
    at.run()
    assert "head.png" in header(at)
    # Back on Analyze the same scan is selected.
    at.switch_page("app_pages/analyze.py").run()
    assert "head.png" in header(at)


def test_multi_file_upload_selects_the_first_file_in_upload_order(app_env, compare_calls):
    """Item 8: after uploading several files the first of them is shown, and the list keeps
    the upload order."""
    at = logged_in("radiologist", app_env["ids"]).run()
    at.file_uploader(key="scan").set_value(_pngs(96, 112, 128)).run()
    assert not at.exception
    assert "head96.png" in header(at) and "96×96" in header(at)
    pick = at.selectbox(key="analyze_pick")
    assert [o.split()[0] for o in pick.options] == ["head96.png", "head112.png", "head128.png"]
    assert pick.format_func(pick.value).startswith("head96.png")
    # A rerun does not move the selection, nor does the next batch's order change the first.
    at.run()
    assert "head96.png" in header(at)
    at.file_uploader(key="scan").set_value(_pngs(80, 64)).run()        # a second batch
    assert "head80.png" in header(at)
    assert [o.split()[0] for o in at.selectbox(key="analyze_pick").options] == [
        "head96.png", "head112.png", "head128.png", "head80.png", "head64.png"]


def test_picker_on_either_page_selects_the_scan_on_both(app_env, compare_calls):
    at = logged_in("radiologist", app_env["ids"]).run()
    at.file_uploader(key="scan").set_value(_pngs(96, 128)).run()
    pick = at.selectbox(key="analyze_pick")
    second = pick.options.index(next(o for o in pick.options if o.startswith("head128.png")))
    at.selectbox(key="analyze_pick").select_index(second).run()
    assert "head128.png" in header(at)
    at.switch_page("app_pages/super_resolution.py").run()
    assert "head128.png" in header(at) and compare_calls[-1] == (128, 128)
    at.selectbox(key="sr_pick").select_index(0).run()
    assert "head96.png" in header(at) and compare_calls[-1] == (96, 96)
    at.switch_page("app_pages/analyze.py").run()
    assert "head96.png" in header(at)
    assert at.selectbox(key="analyze_pick").format_func(
        at.selectbox(key="analyze_pick").value).startswith("head96.png")


def test_frame_belongs_to_its_scan(app_env, compare_calls):
    at = logged_in("radiologist", app_env["ids"]).run()
    at.file_uploader(key="scan").upload("emri_small.dcm", _emri()).run()
    default = at.slider(key="analyze_frame").value
    at.slider(key="analyze_frame").set_value(3).run()
    assert "frame 3 of 10" in header(at)
    at.file_uploader(key="scan").upload("MR_small", mr_dicom_bytes()).run()
    assert "MR_small" in header(at)
    assert "analyze_frame" not in [s.key for s in at.slider]   # single frame: no slider
    at.selectbox(key="analyze_pick").select_index(0).run()
    assert at.slider(key="analyze_frame").value == 3 and "frame 3 of 10" in header(at)
    at.switch_page("app_pages/super_resolution.py").run()
    assert at.slider(key="sr_frame").value == 3          # one frame per scan, on every page
    assert default != 3


def _rate(at, prefix: str, quality: int, usefulness: int, comment: str = "") -> None:
    form(at, prefix, "quality").set_value(quality)
    form(at, prefix, "usefulness").set_value(usefulness)
    if comment:
        form(at, prefix, "comment").input(comment)
    form(at, prefix, "submit").click().run()


def test_sr_rating_form_belongs_to_its_image(app_env, compare_calls):
    """Item 3 as found: after rating one SR output 2 / 2 with a comment, the form for a new
    image, another method or another α is empty and names its scan; the rated view comes back
    pre-filled."""
    at = logged_in("radiologist", app_env["ids"]).run()
    at.switch_page("app_pages/super_resolution.py").run()
    at.file_uploader(key="scan").upload("first.png", brain_png_bytes(96), "image/png").run()
    at.selectbox(key="sr_rate_method").set_value("esrgan").run()
    title = form_title(at, "sr_rating")
    assert "first.png" in title and "ESRGAN ×4, Simulate mode, α 0.80" in title
    assert "model esrgan-test" in title
    assert any(img.proto.imgs for img in at.image)      # the thumbnail of what is rated
    _rate(at, "sr_rating", 2, 2, "too smooth")
    assert at.success[0].value == "Rating saved."
    assert form(at, "sr_rating", "quality").value == 2

    at.file_uploader(key="scan").upload("second.png", brain_png_bytes(128), "image/png").run()
    assert "second.png" in header(at)
    assert "second.png" in form_title(at, "sr_rating")
    assert form(at, "sr_rating", "quality").value is None
    assert form(at, "sr_rating", "usefulness").value is None
    assert form(at, "sr_rating", "comment").value == ""
    assert form(at, "sr_rating", "submit").label == "Save rating"

    at.selectbox(key="sr_rate_method").set_value("rrdb_psnr").run()   # another method
    assert form(at, "sr_rating", "quality").value is None

    at.selectbox(key="sr_pick").select_index(0).run()                 # back to the first scan
    at.selectbox(key="sr_rate_method").set_value("esrgan").run()
    assert "first.png" in form_title(at, "sr_rating")
    assert form(at, "sr_rating", "quality").value == 2
    assert form(at, "sr_rating", "comment").value == "too smooth"
    assert form(at, "sr_rating", "submit").label == "Update rating"

    at.slider(key="sr_alpha").set_value(0.5).run()                    # another view
    assert form(at, "sr_rating", "quality").value is None
    assert "α 0.50" in form_title(at, "sr_rating")
    notes = " ".join(c.value for c in at.caption)
    assert "You rated ESRGAN ×4, Simulate mode, α 0.80" in notes and "replaces" in notes
    assert not at.exception


def test_my_ratings_and_export_name_the_image_and_view(app_env, compare_calls):
    """Item 7: My ratings shows a thumbnail, the file name and the view; the export has file
    name and view columns."""
    at = logged_in("radiologist", app_env["ids"]).run()
    at.switch_page("app_pages/super_resolution.py").run()
    at.file_uploader(key="scan").upload("head.png", brain_png_bytes(96), "image/png").run()
    at.selectbox(key="sr_rate_method").set_value("esrgan").run()
    _rate(at, "sr_rating", 4, 3)
    at.switch_page("app_pages/analyze.py").run()
    _rate(at, "analyze_rating", 5, 5, "sharp")
    assert not at.exception
    at.switch_page("app_pages/my_ratings.py").run()
    table = at.dataframe[0].value
    assert list(table["file"]) == ["head.png", "head.png"]
    assert list(table["view"]) == ["Original scan, model clf-test",   # words, not internal keys
                                   "ESRGAN ×4, Simulate mode, α 0.80, model esrgan-test"]
    assert all(str(v).startswith("data:image/png;base64,") for v in table["scan"])

    admin = logged_in("admin", app_env["ids"]).run()
    admin.switch_page("app_pages/admin_export.py").run()
    assert not admin.exception
    rows = admin.dataframe[-1].value
    assert list(rows["file_name"]) == ["head.png", "head.png"]
    assert set(rows["view"]) == set(table["view"])
    assert list(rows["scale"].fillna(0)) == [4, 0] and list(rows["mode"].fillna("")) == [
        "simulate", ""]


def test_failed_save_shows_the_error_and_keeps_the_values(app_env, compare_calls,
                                                          monkeypatch):
    """Item D: a database error on save (core.db.errors.DBError, e.g. StorageError on a failed
    commit) is shown, and the reader's values stay in the form for another try."""
    import core.db.ratings
    from core.db.errors import DBError

    def broken(*args, **kwargs):
        raise DBError("The rating could not be stored: the database is read-only.")

    at = logged_in("radiologist", app_env["ids"]).run()
    at.file_uploader(key="scan").upload("head.png", brain_png_bytes(96), "image/png").run()
    original = core.db.ratings.save_rating
    monkeypatch.setattr(core.db.ratings, "save_rating", broken)
    _rate(at, "analyze_rating", 3, 4, "keep me")
    assert not at.exception
    assert [e.value for e in at.error] == [
        "The rating could not be stored: the database is read-only."]
    assert not at.success
    assert form(at, "analyze_rating", "quality").value == 3
    assert form(at, "analyze_rating", "usefulness").value == 4
    assert form(at, "analyze_rating", "comment").value == "keep me"
    # The storage works again: the same values save without typing them again.
    monkeypatch.setattr(core.db.ratings, "save_rating", original)
    form(at, "analyze_rating", "submit").click().run()
    assert at.success[0].value == "Rating saved."


def test_recorded_scan_carries_its_name_and_a_small_thumbnail(app_env, compare_calls):
    import cv2
    import numpy as np

    from core.db import init_db, session_scope
    from core.db.scans import get_scan
    from core.imaging import load_scan

    at = logged_in("radiologist", app_env["ids"]).run()
    at.switch_page("app_pages/super_resolution.py").run()
    at.file_uploader(key="scan").upload("big.png", brain_png_bytes(300), "image/png").run()
    assert not at.exception
    with session_scope(init_db(app_env["MEDSCAN_DATABASE_URL"])) as s:
        row = get_scan(s, load_scan(brain_png_bytes(300)).sha256)
    assert row.display_name == "big.png"
    thumb = cv2.imdecode(np.frombuffer(row.thumbnail, np.uint8), cv2.IMREAD_UNCHANGED)
    assert thumb.shape[:2] == (128, 128)


def test_two_tabs_keep_their_own_selection(app_env, compare_calls):
    """Two browser tabs are two sessions: a new upload in one does not change what the other
    shows."""
    tab_a = logged_in("radiologist", app_env["ids"]).run()
    tab_b = logged_in("radiologist", app_env["ids"]).run()
    tab_a.file_uploader(key="scan").upload("a.png", brain_png_bytes(96), "image/png").run()
    tab_b.file_uploader(key="scan").upload("b.png", brain_png_bytes(128), "image/png").run()
    tab_a.run()
    assert "a.png" in header(tab_a) and "b.png" in header(tab_b)


def _study_form_script():
    from types import SimpleNamespace

    import streamlit as st

    from ui.rating import study_rating_form_ui

    item = SimpleNamespace(item_id=1, label="Image 1 of 6", image_quality=None,
                           diagnostic_usefulness=None, comment=None, rated=False)
    _, narrow = st.columns([3, 2])
    with narrow:
        study_rating_form_ui(reader_id=1, item=item, key="study_item_1")


def test_rating_scales_never_wrap_into_a_grid(app_env, compare_calls):
    """Each 1–5 scale is one vertical list (1 at the top, every step spelled out): side by side
    in the full-width SR form, one under the other in the reader study's narrow column."""
    from streamlit.testing.v1 import AppTest

    at = logged_in("radiologist", app_env["ids"]).run()
    at.switch_page("app_pages/super_resolution.py").run()
    at.file_uploader(key="scan").upload("head.png", brain_png_bytes(96), "image/png").run()
    for suffix in ("quality", "usefulness"):
        radio = form(at, "sr_rating", suffix)
        assert radio.proto.horizontal is False
        assert radio.options == ["1 · extremely bad", "2 · poor", "3 · acceptable", "4 · good",
                                 "5 · excellent"]

    study = AppTest.from_function(_study_form_script).run()
    assert not study.exception
    radios = [study.radio(key=f"study_item_1_{s}") for s in ("quality", "usefulness")]
    assert [r.proto.horizontal for r in radios] == [False, False]
    assert [r.label for r in radios] == ["Image quality", "Diagnostic usefulness"]
