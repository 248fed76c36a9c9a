"""AppTest: "Open from PACS" on Analyze against the real test Orthanc (search, pick, retrieve,
prediction; send the Grad-CAM back, audited), and the notice when no PACS is configured."""
from __future__ import annotations

import json

from app_env import CLASSES, app_env, logged_in, tiny_weights  # noqa: F401
from pacs_fixtures import STUDY_A, orthanc, pacs_env  # noqa: F401


def test_no_pacs_configured_shows_a_notice(app_env, monkeypatch):
    monkeypatch.delenv("MEDSCAN_DICOMWEB_URL", raising=False)
    at = logged_in("radiologist", app_env["ids"]).run()
    assert not at.exception, at.exception
    assert not at.expander or all(e.label != "Open from PACS" for e in at.expander)
    assert any("Open from PACS is off" in c.value for c in at.caption)


def test_open_from_pacs_predicts_and_sends_back(app_env, pacs_env):
    fx = pacs_env.fixture
    at = logged_in("radiologist", app_env["ids"]).run()
    assert not at.exception, at.exception
    assert any(e.label == "Open from PACS" for e in at.expander)
    at.text_input(key="analyze_pacs_accession").input(STUDY_A["AccessionNumber"])
    at.button(key="analyze_pacs_search_button").click().run()
    assert not at.exception, at.exception
    # the form cleared what was typed; the list shows masked identifiers only
    assert at.text_input(key="analyze_pacs_accession").value == ""
    study = at.selectbox(key="analyze_pacs_study")
    assert study.options == [next(iter(study.options))] and "****0315" in study.options[0]
    assert STUDY_A["AccessionNumber"] not in json.dumps(at.session_state["_pacs_studies"])
    assert at.selectbox(key="analyze_pacs_series").value == fx.series_single
    at.button(key="analyze_pacs_retrieve").click().run()
    assert not at.exception, at.exception
    assert any("Loaded 2 instance(s) from the PACS" in s.value for s in at.success)
    assert at.metric[0].label == "Predicted class" and at.metric[0].value in CLASSES
    header = " ".join(m.value for m in at.markdown)
    assert "PACS MR s1" in header
    # send the Grad-CAM back: stored in the study, listed with its UIDs, audited
    at.button(key="pacs_send").click().run()
    assert not at.exception, at.exception
    assert any("Stored 1 object(s) in the PACS" in s.value for s in at.success)
    sent = at.session_state["pacs_sent"]
    (objs,) = sent.values()
    assert objs[0]["kind"] == "secondary_capture" and objs[0]["study_uid"] == fx.study_a
    from core.db import get_engine, session_scope
    from core.db.audit import recent_audit

    with session_scope(get_engine(app_env["MEDSCAN_DATABASE_URL"])) as s:
        rows = recent_audit(s, action="pacs_send")
    assert len(rows) == 1 and rows[0].username == "reader"
    assert rows[0].detail["new_sop"] == objs[0]["sop_uid"]


def test_super_resolution_has_the_pacs_source(app_env, pacs_env):
    at = logged_in("radiologist", app_env["ids"])
    at.switch_page("app_pages/super_resolution.py").run()
    assert not at.exception, at.exception
    assert at.title[0].value == "Super-resolution"
    assert any(e.label == "Open from PACS" for e in at.expander)
    at.selectbox(key="sr_pacs_modality").set_value("CT")
    at.button(key="sr_pacs_search_button").click().run()
    assert not at.exception, at.exception
    study = at.selectbox(key="sr_pacs_study")
    assert len(study.options) == 1 and "CT" in study.options[0]
    at.button(key="sr_pacs_retrieve").click().run()
    assert not at.exception, at.exception
    assert any("Loaded 1 instance(s) from the PACS" in s.value for s in at.success)
