"""Clinician-facing checks around a prediction: low confidence, input unlike the training data
(out-of-distribution by the model's own features or by the DICOM header), the model card's
caveats and credits.

Low confidence and out of distribution are different statements: a scan that looks like the
training data can still leave the model undecided between classes (low confidence), and a scan
unlike anything it was trained on can get a confident but meaningless class (out of
distribution). When a scan is out of distribution the Prediction column leads with that and
shows the class only as a small grey line."""
from __future__ import annotations

import streamlit as st

from ui import figure_cache, plots
from ui.version_tables import confidence_statement, headline_metrics
from ui.engine_and_models import db_write

__all__ = ["LOW_CONFIDENCE", "TINY_IMAGE_PX", "OOD_HEADLINE", "OOD_KIND_LABELS", "input_warnings", "ood_verdict",
           "ood_card_text", "prediction_ui", "batch_row", "model_card_ui", "record_scan_once",
           "record_prediction_once"]

#: Below this calibrated top-class probability the page warns that the prediction is unreliable.
LOW_CONFIDENCE = 0.60
#: Images whose shorter side is below this many pixels are flagged as too small to judge.
TINY_IMAGE_PX = 64
_RECORDED = "_recorded"


def _norm(value) -> str:
    return str(value or "").strip().lower()


def _expected(card: dict, key: str) -> list[str]:
    """The model card's expected modality / body part (``data.<key>`` or top-level ``<key>``).

    A card that names neither gives no expectation, hence no warning: guessing one would flag
    every scan for a model trained on other anatomy."""
    data = card.get("data") if isinstance(card.get("data"), dict) else {}
    value = data.get(key, card.get(key))
    if value is None:
        return []
    return [_norm(v) for v in (value if isinstance(value, list) else [value])]


def input_warnings(scan, card: dict, *, header: bool = True) -> list[str]:
    """Why this scan may be unlike the model's training data (empty list: nothing noticed).
    ``header=False`` leaves out the DICOM header's modality / body part, for when the
    out-of-distribution statement already names them (:func:`ood_verdict`)."""
    out = []
    modalities = _expected(card, "modality")
    if header and scan.modality and modalities and _norm(scan.modality) not in modalities:
        out.append(f"Different modality: this scan is {scan.modality}, the model was trained on "
                   f"{', '.join(m.upper() for m in modalities)} images. The prediction is "
                   "probably meaningless.")
    parts = _expected(card, "body_part")
    if header and scan.body_part and parts and _norm(scan.body_part) not in parts:
        out.append(f"Different body part: this scan shows {scan.body_part}, the model was "
                   f"trained on {', '.join(parts)}.")
    if scan.is_color:
        out.append("Colour image: the model was trained on greyscale scans; a colour photo or "
                   "screenshot is outside what it has seen.")
    h, w = scan.pixels.shape[:2]
    if min(h, w) < TINY_IMAGE_PX:
        out.append(f"Tiny image ({w}×{h} pixels): it is enlarged to the model's input size, so "
                   "fine detail the model relies on is missing.")
    return out


#: The kinds of image in the out-of-distribution test set (``scripts/make_ood_set.py``), in
#: words; an unknown kind is shown with its underscores as spaces.
OOD_KIND_LABELS = {"ct": "CT", "radiograph": "radiographs", "nuclear_medicine": "nuclear medicine",
                   "mr_body": "body MR", "mr_tiny": "tiny MR images", "ultrasound": "ultrasound",
                   "dicom_other": "other DICOM", "photo_colour": "colour photos",
                   "photo_grey": "greyscale photos", "tiny_patch": "tiny brain-MRI patches"}
OOD_HEADLINE = "This scan does not look like the brain MRI the model was trained on"


def _header_mismatch(scan, card: dict) -> str | None:
    """The DICOM header's modality / body part when it differs from the model card's, with what
    the model was trained on (so no separate warning needs to repeat it)."""
    modalities, parts = _expected(card, "modality"), _expected(card, "body_part")
    said = []
    if scan.modality and modalities and _norm(scan.modality) not in modalities:
        said.append(f"modality {scan.modality} (the model was trained on "
                    f"{', '.join(m.upper() for m in modalities)})")
    if scan.body_part and parts and _norm(scan.body_part) not in parts:
        said.append(f"body part {scan.body_part} (the model was trained on {', '.join(parts)})")
    return f"its DICOM header says {' and '.join(said)}" if said else None


def ood_verdict(pred, scan, card: dict) -> tuple[str, str]:
    """``(status, sentence)``: status "out of distribution" (by the model's features or by a
    DICOM header that names another modality / body part), "in distribution" or "not checked"
    (the model version has no OOD statistics), and the sentence to show."""
    header = _header_mismatch(scan, card)
    score = (f" (score {pred.ood_score:.2f}, threshold {pred.ood_threshold:.2f})"
             if pred.ood_score is not None else "")
    if pred.out_of_distribution:
        extra = f" Also, {header}." if header else ""
        return "out of distribution", (f"{OOD_HEADLINE}{score}: {pred.ood_reason}.{extra}")
    if header:
        feat = {"in distribution": f" (its features alone would pass{score})",
                "not checked": ""}.get(pred.ood_status, "")
        return "out of distribution", f"{OOD_HEADLINE}: {header}{feat}."
    if pred.out_of_distribution is None:
        return "not checked", ("Out-of-distribution check: not checked. "
                               + pred.ood_reason.removeprefix("not checked: ").capitalize()
                               + ", so nothing tells whether this scan is like the training "
                                 "data.")
    return "in distribution", (f"Out-of-distribution check passed: the scan looks like the "
                               f"training data{score}.")


