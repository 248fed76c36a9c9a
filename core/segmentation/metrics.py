"""Overlap metrics for binary masks, and a bootstrap interval for their mean.

Contract: ``pred`` and ``truth`` are arrays of the same shape (any layout), read as booleans
(non-zero = tumour). Both empty counts as a perfect match (Dice = IoU = 1): the model correctly
found nothing. One empty and the other not gives 0.
"""
from __future__ import annotations

import numpy as np

__all__ = ["dice", "iou", "bootstrap_ci", "mask_bbox"]


def _pair(pred, truth) -> tuple[np.ndarray, np.ndarray]:
    p, t = np.asarray(pred).astype(bool), np.asarray(truth).astype(bool)
    if p.shape != t.shape:
        raise ValueError(f"Masks differ in shape: prediction {p.shape}, truth {t.shape}.")
    return p, t


def dice(pred, truth) -> float:
    """Sørensen–Dice coefficient 2|P∩T| / (|P| + |T|), in [0, 1]; 1 when both are empty."""
    p, t = _pair(pred, truth)
    total = int(p.sum()) + int(t.sum())
    return 1.0 if total == 0 else 2.0 * int((p & t).sum()) / total


def iou(pred, truth) -> float:
    """Jaccard index |P∩T| / |P∪T|, in [0, 1]; 1 when both are empty."""
    p, t = _pair(pred, truth)
    union = int((p | t).sum())
    return 1.0 if union == 0 else int((p & t).sum()) / union


def bootstrap_ci(values, *, n_boot: int = 2000, level: float = 0.95, seed: int = 0
                 ) -> list[float] | None:
    """Percentile bootstrap interval ``[lo, hi]`` of the mean of ``values`` (None when empty)."""
    v = np.asarray(values, np.float64)
    if v.size == 0:
        return None
    rng = np.random.default_rng(seed)
    means = v[rng.integers(0, v.size, size=(n_boot, v.size))].mean(axis=1)
    a = (1 - level) / 2
    return [float(np.quantile(means, a)), float(np.quantile(means, 1 - a))]


def mask_bbox(mask) -> list[int] | None:
    """``[x0, y0, x1, y1]`` (half-open, pixels) of the non-zero pixels; None when empty."""
    m = np.asarray(mask).astype(bool)
    if not m.any():
        return None
    rows, cols = np.flatnonzero(m.any(1)), np.flatnonzero(m.any(0))
    return [int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1]
