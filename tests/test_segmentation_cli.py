"""The segmentation commands end to end on the 9-pair fixture (tests/data/brain-mri-seg): a
two-epoch training run of a tiny U-Net, ``evaluate segmentation --json`` and ``segment`` on a
PNG and on a DICOM with pixel spacing (mm²)."""
from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from app_env import tiny_weights  # noqa: F401  (pytest fixture: the app tests' tiny models)

FIXTURE = Path(__file__).parent / "data" / "brain-mri-seg"


def _run(capsys, *argv) -> tuple[int, dict]:
    from core.cli import main

    capsys.readouterr()
    code = main(list(argv))
    out = capsys.readouterr().out.strip().splitlines()
    return code, json.loads(out[-1]) if out else {}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Weights root with one tiny trained segmentation version, active."""
    root = tmp_path_factory.mktemp("segweights")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MEDSCAN_WEIGHTS_DIR", str(root))
        from core.cli import main

        code = main(["train", "segmentation", "--data", str(FIXTURE), "--input-size", "32",
                     "--base-filters", "4", "--depth", "2", "--epochs", "2", "--batch-size", "2",
                     "--val-fraction", "0.34", "--test-fraction", "0.34", "--margin", "0",
                     "--run-dir", str(root.parent / "run"), "--version", "seg-tiny",
                     "--activate", "--quiet"])
        assert code == 0
    return root


@pytest.fixture()
def seg_env(trained, monkeypatch):
    monkeypatch.setenv("MEDSCAN_WEIGHTS_DIR", str(trained))
    return trained


def test_training_publishes_a_card(seg_env, tmp_path):
    from core import registry

    assert registry.active_version("segmentation") == "seg-tiny"
    card = registry.load_card("segmentation", "seg-tiny")
    assert card["architecture"] == "unet" and card["network"]["depth"] == 2
    assert card["preprocessing"]["size"] == [32, 32] and card["preprocessing"]["head_crop"]
    assert card["training"]["epochs_run"] == 2
    assert card["data"]["fingerprint"].startswith("sha256:")
    assert not Path(card["data"]["path"]).is_absolute()        # never this machine's path
    split = card["data"]["split"]
    assert split["margin"] == 0 and "figshare_index" in split["method"]
    assert card["data"]["test_counts"] == {"glioma": 1, "meningioma": 1, "pituitary": 1}
    tuning = card["training"]["tuning"]                          # chosen on validation only
    assert tuning["n"] == 3 and len(tuning["grid"]) == 20         # 2 TTA × 2 clean-up × 5
    assert card["preprocessing"]["tta"] == tuning["tta"]
    assert card["preprocessing"]["threshold"] == tuning["threshold"]
    assert card["preprocessing"]["postprocess"] == tuning["postprocess"]
    test = card["metrics"]["test"]
    assert set(test["per_class"]) == {"glioma", "meningioma", "pituitary"}
    assert test["n"] == 3 and 0.0 <= test["dice"] <= 1.0
    model, _ = registry.load_model("segmentation")
    assert model.output_shape == (None, 32, 32, 1)


def test_resume_continues_from_checkpoint(seg_env, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(seg_env.parent / "run", run)
    ckpt = run / "ckpt"       # the layout core.jobs.service.checkpoint_of resumes from
    assert (ckpt / "last.keras").is_file() and (ckpt / "best.weights.h5").is_file()
    assert json.loads((ckpt / "state.json").read_text())["epoch"] == 2
    code, out = _run(capsys, "train", "segmentation", "--data", str(FIXTURE), "--input-size",
                     "32", "--base-filters", "4", "--depth", "2", "--epochs", "3",
                     "--batch-size", "2", "--val-fraction", "0.34", "--test-fraction", "0.34",
                     "--margin", "0", "--run-dir", str(run), "--resume", "--no-publish")
    assert code == 0 and out["version"] is None
    state = json.loads((ckpt / "state.json").read_text())
    assert state["epoch"] == 3 and [h["epoch"] for h in state["history"]] == [1, 2, 3]


def test_evaluate_json_keys(seg_env, capsys):
    code, report = _run(capsys, "evaluate", "segmentation", "--data", str(FIXTURE), "--json")
    assert code == 0
    assert {"dice", "iou", "per_class", "n", "dice_ci95"} <= set(report)
    assert report["n"] == 9 and report["model"] == "seg-tiny"
    assert set(report["per_class"]) == {"glioma", "meningioma", "pituitary"}
    for m in report["per_class"].values():
        assert set(m) == {"dice", "iou", "n"} and m["n"] == 3
    lo, hi = report["dice_ci95"]
    assert lo <= report["dice"] <= hi


def test_evaluate_compares_at_the_masks_own_size(seg_env, tmp_path, capsys):
    """Pairs at 100×100 (not the training size): Dice is measured on the 100² masks."""
    for kind in ("images", "masks"):
        (tmp_path / kind / "glioma").mkdir(parents=True)
    src = sorted((FIXTURE / "images" / "glioma").glob("*.png"))[0]
    img = cv2.resize(cv2.imread(str(src), cv2.IMREAD_GRAYSCALE), (100, 100))
    mask = cv2.resize(cv2.imread(str(FIXTURE / "masks" / "glioma" / src.name),
                                 cv2.IMREAD_GRAYSCALE), (100, 100),
                      interpolation=cv2.INTER_NEAREST)
    cv2.imwrite(str(tmp_path / "images" / "glioma" / "a1.png"), img)
    cv2.imwrite(str(tmp_path / "masks" / "glioma" / "a1.png"), mask)
    code, report = _run(capsys, "evaluate", "segmentation", "--data", str(tmp_path), "--json",
                        "--per-image")
    assert code == 0 and report["n"] == 1
    assert report["images"][0]["true_pixels"] == int((mask > 127).sum())


def test_segment_png(seg_env, tmp_path, capsys):
    src = sorted((FIXTURE / "images" / "pituitary").glob("*.png"))[0]
    out, overlay = tmp_path / "m.png", tmp_path / "o.png"
    code, info = _run(capsys, "segment", str(src), "--out", str(out), "--overlay", str(overlay),
                      "--json")
    assert code == 0
    assert {"file", "tumour_pixels", "area_mm2", "bbox", "max_probability"} <= set(info)
    assert info["area_mm2"] is None                            # a PNG has no pixel spacing
    mask = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
    assert mask.shape == (256, 256) and set(np.unique(mask)) <= {0, 255}
    assert info["tumour_pixels"] == int((mask == 255).sum())
    assert (info["bbox"] is None) == (info["tumour_pixels"] == 0)
    assert cv2.imread(str(overlay)).shape == (256, 256, 3)
    assert 0.0 <= info["max_probability"] <= 1.0


def _dicom_with_spacing(path: Path, spacing=(0.5, 0.8)) -> None:
    import pydicom
    from pydicom.data import get_testdata_file

    ds = pydicom.dcmread(get_testdata_file("MR_small.dcm"))
    ds.PixelSpacing = [str(spacing[0]), str(spacing[1])]
    buf = io.BytesIO()
    ds.save_as(buf)
    path.write_bytes(buf.getvalue())


def test_segment_dicom_area_in_mm2(seg_env, tmp_path, capsys, monkeypatch):
    """DICOM with pixel spacing 0.5 × 0.8 mm: area = pixels × 0.4 mm². The mask is forced
    non-empty (output bias +10) so the product is checked on real pixels."""
    from core import registry

    model, card = registry.load_model("segmentation")
    bias = model.get_layer("logits")
    kernel, b = bias.get_weights()
    bias.set_weights([kernel * 0, b * 0 + 10.0])
    registry.save_version("segmentation", model, dict(card, version="seg-all"),
                          version="seg-all", weights_dir=seg_env)
    dcm = tmp_path / "slice.dcm"
    _dicom_with_spacing(dcm)
    code, info = _run(capsys, "segment", str(dcm), "--out", str(tmp_path / "m.png"),
                      "--model", "seg-all", "--json")
    assert code == 0
    assert info["tumour_pixels"] > 0 and info["bbox"] is not None
    assert info["area_mm2"] == pytest.approx(info["tumour_pixels"] * 0.4, rel=1e-6)
    assert info["max_probability"] > 0.99
    shutil.rmtree(seg_env / "segmentation" / "seg-all")


def test_segment_unreadable_file(seg_env, tmp_path, capsys):
    from core.cli import main

    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    assert main(["segment", str(bad), "--out", str(tmp_path / "m.png")]) == 2
    assert "error" in capsys.readouterr().err


def test_gradcam_localization_command(tiny_weights, monkeypatch, capsys):
    """``evaluate gradcam-localization`` on the fixture with the tiny classifier of the app
    tests: pointing game and energy in box for Grad-CAM and Grad-CAM++, overall and split by
    the manifest's classifier_train_near_dup."""
    monkeypatch.setenv("MEDSCAN_WEIGHTS_DIR", str(tiny_weights))
    code, report = _run(capsys, "evaluate", "gradcam-localization", "--data", str(FIXTURE),
                        "--json")
    assert code == 0 and report["n"] == 9 and report["tolerance_px"] == 8
    for method in ("gradcam", "gradcam++"):
        groups = report[method]
        assert set(groups) == {"all", "not_train_near_dup", "train_near_dup"}
        assert groups["not_train_near_dup"]["n"] == 5 and groups["train_near_dup"]["n"] == 4
        for g in groups.values():
            assert 0.0 <= g["pointing_game"] <= 1.0 and 0.0 <= g["energy_in_box"] <= 1.0
    assert report["pointing_game"] == report["gradcam"]["all"]["pointing_game"]
    assert 0.0 < report["baseline_energy_in_box"] < 0.5