def prediction_ui(pred, scan, clf) -> str:
    """The Prediction column: the out-of-distribution statement first when it applies (the
    class then small and grey), else the class as the headline; low confidence, input
    warnings, probabilities and the model card. Returns the OOD status."""
    status, sentence = ood_verdict(pred, scan, clf.card)
    pct = plots.percent(pred.confidence)
    if status == "out of distribution":
        st.error(f"**Out of distribution.** {sentence} Do not use the class below.",
                 icon=":material/block:")
        st.caption(f"Model output, not meaningful for this scan: {pred.label} ({pct} "
                   "calibrated probability)")
    else:
        st.metric("Predicted class", pred.label, f"{pct} calibrated probability",
                  delta_color="off", delta_arrow="off",
                  help="Temperature-scaled softmax probability of the top class (model card: "
                       "calibration).")
        if pred.confidence < LOW_CONFIDENCE:
            where = ("The scan looks like the training data, but the model"
                     if status == "in distribution" else "The model")
            st.warning(f"Low confidence: the top class has {pred.confidence:.0%} probability "
                       f"(below {LOW_CONFIDENCE:.0%}). {where} cannot decide between the "
                       "classes. Do not rely on this prediction.", icon=":material/warning:")
        if status == "not checked":
            st.info(sentence, icon=":material/help:")
        else:
            st.caption(sentence)
    # An out-of-distribution statement always names a DICOM header mismatch (ood_verdict), so
    # its modality / body-part warnings would only repeat it; the other warnings stay.
    for message in input_warnings(scan, clf.card, header=status != "out of distribution"):
        st.warning(message, icon=":material/report:")
    bars = figure_cache.cached_view(
        "probabilities", tuple(sorted(pred.probabilities.items())), pred.label, LOW_CONFIDENCE,
        build=lambda: plots.probability_bar(pred.probabilities, pred.label, LOW_CONFIDENCE))
    if status == "out of distribution":
        with st.expander("Class probabilities (not meaningful for this scan)"):
            st.plotly_chart(bars, key="prob_chart", config={"displayModeBar": False})
    else:
        st.plotly_chart(bars, key="prob_chart", config={"displayModeBar": False})
    model_card_ui(clf)
    return status


def batch_row(name: str, scan, pred, card: dict) -> dict:
    """One row of the "Classify all" table."""
    status, _ = ood_verdict(pred, scan, card)
    return {"scan": name, "format": scan.source_format,
            "out of distribution": {"out of distribution": "yes", "in distribution": "no"}.get(
                status, "not checked"),
            "OOD score": None if pred.ood_score is None else round(pred.ood_score, 1),
            "predicted": pred.label, "probability": round(pred.confidence, 3),
            "low confidence": pred.confidence < LOW_CONFIDENCE,
            "warnings": len(input_warnings(scan, card))}


def ood_card_text(card: dict) -> str:
    """What the model card says about its out-of-distribution check, in words."""
    o = card.get("ood")
    if not isinstance(o, dict):
        return ("**Out-of-distribution check** none: this version has no statistics, so "
                "scans are not checked.")
    text = (f"**Out-of-distribution check** Mahalanobis distance of the model's features to "
            f"its training classes; threshold {o.get('threshold', float('nan')):.2f} (the "
            f"{o.get('percentile', 95):g}th percentile on validation slices).")
    ev = o.get("evaluation")
    if isinstance(ev, dict) and ev.get("in_flagged") and ev.get("out_flagged"):
        i, u = ev["in_flagged"], ev["out_flagged"]
        kinds = ", ".join(OOD_KIND_LABELS.get(k, k.replace("_", " "))
                          for k in ev.get("out_flagged_by_kind") or {})
        text += (f" On {i['n']} brain MRI test slices it flagged {i['count']} "
                 f"({i['fraction']:.0%}); on {u['n']} other images"
                 + (f" ({kinds})" if kinds else "") + f" it flagged {u['count']} "
                 f"({u['fraction']:.0%}); AUROC {ev.get('auroc', float('nan')):.3f}.")
    return text


