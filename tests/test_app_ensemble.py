"""An ensemble classifier version in the app (issue 12): Analyze predicts with it and its model
card names the members, Model versions lists it as an ensemble, and the Training page's
"start from the active version's weights" fine-tunes its first member (an ensemble has no
weights file of its own)."""
from __future__ import annotations

import json
import shutil

import streamlit as st

from app_env import app_env, logged_in, mr_dicom_bytes, tiny_weights  # noqa: F401


def _with_ensemble(app_env, monkeypatch, tmp_path):
    """A private copy of the tiny registry with ``ens`` (clf-test + a copy) active."""
    from core import registry

    root = tmp_path / "weights-ens"
    shutil.copytree(app_env["MEDSCAN_WEIGHTS_DIR"], root)
    src = registry.version_dir("classifier", "clf-test", weights_dir=root)
    twin = src.parent / "clf-twin"
    shutil.copytree(src, twin)
    card = json.loads((twin / registry.CARD_FILE).read_text())
    (twin / registry.CARD_FILE).write_text(json.dumps(dict(card, version="clf-twin")))
    base = registry.load_card("classifier", "clf-test", weights_dir=root)
    registry.save_version("classifier", None, {
        "architecture": "ensemble", "classes": base["classes"],
        "input_size": base["input_size"], "preprocessing": base["preprocessing"],
        "calibration": {"temperature": 1.0}, "combine": "mean of the members' logits",
        "members": [{"version": v, "weights_sha256": registry.weights_sha256(
            "classifier", v, weights_dir=root)} for v in ("clf-test", "clf-twin")]},
        version="ens", activate=True, weights_dir=root)
    monkeypatch.setenv("MEDSCAN_WEIGHTS_DIR", str(root))
    st.cache_resource.clear()
    st.cache_data.clear()
    return root


def test_analyze_with_an_active_ensemble(app_env, monkeypatch, tmp_path):
    _with_ensemble(app_env, monkeypatch, tmp_path)
    at = logged_in("radiologist", app_env["ids"]).run()
    at.file_uploader(key="scan").upload("MR_small", mr_dicom_bytes(),
                                        "application/octet-stream").run()
    assert not at.exception, at.exception
    assert at.metric[0].label == "Predicted class"
    assert any(c.value.startswith("Grad-CAM of the predicted class") for c in at.caption)
    text = " ".join(m.value for m in at.markdown)
    assert "**Version** ens" in text
    assert "**Ensemble** of 2 models (clf-test, clf-twin)" in text


def test_models_and_training_pages_with_an_active_ensemble(app_env, monkeypatch, tmp_path):
    _with_ensemble(app_env, monkeypatch, tmp_path)
    at = logged_in("admin", app_env["ids"])
    at.switch_page("app_pages/admin_models.py").run()
    assert not at.exception, at.exception
    cells = [str(v) for df in at.dataframe for col in df.value.columns for v in df.value[col]]
    assert "ensemble of 2" in " ".join(cells), cells

    at = logged_in("admin", app_env["ids"])
    at.switch_page("app_pages/admin_training.py").run()
    assert not at.exception, at.exception
    start = at.selectbox(key="train_start")
    assert "clf-test, the active ensemble's first member" in start.format_func("active")
