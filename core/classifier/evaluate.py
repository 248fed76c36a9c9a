"""Evaluate a loaded classifier on an image folder: the ``evaluate classifier`` report.

Images go through the model card's own preprocessing (the same code as the app). Optionally
measures the Grad-CAM mass outside the head: per image, the share of the predicted class's map
(at the scan's size) on background pixels (``head_mask`` False), averaged over the folder.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from core.classifier.calibration import softmax
from core.classifier.data import _read_gray, list_image_folder
from core.classifier.gradcam import mass_outside
from core.classifier.metrics import classification_report
from core.classifier.preprocess import head_mask
from core.progress import Progress, ProgressCallback

__all__ = ["evaluate_folder", "record_metrics"]


def evaluate_folder(clf, data: str | Path, *, calibrated: bool = True, gradcam_mass: bool = False,
                    batch_size: int = 32, progress: ProgressCallback | None = None) -> dict:
    """Report with keys accuracy, macro_f1, ece (calibrated unless told not to), ece_ci95
    (bootstrap), nll, brier, reliability (confidence bins), ece_uncalibrated, classes,
    per_class, confusion_matrix, n, model, temperature and, with
    ``gradcam_mass``, gradcam_outside_head (mean) and gradcam_outside_head_p90."""
    folder = list_image_folder(data, clf.classes)
    xs, masses = [], []
    for i, f in enumerate(folder.files):
        gray = _read_gray(f)
        if gradcam_mass:
            _, cam = clf.explain(gray)
            masses.append(mass_outside(cam, head_mask(gray)))
        xs.append(clf.prepare(gray)[0])
        if progress and (i + 1) % 20 == 0:
            progress(Progress(task="classifier", phase="evaluate", step=i + 1,
                              steps=len(folder.files)))
    logits = clf.logits_batch(np.stack(xs), batch_size)
    report = classification_report(softmax(logits, clf.temperature if calibrated else 1.0),
                                   folder.labels, clf.classes, ci=True)
    report["ece_uncalibrated"] = classification_report(softmax(logits), folder.labels,
                                                       clf.classes)["ece"]
    report["ece_calibrated"] = classification_report(softmax(logits, clf.temperature),
                                                     folder.labels, clf.classes)["ece"]
    report["model"], report["temperature"] = clf.version, clf.temperature
    report["calibrated"] = calibrated
    if gradcam_mass:
        report["gradcam_outside_head"] = float(np.mean(masses))
        report["gradcam_outside_head_p90"] = float(np.percentile(masses, 90))
    return report


def record_metrics(version: str, name: str, report: dict, *, command: str | None = None,
                   weights_dir: str | Path | None = None) -> Path:
    """Store ``report`` (plus the command and data fingerprint) as ``card["metrics"][name]``
    of a registry version; the card is re-validated and replaced atomically."""
    from core import registry
    from core.classifier.data import fingerprint

    card = registry.load_card("classifier", version, weights_dir=weights_dir)
    entry = dict(report)
    if command:
        entry["command"] = command
    if "data" in entry:
        entry["data_fingerprint"] = fingerprint(list_image_folder(entry["data"], card["classes"]))
    card.setdefault("metrics", {})[name] = entry
    return registry.replace_card("classifier", version, card, weights_dir=weights_dir)
