"""The body of the Analyze page that depends on the display window and on the Grad-CAM choice:
the scan, Grad-CAM and prediction columns, the viewer, the tumour outline and the similar cases.

It is one ``st.fragment``: changing the window reruns this part only (the prediction and maps
are cached, see :mod:`ui.upload_results`), not the login check, the navigation, the scan picker,
the metadata, the batch table or the rating form. Everything else here runs in the browser: the
Grad-CAM picture's class / method menu, opacity and box, and opening or closing the viewer (an
expander). Returns the windowed scan shown (None on a fragment
rerun, when the page does not run)."""
from __future__ import annotations

import streamlit as st

from ui import upload_results

__all__ = ["scan_analysis_fragment"]


@st.fragment
def scan_analysis_fragment(user: dict, picked, clf):
    """``clf``: the active classifier, or None (no model: the scan and the viewer only)."""
    from ui.analysis import prediction_ui, record_prediction_once
    from ui.gradcam_view import gradcam_view
    from ui.retrieval import add_to_library_ui, similar_cases_ui
    from ui.scan_ui import window_ui
    from ui.segmentation import segmentation_ui
    from ui.viewing import analyze_viewer_ui, viewer_expander

    scan = picked.scan
    col_img, col_cam, col_pred = st.columns([1, 1, 1], gap="medium")
    # The interactive viewer, under the summary columns (filled once the overlays exist).
    viewer_slot = viewer_expander()

    with col_img:
        st.subheader("Scan")
        shown = window_ui(scan, "analyze_window")
        st.image(shown.to_uint8(), width="stretch",
                 caption=f"{picked.name} · window: {shown.window_source}")
        for note in scan.warnings:       # from the loader, e.g. non-finite pixels replaced
            st.warning(note, icon=":material/report:")

    if clf is None:
        with viewer_slot:
            analyze_viewer_ui(picked, shown)
        return shown

    # The model sees the scan as loaded (file default window): the display window never changes
    # the prediction, and moving it never re-runs the model. Every class's map by both CAM
    # methods comes from one forward pass; the picture's menu switches between them in the
    # browser.
    weights = upload_results.weights_key()
    with st.spinner("Running the classifier and Grad-CAM…", show_time=True):
        pred, maps = upload_results.explain_all(picked.key, clf.version, weights,
                                                _pixels=scan.pixels)
    record_prediction_once(user, picked, pred, calibrated=bool(clf.card.get("calibration")))
    heatmap = maps[("gradcam", pred.label)]     # the outline agreement and the viewer's overlay

    with col_cam:       # the map menu, opacity and box run in the browser (no rerun)
        st.subheader("Grad-CAM")
        gradcam_view(shown.to_uint8(), maps, maps_key=f"{picked.key}:{clf.version}",
                     predicted=pred.label,
                     out_of_distribution=bool(getattr(pred, "out_of_distribution", False)),
                     file_stem=picked.name.rsplit(".", 1)[0])
    with viewer_slot:   # opened and closed in the browser (an expander)
        analyze_viewer_ui(picked, shown, heatmap=heatmap,
                          cam_label=f"Grad-CAM ({pred.label}, predicted)")

    with col_pred:
        st.subheader("Prediction")
        # Out of distribution first (the class then small and grey), else the class as headline.
        prediction_ui(pred, scan, clf)
        if user["role"] == "admin":
            add_to_library_ui(picked, user, clf.classes)

    segmentation_ui(picked, shown, pred, heatmap)   # tumour outline, with a segmentation model
    similar_cases_ui(picked, shown, clf)
    return shown
