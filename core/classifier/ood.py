"""Out-of-distribution (OOD) detection from the classifier's own features.

Score (Lee et al., "A Simple Unified Framework for Detecting Out-of-Distribution Samples and
Adversarial Attacks", NeurIPS 2018): for each feature layer, the Mahalanobis distance of the
scan's spatially averaged activations to the closest class mean under one covariance shared by
all classes; the score is the mean over layers of these distances, each divided by its median
on the training images (the paper's feature ensemble with equal weights, since no OOD data is
used for fitting). Layers (:data:`FEATURE_LAYERS`): the output of every VGG block's pooling
and the penultimate global-average-pooled features. The covariance is the Ledoit-Wolf shrinkage
estimate (Ledoit & Wolf, J. Multivariate Anal. 88, 2004) of the class-centred training
features, so it is well conditioned even with more dimensions than a class has images. The
energy score ``-T logsumexp(logits / T)`` (Liu et al., "Energy-based Out-of-distribution
Detection", NeurIPS 2020) is provided as a reference figure only.

Convention everywhere: a HIGHER score means MORE unlike the training data; a scan is out of
distribution when its score is above the threshold. The threshold is a percentile (default the
95th) of the scores of in-distribution validation images, so about 5 % of in-distribution scans
are flagged by design.

The statistics (class means, precision matrix) are stored in :data:`STATS_FILE` next to the
weights; the model card's ``ood`` section names the file with its SHA-256, the threshold and how
it was fitted. Everything here is pure NumPy: arrays in, arrays out.
"""
from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["FEATURE_LAYER", "FEATURE_LAYERS", "STATS_FILE", "METHOD", "DEFAULT_PERCENTILE",
           "OODStats", "fit_ensemble", "ledoit_wolf", "fit_class_gaussians", "mahalanobis_sq",
           "mahalanobis_score",
           "energy_score", "threshold_at", "auroc", "fpr_at_tpr", "detection_rate",
           "file_sha256", "verdict"]

FEATURE_LAYER = "avg_pool"   # global average pooling before dropout and the logits layer
#: Layers whose (spatially averaged) outputs feed the score: every VGG block's pooling output
#: (low-level statistics catch photos, CT windows, ultrasound) and the penultimate features.
FEATURE_LAYERS = ("block1_pool", "block2_pool", "block3_pool", "block4_pool", FEATURE_LAYER)
STATS_FILE = "ood.npz"
METHOD = "mahalanobis feature ensemble"
DEFAULT_PERCENTILE = 95.0    # threshold percentile of in-distribution validation scores (~5 % FPR)


def ledoit_wolf(x: np.ndarray) -> tuple[np.ndarray, float]:
    """Ledoit-Wolf shrunk covariance of ``x`` (N, D), already centred (rows are deviations
    from their mean): ``(1 - s) S + s (tr S / D) I`` with ``S = xᵀx / N`` and the shrinkage
    ``s`` in [0, 1] that minimises the expected Frobenius loss (the estimate scikit-learn's
    ``ledoit_wolf`` computes). Returns ``(covariance (D, D), s)``."""
    x = np.asarray(x, np.float64)
    if x.ndim != 2 or len(x) < 2:
        raise ValueError(f"ledoit_wolf needs a 2-D array with at least 2 rows, got {x.shape}.")
    n, d = x.shape
    emp = x.T @ x / n
    mu = float(np.trace(emp)) / d
    x2 = x ** 2
    delta_ = float(np.sum(emp ** 2))                     # sum of squared entries of S
    beta_ = float(np.sum(x2.T @ x2))                     # sum_k ||x_k||^4
    beta = (beta_ / n - delta_) / (d * n)
    delta = (delta_ - 2.0 * mu * float(np.trace(emp)) + d * mu ** 2) / d
    beta = min(beta, delta)
    s = 0.0 if beta == 0 else beta / delta
    cov = (1.0 - s) * emp
    cov.flat[::d + 1] += s * mu
    return cov, float(s)


def fit_class_gaussians(features: np.ndarray, labels: np.ndarray, num_classes: int
                        ) -> tuple[np.ndarray, np.ndarray, float]:
    """Class means (K, D) and the precision (inverse of the shared Ledoit-Wolf covariance of
    the class-centred features, D × D) of ``features`` (N, D) with integer ``labels`` (N,).
    Every class needs at least one sample. Returns ``(means, precision, shrinkage)``."""
    f = np.asarray(features, np.float64)
    y = np.asarray(labels)
    if f.ndim != 2 or y.shape != (len(f),):
        raise ValueError(f"features (N, D) and labels (N,) expected, got {f.shape} and {y.shape}.")
    means = np.zeros((num_classes, f.shape[1]))
    for k in range(num_classes):
        if not np.any(y == k):
            raise ValueError(f"class {k} has no samples to fit its mean.")
        means[k] = f[y == k].mean(axis=0)
    cov, s = ledoit_wolf(f - means[y])
    precision = np.linalg.inv(cov)
    return means, (precision + precision.T) / 2, s


