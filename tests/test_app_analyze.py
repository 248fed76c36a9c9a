"""AppTest: the Analyze page with a real (tiny) classifier and a real DICOM upload."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import streamlit as st

from app_env import (CLASSES, logged_in, mr_dicom_bytes,  # noqa: F401
                     app_env, tiny_weights)


@pytest.fixture()
def explain_calls(monkeypatch) -> list:
    """Counts every real call of Classifier.explain_all, the Analyze view's one forward pass
    for every class's map by every method (AppTest runs the script in this process)."""
    from core.classifier.inference import Classifier

    calls: list = []
    original = Classifier.explain_all

    def counting(self, *args, **kwargs):
        calls.append("all")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Classifier, "explain_all", counting)
    st.cache_data.clear()
    return calls


def _window(at, kind: str):
    """The shown scan's window widget ("preset", "centre" or "width"); its key includes the
    scan's hash (ui.scan_ui.window_ui), so there is one set per scan."""
    group = at.selectbox if kind == "preset" else at.number_input
    return next(w for w in group
                if (w.key or "").startswith("analyze_window_") and w.key.endswith("_" + kind))


def _analyze_with_dicom(app_env):
    at = logged_in("radiologist", app_env["ids"]).run()
    assert at.title[0].value == "Analyze"
    # A DICOM file without an extension, as PACS exports often are.
    at.file_uploader(key="scan").upload("MR_small", mr_dicom_bytes(),
                                        "application/octet-stream").run()
    assert not at.exception, at.exception
    return at


def test_dicom_prediction_gradcam_and_no_second_inference(app_env, explain_calls, monkeypatch):
    import core.imaging
    from ui.upload_results import read_upload

    decoded: list = []
    original_load = core.imaging.load_uploads
    monkeypatch.setattr(core.imaging, "load_uploads",
                        lambda name, data: decoded.append(name) or original_load(name, data))
    read_upload.clear()
    at = _analyze_with_dicom(app_env)
    assert not at.error
    metric = at.metric[0]
    assert metric.label == "Predicted class" and metric.value in CLASSES
    assert "calibrated probability" in metric.delta
    charts = at.get("plotly_chart")
    assert charts, "probability chart missing"
    captions = [c for img in at.image for c in img.captions]
    assert any(c.value.startswith("Grad-CAM of the predicted class, “" + metric.value)
               for c in at.caption)
    assert any("MR_small" in c for c in captions)
    assert len(explain_calls) == 1
    # The model card popover: test metrics with the ECE interval and how far to trust a
    # percentage, in words and as a reliability diagram.
    text = " ".join(m.value for m in at.markdown)
    assert "Test metrics (n = 8)" in text and "95% interval 0.100–0.350" in text
    assert "When it said 90% or more, it was right in 3 of 4 images (75%)." in text
    assert any("model_card_reliability" in c.proto.id for c in charts)
    # The tiny untrained model is unsure: the clinician is warned.
    assert any("Low confidence" in w.value for w in at.warning)
    # The Grad-CAM picture's class / method menu, opacity slider and box switch are the
    # figure's own (they run in the browser): one heat-map trace per class and method, the
    # predicted class's Grad-CAM shown first; 21 opacity steps restyling every heat map; each
    # map's box present, shown with its map, and off (opacity 0) until switched on.
    spec = json.loads(next(c for c in charts if "cam_picture" in c.proto.id).proto.spec)
    n = 2 * len(CLASSES)
    heats = spec["data"][1:1 + n]
    assert [h["type"] for h in heats] == ["image"] * n
    first = CLASSES.index(metric.value)                  # Grad-CAM entries come first
    assert [h.get("visible", True) for h in heats] == [i == first for i in range(n)]
    assert heats[first]["name"] == f"Overlay: {metric.value} (predicted) · Grad-CAM"
    steps = spec["layout"]["sliders"][0]["steps"]
    heat_idx = list(range(1, 1 + n))
    assert [s["args"] for s in steps[::10]] == [[{"opacity": v}, heat_idx]
                                                for v in (0.0, 0.5, 1.0)]
    assert heats[first]["opacity"] == 0.4 and spec["layout"]["sliders"][0]["active"] == 8
    switch, picker = spec["layout"]["updatemenus"]
    boxes = list(range(1 + n, len(spec["data"])))
    assert switch["active"] == -1 and switch["buttons"][0]["args"] == [{"opacity": 1.0}, boxes]
    assert all(spec["data"][i]["opacity"] == 0 for i in boxes)
    assert picker["type"] == "dropdown" and picker["active"] == first
    labels = [b["label"] for b in picker["buttons"]]
    assert labels[first] == f"{metric.value} (predicted) · Grad-CAM"
    assert sorted(labels) == sorted([f"{c}{' (predicted)' if c == metric.value else ''} · {m}"
                                     for m in ("Grad-CAM", "Grad-CAM++") for c in CLASSES])
    # choosing another entry shows that map only (and its box, when it has one)
    other = picker["buttons"][n - 1]["args"]
    assert other[0]["visible"][:n] == [i == n - 1 for i in range(n)] and other[1][:n] == heat_idx
    # no Streamlit widget for any of them: they cost no rerun
    assert not [s for s in at.slider if s.key == "cam_opacity"]
    assert not [w for w in at.selectbox if w.key == "cam_class"]
    assert not [w for w in at.get("button_group") if w.key == "cam_method"]
    # Changing the window, plain reruns: the model is not called again.
    _window(at, "preset").set_value("Min–max").run()
    at.run()
    assert not at.exception
    assert len(explain_calls) == 1, explain_calls
    assert decoded == ["MR_small"]             # decoded once, not on every rerun
    # A second browser session with the same upload hits the cache too.
    other = _analyze_with_dicom(app_env)
    assert other.metric[0].value == metric.value
    assert len(explain_calls) == 1
    dl = at.download_button(key="download_overlay")  # the predicted class's overlay
    assert f"Grad-CAM of the predicted class, “{metric.value}”" in dl.help
    assert "40% opacity" in dl.help

    # The scan and the prediction were stored.
    from core.db import init_db, session_scope
    from core.db.scans import scan_predictions

    from core.imaging import load_scan
    sha = load_scan(mr_dicom_bytes()).sha256
    with session_scope(init_db(app_env["MEDSCAN_DATABASE_URL"])) as s:
        preds = scan_predictions(s, sha)
    # Once per browser session that viewed it (two sessions here), not once per rerun.
    assert [p.label for p in preds] == [metric.value] * 2


