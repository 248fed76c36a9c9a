"""Analyze: upload scans → predicted class with calibrated probabilities, Grad-CAM, warnings,
masked metadata, rating."""
from __future__ import annotations

import streamlit as st

from core.errors import MedScanError
from ui import auth, upload_results, engine_and_models
from ui.analysis import batch_row, prediction_ui, record_prediction_once
from ui.pacs import pacs_send_ui, pacs_source_ui
from ui.rating import rating_form_fragment
from ui.retrieval import add_to_library_ui, similar_cases_ui
from ui.scan_ui import all_scans_ui, scan_or_stop_ui, window_ui
from ui.segmentation import segmentation_ui
from ui.gradcam_view import gradcam_view_fragment
from ui.viewing import analyze_viewer_fragment

user = auth.require_role()
st.title("Analyze")

pacs_source_ui("analyze")      # "Open from PACS" beside the uploader (when configured)
picked = scan_or_stop_ui("analyze_pick", "analyze_frame",
                         "Upload a scan to see the predicted class, its calibrated "
                         "probabilities and the Grad-CAM explanation.")

try:
    clf = engine_and_models.classifier()
except MedScanError as err:
    clf = None
    st.warning(str(err), icon=":material/warning:")

scan = picked.scan
col_img, col_cam, col_pred = st.columns([1, 1, 1], gap="medium")
# The interactive viewer, under the summary columns (filled once the overlays exist).
viewer_slot = st.container()
viewer_slot.subheader("Viewer")

with col_img:
    st.subheader("Scan")
    shown = window_ui(scan, "analyze_window")
    st.image(shown.to_uint8(), width="stretch",
             caption=f"{picked.name} · window: {shown.window_source}")
    for note in scan.warnings:           # from the loader, e.g. non-finite pixels replaced
        st.warning(note, icon=":material/report:")

if clf is None:
    with viewer_slot:
        analyze_viewer_fragment(picked, shown)
    st.stop()

# The model sees the scan as loaded (file default window): the display window never changes
# the prediction, and moving it never re-runs the model.
cam_classes = clf.classes
with col_cam:
    st.subheader("Grad-CAM")
    method = st.segmented_control("Method", ["gradcam", "gradcam++"], default="gradcam",
                                  required=True, key="cam_method",
                                  format_func={"gradcam": "Grad-CAM",
                                               "gradcam++": "Grad-CAM++"}.get)
    target = st.selectbox("Explain class", ["predicted class", *cam_classes], key="cam_class")

with st.spinner("Running the classifier and Grad-CAM…", show_time=True):
    pred, heatmap = upload_results.explain(picked.key, clf.version, upload_results.weights_key(), None, method,
                                   _pixels=scan.pixels)
    if target != "predicted class" and target != pred.label:
        _, heatmap = upload_results.explain(picked.key, clf.version, upload_results.weights_key(), target,
                                    method, _pixels=scan.pixels)
record_prediction_once(user, picked, pred, calibrated=bool(clf.card.get("calibration")))

explained = pred.label if target == "predicted class" else target
with col_cam:       # opacity and box rerun this picture only (a fragment)
    gradcam_view_fragment(shown.to_uint8(), heatmap, explained=explained, method=method,
                          out_of_distribution=bool(getattr(pred, "out_of_distribution", False)),
                          file_stem=picked.name.rsplit(".", 1)[0])
with viewer_slot:   # its switch reruns the viewer only (a fragment)
    analyze_viewer_fragment(picked, shown, heatmap=heatmap,
                            cam_label=f"Grad-CAM ({explained})")

with col_pred:
    st.subheader("Prediction")
    # Out of distribution first (the class then small and grey), else the class as headline.
    prediction_ui(pred, scan, clf)
    if user["role"] == "admin":
        add_to_library_ui(picked, user, clf.classes)

segmentation_ui(picked, shown, pred, heatmap)   # tumour outline, only with a segmentation model
similar_cases_ui(picked, shown, clf)
pacs_send_ui(picked, user, clf)   # only for a scan opened from the PACS

with st.expander("Scan metadata (identifiers masked)", icon=":material/badge:"):
    st.dataframe({"field": list(scan.metadata), "value": list(scan.metadata.values())},
                 hide_index=True, key="metadata_table")

batch = all_scans_ui(show_errors=False)
if len(batch) > 1:
    with st.expander(f"All {len(batch)} uploaded scans", icon=":material/table_rows:"):
        if st.button("Classify all", key="classify_all") or st.session_state.get("_batch_done"):
            st.session_state["_batch_done"] = True
            bar = st.progress(0.0, text="Classifying…")
            rows = []
            for i, p in enumerate(batch, 1):
                pr, _ = upload_results.explain(p.key, clf.version, upload_results.weights_key(), None, "gradcam",
                                       _pixels=p.scan.pixels)
                rows.append(batch_row(p.name, p.scan, pr, clf.card))
                bar.progress(i / len(batch), text=f"Classified {i} of {len(batch)}")
            bar.empty()
            st.dataframe(rows, hide_index=True, key="batch_table")
        else:
            st.caption("Runs the classifier on every uploaded scan (results are cached).")

rating_form_fragment(reader_id=user["id"], picked=picked, method="original",
               model_version=clf.version, key="analyze_rating", title="Rate this scan",
               image=shown.pixels)
