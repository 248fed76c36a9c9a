"""Analyze page: the tumour outline from the segmentation model, its size, its box as the
detection box, whether the classifier and the mask agree, and whether Grad-CAM looked at the
outlined tumour. Shown only when a segmentation model is active."""
from __future__ import annotations

import numpy as np
import streamlit as st

from core import config, registry
from core.segmentation import TASK

__all__ = ["HIGH_CONFIDENCE", "CONFIDENT_MASK", "NO_TUMOUR", "agreement", "size_text",
           "segmenter", "about_ui", "outline_figure", "segmentation_ui"]

#: A "notumor" prediction at least this probable counts as a confident "no tumour".
HIGH_CONFIDENCE = 0.80
#: A mask whose highest pixel probability reaches this counts as a confident tumour finding.
CONFIDENT_MASK = 0.80
#: The classifier's class that means "no tumour".
NO_TUMOUR = "notumor"
_OUTLINE = (255, 215, 0)      # tumour outline: gold
_DETECTION = (0, 255, 0)      # detection box (mask): green
_CAM_BOX = (255, 0, 255)      # Grad-CAM box: magenta


def agreement(label: str, confidence: float, empty: bool, max_probability: float
              ) -> tuple[str, str]:
    """``(kind, sentence)`` comparing the classifier and the mask. Kinds: ``"disagree"``
    (notumor but a confident mask, or a tumour class with an empty mask), ``"no tumour"``
    (confident notumor and an empty mask), ``"agree"`` (tumour class and a mask) and
    ``"uncertain"`` (notumor with low confidence or a weak mask)."""
    if label == NO_TUMOUR:
        if not empty and max_probability >= CONFIDENT_MASK:
            return "disagree", (f"Models disagree: the classifier says no tumour "
                                f"({confidence:.0%}), but the segmentation model outlines a "
                                f"region with up to {max_probability:.0%} probability. Look at "
                                "the outlined region yourself.")
        if empty and confidence >= HIGH_CONFIDENCE:
            return "no tumour", (f"No tumour found: the classifier says no tumour "
                                 f"({confidence:.0%}) and the segmentation mask is empty.")
        return "uncertain", ("The classifier says no tumour"
                             + (f" with only {confidence:.0%} probability" if confidence <
                                HIGH_CONFIDENCE else "")
                             + ("; the segmentation mask is empty." if empty else
                                f"; the segmentation model marks a weak region (at most "
                                f"{max_probability:.0%})."))
    if empty:
        return "disagree", (f"Models disagree: the classifier says {label} "
                            f"({confidence:.0%}), but the segmentation mask is empty (highest "
                            f"pixel probability {max_probability:.0%}). Neither result is "
                            "hidden: check the scan yourself.")
    return "agree", f"The classifier ({label}) and the segmentation mask agree: a tumour."


def size_text(seg) -> str:
    """The outlined area: mm² with the scan's pixel spacing, else pixels (saying why)."""
    if seg.empty:
        return "no tumour outlined"
    if seg.area_mm2 is not None:
        return f"{seg.area_mm2:,.1f} mm² ({seg.tumour_pixels:,} pixels)"
    return f"{seg.tumour_pixels:,} pixels (no pixel spacing in this file, so no mm²)"


@st.cache_resource(show_spinner="Loading the segmentation model…", max_entries=3)
def _segmenter(version: str, weights_dir: str):
    from core.segmentation.inference import Segmenter
    from ui.engine_and_models import device

    device()
    return Segmenter.load(version, weights_dir=weights_dir)


def segmenter():
    """The active segmentation model, or None when none is active."""
    version = registry.active_version(TASK)
    return None if version is None else _segmenter(version, str(config.weights_dir()))


@st.cache_data(show_spinner=False, max_entries=128)
def _segment(key: str, version: str, weights_dir: str, _pixels: np.ndarray,
             _spacing: tuple[float, float] | None):
    """One forward pass per (image, version): the toggles only redraw."""
    return _segmenter(version, weights_dir).segment(_pixels, _spacing)


