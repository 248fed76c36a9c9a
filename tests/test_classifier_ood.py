"""Out-of-distribution detection: the pure functions on synthetic features with known values,
and the end-to-end fit / predict / evaluate path on a tiny real model and fixture images."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.distance import mahalanobis as scipy_mahalanobis

from core.classifier import ood

DATA = Path(__file__).resolve().parent / "data"


# ---- pure functions ----------------------------------------------------------------------------
def test_mahalanobis_known_values():
    means = np.array([[0.0, 0.0], [10.0, 0.0]])
    precision = np.diag([1.0, 0.25])          # covariance diag(1, 4)
    f = np.array([[3.0, 0.0], [0.0, 4.0], [10.0, 2.0], [5.0, 0.0]])
    d2 = ood.mahalanobis_sq(f, means, precision)
    np.testing.assert_allclose(d2[:, 0], [9.0, 4.0, 101.0, 25.0])
    np.testing.assert_allclose(d2[:, 1], [49.0, 104.0, 1.0, 25.0])
    np.testing.assert_allclose(ood.mahalanobis_score(f, means, precision), [3.0, 2.0, 1.0, 5.0])


def test_mahalanobis_matches_scipy_with_full_precision():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(6, 6))
    precision = a @ a.T + 6 * np.eye(6)
    means = rng.normal(size=(3, 6))
    f = rng.normal(size=(5, 6))
    got = np.sqrt(ood.mahalanobis_sq(f, means, precision))
    want = [[scipy_mahalanobis(x, m, precision) for m in means] for x in f]
    np.testing.assert_allclose(got, want, rtol=1e-10)


def _ledoit_wolf_reference(x: np.ndarray) -> float:
    """The shrinkage written out term by term from Ledoit & Wolf (2004), Lemma 3.2-3.4."""
    n, p = x.shape
    s = x.T @ x / n
    m = np.trace(s) / p
    d2 = np.sum((s - m * np.eye(p)) ** 2) / p
    b_bar2 = sum(np.sum((np.outer(r, r) - s) ** 2) for r in x) / p / n ** 2
    b2 = min(b_bar2, d2)
    return b2 / d2


@pytest.mark.parametrize("n,p,seed", [(20, 5, 0), (8, 12, 1), (200, 3, 2)])
def test_ledoit_wolf_shrinkage_matches_the_paper(n, p, seed):
    x = np.random.default_rng(seed).normal(size=(n, p)) * np.arange(1, p + 1)
    x -= x.mean(axis=0)
    cov, s = ood.ledoit_wolf(x)
    assert s == pytest.approx(_ledoit_wolf_reference(x), rel=1e-9)
    emp = x.T @ x / n
    np.testing.assert_allclose(cov, (1 - s) * emp + s * np.trace(emp) / p * np.eye(p))
    assert np.all(np.linalg.eigvalsh(cov) > 0)          # invertible even when p > n


def test_fit_class_gaussians_recovers_means_and_shared_covariance():
    rng = np.random.default_rng(3)
    true_means = np.array([[0.0, 0.0, 0.0], [5.0, 0.0, 0.0], [0.0, 5.0, 0.0]])
    sd = np.array([1.0, 2.0, 0.5])
    y = np.repeat(np.arange(3), 4000)
    f = true_means[y] + rng.normal(size=(len(y), 3)) * sd
    means, precision, s = ood.fit_class_gaussians(f, y, 3)
    np.testing.assert_allclose(means, true_means, atol=0.08)
    np.testing.assert_allclose(np.linalg.inv(precision), np.diag(sd ** 2), atol=0.08)
    # a point two standard deviations out along axis 1 of class 0 is at distance ~2
    assert ood.mahalanobis_score([[0.0, -4.0, 0.0]], means, precision)[0] == pytest.approx(2, abs=0.05)
    with pytest.raises(ValueError, match="class 3 has no samples"):
        ood.fit_class_gaussians(f, y, 4)


def test_energy_score_known_values():
    logits = np.array([[0.0, 0.0], [10.0, -10.0]])
    np.testing.assert_allclose(ood.energy_score(logits), [-np.log(2), -(10 + np.log1p(np.exp(-20)))])
    np.testing.assert_allclose(ood.energy_score(logits, 2.0)[0], -2 * np.log(2))


def test_auroc_fpr_and_threshold():
    inn = np.array([1.0, 2.0, 3.0, 4.0])
    assert ood.auroc(inn, [5.0, 6.0]) == 1.0
    assert ood.auroc(inn, [0.0, 0.5]) == 0.0
    assert ood.auroc([1.0, 2.0], [2.0, 3.0]) == pytest.approx(0.875)   # one tie counts half
    # 95% of 20 OOD scores (19) must be flagged: threshold = the 19th highest = 2.0 -> in >= 2
    out = np.r_[np.arange(2.0, 21.0), 0.5]
    assert ood.fpr_at_tpr(inn, out, 0.95) == pytest.approx(0.75)
    assert ood.threshold_at(np.arange(101.0), 95) == pytest.approx(95.0)
    assert ood.detection_rate([1.0, 2.0, 3.0], 2.0) == pytest.approx(1 / 3)
    with pytest.raises(ValueError):
        ood.threshold_at([], 95)


def test_ensemble_score_is_the_mean_of_scaled_layer_distances():
    stats = ood.OODStats(("a", "b"), (np.zeros((1, 2)), np.zeros((2, 1))),
                         (np.eye(2), np.eye(1) * 4.0), np.array([2.0, 4.0]), 1.0)
    fa, fb = np.array([[3.0, 4.0], [0.0, 0.0]]), np.array([[1.0], [-2.0]])
    # layer a: distance 5 and 0, scaled by 2; layer b: sqrt(4 * x^2) = 2 and 4, scaled by 4
    np.testing.assert_allclose(stats.layer_scores([fa, fb]), [[2.5, 0.5], [0.0, 1.0]])
    np.testing.assert_allclose(stats.score([fa, fb]), [1.5, 0.5])
    with pytest.raises(ValueError, match="2 layers"):
        stats.score([fa])


def test_fit_ensemble_scales_by_median_training_distance():
    rng = np.random.default_rng(4)
    y = np.repeat(np.arange(2), 500)
    feats = [rng.normal(size=(1000, 3)) + y[:, None] * 4, rng.normal(size=(1000, 5)) * 3]
    stats, shrink = ood.fit_ensemble(("x", "y"), feats, y, 2)
    assert len(shrink) == 2 and all(0 <= s <= 1 for s in shrink)
    np.testing.assert_allclose(np.median(stats.layer_scores(feats), axis=0), [1.0, 1.0],
                               atol=1e-6)
    assert np.isnan(stats.threshold)
    # far away in either layer raises the score
    far = [np.array([[20.0, 20.0, 20.0]]), np.zeros((1, 5))]
    assert stats.score(far)[0] > 5


def test_verdict_and_stats_round_trip(tmp_path):
    flagged, reason = ood.verdict(12.5, 10.0)
    assert flagged and "far from every class" in reason and "95%" in reason
    assert "99%" in ood.verdict(12.5, 10.0, 99.0)[1]
    assert ood.verdict(9.0, 10.0)[0] is False
    stats = ood.OODStats(("l1", "l2"), (np.eye(2, 3), np.zeros((1, 1))),
                         (np.eye(3) * 2, np.eye(1)), np.array([1.0, 2.0]), 7.0)
    path = tmp_path / ood.STATS_FILE
    path.write_bytes(stats.to_bytes())
    section = {"threshold": 7.0, "stats_sha256": ood.file_sha256(path)}
    back = ood.OODStats.from_file(path, section)
    assert back.layers == ("l1", "l2")
    # l1: closest mean [0, 1, 0], distance sqrt(2 * 1) / scale 1; l2: 4 / scale 2 = 2
    np.testing.assert_allclose(back.score([np.array([[0.0, 1.0, 1.0]]), np.array([[4.0]])]),
                               [np.mean([np.sqrt(2.0), 2.0])])
    assert back.threshold == 7.0
    with pytest.raises(ValueError, match="does not match"):
        ood.OODStats.from_file(path, {"threshold": 7.0, "stats_sha256": "sha256:00"})
    with pytest.raises(ValueError, match="missing"):
        ood.OODStats.from_file(tmp_path / "nope.npz", section)


# ---- end to end on a tiny real model -------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_registry(tmp_path_factory):
    """A tiny classifier whose OOD section is fitted on the fixture brain slices."""
    import keras

    from core import registry
    from core.classifier.evaluate import fit_ood
    from core.classifier.preprocess import preprocessing_config
    from core.models.vgg16 import build_classifier

    root = tmp_path_factory.mktemp("weights")
    keras.utils.set_random_seed(0)
    net = {"num_classes": 4, "input_shape": [32, 32, 3], "width": 0.0625}
    card = {"architecture": "vgg16", "network": net,
            "classes": ["glioma", "meningioma", "notumor", "pituitary"], "input_size": 32,
            "preprocessing": preprocessing_config("vgg16", 3, 32)}
    registry.save_version("classifier", build_classifier(**net), card, version="fitted",
                          activate=True, weights_dir=root)
    registry.save_version("classifier", build_classifier(**net), card, version="bare",
                          weights_dir=root)
    section = fit_ood(DATA / "brain-mri", "fitted", weights_dir=root, command="pytest")
    return root, section


def test_fit_records_section_and_stats(tiny_registry):
    from core import registry

    root, section = tiny_registry
    card = registry.load_card("classifier", "fitted", weights_dir=root)
    assert card["ood"] == section
    assert section["method"] == ood.METHOD
    assert section["feature_layers"] == list(ood.FEATURE_LAYERS)
    assert section["fit_data"]["name"] == "data/brain-mri"          # a name, not a path
    assert section["fit_data"]["fingerprint"].startswith("sha256:")
    assert section["n_fit"] + section["n_validation"] == 32
    npz = registry.version_dir("classifier", "fitted", weights_dir=root) / ood.STATS_FILE
    assert ood.file_sha256(npz) == section["stats_sha256"]
    assert section["threshold"] > 0 and section["feature_dims"] == [4, 8, 16, 32, 32]


def test_prediction_carries_ood_fields_from_the_same_pass(tiny_registry, monkeypatch):
    import cv2

    from core.classifier.inference import Classifier

    root, section = tiny_registry
    clf = Classifier.load("fitted", weights_dir=root)
    calls = []
    original = clf._forward_all
    monkeypatch.setattr(clf, "_forward_all", lambda x: calls.append(len(x)) or original(x))
    gray = cv2.imread(str(DATA / "brain-mri" / "glioma" / "Tr-gl_0134.jpg"),
                      cv2.IMREAD_GRAYSCALE) / 255.0
    pred = clf.predict(gray)
    assert calls == [1]                                  # one forward pass, no second one
    assert pred.ood_threshold == section["threshold"]
    assert isinstance(pred.ood_score, float) and pred.out_of_distribution in (True, False)
    assert pred.out_of_distribution == (pred.ood_score > pred.ood_threshold)
    assert pred.ood_status in ("in distribution", "out of distribution")
    # explain (the app's path) gives the same score as predict
    expl, _ = clf.explain(gray)
    assert expl.ood_score == pytest.approx(pred.ood_score, rel=1e-4)
    # a flat grey square is far from every class of a model fitted on brain slices
    noise = np.random.default_rng(0).random((128, 128))
    assert clf.predict(noise).ood_score > pred.ood_score


def test_version_without_ood_section_says_not_checked(tiny_registry):
    from core.classifier.inference import Classifier

    root, _ = tiny_registry
    pred = Classifier.load("bare", weights_dir=root).predict(np.full((64, 64), 0.5))
    assert pred.out_of_distribution is None and pred.ood_score is None
    assert pred.ood_status == "not checked"
    assert pred.ood_reason.startswith("not checked") and "no out-of-distribution" in pred.ood_reason


def test_missing_stats_file_says_not_checked(tiny_registry, tmp_path):
    from core.classifier.inference import Classifier

    root, _ = tiny_registry
    copy = tmp_path / "w"
    shutil.copytree(root, copy)
    (copy / "classifier" / "fitted" / ood.STATS_FILE).unlink()
    pred = Classifier.load("fitted", weights_dir=copy).predict(np.full((64, 64), 0.5))
    assert pred.ood_status == "not checked" and "missing" in pred.ood_reason


def test_cli_evaluate_and_predict_json(tiny_registry, tmp_path, monkeypatch, capsys):
    from pydicom.data import get_testdata_file

    from core.cli import main

    root, section = tiny_registry
    monkeypatch.setenv("MEDSCAN_WEIGHTS_DIR", str(root))
    out_dir = tmp_path / "ood"
    (out_dir / "photo").mkdir(parents=True)
    for f in (DATA / "ood").glob("*.png"):
        shutil.copy(f, out_dir / "photo" / f.name)
    (out_dir / "ct").mkdir()
    shutil.copy(get_testdata_file("CT_small.dcm"), out_dir / "ct" / "CT_small.dcm")
    assert main(["evaluate", "ood", "--in", str(DATA / "brain-mri"), "--out", str(out_dir),
                 "--json", "--record"]) == 0
    report = json.loads(capsys.readouterr().out)
    for key in ("auroc", "fpr_at_95_tpr", "in_flagged", "out_flagged"):
        assert key in report
    assert report["in_flagged"]["n"] == 32 and report["out_flagged"]["n"] == 4
    assert set(report["out_flagged_by_kind"]) == {"photo", "ct"}
    assert 0 <= report["auroc"] <= 1
    assert report["out_flagged"]["count"] == 4 - len(report["out_missed_files"])
    from core import registry

    card = registry.load_card("classifier", "fitted", weights_dir=root)
    assert card["ood"]["evaluation"]["auroc"] == report["auroc"]
    # predict --json carries the OOD fields
    assert main(["predict", str(out_dir / "ct" / "CT_small.dcm"), "--json"]) == 0
    row = json.loads(capsys.readouterr().out)[0]
    assert row["ood_threshold"] == section["threshold"]
    assert row["ood_status"] in ("in distribution", "out of distribution")
    # a version without statistics cannot be evaluated, and says why
    assert main(["evaluate", "ood", "--in", str(DATA / "brain-mri"), "--out", str(out_dir),
                 "--model", "bare", "--json"]) == 2
    assert "not checked" in capsys.readouterr().err
