"""Evaluate a loaded classifier on an image folder: the ``evaluate classifier`` report.

Images go through the model card's own preprocessing (the same code as the app). Optionally
measures the Grad-CAM mass outside the head: per image, the share of the predicted class's map
(at the scan's size) on background pixels (``head_mask`` False), averaged over the folder.

Out-of-distribution detection (:mod:`core.classifier.ood`): :func:`fit_ood` fits a version's
statistics on its own training split and sets the threshold on its validation split;
:func:`evaluate_ood` measures it on an in-distribution and an out-of-distribution folder.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from core.classifier.calibration import softmax
from core.classifier.data import read_gray, list_image_folder
from core.classifier.gradcam import mass_outside
from core.classifier.metrics import classification_report
from core.classifier.preprocess import head_mask
from core.progress import Progress, ProgressCallback

__all__ = ["evaluate_folder", "record_metrics", "fit_ood", "evaluate_ood", "record_ood_evaluation",
           "dataset_name", "scan_files"]


def evaluate_folder(clf, data: str | Path, *, calibrated: bool = True, gradcam_mass: bool = False,
                    batch_size: int = 32, progress: ProgressCallback | None = None) -> dict:
    """Report with keys accuracy, macro_f1, ece (calibrated unless told not to), ece_ci95
    (bootstrap), nll, brier, reliability (confidence bins), ece_uncalibrated, classes,
    per_class, confusion_matrix, n, model, temperature and, with
    ``gradcam_mass``, gradcam_outside_head (mean, with gradcam_outside_head_ci95) and
    gradcam_outside_head_p90. Accuracy and macro-F1 carry 95 % bootstrap intervals."""
    folder = list_image_folder(data, clf.classes)
    xs, masses = [], []
    for i, f in enumerate(folder.files):
        gray = read_gray(f)
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
        from core.classifier.metrics import bootstrap_interval

        m = np.asarray(masses, np.float64)
        report["gradcam_outside_head"] = float(np.mean(masses))
        report["gradcam_outside_head_ci95"] = list(bootstrap_interval(
            lambda i: float(m[i].mean()), len(m)))
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


# ---- out-of-distribution detection ----------------------------------------------------------
_NOT_SCANS = frozenset({".csv", ".md", ".txt", ".json", ".py", ".npz", ".h5"})


def dataset_name(path: str | Path) -> str:
    """A data folder's name as recorded in cards: its last two path parts (e.g.
    ``brain-mri/train``), never an absolute path."""
    p = Path(path).resolve()
    return f"{p.parent.name}/{p.name}"


def scan_files(root: str | Path) -> list[Path]:
    """Every file under ``root`` that may be a scan (recursively, sorted; hidden files and
    notes such as README.md / manifest.csv skipped)."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"Folder {root} does not exist.")
    return sorted(f for f in root.rglob("*") if f.is_file()
                  and not any(part.startswith(".") for part in f.relative_to(root).parts)
                  and f.suffix.lower() not in _NOT_SCANS)


def _files_fingerprint(root: Path, files: list[Path]) -> str:
    import hashlib

    h = hashlib.sha256()
    for f in files:
        h.update(f"{f.relative_to(root).as_posix()}:{f.stat().st_size}\n".encode())
    return "sha256:" + h.hexdigest()