def mahalanobis_sq(features: np.ndarray, means: np.ndarray, precision: np.ndarray) -> np.ndarray:
    """Squared Mahalanobis distances (N, K): ``(f - μ_k)ᵀ P (f - μ_k)`` for every sample and
    class mean."""
    f = np.atleast_2d(np.asarray(features, np.float64))
    m = np.asarray(means, np.float64)
    p = np.asarray(precision, np.float64)
    if f.shape[1] != m.shape[1] or p.shape != (m.shape[1], m.shape[1]):
        raise ValueError(f"shapes differ: features {f.shape}, means {m.shape}, "
                         f"precision {p.shape}.")
    fp = f @ p
    # (f-m)ᵀP(f-m) = fᵀPf - 2 fᵀPm + mᵀPm
    d2 = (np.sum(fp * f, axis=1)[:, None] - 2.0 * fp @ m.T
          + np.sum((m @ p) * m, axis=1)[None, :])
    return np.maximum(d2, 0.0)


def mahalanobis_score(features: np.ndarray, means: np.ndarray, precision: np.ndarray
                      ) -> np.ndarray:
    """OOD score (N,): the Mahalanobis distance (not squared) to the closest class mean."""
    return np.sqrt(mahalanobis_sq(features, means, precision).min(axis=1))


