"""A tiny end-to-end run on the fixtures: training, registry round trip, inference, Grad-CAM, CLI."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from core import registry
from core.classifier import Classifier, Prediction
from core.classifier.train import SCRATCH_NOTICE, TrainConfig, train
from core.cli import main
from core.errors import ModelCardError, ModelNotFoundError

TINY = dict(input_size=32, width=1 / 16, batch_size=16, epochs=2, val_fraction=0.25,
            warmup_epochs=0, workers=1)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, data_dir):
    """One tiny vgg16_bn trained for two epochs (2 steps each) on the fixtures."""
    root = tmp_path_factory.mktemp("clf")
    events = []
    cfg = TrainConfig(data=str(data_dir / "brain-mri"), arch="vgg16_bn", version="tiny",
                      run_dir=str(root / "run"), weights_dir=str(root / "weights"),
                      activate=True, **TINY)
    result = train(cfg, events.append)
    return result, root / "weights", events


@pytest.fixture()
def weights(trained, monkeypatch):
    monkeypatch.setenv("MEDSCAN_WEIGHTS_DIR", str(trained[1]))
    return trained[1]


def _scan(data_dir, cls="notumor") -> np.ndarray:
    path = sorted((data_dir / "brain-mri" / cls).iterdir())[1]
    return cv2.imread(str(path), cv2.IMREAD_GRAYSCALE).astype(np.float32) / 255


def test_training_writes_checkpoints_card_and_progress(trained):
    result, weights, events = trained
    assert result.version == "tiny" and registry.active_version("classifier", weights_dir=weights) == "tiny"
    assert {"last.keras", "best.weights.h5", "state.json"} <= {p.name for p in result.run_dir.iterdir()}
    card = registry.load_card("classifier", "tiny", weights_dir=weights)
    assert card["architecture"] == "vgg16_bn" and card["pretrained"] is False
    assert card["notice"].startswith(SCRATCH_NOTICE)
    assert card["network"]["width"] == 1 / 16 and card["input_size"] == 32
    assert card["preprocessing"]["head_crop"] is True
    assert card["calibration"]["temperature"] > 0
    assert card["data"]["fingerprint"].startswith("sha256:")
    assert card["data"]["modality"] == "MR" and card["data"]["body_part"] == ["BRAIN", "HEAD"]
    assert len(card["training"]["history"]) == 2
    ood = card["ood"]                # fitted on the run's own training split at publish
    assert ood["threshold"] > 0 and ood["n_fit"] > 0
    assert ood["fit_data"]["fingerprint"] == card["data"]["fingerprint"]
    assert (weights / "classifier" / "tiny" / ood["stats_file"]).is_file()
    phases = {e.phase for e in events}
    assert {"load", "train", "calibrate", "ood", "done"} <= phases
    ends = [e for e in events if e.message == "epoch end"]
    assert [e.epoch for e in ends] == [1, 2] and all(e.steps == 2 for e in ends)


def test_resume_continues_from_last_epoch(trained, data_dir, tmp_path):
    result = trained[0]
    cfg = TrainConfig(data=str(data_dir / "brain-mri"), arch="vgg16_bn", run_dir=str(result.run_dir),
                      resume=True, publish=False, **(TINY | {"epochs": 3}))
    again = train(cfg)
    assert [h["epoch"] for h in again.history] == [1, 2, 3]


def test_init_from_weights_at_another_input_size(trained, data_dir, tmp_path):
    best = trained[0].run_dir / "best.weights.h5"
    cfg = TrainConfig(data=str(data_dir / "brain-mri"), arch="vgg16_bn", init_from=str(best),
                      run_dir=str(tmp_path / "r"), publish=False,
                      **(TINY | {"epochs": 1, "input_size": 48}))
    result = train(cfg)
    assert result.card["input_size"] == 48 and "continued from" in result.card["description"]


def test_extra_training_data_is_train_only_and_never_a_validation_copy(data_dir, tmp_path):
    """--extra-data: train-only images; a copy of a validation image (here re-exported with
    other intensity scaling, as the segmentation set's PNGs are) is dropped; the card records
    the folder, its fingerprint and the counts; an unknown class folder is an error."""
    import shutil

    from core.classifier.data import list_image_folder, training_split

    extra = tmp_path / "extra"
    shutil.copytree(data_dir / "brain-mri-seg" / "images", extra)
    data = list_image_folder(data_dir / "brain-mri")
    _, va = training_split(data.labels, TINY["val_fraction"], 42)
    val_file = data.files[va[0]]
    img = cv2.imread(str(val_file), cv2.IMREAD_GRAYSCALE).astype(np.float32)
    copy = np.clip((img - img.min()) / max(img.max() - img.min(), 1) * 255, 0, 255)
    (extra / "notumor").mkdir()
    cv2.imwrite(str(extra / "notumor" / "copy_of_val.png"), copy.astype(np.uint8))
    cfg = TrainConfig(data=str(data_dir / "brain-mri"), arch="vgg16_bn", extra_data=(str(extra),),
                      augmentation="strong", label_smoothing=0.1, run_dir=str(tmp_path / "r"),
                      publish=False, **(TINY | {"epochs": 1}))
    events = []
    card = train(cfg, events.append).card
    entry, = card["data"]["extra_training_data"]
    assert entry["counts"] == {"glioma": 3, "meningioma": 3, "notumor": 1, "pituitary": 3}
    assert entry["dropped_near_validation"] >= 1 and entry["used_counts"]["notumor"] == 0
    assert entry["used"] == 10 - entry["dropped_near_validation"]
    assert entry["fingerprint"].startswith("sha256:")
    # the validation split is the plain folder's; the extra images only add to training
    assert card["data"]["val_counts"] == {c: int(v) for c, v in zip(
        data.classes, np.bincount(data.labels[va], minlength=4))}
    assert sum(card["data"]["train_counts"].values()) == len(data.files) - len(va) + entry["used"]
    assert card["training"]["config"]["augmentation"] == "strong"
    assert any("dropped as near duplicates" in (e.message or "") for e in events)

    (extra / "tumour_other").mkdir()
    with pytest.raises(ValueError, match="not among the training classes"):
        train(TrainConfig(data=str(data_dir / "brain-mri"), arch="vgg16_bn",
                          extra_data=(str(extra),), run_dir=str(tmp_path / "r2"), publish=False,
                          **(TINY | {"epochs": 1})))


def test_time_cap_stops_gracefully(data_dir, tmp_path):
    cfg = TrainConfig(data=str(data_dir / "brain-mri"), arch="cnn", run_dir=str(tmp_path / "r"),
                      publish=False, max_minutes=1e-4, **(TINY | {"epochs": 5}))
    result = train(cfg)
    assert len(result.history) == 1 and "time cap" in result.card["training"]["stopped_reason"]
    assert result.card["network"]["input_shape"] == [32, 32, 1]


def test_predict_and_explain_agree(weights, data_dir):
    clf = Classifier.load()
    assert clf.version == "tiny" and clf.classes[2] == "notumor" and not clf.pretrained
    assert clf.notice
    img = _scan(data_dir)
    pred = clf.predict(img)
    assert isinstance(pred, Prediction) and pred.label in clf.classes
    assert sum(pred.probabilities.values()) == pytest.approx(1.0)
    assert pred.confidence == max(pred.probabilities.values())
    pred2, heat = clf.explain(img)
    assert pred2.label == pred.label and pred2.confidence == pytest.approx(pred.confidence, abs=1e-5)
    assert heat.shape == img.shape and heat.dtype == np.float32
    assert 0.0 <= heat.min() and heat.max() <= 1.0
    # "no class given" means the predicted class
    _, heat_argmax = clf.explain(img, pred.label)
    np.testing.assert_allclose(heat, heat_argmax, atol=1e-6)
    _, heat_pp = clf.explain(np.repeat(img[..., None], 3, -1), "glioma", method="gradcam++")
    assert heat_pp.shape == img.shape and 0 <= heat_pp.min() and heat_pp.max() <= 1
    with pytest.raises(ValueError, match="Unknown class 'cat'"):
        clf.explain(img, "cat")


def test_explain_all_is_every_class_by_every_method(weights, data_dir):
    """One forward pass for the Analyze picture's menu: each map equals explain()'s for that
    class and method, and the prediction is the same; the maps are kept at model size."""
    from core.classifier.gradcam import ScanMaps

    clf = Classifier.load()
    img = _scan(data_dir)
    pred, maps = clf.explain_all(img)
    assert isinstance(maps, ScanMaps)
    assert sorted(maps) == sorted((m, c) for m in ("gradcam", "gradcam++") for c in clf.classes)
    assert pred.probabilities == pytest.approx(clf.predict(img).probabilities, abs=1e-5)
    nonzero = 0
    for (method, cls), heat in maps.items():
        _, expected = clf.explain(img, cls, method)
        assert heat.shape == img.shape and heat.dtype == np.float32
        np.testing.assert_allclose(heat, expected, rtol=0, atol=1e-6)
        nonzero += heat.max() > 0
    assert nonzero >= 2, "all maps empty: the comparison proves nothing"
    # what a cache holds is the model-space maps, not eight scan-size arrays
    import pickle
    assert len(pickle.dumps(maps)) < img.nbytes
    _, only = clf.explain_all(img, methods=("gradcam",))
    assert sorted(only) == [("gradcam", c) for c in sorted(clf.classes)]
    with pytest.raises(ValueError, match="Unknown method 'cam'"):
        clf.explain_all(img, methods=("cam",))


def test_registry_errors(tmp_weights, trained):
    with pytest.raises(ModelNotFoundError, match="No active classifier"):
        Classifier.load()  # tmp_weights is empty: no active version
    with pytest.raises(ModelNotFoundError, match="nope"):
        Classifier.load("nope", weights_dir=trained[1])


def test_bad_card_is_named(weights, tmp_path):
    import shutil

    root = tmp_path / "w"
    shutil.copytree(weights, root)
    card_path = root / "classifier" / "tiny" / registry.CARD_FILE
    card = json.loads(card_path.read_text())
    card["network"]["width"] = 1 / 8   # weights no longer fit
    card_path.write_text(json.dumps(card))
    with pytest.raises(ModelCardError, match="do not fit"):
        Classifier.load("tiny", weights_dir=root)
    card.pop("preprocessing")
    card_path.write_text(json.dumps(card))
    with pytest.raises(ModelCardError, match="preprocessing"):
        Classifier.load("tiny", weights_dir=root)


def test_recalibrate_rewrites_card(trained, data_dir, tmp_path, capsys):
    import shutil

    root = tmp_path / "w"
    shutil.copytree(trained[1], root)
    from core.classifier.train import recalibrate

    entry = recalibrate(str(data_dir / "brain-mri"), "tiny", weights_dir=str(root))
    card = registry.load_card("classifier", "tiny", weights_dir=root)
    assert entry.pop("version") == "tiny"
    assert card["calibration"] == entry and entry["temperature"] > 0
    assert entry["n_validation"] == 8 and "previous_temperature" in entry
    other = tmp_path / "other"
    shutil.copytree(data_dir / "brain-mri", other)
    next((other / "glioma").iterdir()).unlink()
    with pytest.raises(ValueError, match="fingerprint"):
        recalibrate(str(other), "tiny", weights_dir=str(root))


def test_cli_json_shapes(weights, data_dir, tmp_path, capsys):
    assert main(["evaluate", "classifier", "--data", str(data_dir / "brain-mri"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert {"accuracy", "macro_f1", "ece", "classes", "per_class", "confusion_matrix"} <= set(report)
    assert set(report["per_class"]["glioma"]) == {"precision", "recall", "f1", "support"}
    assert np.array(report["confusion_matrix"]).sum() == 32
    lo, hi = report["ece_ci95"]
    assert lo <= hi and sum(b["count"] for b in report["reliability"]) == 32
    assert report["nll"] > 0 and 0 <= report["brier"] <= 2
    if data_dir.resolve().is_relative_to(Path(__file__).resolve().parents[1]):
        assert report["data"] == "tests/data/brain-mri"      # no path of this machine
    assert main(["evaluate", "classifier", "--data", str(data_dir / "brain-mri"), "--json",
                 "--record", "fixtures", "--gradcam-mass"]) == 0
    recorded = registry.load_card("classifier")["metrics"]["fixtures"]
    assert recorded["accuracy"] == report["accuracy"] and 0 <= recorded["gradcam_outside_head"] <= 1
    capsys.readouterr()

    files = [str(sorted((data_dir / "brain-mri" / c).iterdir())[0]) for c in ("glioma", "notumor")]
    assert main(["predict", *files, "--json"]) == 0
    preds = json.loads(capsys.readouterr().out)
    assert [p["file"] for p in preds] == files
    ood_keys = {"ood_status", "out_of_distribution", "ood_score", "ood_threshold", "ood_reason"}
    assert all(set(p) == {"file", "label", "confidence", "probabilities"} | ood_keys
               for p in preds)
    # training fitted the version's out-of-distribution check, so every file is checked
    assert all(isinstance(p["out_of_distribution"], bool) and p["ood_threshold"] > 0
               for p in preds)

    out, npy = tmp_path / "o.png", tmp_path / "m.npy"
    assert main(["gradcam", files[1], "--out", str(out), "--heatmap", str(npy),
                 "--class", "glioma"]) == 0
    overlay = cv2.imread(str(out))
    heat = np.load(npy)
    src = cv2.imread(files[1], cv2.IMREAD_GRAYSCALE)
    assert overlay.shape == (*src.shape, 3) and heat.shape == src.shape
    assert heat.dtype == np.float32 and 0 <= heat.min() and heat.max() <= 1


def test_pretrained_start_runs_two_phases(data_dir, tmp_path):
    import keras

    base = keras.applications.VGG16(include_top=False, weights=None, input_shape=(32, 32, 3))
    path = tmp_path / "vgg16_notop.weights.h5"
    base.save_weights(path)
    events = []
    cfg = TrainConfig(data=str(data_dir / "brain-mri"), arch="vgg16", pretrained=str(path),
                      run_dir=str(tmp_path / "r"), publish=False, frozen_epochs=1,
                      max_images=16, **(TINY | {"width": 1.0}))
    result = train(cfg, events.append)
    assert result.card["pretrained"] is True and result.card["notice"] is None
    assert [e.phase for e in events if e.message == "epoch end"] == ["frozen", "finetune"]
    assert len(result.history) == 2


def test_compare_versions_on_clean_validation(weights, data_dir, tmp_path, capsys):
    import importlib.util
    import shutil

    path = Path(__file__).resolve().parents[1] / "scripts" / "compare_classifiers_val.py"
    spec = importlib.util.spec_from_file_location("compare_val", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.main(["--data", str(data_dir / "brain-mri"), "tiny"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["n_validation"] == 8 and 1 <= out["n_clean"] <= 8
    assert out["tiny"]["n"] == out["n_clean"] and out["tiny"]["nll"] > 0
    other = tmp_path / "other"
    shutil.copytree(data_dir / "brain-mri", other)
    next((other / "glioma").iterdir()).unlink()
    with pytest.raises(SystemExit, match="not the training data"):
        mod.main(["--data", str(other), "tiny"])


def test_flip_averaged_version(trained, data_dir, tmp_path, capsys, monkeypatch):
    import shutil

    from core.classifier.train import recalibrate

    root = tmp_path / "w"
    shutil.copytree(trained[1], root)
    with pytest.raises(ValueError, match="new version"):
        recalibrate(str(data_dir / "brain-mri"), "tiny", tta="hflip", weights_dir=str(root))
    entry = recalibrate(str(data_dir / "brain-mri"), "tiny", tta="hflip", new_version="tiny-flip",
                        weights_dir=str(root))
    assert entry["version"] == "tiny-flip" and entry["temperature"] > 0
    base = Classifier.load("tiny", weights_dir=root)
    flip = Classifier.load("tiny-flip", weights_dir=root)
    card = flip.card
    assert flip.tta == "hflip" and base.tta is None
    assert card["derived_from"] == "tiny" and card["calibration"] == {
        k: v for k, v in entry.items() if k != "version"}
    assert "test" not in card["metrics"] and card["metrics"]["validation_clean"]["n"] == 8
    assert registry.active_version("classifier", weights_dir=root) == "tiny"   # not activated

    img = _scan(data_dir)
    x, _ = base.prepare(img)
    xs = np.stack([x, x[:, ::-1]])
    lb, lf = base.logits_batch(xs), flip.logits_batch(xs)
    np.testing.assert_allclose(lf[0], (lb[0] + lb[1]) / 2, atol=1e-5)
    np.testing.assert_allclose(lf[0], lf[1], atol=1e-5)         # mirror-invariant
    # Grad-CAM: the unflipped image's map, the flip-averaged prediction, one batched pass
    pred, heat = flip.explain(img, "glioma")
    _, heat_base = base.explain(img, "glioma")
    np.testing.assert_allclose(heat, heat_base, atol=1e-5)
    p = flip.predict(img)
    assert pred.probabilities == pytest.approx(p.probabilities, abs=1e-5)
    assert flip.explain(img)[0].label == p.label

    # the CLI; an in-place recalibration keeps the version's averaging
    monkeypatch.setenv("MEDSCAN_WEIGHTS_DIR", str(root))
    assert main(["calibrate", "classifier", "--data", str(data_dir / "brain-mri"),
                 "--model", "tiny-flip"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["version"] == "tiny-flip"
    assert Classifier.load("tiny-flip", weights_dir=root).tta == "hflip"
    assert main(["calibrate", "classifier", "--data", str(data_dir / "brain-mri"),
                 "--model", "tiny", "--tta", "hflip"]) == 2
    assert "new version" in capsys.readouterr().err
