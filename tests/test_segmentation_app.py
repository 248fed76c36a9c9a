"""AppTest: the Analyze page's tumour segmentation section (outline toggle, size in mm² from the
DICOM pixel spacing, detection box, downloads, the "models disagree" note), shown only when a
segmentation model is active."""
from __future__ import annotations

import json

import shutil

import numpy as np
import pytest

from app_env import (CLASSES, logged_in, make_db, mr_dicom_bytes,  # noqa: F401
                     app_env, tiny_weights)


def _save_tiny_unet(root, version: str, bias: float) -> None:
    """A tiny U-Net whose output is the constant sigmoid(bias): +10 marks the whole head crop
    as tumour, -10 leaves the mask empty."""
    import keras

    from core import registry
    from core.models.unet import TINY_CONFIG, build_unet
    from core.segmentation.data import preprocessing_config

    keras.utils.set_random_seed(0)
    model = build_unet(**TINY_CONFIG)
    logits = model.get_layer("logits")
    kernel, b = logits.get_weights()
    logits.set_weights([np.zeros_like(kernel), np.full_like(b, bias)])
    registry.save_version("segmentation", model, {
        "architecture": "unet", "network": dict(TINY_CONFIG), "input_size": 32,
        "preprocessing": preprocessing_config(32),
        "metrics": {"test": {"dice": 0.5, "iou": 0.4, "n": 3, "dice_ci95": [0.3, 0.7],
                             "per_class": {"glioma": {"dice": 0.5, "iou": 0.4, "n": 3}}}},
        "headline": {"split": "test"},
        "gradcam_localization": {"model": "clf-test", "tolerance_px": 8,
                                 "baseline_energy_in_box": 0.05,
                                 "gradcam": {"not_train_near_dup": {
                                     "pointing_game": 0.75, "energy_in_box": 0.2, "n": 4}}},
        "caveats": ["Tiny test model."]}, version=version, weights_dir=root)


@pytest.fixture()
def seg_env(tmp_path, tiny_weights, monkeypatch) -> dict:
    """The tiny app models plus two segmentation versions (full mask, empty mask) in a copy of
    the weights root, so the shared root of the other app tests stays without one."""
    root = tmp_path / "weights"
    shutil.copytree(tiny_weights, root)
    _save_tiny_unet(root, "seg-full", 10.0)
    _save_tiny_unet(root, "seg-empty", -10.0)
    env = {"MEDSCAN_WEIGHTS_DIR": str(root), "MEDSCAN_DATA_DIR": str(tmp_path / "data"),
           "MEDSCAN_DATABASE_URL": f"sqlite:///{tmp_path / 'medscan.db'}"}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return {**env, "ids": make_db(env["MEDSCAN_DATABASE_URL"]), "root": root}


def _upload(ids):
    at = logged_in("radiologist", ids).run()
    at.file_uploader(key="scan").upload("MR_small", mr_dicom_bytes(),
                                        "application/octet-stream").run()
    assert not at.exception, at.exception
    return at


def _captions(at) -> list[str]:
    return [c for img in at.image for c in img.captions]


def test_no_section_without_a_segmentation_model(app_env):
    at = _upload(app_env["ids"])
    assert "Tumour segmentation" not in [h.value for h in at.subheader]
    assert not [c for c in at.get("plotly_chart") if "seg_picture" in c.proto.id]