def _rating(widgets, suffix: str):
    """The Analyze rating form's widget: its key is ``analyze_rating_<view digest>_<suffix>``
    (the form belongs to its image)."""
    (w,) = [w for w in widgets if (w.key or "").startswith("analyze_rating_")
            and w.key.endswith("_" + suffix)]
    return w


def test_rating_lands_in_database_and_can_be_changed(app_env, explain_calls):
    at = _analyze_with_dicom(app_env)
    _rating(at.radio, "quality").set_value(4)
    _rating(at.radio, "usefulness").set_value(2)
    _rating(at.text_area, "comment").input("motion artefact")
    _rating(at.button, "submit").click().run()
    assert not at.exception
    assert at.success[0].value == "Rating saved."

    from core.db import init_db, session_scope
    from core.db.ratings import my_ratings

    engine = init_db(app_env["MEDSCAN_DATABASE_URL"])
    reader = app_env["ids"]["reader"]
    with session_scope(engine) as s:
        rows = my_ratings(s, reader)
    assert [(r.method, r.image_quality, r.diagnostic_usefulness, r.comment) for r in rows] == \
        [("original", 4, 2, "motion artefact")]
    assert rows[0].model_version == "clf-test"
    # Change it: same row, new values; the form is pre-filled with the reader's own rating.
    at.run()
    assert _rating(at.radio, "quality").value == 4
    _rating(at.radio, "quality").set_value(5)
    _rating(at.button, "submit").click().run()
    with session_scope(engine) as s:
        rows = my_ratings(s, reader)
    assert [(r.image_quality, r.diagnostic_usefulness) for r in rows] == [(5, 2)]
    # Another reader sees an empty form and nothing of the first reader's rating.
    admin = logged_in("admin", app_env["ids"]).run()
    admin.file_uploader(key="scan").upload("MR_small", mr_dicom_bytes()).run()
    assert _rating(admin.radio, "quality").value is None
    admin.switch_page("app_pages/my_ratings.py").run()
    assert not admin.dataframe and admin.info  # "You have not rated any images yet"
    # My ratings lists the reader's own.
    at.switch_page("app_pages/my_ratings.py").run()
    table = at.dataframe[0].value
    assert list(table["view"]) == ["Original scan, model clf-test"]
    assert table["image quality"][0].startswith("5")