def segment_picked(picked, model):
    """The (cached) segmentation of the picked scan's shown frame by ``model``."""
    scan = picked.scan
    return _segment(picked.key, model.version, str(config.weights_dir()), scan.pixels,
                    scan.pixel_spacing)


def about_ui(model) -> None:
    """The segmentation model card in words: held-out Dice / IoU per class, how the data were
    split, what Grad-CAM's localization against the masks showed, caveats and credits."""
    card = model.card
    with st.popover("About the segmentation model", icon=":material/info:"):
        st.markdown(f"**Version** {model.version}")
        if card.get("description"):
            st.markdown(f"**Model** {card['description']}")
        metrics = card.get("metrics") or {}
        split = (card.get("headline") or {}).get("split") or next(iter(metrics), None)
        m = metrics.get(split) if split else None
        if isinstance(m, dict) and isinstance(m.get("dice"), (int, float)):
            ci = m.get("dice_ci95")
            st.markdown(f"**{split.capitalize()} figures (n = {m.get('n')}, slices never seen "
                        f"in training)** Dice {m['dice']:.3f}"
                        + (f" (95% interval {ci[0]:.3f}–{ci[1]:.3f})" if ci else "")
                        + (f" · IoU {m['iou']:.3f}" if isinstance(m.get("iou"), (int, float))
                           else ""))
            per = m.get("per_class") or {}
            if per:
                st.caption("Per class: " + "; ".join(
                    f"{c} Dice {v['dice']:.3f}, IoU {v['iou']:.3f} (n = {v['n']})"
                    for c, v in per.items()))
        how = ((card.get("data") or {}).get("split") or {}).get("method")
        if how:
            st.markdown(f"**Held-out data** {how}.")
        loc = card.get("gradcam_localization")
        if isinstance(loc, dict) and isinstance(loc.get("gradcam"), dict):
            g = loc["gradcam"]
            clean = g.get("not_train_near_dup") or g.get("all") or {}
            st.markdown(
                f"**Does the classifier's Grad-CAM look at the tumour?** On "
                f"{clean.get('n')} expert-outlined slices the classifier was not trained on, "
                f"the Grad-CAM peak fell inside the tumour (±{loc.get('tolerance_px', 8)} px) "
                f"in {clean.get('pointing_game', 0):.0%} of them, and "
                f"{clean.get('energy_in_box', 0):.0%} of the map lay in the tumour's box "
                f"(a uniform map: {loc.get('baseline_energy_in_box', 0):.0%}). Classifier "
                f"{loc.get('model')}.")
        caveats = card.get("caveats") or []
        if caveats:
            st.markdown("**Caveats**\n" + "\n".join(f"- {c}" for c in caveats))
        credits = card.get("credits") or []
        if credits:
            st.markdown("**Credits**\n" + "\n".join(f"- {c}" for c in credits))


def outline_figure(display: np.ndarray, seg, cam_bbox):
    """The scan with the tumour outline and its detection box (switch "Outline", on) and the
    Grad-CAM box (switch "Grad-CAM box", off): a plotly picture whose switches run in the
    browser. Cached by what it shows."""
    from ui.figure_cache import cached_view, digest
    from ui.plots import overlay_picture

    return cached_view("seg_picture", digest(display, seg.mask), seg.bbox, cam_bbox,
                       build=lambda: overlay_picture(
                           display,
                           outlines=[dict(name="tumour outline", mask=seg.mask,
                                          colour=_OUTLINE, group="outline")],
                           boxes=[dict(name="detection box (mask)", box=seg.bbox,
                                       colour=_DETECTION, group="outline"),
                                  dict(name="Grad-CAM box", box=cam_bbox, colour=_CAM_BOX,
                                       group="cam")],
                           toggles=[dict(group="outline", label="Outline", on=True),
                                    dict(group="cam", label="Grad-CAM box", on=False)]))