def fit_ood(data: str | Path, version: str | None = None, *, weights_dir: str | Path | None = None,
            percentile: float | None = None, command: str | None = None, batch_size: int = 64,
            progress: ProgressCallback | None = None) -> dict:
    """Fit the OOD statistics of a registry version and record them.

    Features of the version's own training split of ``data`` (rebuilt from the card; the folder
    must match the card's data fingerprint) give, per feature layer, the class means and the
    shared Ledoit-Wolf precision (:func:`core.classifier.ood.fit_ensemble`); the threshold is the ``percentile`` (default 95) of the scores of its validation
    images that have no near duplicate in the training split (as for calibration). Writes
    ``ood.npz`` next to the weights and the card's ``ood`` section (replacing an earlier one,
    evaluation included). Returns the section."""
    import datetime as _dt
    import os
    import tempfile

    from core import registry
    from core.classifier import ood
    from core.classifier.data import card_split, fingerprint, load_images
    from core.classifier.dedup import DEDUP_MAX_BITS, calibration_subset
    from core.classifier.inference import Classifier
    from core.classifier.preprocess import normalise

    percentile = ood.DEFAULT_PERCENTILE if percentile is None else float(percentile)
    clf = Classifier.load(version, weights_dir=weights_dir)
    card = clf.card
    folder = list_image_folder(data, clf.classes)
    tr, va = card_split(folder, card, data)
    pre = clf.preprocessing
    feats = {}
    for name, idx in (("train", tr), ("validation", va)):
        if progress:
            progress(Progress(task="classifier", phase="ood",
                              message=f"features of {len(idx)} {name} images"))
        imgs = load_images([folder.files[i] for i in idx], pre)
        _, f = clf.forward_batch(normalise(imgs, pre["normalise"], int(pre.get("channels", 3))),
                                 batch_size)
        if not f:
            raise ValueError(f"Model {clf.version} has none of the feature layers "
                             f"{ood.FEATURE_LAYERS} for OOD statistics.")
        feats[name] = (imgs, f)
    stats, shrinkage = ood.fit_ensemble(clf.feature_layers, feats["train"][1],
                                        folder.labels[tr], len(clf.classes))
    keep = calibration_subset(feats["train"][0], feats["validation"][0])
    val_scores = stats.score([f[keep] for f in feats["validation"][1]])
    threshold = ood.threshold_at(val_scores, percentile)
    train_scores = stats.score(feats["train"][1])
    out = registry.version_dir("classifier", clf.version, weights_dir=weights_dir)
    fd, tmp = tempfile.mkstemp(prefix=".ood-", suffix=".npz", dir=out)
    with os.fdopen(fd, "wb") as fh:
        fh.write(stats.to_bytes())
    os.chmod(tmp, 0o644)
    os.replace(tmp, out / ood.STATS_FILE)
    q = lambda s: [round(float(v), 3) for v in np.percentile(s, [0, 50, 95, 100])]  # noqa: E731
    section = {
        "method": ood.METHOD,
        "score": "mean over the feature layers of the Mahalanobis distance (not squared) of "
                 "the layer's spatially averaged activations to the closest class mean, each "
                 "divided by its median on the training images (Lee et al. 2018, feature "
                 "ensemble with equal weights); higher = less like the training data",
        "feature_layers": list(stats.layers),
        "feature_dims": [int(m.shape[1]) for m in stats.means],
        "layer_scales": [round(float(v), 4) for v in stats.scales],
        "covariance": "per layer, shared over classes: Ledoit-Wolf shrinkage of the "
                      "class-centred training features",
        "shrinkage": [round(v, 6) for v in shrinkage],
        "tta": clf.tta,
        "threshold": threshold,
        "percentile": percentile,
        "threshold_data": f"{len(keep)} of {len(va)} validation images of the version's own "
                          f"split (those with no near duplicate in its training split: DCT "
                          f"pHash distance > {DEDUP_MAX_BITS} of 64 bits)",
        "n_fit": int(len(tr)), "n_threshold": int(len(keep)), "n_validation": int(len(va)),
        "score_quantiles_0_50_95_100": {"train": q(train_scores), "validation": q(val_scores)},
        "stats_file": ood.STATS_FILE,
        "stats_sha256": ood.file_sha256(out / ood.STATS_FILE),
        "fit_data": {"name": dataset_name(data), "fingerprint": fingerprint(folder),
                     "split": "the card's training split (its seed and val_fraction)"},
        "command": command,
        "created_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    registry.replace_card("classifier", clf.version, dict(card, ood=section),
                          weights_dir=weights_dir)
    return section


def _scores_of(clf, root: Path, batch_size: int, progress) -> dict:
    """Load every scan under ``root`` (app path: ``load_scan`` then the card's preprocessing)
    and score it in batches."""
    from core.classifier.calibration import softmax
    from core.classifier.ood import energy_score
    from core.errors import MedScanError
    from core.imaging import load_scan

    files = scan_files(root)
    xs, kept, skipped = [], [], []
    for i, f in enumerate(files):
        try:
            xs.append(clf.prepare(load_scan(f).pixels)[0])
            kept.append(f)
        except (MedScanError, ValueError) as err:
            skipped.append({"file": f.relative_to(root).as_posix(), "error": str(err)[:200]})
        if progress and (i + 1) % 20 == 0:
            progress(Progress(task="classifier", phase="ood", step=i + 1, steps=len(files)))
    if not kept:
        raise ValueError(f"{root}: no readable scans.")
    logits, feats = clf.forward_batch(np.stack(xs), batch_size)
    rel = [f.relative_to(root).as_posix() for f in kept]
    return {"files": rel, "kinds": [r.split("/")[0] if "/" in r else "(top level)" for r in rel],
            "scores": clf.ood_scores(feats), "energy": energy_score(logits),
            "confidence": softmax(logits, clf.temperature).max(axis=1), "skipped": skipped,
            "fingerprint": _files_fingerprint(root, kept)}


