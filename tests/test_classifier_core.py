"""Pure functions of the classifier: preprocessing, data split, metrics, calibration, Grad-CAM maths."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from core.classifier.calibration import fit_temperature, nll, softmax
from core.classifier.data import (augment, augment_strong, class_weights, letterbox,
                                  list_image_folder, load_images, stratified_split)
from core.classifier.gradcam import (cam_from_gradients, hot_region_bbox, mass_outside,
                                     overlay_heatmap, place_in_scan)
from core.classifier.metrics import (classification_report, confusion_matrix,
                                     expected_calibration_error)
from core.classifier.preprocess import (head_bbox, head_mask, normalise, preprocess,
                                        preprocessing_config)


def _padded_head(h=256, w=256, bar=40) -> np.ndarray:
    """A bright ellipse 'head' with black bars top and bottom, like the notumor images."""
    img = np.zeros((h, w), np.uint8)
    cv2.ellipse(img, (w // 2, h // 2), (w // 2 - 10, h // 2 - bar - 5), 0, 0, 360, 150, -1)
    cv2.circle(img, (w // 2, h // 2), 10, 0, -1)  # a dark hole inside the head
    return img


def test_head_mask_and_bbox_drop_padding_bars():
    img = _padded_head()
    mask = head_mask(img)
    assert mask.dtype == bool and mask.shape == img.shape
    assert mask[128, 128]            # hole filled
    assert not mask[:30].any() and not mask[-30:].any()
    box = head_bbox(img, margin=0.0)
    assert 40 <= box.y0 <= 50 and 206 <= box.y1 <= 216 and box.x0 <= 12 and box.x1 >= 244


def test_head_mask_of_blank_image_is_everything():
    assert head_mask(np.zeros((64, 64), np.float32)).all()


def test_preprocess_shape_and_normalisation():
    img = _padded_head().astype(np.float32) / 255
    x, box = preprocess(img, preprocessing_config("vgg16", 3, 32))
    assert x.shape == (32, 32, 3) and x.dtype == np.float32
    # caffe: channel means subtracted, black -> -mean
    np.testing.assert_allclose(normalise(np.zeros((1, 2, 2)), "vgg16", 3)[0, 0, 0],
                               [-103.939, -116.779, -123.68], rtol=1e-6)
    x1, _ = preprocess(img, preprocessing_config("unit", 1, 32))
    assert x1.shape == (32, 32, 1) and 0 <= x1.min() and x1.max() <= 1
    # RGB input is accepted and gives the same result as its grayscale
    x3, _ = preprocess(np.repeat(img[..., None], 3, -1), preprocessing_config("vgg16", 3, 32))
    np.testing.assert_allclose(x3, x, atol=1)


def test_folder_split_is_stratified_and_reproducible(data_dir):
    data = list_image_folder(data_dir / "brain-mri")
    assert data.classes == ["glioma", "meningioma", "notumor", "pituitary"]
    tr, va = stratified_split(data.labels, 0.25, seed=3)
    assert set(tr).isdisjoint(va) and len(tr) + len(va) == len(data.files)
    assert np.bincount(data.labels[va]).tolist() == [2, 2, 2, 2]
    tr2, va2 = stratified_split(data.labels, 0.25, seed=3)
    assert (va == va2).all()
    w = class_weights(np.array([0, 0, 0, 1]), 2)
    assert w[1] == pytest.approx(2.0) and w[0] == pytest.approx(4 / 6)
    imgs = load_images(data.files[:3], preprocessing_config("vgg16", 3, 32))
    assert imgs.shape == (3, 32, 32) and imgs.dtype == np.uint8


def test_augment_keeps_shape_and_range():
    rng = np.random.default_rng(0)
    img = cv2.resize(_padded_head(), (32, 32))
    outs = [augment(img, rng) for _ in range(20)]
    assert all(o.shape == (32, 32) and 0 <= o.min() and o.max() <= 255 for o in outs)
    assert not all(np.array_equal(outs[0], o) for o in outs[1:])


def test_strong_augmentation_adds_source_shifts_and_is_reproducible():
    img = cv2.resize(_padded_head(), (64, 64))
    a = [augment_strong(img, np.random.default_rng((1, i))) for i in range(40)]
    b = [augment_strong(img, np.random.default_rng((1, i))) for i in range(40)]
    assert all(np.array_equal(x, y) for x, y in zip(a, b))               # seeded: reproducible
    assert all(o.shape == (64, 64) and o.dtype == np.float32 for o in a)
    assert all(0 <= o.min() and o.max() <= 255 for o in a)
    # letterbox bars: black rows top and bottom, or columns left and right, the rest untouched
    bright = np.full((64, 64), 200, np.uint8)
    for i in range(10):
        o = letterbox(bright, np.random.default_rng(i))
        rows, cols = (o == 0).all(axis=1), (o == 0).all(axis=0)
        assert (rows[0] and rows[-1]) != (cols[0] and cols[-1])
        assert 2 <= max(rows.sum(), cols.sum()) <= 2 * 0.15 * 64 and o[32, 32] == 200
    outs = [augment_strong(bright, np.random.default_rng((2, i))) for i in range(60)]
    # and it spreads intensities further than the standard augmentation (noise, bias field)
    std_strong = np.mean([o[16:48, 16:48].std() for o in outs])
    std_plain = np.mean([augment(bright, np.random.default_rng((2, i)))[16:48, 16:48].std()
                         for i in range(60)])
    assert std_strong > std_plain


def test_augmentation_choices_match_the_implementations():
    from core.classifier.data import AUGMENTATIONS
    from core.classifier.train import AUGMENTATION_CHOICES

    assert list(AUGMENTATIONS) == list(AUGMENTATION_CHOICES)


def test_sequence_rejects_unknown_augmentation():
    from core.classifier.data import ImageFolderSequence

    with pytest.raises(ValueError, match="augmentation must be one of"):
        ImageFolderSequence(np.zeros((2, 8, 8), np.uint8), np.zeros(2, np.int64), 2,
                            batch_size=2, normalise_mode="vgg16", channels=3, training=True,
                            augmentation="extreme")


def test_metrics_known_values():
    y = np.array([0, 0, 1, 1, 2, 2])
    p = np.array([0, 1, 1, 1, 2, 0])
    cm = confusion_matrix(y, p, 3)
    assert cm.tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    probs = np.eye(3)[p] * 0.9 + 0.1 / 3
    r = classification_report(probs, y, ["a", "b", "c"])
    assert r["accuracy"] == pytest.approx(4 / 6)
    assert r["per_class"]["b"] == {"precision": pytest.approx(2 / 3), "recall": 1.0,
                                   "f1": pytest.approx(0.8), "support": 2}
    assert r["macro_f1"] == pytest.approx((0.5 + 0.8 + 2 / 3) / 3)
    # every prediction made with confidence 0.9333 while 4/6 are right
    assert r["ece"] == pytest.approx(abs(0.9 + 0.1 / 3 - 4 / 6))
    assert expected_calibration_error(np.eye(3)[y], y) == pytest.approx(0.0)


def test_reliability_bins_nll_brier_and_ece_interval():
    from core.classifier.metrics import (brier_score, ece_confidence_interval,
                                         negative_log_likelihood, reliability_bins)

    y = np.array([0, 0, 1, 1, 2, 2])
    probs = np.eye(3)[np.array([0, 1, 1, 1, 2, 0])] * 0.9 + 0.1 / 3
    bins = reliability_bins(probs, y)
    assert len(bins) == 1 and bins[0]["count"] == 6            # all at confidence 0.9333
    assert bins[0]["lo"] < 0.9333 <= bins[0]["hi"]
    assert bins[0]["accuracy"] == pytest.approx(4 / 6)
    assert bins[0]["confidence"] == pytest.approx(0.9 + 0.1 / 3)
    assert negative_log_likelihood(probs, y) == pytest.approx(
        -(4 * np.log(0.9 + 0.1 / 3) + 2 * np.log(0.1 / 3)) / 6)
    assert brier_score(np.eye(3)[y], y) == 0.0 and brier_score(probs, y) > 0.3

    rng = np.random.default_rng(1)
    n, k = 400, 4
    yy = rng.integers(0, k, n)
    logits = rng.normal(size=(n, k))
    logits[np.arange(n), yy] += 2.0
    pr = softmax(logits * 3.0)                                  # over-confident
    bins = reliability_bins(pr, yy)
    assert sum(b["count"] for b in bins) == n
    ece = expected_calibration_error(pr, yy)
    assert sum(b["count"] * abs(b["accuracy"] - b["confidence"]) for b in bins) / n == \
        pytest.approx(ece)
    lo, hi = ece_confidence_interval(pr, yy, n_boot=300)
    assert lo < ece < hi and hi - lo < 0.2
    lo2, hi2 = ece_confidence_interval(pr[:60], yy[:60], n_boot=300)
    assert hi2 - lo2 > hi - lo                                  # fewer images, wider interval
    r = classification_report(pr, yy, list("abcd"), ci=True)
    assert r["ece_ci95"] == [pytest.approx(v, abs=0.02) for v in ece_confidence_interval(pr, yy)]
    assert r["nll"] > 0 and len(r["reliability"]) == len(bins)
    lo, hi = r["accuracy_ci95"]
    assert lo < r["accuracy"] < hi and 0.02 < hi - lo < 0.2   # about +-1.96 sqrt(p(1-p)/n)
    se = np.sqrt(r["accuracy"] * (1 - r["accuracy"]) / n)
    assert hi - lo == pytest.approx(2 * 1.96 * se, rel=0.25)
    flo, fhi = r["macro_f1_ci95"]
    assert flo < r["macro_f1"] < fhi


def test_temperature_scaling_lowers_ece_of_overconfident_model():
    rng = np.random.default_rng(0)
    n, k = 2000, 4
    y = rng.integers(0, k, n)
    logits = rng.normal(size=(n, k))
    logits[np.arange(n), y] += 1.5          # informative, ~70 % accurate
    logits *= 6.0                            # ...but far too confident
    t = fit_temperature(logits, y)
    assert t > 2.0
    before = expected_calibration_error(softmax(logits), y)
    after = expected_calibration_error(softmax(logits, t), y)
    assert after < before / 3 and after < 0.05
    assert nll(logits, y, t) < nll(logits, y)
    assert (softmax(logits, t).argmax(1) == softmax(logits).argmax(1)).all()


@pytest.mark.parametrize("method", ["gradcam", "gradcam++"])
def test_cam_range_and_location(method):
    rng = np.random.default_rng(1)
    acts = rng.random((6, 6, 8)) * 0.1
    acts[1, 4, 3] = 5.0                       # channel 3 fires top-right
    grads = np.zeros_like(acts)
    grads[..., 3] = 1.0                       # and drives the class score
    cam = cam_from_gradients(acts, grads, method)
    assert cam.shape == (6, 6) and cam.min() >= 0 and cam.max() == pytest.approx(1.0)
    assert np.unravel_index(cam.argmax(), cam.shape) == (1, 4)
    assert not cam_from_gradients(acts, -grads, "gradcam").any()   # no positive evidence
    with pytest.raises(ValueError, match="Unknown CAM method"):
        cam_from_gradients(acts, grads, "cam")


def test_place_overlay_bbox_and_mass():
    cam = np.zeros((4, 4), np.float32)
    cam[1:3, 1:3] = 1.0
    hm = place_in_scan(cam, (10, 20, 50, 60), (100, 80))
    assert hm.shape == (100, 80) and hm.min() >= 0 and hm.max() <= 1
    assert not hm[:20].any() and not hm[:, :10].any()
    x0, y0, x1, y1 = hot_region_bbox(hm)
    assert 10 <= x0 < x1 <= 50 and 20 <= y0 < y1 <= 60
    assert hot_region_bbox(np.zeros((5, 5))) is None
    over = overlay_heatmap(np.full((100, 80), 100, np.uint8), hm, alpha=0.5)
    assert over.shape == (100, 80, 3) and over.dtype == np.uint8
    assert (overlay_heatmap(np.full((100, 80), 100, np.uint8), hm, alpha=0.0) == 100).all()
    inside = np.zeros((100, 80), bool)
    inside[:, :30] = True
    assert 0 < mass_outside(hm, inside) < 1
    assert mass_outside(hm, np.ones_like(inside)) == 0.0


def test_pretrained_resolution(tmp_path, monkeypatch):
    from core.classifier.train import IMAGENET_NOTOP_FILE, SCRATCH_NOTICE, resolve_pretrained

    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    assert resolve_pretrained(None) == (None, SCRATCH_NOTICE)
    weights, notice = resolve_pretrained("imagenet")       # not cached: no download, a notice
    assert weights is None and notice.startswith(SCRATCH_NOTICE) and "not cached" in notice
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / IMAGENET_NOTOP_FILE).write_bytes(b"h5")
    assert resolve_pretrained("imagenet") == (str(tmp_path / "models" / IMAGENET_NOTOP_FILE), None)
    with pytest.raises(ValueError, match="nope.h5"):
        resolve_pretrained(str(tmp_path / "nope.h5"))


def test_near_duplicates_are_found():
    from core.classifier.dedup import calibration_subset, min_hamming, phashes

    rng = np.random.default_rng(0)
    base = [cv2.GaussianBlur(rng.integers(0, 255, (64, 64)).astype(np.uint8), (0, 0), 3)
            for _ in range(6)]
    train = np.stack(base[:3])
    near = np.clip(train[0].astype(int) + rng.integers(-3, 4, (64, 64)), 0, 255).astype(np.uint8)
    val = np.stack([near, *base[3:]])
    d = min_hamming(phashes(val), phashes(train))
    assert d[0] <= 4 and (d[1:] > 10).all()
    assert calibration_subset(train, val, min_keep=1).tolist() == [1, 2, 3]
    assert calibration_subset(train, val, min_keep=10).tolist() == [0, 1, 2, 3]


def test_max_ncc_finds_rescaled_copies_that_phash_may_miss():
    from core.classifier.dedup import max_ncc

    rng = np.random.default_rng(3)
    base = [cv2.GaussianBlur(rng.integers(0, 255, (80, 80)).astype(np.uint8), (0, 0), 3)
            for _ in range(4)]
    ref = np.stack(base[:2])
    rescaled = np.clip(base[0].astype(np.float32) * 0.6 + 40, 0, 255).astype(np.uint8)
    q = np.stack([rescaled, base[2], base[3]])
    ncc = max_ncc(q, ref)
    assert ncc[0] > 0.98 and (ncc[1:] < 0.9).all()
    assert max_ncc(q, ref[:0]).tolist() == [-1.0, -1.0, -1.0]


def test_confidence_statement_and_calibration_figures():
    from ui.version_tables import confidence_statement, headline_metrics
    from ui.plots import confusion_heatmap, reliability_diagram

    bins = [{"lo": 0.6, "hi": 0.667, "count": 5, "confidence": 0.63, "accuracy": 0.6},
            {"lo": 0.9, "hi": 0.933, "count": 10, "confidence": 0.92, "accuracy": 0.9},
            {"lo": 0.933, "hi": 1.0, "count": 30, "confidence": 0.99, "accuracy": 0.9}]
    assert confidence_statement(bins) == ("When it said 90% or more, it was right in 36 of 40 "
                                          "images (90%).")
    assert confidence_statement(bins[:1]) is None
    assert headline_metrics({"metrics": {"validation": {"accuracy": 0.9},
                                         "test": {"accuracy": 0.8}}})[0] == "test"
    assert headline_metrics({"metrics": {"validation": {"accuracy": 0.9}}})[0] == "validation"
    assert headline_metrics({}) is None
    fig = reliability_diagram(bins)
    assert list(fig.data[0].y) == [0.6, 0.9, 0.9] and list(fig.data[0].customdata[1]) == [10, 0.92]
    heat = confusion_heatmap([[3, 1], [0, 4]], ["a", "b"])
    assert heat.data[0].z.tolist() == [[0.75, 0.25], [0.0, 1.0]]


def test_expected_minutes_scales_recorded_epoch_time():
    from core.classifier.train import expected_minutes

    card = {"input_size": 96, "network": {"width": 0.5},
            "data": {"train_counts": {"a": 500, "b": 500}},
            "training": {"history": [{"epoch": 1, "seconds": 110.0},
                                     {"epoch": 2, "seconds": 100.0},
                                     {"epoch": 3, "seconds": 90.0}]}}
    same = expected_minutes(card, input_size=96, width=0.5, epochs=12)
    assert same == pytest.approx(100 * 12 / 60 + 1)
    bigger = expected_minutes(card, input_size=128, width=1.0, epochs=12, n_images=2000)
    assert bigger == pytest.approx(100 * (128 / 96) ** 2 * 4 * 2 * 12 / 60 + 1)
    assert expected_minutes(None, input_size=96, width=0.5, epochs=3) is None
    assert expected_minutes({"training": {}}, input_size=96, width=0.5, epochs=3) is None
