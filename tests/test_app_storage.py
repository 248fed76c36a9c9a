"""AppTest: a read-only (or full) database never reaches Streamlit's error page (issue 15 item
6). The Analyze page still shows its result and says in words that it was not stored."""
from __future__ import annotations

from app_env import app_env, logged_in, mr_dicom_bytes, tiny_weights  # noqa: F401


def test_analyze_on_a_read_only_database_warns_and_shows_the_result(app_env, monkeypatch):
    at = logged_in("radiologist", app_env["ids"]).run()
    path = app_env["MEDSCAN_DATABASE_URL"].removeprefix("sqlite:///")
    monkeypatch.setenv("MEDSCAN_DATABASE_URL", f"sqlite:///file:{path}?mode=ro&uri=true")
    at.file_uploader(key="scan").upload("MR_small", mr_dicom_bytes()).run()
    assert not at.exception
    warnings = [w.value for w in at.warning]
    assert any(w.startswith("This scan's record was not stored. The database could not save "
                            "this: the database is read-only. Nothing was saved") for w in warnings)
    assert at.metric                                  # the prediction itself is still shown


def test_scratch_copy_is_deidentified_png_only(app_env):
    """The upload's scratch copy (kept for a reload) is a PNG of the pixels, never the DICOM."""
    from pathlib import Path

    at = logged_in("radiologist", app_env["ids"]).run()
    at.file_uploader(key="scan").upload("Doe_Jane_MRN-778812.dcm", mr_dicom_bytes()).run()
    assert not at.exception
    folder = Path(app_env["MEDSCAN_DATA_DIR"], "scratch", str(app_env["ids"]["reader"]))
    pngs, metas = list(folder.glob("*.png")), list(folder.glob("*.json"))
    assert len(pngs) == 1 and len(metas) == 1
    data = pngs[0].read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and b"DICM" not in data
    import json

    kept_name = next(iter(at.session_state["uploads"].values()))[0]   # masked by ui.scan_ui
    assert json.loads(metas[0].read_text())["name"] == kept_name
    assert "778812" not in metas[0].read_text()
    assert oct(folder.stat().st_mode & 0o777) == "0o700"
    # a new browser session without the login's cookie (a fresh login) starts empty ...
    fresh = logged_in("radiologist", app_env["ids"]).run()
    assert "uploads" not in fresh.session_state or not fresh.session_state["uploads"]
    # ... one that took the login session over from its cookie (a reload) lists it again
    from ui.auth import RESUMED_KEY

    again = logged_in("radiologist", app_env["ids"])
    again.session_state[RESUMED_KEY] = True
    again.run()
    assert len(again.session_state["uploads"]) == 1
    # Log out forgets it
    again.sidebar.button(key="logout_button").click().run()
    assert not folder.exists()
