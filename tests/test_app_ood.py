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


def test_header_mismatch_is_said_once_in_the_ood_statement(ood_env):
    """CT_small on an OOD-fitted model: the red statement names the DICOM header's modality and
    what the model was trained on; no yellow "Different modality" warning repeats it, so the
    model card's popover follows right after the class probabilities."""
    from pydicom.data import get_testdata_file

    ct = Path(get_testdata_file("CT_small.dcm"))
    at = logged_in("radiologist", ood_env["ids"]).run()
    at.file_uploader(key="scan").upload(ct.name, ct.read_bytes(), "application/dicom").run()
    assert not at.exception, at.exception
    (error,) = [e.value for e in at.error]
    assert "Out of distribution" in error
    assert "its DICOM header says modality CT (the model was trained on MR)" in error
    assert not any("Different modality" in w.value or "Different body part" in w.value
                   for w in at.warning)
    assert [k.type for k in _prediction_column(at)][:3] == ["subheader", "error", "caption"]


class _Scan:
    def __init__(self, *, modality=None, body_part=None, color=False, px=128):
        import numpy as np

        self.modality, self.body_part, self.is_color = modality, body_part, color
        self.pixels = np.zeros((px, px, 3) if color else (px, px), np.uint8)


@pytest.mark.parametrize("scan, shown, folded", [
    (_Scan(modality="CT"), [], ["Different modality"]),
    (_Scan(body_part="CHEST"), [], ["Different body part"]),
    (_Scan(modality="CT", color=True, px=40), ["Colour image", "Tiny image"],
     ["Different modality"]),
])
def test_header_warnings_fold_into_the_ood_statement(scan, shown, folded):
    """input_warnings(header=False) drops exactly what ood_verdict's header sentence names and
    keeps the other warnings; the sentence names both modality and body part when both differ."""
    from ui.analysis import _header_mismatch, input_warnings

    card = {"data": {"modality": "MR", "body_part": "brain"}}
    every = input_warnings(scan, card)
    kept = input_warnings(scan, card, header=False)
    assert all(any(w.startswith(f) for w in every) for f in folded)
    assert [w[:len(s)] for w, s in zip(kept, shown)] == shown and len(kept) == len(shown)
    sentence = _header_mismatch(scan, card)
    assert sentence and all(p in sentence for p in (
        ([f"modality {scan.modality}"] if scan.modality else [])
        + ([f"body part {scan.body_part}"] if scan.body_part else [])))
    both = _header_mismatch(_Scan(modality="CT", body_part="CHEST"), card)
    assert both == ("its DICOM header says modality CT (the model was trained on MR) and body "
                    "part CHEST (the model was trained on brain)")


def test_model_card_names_ood_test_kinds_in_words():
    from ui.analysis import ood_card_text

    flagged = {"n": 4, "count": 4, "fraction": 1.0}
    card = {"ood": {"threshold": 1.36, "percentile": 95, "evaluation": {
        "in_flagged": {"n": 10, "count": 1, "fraction": 0.1}, "out_flagged": flagged,
        "auroc": 0.99, "out_flagged_by_kind": {k: flagged for k in (
            "ct", "dicom_other", "mr_tiny", "photo_colour", "new_kind")}}}}
    text = ood_card_text(card)
    assert "(CT, other DICOM, tiny MR images, colour photos, new kind)" in text
