"""Analyze: upload scans → predicted class with calibrated probabilities, Grad-CAM, warnings,
masked metadata, rating."""
from __future__ import annotations

import streamlit as st

from core.errors import MedScanError
from ui import auth, engine_and_models, upload_results
from ui.analysis import batch_row
from ui.analyze_view import scan_analysis_fragment
from ui.pacs import pacs_send_ui, pacs_source_ui
from ui.rating import rating_form_fragment
from ui.scan_ui import all_scans_ui, scan_or_stop_ui

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
# Columns (scan, Grad-CAM, prediction), viewer, tumour outline, similar cases: one fragment,
# so the window and the Grad-CAM choices rerun only that part.
shown = scan_analysis_fragment(user, picked, clf)
if clf is None:
    st.stop()

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
                # the same cached pass as the scan's own view: picking it later is instant
                pr, _ = upload_results.explain_all(p.key, clf.version,
                                                   upload_results.weights_key(),
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
