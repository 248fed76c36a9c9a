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

__all__ = ["COMPARE_SIZE", "TOLERANCE_PX", "localization_scores", "summarise_localization",
           "evaluate_localization"]

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


def _near_dup(row: dict) -> bool | None:
    value = str(row.get("classifier_train_near_dup", "")).strip().lower()
    return {"true": True, "false": False}.get(value)


def evaluate_localization(clf, folder, *, methods=("gradcam", "gradcam++"),
                          explain: str = "true", limit: int | None = None,
                          progress=None) -> dict:
    """Grad-CAM (and Grad-CAM++) of classifier ``clf`` against the tumour masks of ``folder``
    (``images/<class>/`` + ``masks/<class>/``, optional ``manifest.csv``).

    ``explain="true"`` explains each image's own class (its folder name, when the classifier
    has it; otherwise the predicted class), ``"predicted"`` the predicted class. Returns
    ``{"model", "explained", "tolerance_px", "compare_size", "n", <method>: {"all",
    "not_train_near_dup", "train_near_dup"}}`` where each group is
    :func:`summarise_localization`'s ``{pointing_game, energy_in_box, n}``, plus the top-level
    ``pointing_game`` / ``energy_in_box`` of Grad-CAM on all images and the uniform-map baseline
    (``baseline_energy_in_box``: the mean dilated box area fraction; a map that is the same
    everywhere scores exactly this)."""
    from core.progress import Progress
    from core.segmentation import TASK
    from core.segmentation.data import list_pairs, read_gray, read_mask

    data = list_pairs(folder)
    positions = list(range(len(data)))[:limit] if limit else list(range(len(data)))
    rows: dict[str, list[dict]] = {m: [] for m in methods}
    dup: list[bool | None] = []
    baseline = []
    for k, i in enumerate(positions, 1):
        img = read_gray(data.images[i]).astype(np.float32) / 255.0
        mask = read_mask(data.masks[i])
        cls = data.classes[int(data.labels[i])]
        target = cls if explain == "true" and cls in clf.classes else None
        for method in methods:
            _, heat = clf.explain(img, target, method=method)
            rows[method].append(localization_scores(heat, mask))
        dup.append(_near_dup(data.meta[i]) if data.meta else None)
        uniform = localization_scores(np.ones(mask.shape, np.float32), mask)
        if uniform["energy_in_box"] is not None:
            baseline.append(uniform["energy_in_box"])
        if progress is not None and (k % 25 == 0 or k == len(positions)):
            progress(Progress(task=TASK, phase="localization", step=k, steps=len(positions),
                              message=f"{k}/{len(positions)} images"))
    report: dict = {"model": clf.version, "explained": explain, "tolerance_px": TOLERANCE_PX,
                    "compare_size": COMPARE_SIZE, "n": len(positions)}
    for method in methods:
        groups = {"all": rows[method]}
        if any(d is not None for d in dup):
            groups["not_train_near_dup"] = [r for r, d in zip(rows[method], dup) if d is False]
            groups["train_near_dup"] = [r for r, d in zip(rows[method], dup) if d is True]
        report[method] = {g: summarise_localization(r) for g, r in groups.items()}
    first = report[methods[0]]["all"]
    report["pointing_game"] = first["pointing_game"]
    report["energy_in_box"] = first["energy_in_box"]
    report["baseline_energy_in_box"] = round(float(np.mean(baseline)), 4) if baseline else None
    return report