def localization_card_text(card: dict) -> str | None:
    """Where Grad-CAM looks against expert tumour masks (the card's ``gradcam_localization``,
    from ``python -m core evaluate gradcam-localization``), in words; None without it."""
    loc = card.get("gradcam_localization")
    if not isinstance(loc, dict) or not isinstance(loc.get("gradcam"), dict):
        return None
    g = loc["gradcam"].get("not_train_near_dup") or loc["gradcam"].get("all") or {}
    if not isinstance(g.get("pointing_game"), (int, float)):
        return None
    base = loc.get("baseline_energy_in_box")
    return (f"**Does Grad-CAM look at the tumour?** On {g.get('n', '?')} slices with expert "
            f"tumour masks and no near-copy in this model's training data, the Grad-CAM peak lies on the "
            f"tumour in {g['pointing_game']:.0%} of them, and "
            f"{g.get('energy_in_box', float('nan')):.0%} of the map falls in the tumour's box"
            + (f" (a uniform map: {base:.0%})" if isinstance(base, (int, float)) else "")
            + ". The map shows what drove the class, often not the tumour itself: it is not a "
              "tumour outline.")


def model_card_ui(clf) -> None:
    """The model card's caveats, data and credits, one click away."""
    card = clf.card
    with st.popover("About this model", icon=":material/info:"):
        st.markdown(f"**Version** {clf.version} · classes: {', '.join(clf.classes)}")
        if getattr(clf, "members", ()):
            st.markdown(f"**Ensemble** of {len(clf.members)} models "
                        f"({', '.join(clf.members)}): the mean of their logits, one "
                        "temperature; the Grad-CAM map is the mean of their maps.")
        caveats = card.get("caveats") or []
        if getattr(clf, "notice", None) and clf.notice not in caveats:
            st.info(clf.notice)
        if caveats:
            st.markdown("**Caveats**\n" + "\n".join(f"- {c}" for c in caveats))
        if card.get("description"):
            st.markdown(f"**Model** {card['description']}")
        head = headline_metrics(card)
        if head:
            split, m = head
            parts = [f"accuracy {m['accuracy']:.1%}"]
            if isinstance(m.get("macro_f1"), (int, float)):
                parts.append(f"macro-F1 {m['macro_f1']:.3f}")
            ece = m.get("ece_calibrated", m.get("ece"))
            if isinstance(ece, (int, float)):
                ci = m.get("ece_ci95")
                parts.append(f"calibration error (ECE) {ece:.3f}" + (
                    f" (95% interval {ci[0]:.3f}–{ci[1]:.3f})" if isinstance(ci, list) else ""))
            n = f" (n = {m['n']})" if m.get("n") else ""
            st.markdown(f"**{split.capitalize()} metrics{n}** " + " · ".join(parts))
            recall = {c: v.get("recall") for c, v in (m.get("per_class") or {}).items()
                      if isinstance(v, dict)}
            if recall:
                st.caption("Recall per class: " + ", ".join(
                    f"{c} {r:.0%}" for c, r in recall.items() if r is not None))
            if m.get("reliability"):
                said = confidence_statement(m["reliability"])
                if said:
                    st.markdown(f"**How far to trust the percentage** On the {split} set: {said}")
                fig = figure_cache.cached_view(
                    "reliability", figure_cache.token(m["reliability"]),
                    build=lambda: plots.reliability_diagram(m["reliability"], height=300))
                st.plotly_chart(fig, key="model_card_reliability",
                                config={"displaylogo": False})
        st.markdown(ood_card_text(card))
        loc_text = localization_card_text(card)
        if loc_text:
            st.markdown(loc_text)
        data = card.get("data")
        counts = data.get("counts") if isinstance(data, dict) else None
        if isinstance(counts, dict) and counts:
            st.markdown(f"**Training data** {sum(counts.values())} images: " + ", ".join(
                f"{c} {n}" for c, n in counts.items()))
        credits = card.get("credits")
        if credits:
            lines = credits if isinstance(credits, list) else [credits]
            st.markdown("**Credits**\n" + "\n".join(f"- {c}" for c in lines))


def _once(tag: str) -> bool:
    """True the first time ``tag`` is seen in this browser session."""
    seen: set = st.session_state.setdefault(_RECORDED, set())
    if tag in seen:
        return False
    seen.add(tag)
    return True


def record_scan_once(user: dict, picked) -> None:
    from core.db.scans import record_scan
    from ui.images import thumbnail_png

    if _once(f"scan:{picked.scan.sha256}"):
        scan = picked.scan
        with db_write("This scan's record") as session:  # a failing database: a warning
            record_scan(session, scan.sha256, scan.metadata, scan.source_format, scan.modality,
                        scan.pixels.shape, user_id=user["id"],
                        # what people recognise it by in My ratings and the export (issue 14/7)
                        display_name=picked.name, thumbnail=thumbnail_png(scan.to_uint8()))


def record_prediction_once(user: dict, picked, pred, *, calibrated: bool) -> None:
    """Store the scan and the prediction once per browser session (a rerun stores nothing)."""
    from core.db.scans import record_prediction

    record_scan_once(user, picked)
    if _once(f"pred:{picked.key}:{pred.version}"):
        with db_write("The prediction") as session:  # a failing database: a warning
            record_prediction(session, scan_sha256=picked.scan.sha256,
                              model_version=pred.version, label=pred.label,
                              probabilities=pred.probabilities, calibrated=calibrated,
                              user_id=user["id"])
