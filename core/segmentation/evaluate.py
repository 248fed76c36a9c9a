"""Evaluation of a segmentation version on image/mask pairs: Dice and IoU per image at the mask's
own size (prediction made at the model's size, restored through the crop box), means overall
and per class, and a bootstrap interval of the mean Dice.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from core.progress import Progress, ProgressCallback, null_progress
from core.segmentation import TASK
from core.segmentation.data import PairData, list_pairs, read_gray, read_mask
from core.segmentation.metrics import bootstrap_ci, dice, iou

__all__ = ["evaluate_pairs", "evaluate_folder", "summarise", "tune_postprocessing",
           "THRESHOLDS"]

#: Thresholds :func:`tune_postprocessing` tries on the validation pairs.
THRESHOLDS = (0.3, 0.4, 0.5, 0.6, 0.7)

_CHUNK = 32


def summarise(rows: list[dict], classes: Sequence[str], *, seed: int = 0) -> dict:
    """Per-image rows ``{"class", "dice", "iou", "tumour"}`` → the report: ``dice``, ``iou``
    (means over images), ``per_class`` ``{class: {dice, iou, n}}``, ``n``, ``dice_ci95``
    (percentile bootstrap of the mean Dice, 2000 resamples), ``iou_ci95``, and the mean Dice
    over the images whose true mask is not empty (``dice_tumour``, ``n_tumour``)."""
    d = np.array([r["dice"] for r in rows], np.float64)
    j = np.array([r["iou"] for r in rows], np.float64)
    tumour = np.array([r["tumour"] for r in rows], bool)
    per_class = {}
    for c in classes:
        sel = np.array([r["class"] == c for r in rows], bool)
        if sel.any():
            per_class[c] = {"dice": round(float(d[sel].mean()), 4),
                            "iou": round(float(j[sel].mean()), 4), "n": int(sel.sum())}
    r4 = lambda ci: None if ci is None else [round(v, 4) for v in ci]  # noqa: E731
    return {"dice": round(float(d.mean()), 4) if len(d) else None,
            "iou": round(float(j.mean()), 4) if len(j) else None,
            "per_class": per_class, "n": len(rows),
            "dice_ci95": r4(bootstrap_ci(d, seed=seed)), "iou_ci95": r4(bootstrap_ci(j, seed=seed)),
            "dice_tumour": round(float(d[tumour].mean()), 4) if tumour.any() else None,
            "n_tumour": int(tumour.sum())}


def evaluate_pairs(segmenter, data: PairData, positions: Sequence[int] | None = None, *,
                   progress: ProgressCallback = null_progress) -> dict:
    """Evaluate ``segmenter`` (:class:`core.segmentation.inference.Segmenter`) on ``data`` (the
    ``positions`` given, default all). Returns :func:`summarise`'s report plus ``images``:
    the per-image rows (class, name, dice, iou, true and predicted pixel counts)."""
    positions = list(range(len(data))) if positions is None else [int(i) for i in positions]
    rows = []
    for start in range(0, len(positions), _CHUNK):
        chunk = positions[start:start + _CHUNK]
        images = [read_gray(data.images[i]) for i in chunk]
        probs = segmenter.probabilities(images)
        for i, img, prob in zip(chunk, images, probs):
            truth = read_mask(data.masks[i])
            if truth.shape != img.shape[:2]:
                raise ValueError(f"{data.images[i]}: image {img.shape[:2]} and mask "
                                 f"{truth.shape} differ in size.")
            pred = segmenter.mask_from_prob(prob)
            rows.append({"class": data.classes[int(data.labels[i])],
                         "name": f"{data.images[i].parent.name}/{data.images[i].name}",
                         "dice": dice(pred, truth), "iou": iou(pred, truth),
                         "tumour": bool(truth.any()), "true_pixels": int(truth.sum()),
                         "pred_pixels": int(pred.sum())})
        progress(Progress(task=TASK, phase="evaluate", step=len(rows), steps=len(positions),
                          message=f"{len(rows)}/{len(positions)} images"))
    report = summarise(rows, data.classes)
    report["images"] = rows
    return report


def evaluate_folder(segmenter, folder: str | Path, *,
                    progress: ProgressCallback = null_progress) -> dict:
    """Every pair of ``folder`` (``images/<class>/`` + ``masks/<class>/``)."""
    from core.segmentation.data import fingerprint

    data = list_pairs(folder)
    report = evaluate_pairs(segmenter, data, progress=progress)
    report["data_fingerprint"] = fingerprint(data)
    return report


def tune_postprocessing(segmenter, data: PairData, positions: Sequence[int], *,
                        thresholds: Sequence[float] = THRESHOLDS,
                        postprocess: Sequence[str] = ("none", "largest_component"),
                        tta: Sequence[str] = ("none", "hflip"),
                        progress: ProgressCallback = null_progress) -> dict:
    """Choose the test-time augmentation, probability threshold and mask clean-up on
    validation pairs (never the test pairs): the combination with the highest mean Dice at the
    masks' own size (ties: the earlier one, i.e. no TTA, no clean-up, the lower threshold).
    Returns ``{"tta", "threshold", "postprocess", "dice", "grid": [...], "n"}``."""
    from core.segmentation.inference import Segmenter, postprocess_mask

    positions = [int(i) for i in positions]
    truths = [read_mask(data.masks[i]) for i in positions]
    grid = []
    for mode in tta:
        card = dict(segmenter.card, preprocessing=dict(segmenter.preprocessing, tta=mode))
        seg = Segmenter(segmenter.model, card)
        probs = []
        for start in range(0, len(positions), _CHUNK):
            chunk = positions[start:start + _CHUNK]
            probs += seg.probabilities([read_gray(data.images[i]) for i in chunk])
            progress(Progress(task=TASK, phase="tune", step=len(probs), steps=len(positions),
                              message=f"tta {mode}: {len(probs)}/{len(positions)} images"))
        for how in postprocess:
            for t in thresholds:
                scores = [dice(postprocess_mask(p >= t, how), m) for p, m in zip(probs, truths)]
                grid.append({"tta": mode, "threshold": float(t), "postprocess": how,
                             "dice": round(float(np.mean(scores)), 4)})
    best = max(grid, key=lambda g: g["dice"])   # max keeps the first of equal values
    return {**best, "grid": grid, "n": len(positions)}