def _flagged(mask: np.ndarray) -> dict:
    return {"count": int(mask.sum()), "n": int(mask.size),
            "fraction": round(float(mask.mean()), 4) if mask.size else None}


def evaluate_ood(clf, in_dir: str | Path, out_dir: str | Path, *, batch_size: int = 32,
                 low_confidence: float = 0.60, progress: ProgressCallback | None = None) -> dict:
    """OOD report of a classifier with fitted statistics on an in-distribution folder
    (``in_dir``, e.g. test slices, any layout) and an out-of-distribution folder (``out_dir``,
    one subfolder per kind). Keys: ``auroc`` and ``fpr_at_95_tpr`` (OOD = positive, from the
    scores alone), ``in_flagged`` / ``out_flagged`` (count, n, fraction flagged at the card's
    threshold), ``out_flagged_by_kind``, the same with the energy score
    (``energy_auroc``, ``energy_fpr_at_95_tpr``, a reference, not used by the app), how many
    the low-confidence warning alone would catch (``*_low_confidence``), the in-distribution
    files flagged and the OOD files missed, data names and fingerprints."""
    from core.classifier import ood

    if clf.ood is None:
        raise ValueError(f"OOD not checked for model {clf.version}: {clf.ood_problem}. Fit it "
                         "first: python -m core calibrate ood --data TRAIN_DIR.")
    a = _scores_of(clf, Path(in_dir), batch_size, progress)
    b = _scores_of(clf, Path(out_dir), batch_size, progress)
    thr = clf.ood.threshold
    fin, fout = a["scores"] > thr, b["scores"] > thr
    kinds = sorted(set(b["kinds"]))
    kind_arr = np.asarray(b["kinds"])
    return {
        "model": clf.version, "method": clf.ood.method, "threshold": thr,
        "auroc": round(ood.auroc(a["scores"], b["scores"]), 4),
        "fpr_at_95_tpr": round(ood.fpr_at_tpr(a["scores"], b["scores"], 0.95), 4),
        "in_flagged": _flagged(fin), "out_flagged": _flagged(fout),
        "out_flagged_by_kind": {k: _flagged(fout[kind_arr == k]) for k in kinds},
        "energy_auroc": round(ood.auroc(a["energy"], b["energy"]), 4),
        "energy_fpr_at_95_tpr": round(ood.fpr_at_tpr(a["energy"], b["energy"], 0.95), 4),
        "in_low_confidence": _flagged(a["confidence"] < low_confidence),
        "out_low_confidence": _flagged(b["confidence"] < low_confidence),
        "in_flagged_files": [f for f, m in zip(a["files"], fin) if m],
        "out_missed_files": [f for f, m in zip(b["files"], fout) if not m],
        "skipped": {"in": a["skipped"], "out": b["skipped"]},
        "in_data": {"name": dataset_name(in_dir), "fingerprint": a["fingerprint"]},
        "out_data": {"name": dataset_name(out_dir), "fingerprint": b["fingerprint"]},
    }


def record_ood_evaluation(version: str, report: dict, *, command: str | None = None,
                          weights_dir: str | Path | None = None) -> Path:
    """Store ``report`` as ``card["ood"]["evaluation"]`` (the card must have an ``ood``
    section fitted with the same threshold)."""
    from core import registry

    card = registry.load_card("classifier", version, weights_dir=weights_dir)
    section = card.get("ood")
    if not isinstance(section, dict) or section.get("threshold") != report.get("threshold"):
        raise ValueError(f"Model {version}: the report's threshold does not match the card's "
                         "ood section (refitted since?).")
    entry = dict(report, command=command) if command else dict(report)
    card["ood"] = dict(section, evaluation=entry)
    return registry.replace_card("classifier", version, card, weights_dir=weights_dir)