def test_outline_size_and_disagreement(seg_env):
    from core import registry

    root = seg_env["root"]
    registry.activate("segmentation", "seg-full", weights_dir=root)
    at = _upload(seg_env["ids"])
    label = at.metric[0].value
    assert label in CLASSES
    assert "Tumour segmentation" in [h.value for h in at.subheader]
    assert [c for c in at.get("plotly_chart") if "seg_picture" in c.proto.id]
    assert any(c.value.startswith("Scan with tumour outline · gold: outline, green: "
                                  "detection box") for c in at.caption)
    # the outline is compared with the predicted class's Grad-CAM, and says so
    assert f"Grad-CAM of “{label}” (predicted) with the tumour outline" in _captions(at)
    # MR_small has pixel spacing 0.3125 mm: the size is given in mm²
    size = next(m for m in at.metric if m.label == "Outlined tumour")
    assert size.value.endswith("mm²"), size.value
    text = " ".join(m.value for m in at.markdown)
    assert "Grad-CAM vs outline" in text and f"predicted class's Grad-CAM (“{label}”)" in text
    # the popover: held-out figures of the model card and the Grad-CAM localization check
    assert "Test figures (n = 3" in text and "95% interval 0.300–0.700" in text
    assert "the Grad-CAM peak fell inside the tumour (±8 px) in 75% of them" in text
    disagree = [w.value for w in at.warning if w.value.startswith("Models disagree")]
    # a confident mask: the models disagree exactly when the classifier says notumor
    assert bool(disagree) == (label == "notumor"), (label, disagree)
    at.download_button(key="download_seg_mask")
    at.download_button(key="download_seg_overlay")
    # The outline picture's switches are the figure's own (they run in the browser): the
    # outline (a line trace) and its detection box on, the Grad-CAM box present but off.
    spec = json.loads(next(c for c in at.get("plotly_chart")
                           if "seg_picture" in c.proto.id).proto.spec)
    outline = next(t for t in spec["data"] if t.get("name") == "tumour outline")
    assert outline["visible"] is True and outline["mode"] == "lines"
    shapes = {s["name"]: s for s in spec["layout"]["shapes"]}
    assert shapes["detection box (mask)"]["visible"] is True
    assert shapes["Grad-CAM box"]["visible"] is False
    labels = [m["buttons"][0]["label"] for m in spec["layout"]["updatemenus"]]
    assert labels == ["Outline on/off", "Grad-CAM box on/off"]
    assert not [t for t in at.toggle if t.key in ("seg_outline", "seg_cam_box")]
    assert any(c.value.startswith("Scan with tumour outline") for c in at.caption)

    # An empty mask: the models disagree exactly when the classifier names a tumour class
    registry.activate("segmentation", "seg-empty", weights_dir=root)
    at.run()
    assert not at.exception
    size = next(m for m in at.metric if m.label == "Outlined tumour")
    assert size.value == "no tumour outlined"
    disagree = [w.value for w in at.warning if w.value.startswith("Models disagree")]
    assert bool(disagree) == (label != "notumor"), (label, disagree)
    if disagree:
        assert "segmentation mask is empty" in disagree[0]


@pytest.mark.parametrize("label, confidence, empty, max_p, kind", [
    ("notumor", 0.95, True, 0.1, "no tumour"),
    ("notumor", 0.95, False, 0.97, "disagree"),
    ("notumor", 0.55, True, 0.2, "uncertain"),
    ("notumor", 0.95, False, 0.6, "uncertain"),
    ("glioma", 0.9, True, 0.3, "disagree"),
    ("glioma", 0.9, False, 0.9, "agree"),
])
def test_agreement_table(label, confidence, empty, max_p, kind):
    from ui.segmentation import agreement

    assert agreement(label, confidence, empty, max_p)[0] == kind


def test_admin_training_page_starts_a_segmentation_job(app_env, monkeypatch):
    """The Training page offers Segmentation; its job runs ``python -m core train
    segmentation`` with the form's settings (the process itself is swapped for a no-op)."""
    import sys
    from pathlib import Path

    import core.jobs.service as service
    from core.jobs import runner

    original = service.start_training_job
    calls = []

    def start(session, kind, args, user_id, **kw):
        calls.append((kind, list(args)))
        return original(session, kind, args, user_id, argv=[sys.executable, "-c", "pass"])

    monkeypatch.setattr(service, "start_training_job", start)
    data = Path(__file__).parent / "data" / "brain-mri-seg"
    at = logged_in("admin", app_env["ids"]).run()
    at.switch_page("app_pages/admin_training.py").run()
    at.segmented_control(key="train_kind").set_value("segmentation").run()
    assert not at.exception
    at.text_input(key="train_data").input(str(data))
    at.number_input(key="train_seg_size").set_value(128)
    at.button(key="train_submit").click().run()
    assert not at.exception and "Started training job" in at.success[0].value
    kind, args = calls[0]
    assert kind == "segmentation" and runner.JOB_COMMANDS[kind] == ("train", "segmentation")
    assert args[:2] == ["--data", str(data)] and args[args.index("--input-size") + 1] == "128"
    assert "--max-minutes" in args
