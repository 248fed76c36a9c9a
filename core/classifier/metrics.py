"""Classification metrics as pure functions of integer labels and probability rows.

Contracts: ``y_true`` / ``y_pred`` are int arrays of equal length N with values in
``range(num_classes)``; ``probs`` is (N, K) with rows summing to 1.
"""
from __future__ import annotations

import numpy as np

__all__ = ["bootstrap_interval", "confusion_matrix", "per_class_report", "macro_f1", "accuracy",
           "expected_calibration_error", "reliability_bins", "ece_confidence_interval",
           "negative_log_likelihood", "brier_score", "classification_report", "ECE_BINS"]

ECE_BINS = 15  # Guo et al. 2017 use 15 equal-width confidence bins


def _check(y_true, y_pred) -> tuple[np.ndarray, np.ndarray]:
    y_true, y_pred = np.asarray(y_true, np.int64), np.asarray(y_pred, np.int64)
    if y_true.shape != y_pred.shape or y_true.ndim != 1:
        raise ValueError(f"y_true {y_true.shape} and y_pred {y_pred.shape} must be equal 1-D.")
    return y_true, y_pred


def confusion_matrix(y_true, y_pred, num_classes: int) -> np.ndarray:
    """(K, K) counts; row = true class, column = predicted class."""
    y_true, y_pred = _check(y_true, y_pred)
    cm = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(cm, (y_true, y_pred), 1)
    return cm


def accuracy(y_true, y_pred) -> float:
    y_true, y_pred = _check(y_true, y_pred)
    return float((y_true == y_pred).mean()) if len(y_true) else 0.0


def per_class_report(cm: np.ndarray, classes: list[str]) -> dict[str, dict[str, float]]:
    """``{class: {precision, recall, f1, support}}``; 0 where undefined (no predictions)."""
    out = {}
    for i, c in enumerate(classes):
        tp = cm[i, i]
        pred, true = cm[:, i].sum(), cm[i, :].sum()
        p = tp / pred if pred else 0.0
        r = tp / true if true else 0.0
        f = 2 * p * r / (p + r) if p + r else 0.0
        out[c] = {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(true)}
    return out


def macro_f1(cm: np.ndarray) -> float:
    k = cm.shape[0]
    return float(np.mean([v["f1"] for v in per_class_report(cm, [str(i) for i in range(k)]).values()]))


def _conf_correct(probs, y_true) -> tuple[np.ndarray, np.ndarray]:
    probs = np.asarray(probs, np.float64)
    y_true = np.asarray(y_true, np.int64)
    if probs.ndim != 2 or len(probs) != len(y_true):
        raise ValueError(f"probs {probs.shape} must be (N, K) with N = len(y_true) {len(y_true)}.")
    return probs.max(1), (probs.argmax(1) == y_true).astype(np.float64)


def _bin_index(conf: np.ndarray, n_bins: int) -> np.ndarray:
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    return np.clip(np.digitize(conf, edges[1:-1], right=True), 0, n_bins - 1)


def _ece(conf: np.ndarray, correct: np.ndarray, n_bins: int) -> float:
    if not len(conf):
        return 0.0
    bins = _bin_index(conf, n_bins)
    # per bin |sum(correct) - sum(confidence)|, i.e. count × |accuracy - mean confidence|
    gap = np.abs(np.bincount(bins, correct, n_bins) - np.bincount(bins, conf, n_bins))
    return float(gap.sum() / len(conf))


def expected_calibration_error(probs, y_true, n_bins: int = ECE_BINS) -> float:
    """ECE (Naeini et al. 2015; Guo et al. 2017): sum over equal-width confidence bins of
    |accuracy - mean confidence| weighted by the bin's share of samples. In [0, 1]."""
    return _ece(*_conf_correct(probs, y_true), n_bins)


