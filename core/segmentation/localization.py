"""Does a Grad-CAM map look where the tumour is? Two per-image scores against a tumour mask.

* **Pointing game** (Zhang et al. 2016, "Top-down Neural Attention by Excitation Backprop"):
  1 when the map's maximum lies inside the mask dilated by a tolerance, else 0.
* **Energy in box** (the "energy-based pointing game" of Score-CAM, Wang et al. 2020): the share
  of the map's total mass inside the mask's bounding box, dilated by the same tolerance.

Both are computed at a fixed comparison size (``COMPARE_SIZE``² by default, nearest for the mask,
area for the map) so that the tolerance means the same on a 512² and a 256² scan. An empty mask
gives ``None`` for both (there is nothing to point at).
"""
from __future__ import annotations

import cv2
import numpy as np

from core.segmentation.metrics import mask_bbox

__all__ = ["COMPARE_SIZE", "TOLERANCE_PX", "localization_scores", "summarise_localization"]

COMPARE_SIZE = 256   # side the map and mask are compared at
TOLERANCE_PX = 8     # dilation of the mask (and its box) at COMPARE_SIZE, in pixels


def _at(mask: np.ndarray, heatmap: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    m = cv2.resize(np.asarray(mask, np.uint8), (size, size), interpolation=cv2.INTER_NEAREST)
    h = cv2.resize(np.asarray(heatmap, np.float32), (size, size), interpolation=cv2.INTER_AREA)
    return m.astype(bool), np.clip(h, 0.0, None)


def localization_scores(heatmap: np.ndarray, mask: np.ndarray, *, size: int = COMPARE_SIZE,
                        tolerance: int = TOLERANCE_PX) -> dict:
    """``{"pointing_hit": bool | None, "energy_in_box": float | None}`` for one map (H×W, ≥ 0,
    any scale) and mask (H'×W' bool; sizes may differ: both go to ``size``²)."""
    m, h = _at(mask, heatmap, size)
    if not m.any():
        return {"pointing_hit": None, "energy_in_box": None}
    k = 2 * tolerance + 1
    dilated = cv2.dilate(m.astype(np.uint8), np.ones((k, k), np.uint8)).astype(bool)
    peak = np.unravel_index(int(np.argmax(h)), h.shape)
    x0, y0, x1, y1 = mask_bbox(m)
    box = np.zeros_like(m)
    box[max(0, y0 - tolerance):min(size, y1 + tolerance),
        max(0, x0 - tolerance):min(size, x1 + tolerance)] = True
    total = float(h.sum())
    return {"pointing_hit": bool(dilated[peak]),
            "energy_in_box": float(h[box].sum() / total) if total > 0 else 0.0}


def summarise_localization(rows: list[dict]) -> dict:
    """Per-image :func:`localization_scores` → ``{"pointing_game", "energy_in_box", "n"}``
    (means over images with a non-empty mask)."""
    hits = [r["pointing_hit"] for r in rows if r.get("pointing_hit") is not None]
    energy = [r["energy_in_box"] for r in rows if r.get("energy_in_box") is not None]
    return {"pointing_game": round(float(np.mean(hits)), 4) if hits else None,
            "energy_in_box": round(float(np.mean(energy)), 4) if energy else None,
            "n": len(hits)}
