"""Classifier ensembles (issue 12): two or three registry versions exposed as one version.

An ensemble version is a registry folder holding only its model card (``"architecture":
"ensemble"``, see :mod:`core.registry`): the members are other versions of the same registry,
named with the SHA-256 of their weights file. Its logits are the mean of the members' logits
(each member on the same preprocessed scan, flip-averaged when the ensemble's
``preprocessing.tta`` says so) and one temperature is fitted on those averaged logits, on the
clean validation subset ``calibrate`` uses. Grad-CAM: each member's map comes from the gradient
of the *ensemble's* class score with respect to that member's Grad-CAM layer, normalised as a
single model's map is, and the maps are averaged (:class:`core.classifier.inference.Classifier`
does it in one forward pass over all members). The pooled feature layers of the members are
concatenated under the single model's layer names, so out-of-distribution statistics
(``calibrate ood``) and retrieval embeddings work on an ensemble as on one model.

:func:`create_ensemble` is ``python -m core ensemble classifier``; the Keras graph over the
members is :mod:`core.classifier.ensemble_graph` (built by ``Classifier.load``).
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from core.errors import ModelCardError
from core.progress import Progress, ProgressCallback, null_progress

__all__ = ["COMBINE", "GRADCAM_NOTE", "MIN_MEMBERS", "create_ensemble"]

TASK = "classifier"
MIN_MEMBERS = 2                    # what the command asks for (a card may hold one: a check)
COMBINE = "mean of the members' logits"
GRADCAM_NOTE = ("each member's Grad-CAM map, from the gradient of the ensemble's class score "
                "(the mean logit) with respect to that member's Grad-CAM layer, normalised as a "
                "single model's map is; the maps are then averaged (not renormalised: a peak "
                "below 1 means the members disagree on where)")


def _union(lists) -> list:
    return list(dict.fromkeys(x for xs in lists for x in (xs or []) if isinstance(x, str)))


def _figures(report: dict) -> dict:
    return {k: report[k] for k in ("accuracy", "macro_f1", "nll", "ece", "brier", "n")}


def create_ensemble(members: Sequence[str], data: str | Path, version: str, *,
                    tta: str | None = None, activate: bool = False,
                    weights_dir: str | Path | None = None, command: str | None = None,
                    progress: ProgressCallback = null_progress) -> dict:
    """Publish the ensemble ``version`` of the registry versions ``members`` (2 or 3).

    The members must share classes, input size and preprocessing (``tta`` apart: ``tta`` here
    applies to every member) and their validation split of ``data``, their training folder
    (checked with their cards' fingerprint, seed and fraction). The temperature is fitted on the
    validation images with no near duplicate in the training split, as ``calibrate
    classifier`` does. Returns what was done: the temperature, the clean-validation figures of
    the ensemble before (T = 1) and after calibration and of each member (its own temperature
    and averaging), and the version's folder."""
    from core import registry
    from core.classifier.calibration import fit_temperature, softmax
    from core.classifier.data import card_split, fingerprint, list_image_folder, load_images
    from core.classifier.dedup import calibration_subset
    from core.classifier.architectures import gradcam_layer_for
    from core.classifier.ensemble_graph import ensemble_model
    from core.classifier.inference import TTA_MODES, Classifier
    from core.classifier.metrics import classification_report
    from core.classifier.preprocess import normalise
    from core.classifier.train import _calibration_entry

    members = list(members)
    if not MIN_MEMBERS <= len(members) <= registry.MAX_ENSEMBLE_MEMBERS:
        raise ModelCardError(f"An ensemble has {MIN_MEMBERS} to "
                             f"{registry.MAX_ENSEMBLE_MEMBERS} members; got {len(members)}.")
    if len(set(members)) != len(members):
        raise ModelCardError("The same version is listed twice as a member.")
    if tta not in TTA_MODES:
        raise ValueError(f"tta must be one of {TTA_MODES}, got {tta!r}.")
    if registry.location(TASK, version, weights_dir=weights_dir) is not None:
        raise ModelCardError(f"Version {TASK}/{version} already exists.")
    cards = [registry.load_card(TASK, v, weights_dir=weights_dir) for v in members]
    for v, c in zip(members, cards):
        if registry.is_ensemble(c):
            raise ModelCardError(f"{v} is itself an ensemble: list its members instead.")
    first = cards[0]
    preprocessing = {k: v for k, v in first["preprocessing"].items() if k != "tta"}
    preprocessing.setdefault("size", [first["input_size"]] * 2)
    if tta:
        preprocessing["tta"] = tta
    layers = list(dict.fromkeys(gradcam_layer_for(c) for c in cards))
    card = {
        "task": TASK, "version": version, "architecture": registry.ENSEMBLE,
        "members": [{"version": v, "weights_sha256": registry.weights_sha256(
            TASK, v, weights_dir=weights_dir)} for v in members],
        "classes": list(first["classes"]), "input_size": first["input_size"],
        "preprocessing": preprocessing, "combine": COMBINE, "gradcam": GRADCAM_NOTE,
        "gradcam_layer": ", ".join(layers),
    }
    registry.ensemble_member_cards(TASK, card, weights_dir=weights_dir)  # checked in words

    folder = list_image_folder(data, card["classes"])
    splits = [card_split(folder, c, data) for c in cards]
    tr, va = splits[0]
    for v, (t, w) in zip(members[1:], splits[1:]):
        if not (np.array_equal(t, tr) and np.array_equal(w, va)):
            raise ModelCardError(
                f"{members[0]} and {v} were trained on different validation splits of {data} "
                "(seed, fraction or subsample differ): a temperature fitted on one's validation "
                "images would be fitted on the other's training images.")
    progress(Progress(task=TASK, phase="ensemble",
                      message=f"{len(members)} members, {len(va)} validation images"))
    x_tr = load_images([folder.files[i] for i in tr], preprocessing)
    x_va = load_images([folder.files[i] for i in va], preprocessing)
    keep = calibration_subset(x_tr, x_va)
    y = folder.labels[va][keep]
    x = normalise(x_va[keep], preprocessing["normalise"], int(preprocessing.get("channels", 3)))

    models = [registry.load_model(TASK, v, weights_dir=weights_dir)[0] for v in members]
    clf = Classifier(ensemble_model(models, cards), dict(card, calibration={"temperature": 1.0}))
    progress(Progress(task=TASK, phase="ensemble",
                      message=f"calibrating on {len(keep)} clean validation images"))
    logits = clf.logits_batch(x)
    temperature = fit_temperature(logits, y)
    before = classification_report(softmax(logits), y, card["classes"])
    after = classification_report(softmax(logits, temperature), y, card["classes"])
    member_figures = {}
    for v, model, mcard in zip(members, models, cards):
        one = Classifier(model, mcard)
        rep = classification_report(softmax(one.logits_batch(x), one.temperature), y,
                                    card["classes"])
        member_figures[v] = dict(_figures(rep), temperature=one.temperature, tta=one.tta)

    cfg = (first.get("training") or {}).get("config") or {}
    recorded = first.get("data") or {}
    y_tr, y_va = folder.labels[tr], folder.labels[va]
    pretrained = all(bool(c.get("pretrained")) for c in cards)
    card.update({
        "calibration": _calibration_entry(temperature, len(keep), len(va)),
        "pretrained": pretrained,
        "notice": next((c.get("notice") for c in cards if c.get("notice")), None),
        "description": (f"ensemble of {len(members)} classifiers ({', '.join(members)}): "
                        "mean of their logits, one temperature"
                        + ("; predictions average the scan and its left-right mirror"
                           if tta == "hflip" else "")),
        "data": {"path": str(Path(data).resolve()), "fingerprint": fingerprint(folder),
                 "modality": recorded.get("modality"), "body_part": recorded.get("body_part"),
                 "counts": folder.counts(),
                 "train_counts": {c: int((y_tr == i).sum()) for i, c in
                                  enumerate(card["classes"])},
                 "val_counts": {c: int((y_va == i).sum()) for i, c in
                                enumerate(card["classes"])},
                 "split": recorded.get("split")},
        "training": {"config": {"data": str(Path(data).resolve()),
                                "val_fraction": cfg.get("val_fraction", 0.15),
                                "seed": cfg.get("seed", 42),
                                "max_images": cfg.get("max_images")},
                     "command": command, "members": members,
                     "note": "no training: the members' weights, their logits averaged, the "
                             "temperature fitted on the members' shared clean validation "
                             "images"},
        "metrics": {"validation_clean": _figures(after) | {
            "note": "validation images with no near duplicate in the training split (the "
                    "temperature was fitted on them, so this ECE is optimistic)"},
            "validation_clean_uncalibrated": _figures(before),
            "members_validation_clean": member_figures},
        "caveats": _union(c.get("caveats") for c in cards),
        "credits": _union(c.get("credits") for c in cards),
    })
    path = registry.save_version(TASK, None, card, version=version, activate=activate,
                                 weights_dir=weights_dir)
    return {"version": version, "path": str(path), "members": members, "tta": tta,
            "temperature": float(temperature), "n_validation": int(len(va)),
            "n_clean": int(len(keep)), "before": _figures(before), "after": _figures(after),
            "members_clean": member_figures, "activated": bool(activate)}