def reliability_bins(probs, y_true, n_bins: int = ECE_BINS) -> list[dict]:
    """The reliability diagram behind the ECE: one dict per non-empty equal-width confidence bin
    with ``lo``, ``hi``, ``count``, ``confidence`` (mean top-class probability) and ``accuracy``."""
    conf, correct = _conf_correct(probs, y_true)
    bins, edges = _bin_index(conf, n_bins), np.linspace(0.0, 1.0, n_bins + 1)
    return [{"lo": float(edges[b]), "hi": float(edges[b + 1]), "count": int((bins == b).sum()),
             "confidence": float(conf[bins == b].mean()),
             "accuracy": float(correct[bins == b].mean())}
            for b in range(n_bins) if (bins == b).any()]


def ece_confidence_interval(probs, y_true, *, level: float = 0.95, n_boot: int = 2000,
                            seed: int = 0, n_bins: int = ECE_BINS) -> tuple[float, float]:
    """Percentile bootstrap interval of the ECE (images resampled with replacement). On a test
    set of a few hundred images it is wide: report it next to the point value."""
    conf, correct = _conf_correct(probs, y_true)
    if not len(conf):
        return 0.0, 0.0
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(conf), size=(n_boot, len(conf)))
    eces = np.array([_ece(conf[i], correct[i], n_bins) for i in idx])
    a = (1.0 - level) / 2.0
    return float(np.quantile(eces, a)), float(np.quantile(eces, 1.0 - a))


def bootstrap_interval(stat, n: int, *, level: float = 0.95, n_boot: int = 2000,
                       seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of ``stat(idx)`` over ``n`` items resampled with
    replacement (``stat`` receives an index array)."""
    if n == 0:
        return 0.0, 0.0
    rng = np.random.default_rng(seed)
    vals = np.array([stat(rng.integers(0, n, size=n)) for _ in range(n_boot)])
    a = (1.0 - level) / 2.0
    return float(np.quantile(vals, a)), float(np.quantile(vals, 1.0 - a))


def negative_log_likelihood(probs, y_true) -> float:
    """Mean −log p(true class), probabilities clipped at 1e-12."""
    probs = np.asarray(probs, np.float64)
    y_true = np.asarray(y_true, np.int64)
    if not len(y_true):
        return 0.0
    return float(-np.log(np.clip(probs[np.arange(len(y_true)), y_true], 1e-12, 1.0)).mean())


def brier_score(probs, y_true) -> float:
    """Mean over images of the squared distance between the probability row and the one-hot
    truth (multi-class Brier score, in [0, 2])."""
    probs = np.asarray(probs, np.float64)
    y_true = np.asarray(y_true, np.int64)
    if not len(y_true):
        return 0.0
    onehot = np.eye(probs.shape[1])[y_true]
    return float(((probs - onehot) ** 2).sum(1).mean())


def classification_report(probs, y_true, classes: list[str], *, ci: bool = False) -> dict:
    """The JSON the ``evaluate`` command prints: accuracy, macro_f1, ece, classes, per_class,
    confusion_matrix (rows true, columns predicted), n, nll, brier, reliability (bins) and,
    with ``ci``, ece_ci95, accuracy_ci95 and macro_f1_ci95 (percentile bootstrap, 2000
    resamples of the images)."""
    probs = np.asarray(probs)
    y_pred = probs.argmax(1)
    y_arr = np.asarray(y_true, np.int64)
    cm = confusion_matrix(y_true, y_pred, len(classes))
    cis = {}
    if ci:
        cis = {"ece_ci95": list(ece_confidence_interval(probs, y_true)),
               "accuracy_ci95": list(bootstrap_interval(
                   lambda i: float((y_pred[i] == y_arr[i]).mean()), len(y_arr))),
               "macro_f1_ci95": list(bootstrap_interval(
                   lambda i: macro_f1(confusion_matrix(y_arr[i], y_pred[i], len(classes))),
                   len(y_arr)))}
    return {
        "accuracy": accuracy(y_true, y_pred),
        "macro_f1": macro_f1(cm),
        "ece": expected_calibration_error(probs, y_true),
        "classes": list(classes),
        "per_class": per_class_report(cm, list(classes)),
        "confusion_matrix": cm.tolist(),
        "n": int(len(y_true)),
        "nll": negative_log_likelihood(probs, y_true),
        "brier": brier_score(probs, y_true),
        "reliability": reliability_bins(probs, y_true),
    } | cis