def energy_score(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Energy ``-T logsumexp(logits / T)`` (N,) of logits (N, K); higher = more OOD."""
    z = np.atleast_2d(np.asarray(logits, np.float64)) / temperature
    top = z.max(axis=1, keepdims=True)
    return -temperature * (top[:, 0] + np.log(np.exp(z - top).sum(axis=1)))


def threshold_at(scores_in: np.ndarray, percentile: float = DEFAULT_PERCENTILE) -> float:
    """The ``percentile`` of in-distribution scores: scans scoring above it are flagged."""
    s = np.asarray(scores_in, np.float64)
    if s.size == 0 or not 0 < percentile <= 100:
        raise ValueError(f"need scores and a percentile in (0, 100], got {s.size}, {percentile}.")
    return float(np.percentile(s, percentile))


def auroc(scores_in: np.ndarray, scores_out: np.ndarray) -> float:
    """Area under the ROC curve with OOD as the positive class (score higher = OOD): the
    probability that a random OOD image scores above a random in-distribution one, ties
    counting half (Mann-Whitney U / (n_in n_out))."""
    a, b = np.asarray(scores_in, np.float64), np.asarray(scores_out, np.float64)
    if not len(a) or not len(b):
        raise ValueError("auroc needs in- and out-of-distribution scores.")
    both = np.concatenate([a, b])
    order = np.argsort(both, kind="mergesort")
    ranks = np.empty(len(both))
    sorted_ = both[order]
    i = 0
    while i < len(both):        # average ranks over ties
        j = i
        while j + 1 < len(both) and sorted_[j + 1] == sorted_[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    u = ranks[len(a):].sum() - len(b) * (len(b) + 1) / 2
    return float(u / (len(a) * len(b)))


def fpr_at_tpr(scores_in: np.ndarray, scores_out: np.ndarray, tpr: float = 0.95) -> float:
    """Fraction of in-distribution scores flagged at the highest threshold that still flags
    at least ``tpr`` of the OOD scores (FPR at 95 % TPR, OOD positive)."""
    b = np.sort(np.asarray(scores_out, np.float64))[::-1]
    k = int(np.ceil(tpr * len(b)))           # this many OOD scores must be >= the threshold
    thr = b[max(k, 1) - 1]
    return float(np.mean(np.asarray(scores_in, np.float64) >= thr))


def detection_rate(scores: np.ndarray, threshold: float) -> float:
    """Fraction of ``scores`` above ``threshold`` (flagged as OOD)."""
    s = np.asarray(scores, np.float64)
    return float(np.mean(s > threshold)) if s.size else float("nan")


def file_sha256(path: str | Path) -> str:
    return "sha256:" + hashlib.sha256(Path(path).read_bytes()).hexdigest()


def verdict(score: float, threshold: float, percentile: float = DEFAULT_PERCENTILE
            ) -> tuple[bool, str]:
    """``(out_of_distribution, reason)`` for one score."""
    if score > threshold:
        return True, (f"the model's features are far from every class it was trained on, "
                      f"further than {percentile:g}% of its validation slices")
    return False, ("the model's features are as close to its training classes as its "
                   "validation slices")


@dataclass(frozen=True)
class OODStats:
    """Fitted detector: per feature layer the class means (K, D_l), precision (D_l, D_l) and
    the median training distance (its scale); the flagging threshold of the combined score."""
    layers: tuple[str, ...]
    means: tuple[np.ndarray, ...]
    precisions: tuple[np.ndarray, ...]
    scales: np.ndarray
    threshold: float
    method: str = METHOD
    percentile: float = DEFAULT_PERCENTILE

    def layer_scores(self, features: list[np.ndarray]) -> np.ndarray:
        """Per-layer distances divided by their scales, (N, L)."""
        if len(features) != len(self.layers):
            raise ValueError(f"expected features of {len(self.layers)} layers, got "
                             f"{len(features)}.")
        return np.stack([mahalanobis_score(f, m, p) / s for f, m, p, s in
                         zip(features, self.means, self.precisions, self.scales)], axis=1)

    def score(self, features: list[np.ndarray]) -> np.ndarray:
        """Features, one (N, D_l) array per layer -> OOD scores (N,): the mean of the
        layers' scaled distances."""
        return self.layer_scores(features).mean(axis=1)

    def to_bytes(self) -> bytes:
        """The stats file's content (.npz: ``layers``, ``scales``, ``means_<i>``,
        ``precision_<i>``; float32 keeps it small)."""
        arrays = {"layers": np.array(self.layers), "scales": np.asarray(self.scales, np.float64)}
        for i, (m, p) in enumerate(zip(self.means, self.precisions)):
            arrays[f"means_{i}"] = np.asarray(m, np.float32)
            arrays[f"precision_{i}"] = np.asarray(p, np.float32)
        buf = io.BytesIO()
        np.savez_compressed(buf, **arrays)
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes, threshold: float, percentile: float = DEFAULT_PERCENTILE,
                   method: str = METHOD) -> OODStats:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            layers = tuple(str(n) for n in z["layers"])
            means = tuple(z[f"means_{i}"].astype(np.float64) for i in range(len(layers)))
            precisions = tuple(z[f"precision_{i}"].astype(np.float64)
                               for i in range(len(layers)))
            scales = z["scales"].astype(np.float64)
        for m, p in zip(means, precisions):
            if p.shape != (m.shape[1],) * 2:
                raise ValueError(f"precision {p.shape} does not fit means {m.shape}.")
        return cls(layers, means, precisions, scales, float(threshold), method,
                   float(percentile))

    @classmethod
    def from_file(cls, path: str | Path, section: dict) -> OODStats:
        """Load the statistics named by a card's ``ood`` section (its threshold, method and
        percentile); ``ValueError`` when the file is missing or its SHA-256 differs."""
        path = Path(path)
        if not path.is_file():
            raise ValueError(f"OOD statistics file {path.name} is missing.")
        expected = section.get("stats_sha256")
        if expected and file_sha256(path) != expected:
            raise ValueError(f"OOD statistics file {path.name} does not match the model card "
                             "(SHA-256 differs).")
        return cls.from_bytes(path.read_bytes(), section["threshold"],
                              section.get("percentile", DEFAULT_PERCENTILE),
                              section.get("method", METHOD))


def fit_ensemble(layers: tuple[str, ...], features: list[np.ndarray], labels: np.ndarray,
                 num_classes: int) -> tuple[OODStats, list[float]]:
    """Fit every layer's class Gaussians on training ``features`` (one (N, D_l) array per
    layer) and scale each layer by its median training distance. The statistics are rounded
    through their stored float32 form, so scores computed from the returned object equal those
    of the saved file. Threshold: NaN (set it from validation scores). Returns
    ``(stats, shrinkage per layer)``."""
    fitted = [fit_class_gaussians(f, labels, num_classes) for f in features]
    means = tuple(np.asarray(m, np.float32).astype(np.float64) for m, _, _ in fitted)
    precisions = tuple(np.asarray(p, np.float32).astype(np.float64) for _, p, _ in fitted)
    scales = np.array([np.median(mahalanobis_score(f, m, p))
                       for f, m, p in zip(features, means, precisions)])
    return (OODStats(tuple(layers), means, precisions, scales, float("nan")),
            [s for _, _, s in fitted])