def test_warnings_and_unreadable_files(app_env, explain_calls):
    at = logged_in("radiologist", app_env["ids"]).run()
    colour = np.zeros((40, 48, 3), np.uint8)
    colour[..., 2] = 200
    ok, png = cv2.imencode(".png", colour)
    at.file_uploader(key="scan").set_value([
        ("photo.png", png.tobytes(), "image/png"),
        ("broken.dcm", b"DICM" + b"\0" * 50, "application/dicom")]).run()
    assert not at.exception
    assert any("broken.dcm" in e.value for e in at.error)   # a readable message, no traceback
    warnings = " ".join(w.value for w in at.warning)
    assert "Colour image" in warnings and "Tiny image" in warnings
    # Window controls are greyed out for non-DICOM files.
    assert _window(at, "preset").disabled


def _testdata(name: str) -> bytes:
    from pathlib import Path

    from pydicom.data import get_testdata_file

    return Path(get_testdata_file(name)).read_bytes()


def test_zip_series_window_presets_and_frames(app_env, explain_calls):
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("series/IM0001", _testdata("CT_small.dcm"))
        z.writestr("series/IM0002", _testdata("MR_small.dcm"))
    at = logged_in("radiologist", app_env["ids"]).run()
    at.file_uploader(key="scan").upload("series.zip", buf.getvalue(), "application/zip").run()
    assert not at.exception
    pick = at.selectbox(key="analyze_pick")
    assert len(pick.options) == 2 and "IM0001" in pick.options[0]
    # CT: window presets in HU and a manual window; the other modality is flagged, once: in the
    # out-of-distribution statement (with what the model was trained on), not again below it.
    assert any("modality CT (the model was trained on MR)" in e.value for e in at.error)
    assert not any("Different modality" in w.value for w in at.warning)
    _window(at, "preset").set_value("CT bone (C 600 / W 2800)").run()
    assert "preset bone" in at.image[0].captions[0]
    _window(at, "preset").set_value("Manual").run()
    assert not _window(at, "centre").disabled
    _window(at, "centre").set_value(40.0)
    _window(at, "width").set_value(400.0).run()
    assert not at.exception and "manual" in at.image[0].captions[0]
    calls = len(explain_calls)
    assert calls == 1   # windowing never re-runs the model
    at.button(key="classify_all").click().run()      # batch table over both zip members
    batch = at.dataframe[-1].value
    assert list(batch["scan"]) == ["series/IM0001", "series/IM0002"]
    assert len(explain_calls) == 2
    # A multi-frame MR: a frame slider; each frame is its own (cached) prediction.
    at.file_uploader(key="scan").set_value(("emri_small", _testdata("emri_small.dcm"),
                                            "application/octet-stream")).run()
    # The new upload is the selected scan (listed after the zip's members, in upload order).
    pick = at.selectbox(key="analyze_pick")
    assert "emri_small" in pick.format_func(pick.value) and "emri_small" in pick.options[-1]
    frame = at.slider(key="analyze_frame")
    assert frame.max == 10
    frame.set_value(5).run()
    assert not at.exception
    # The model card's caveats and credits are one click away.
    text = " ".join(m.value for m in at.markdown)
    assert "Caveats" in text and "Tiny test model" in text and "Credits" in text
    assert "Test metrics (n = 8)" in text      # held-out test metrics preferred over validation


def test_without_any_model_the_pages_still_work(app_env, tmp_path, monkeypatch):
    monkeypatch.setenv("MEDSCAN_WEIGHTS_DIR", str(tmp_path / "no-weights"))
    st.cache_data.clear()
    at = logged_in("radiologist", app_env["ids"]).run()
    at.file_uploader(key="scan").upload("MR_small", mr_dicom_bytes()).run()
    assert not at.exception
    assert any("No classifier model is active" in w.value for w in at.warning)
    assert at.image  # the scan is still shown
    at.switch_page("app_pages/super_resolution.py").run()
    assert not at.exception
    assert list(at.dataframe[0].value["method"]) == ["Bicubic"]
