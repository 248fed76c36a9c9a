"""AppTest: the Analyze page's out-of-distribution statement with a real tiny classifier whose
OOD section is fitted on the fixture slices (tests/data/brain-mri), and "not checked" for a
version without one."""
from __future__ import annotations

from pathlib import Path

import pytest
import streamlit as st

from app_env import (CLASSES, build_tiny_weights, logged_in, make_db,  # noqa: F401
                     app_env, tiny_weights)

DATA = Path(__file__).resolve().parent / "data"
OOD_PHOTO = DATA / "ood" / "camera_small.png"            # scikit-image's camera, 128×128
BRAIN = DATA / "brain-mri" / "glioma" / "Tr-glTr_0000.jpg"


@pytest.fixture(scope="module")
def ood_weights(tmp_path_factory) -> Path:
    return build_tiny_weights(tmp_path_factory.mktemp("ood_weights"), ood=True)


@pytest.fixture()
def ood_env(tmp_path, ood_weights, monkeypatch) -> dict:
    env = {"MEDSCAN_WEIGHTS_DIR": str(ood_weights), "MEDSCAN_DATA_DIR": str(tmp_path),
           "MEDSCAN_DATABASE_URL": f"sqlite:///{tmp_path / 'medscan.db'}"}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    st.cache_data.clear()
    return {**env, "ids": make_db(env["MEDSCAN_DATABASE_URL"]), "weights": ood_weights}


def _predict(env, path: Path):
    from core.classifier.inference import Classifier
    from core.imaging import load_scan

    clf = Classifier.load(weights_dir=env["weights"])
    return clf.predict(load_scan(path).pixels)


def _analyze(env, *files: Path):
    at = logged_in("radiologist", env["ids"]).run()
    at.file_uploader(key="scan").set_value(
        [(f.name, f.read_bytes(), "image/png") for f in files]).run()
    assert not at.exception, at.exception
    return at


def _prediction_column(at) -> list:
    """The Prediction column's elements in page order (subheader first)."""
    col = next(c for c in at.columns
               if any(getattr(e, "value", None) == "Prediction" for e in c.subheader))
    out = []

    def walk(node):
        for child in getattr(node, "children", {}).values():
            if getattr(child, "type", None) in ("error", "metric", "caption", "warning", "info",
                                                "subheader", "markdown"):
                out.append(child)
            walk(child)

    walk(col)
    return out


def test_out_of_distribution_leads_and_class_is_secondary(ood_env):
    pred = _predict(ood_env, OOD_PHOTO)
    assert pred.out_of_distribution is True            # precondition: the detector flags it
    at = _analyze(ood_env, OOD_PHOTO)
    elements = _prediction_column(at)
    kinds = [e.type for e in elements]
    assert kinds[:3] == ["subheader", "error", "caption"], kinds   # the statement leads
    error = elements[1].value
    assert "Out of distribution" in error
    assert "does not look like the brain MRI the model was trained on" in error
    assert f"score {pred.ood_score:.2f}, threshold {pred.ood_threshold:.2f}" in error
    assert "far from every class" in error                           # the reason
    # The class is a small grey caption, not the big metric.
    assert not at.metric
    assert f"not meaningful for this scan: {pred.label}" in elements[2].value
    # Out of distribution is not called low confidence: a different statement.
    assert not any("Low confidence" in w.value for w in at.warning)
    # The model card says what the check is.
    text = " ".join(m.value for m in at.markdown)
    assert "Out-of-distribution check" in text and "threshold" in text


def test_in_distribution_scan_keeps_the_class_headline(ood_env):
    pred = _predict(ood_env, BRAIN)
    assert pred.out_of_distribution is False
    at = _analyze(ood_env, BRAIN)
    assert not at.error
    assert at.metric[0].label == "Predicted class" and at.metric[0].value == pred.label
    captions = " ".join(c.value for c in at.caption)
    assert "Out-of-distribution check passed" in captions
    # The untrained tiny model is undecided: low confidence, said as such (not OOD).
    low = [w.value for w in at.warning if "Low confidence" in w.value]
    assert low and "looks like the training data" in low[0]


def test_batch_table_has_an_ood_column(ood_env):
    at = _analyze(ood_env, OOD_PHOTO, BRAIN)
    at.button(key="classify_all").click().run()
    assert not at.exception
    table = at.dataframe[-1].value
    assert dict(zip(table["scan"], table["out of distribution"])) == {
        OOD_PHOTO.name: "yes", BRAIN.name: "no"}
    assert table["OOD score"].notna().all()


def test_version_without_ood_section_says_not_checked(app_env):
    st.cache_data.clear()
    at = logged_in("radiologist", app_env["ids"]).run()
    at.file_uploader(key="scan").upload(BRAIN.name, BRAIN.read_bytes(), "image/jpeg").run()
    assert not at.exception
    assert at.metric[0].label == "Predicted class"
    info = " ".join(i.value for i in at.info)
    assert "Out-of-distribution check: not checked" in info
    assert "no out-of-distribution statistics" in info
    assert not any("Out of distribution." in e.value for e in at.error)
    text = " ".join(m.value for m in at.markdown)
    assert "scans are not checked" in text