def segmentation_ui(picked, shown, pred, heatmap) -> None:
    """The "Tumour segmentation" section under the Analyze columns (nothing without a model)."""
    from core.errors import MedScanError
    from core.classifier.gradcam import hot_region_bbox, overlay_heatmap
    from core.segmentation.inference import contour_overlay, mask_png
    from core.segmentation.localization import TOLERANCE_PX, localization_scores
    from ui.images import png_bytes, to_rgb

    try:
        model = segmenter()
    except MedScanError as err:
        st.warning(f"Tumour segmentation unavailable: {err}", icon=":material/warning:")
        return
    if model is None:
        return
    with st.spinner("Outlining the tumour…", show_time=True):
        seg = segment_picked(picked, model)
    st.subheader("Tumour segmentation")
    kind, sentence = agreement(pred.label, pred.confidence, seg.empty, seg.max_probability)
    if kind == "disagree":
        st.warning(sentence, icon=":material/compare_arrows:")
    elif kind == "no tumour":
        st.success(sentence, icon=":material/check_circle:")
    else:
        st.caption(sentence)
    c1, c2, c3 = st.columns([1, 1, 1], gap="medium")
    with c3:
        st.metric("Outlined tumour", size_text(seg).split(" (")[0],
                  help="Counted at the scan's own size; mm² from the DICOM pixel spacing.")
        st.caption(f"Size: {size_text(seg)}. Detection box (mask): "
                   + (f"x {seg.bbox[0]}–{seg.bbox[2]}, y {seg.bbox[1]}–{seg.bbox[3]}"
                      if seg.bbox else "none") + f". Highest pixel probability "
                   f"{seg.max_probability:.0%}. Model {model.version}.")
        if not seg.empty:
            score = localization_scores(heatmap, seg.mask)
            inside = "inside" if score["pointing_hit"] else "outside"
            st.markdown(f"**Grad-CAM vs outline** The peak of the predicted class's Grad-CAM "
                        f"(“{pred.label}”) lies **{inside}** the "
                        f"outlined tumour (±{TOLERANCE_PX} px at 256²); "
                        f"{score['energy_in_box']:.0%} of the map's mass is inside its box.")
    base = to_rgb(shown.to_uint8())
    cam_bbox = hot_region_bbox(heatmap, threshold=0.5)
    with c1:     # outline and Grad-CAM box switch in the browser (no rerun)
        from ui.plots import PICTURE_CONFIG

        st.plotly_chart(outline_figure(shown.to_uint8(), seg, cam_bbox), width="stretch",
                        key="seg_picture", config=PICTURE_CONFIG)
        st.caption("Scan with tumour outline · gold: outline, green: detection box (mask), "
                   "magenta: Grad-CAM box (where the classifier looked, not a detection)")
    with c2:
        cam = overlay_heatmap(base, heatmap, 0.4)
        cam = contour_overlay(cam, seg.mask, color=_OUTLINE)
        st.image(cam, width="stretch",
                 caption=f"Grad-CAM of “{pred.label}” (predicted) with the tumour outline")
    view = contour_overlay(base, seg.mask, color=_OUTLINE, box=seg.bbox,
                           box_color=_DETECTION)
    stem = picked.name.rsplit(".", 1)[0]
    d1, d2, d3 = st.columns(3)
    d1.download_button("Download mask (PNG)", png_bytes(mask_png(seg.mask)),
                       key="download_seg_mask", file_name=f"{stem}_mask.png", mime="image/png",
                       on_click="ignore", icon=":material/download:")
    d2.download_button("Download outline overlay (PNG)", png_bytes(view),
                       key="download_seg_overlay", file_name=f"{stem}_outline.png",
                       mime="image/png", on_click="ignore", icon=":material/download:")
    with d3:
        about_ui(model)
