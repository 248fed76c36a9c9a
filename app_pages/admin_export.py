"""Export ratings (admin): every reader's ratings as CSV, and a per-view summary."""
from __future__ import annotations

import datetime as dt

import streamlit as st

from ui import auth
from ui.engine_and_models import db

admin = auth.require_role("admin")
st.title("Export ratings")

from core.db.audit import audit  # noqa: E402
from core.db.ratings import export_ratings, export_ratings_csv, rating_summary  # noqa: E402

with db() as session:
    rows = export_ratings(session)
    summary = rating_summary(session)
st.caption(f"{len(rows)} rating(s) from {len({r['reader'] for r in rows})} reader(s). The CSV "
           "has one row per rating: reader, scan hash and file name (identifiers masked), "
           "method, model version and the view rated (in words, and its frame, scale, mode "
           "and α), study, both scores, comment and times (UTC).")


# What the page calls the export's machine-named columns (the CSV keeps the machine names).
LABELS = {"method": "method", "model_version": "model version", "n_ratings": "ratings",
          "n_readers": "readers", "mean_image_quality": "mean image quality (1-5)",
          "mean_diagnostic_usefulness": "mean diagnostic usefulness (1-5)",
          "rating_id": "rating", "scan_sha256": "scan (SHA-256)", "file_name": "file name",
          "alpha": "α", "study_id": "study id", "image_quality": "image quality",
          "diagnostic_usefulness": "diagnostic usefulness", "created_at": "created (UTC)",
          "updated_at": "updated (UTC)"}


def _columns(table: list[dict]) -> dict:
    return {k: LABELS.get(k, k.replace("_", " ")) for k in (table[0] if table else {})}


def _log_export() -> None:
    with db() as session:
        audit(session, admin["id"], "ratings_export", rows=len(rows))


if rows:
    with db() as session:
        csv_text = export_ratings_csv(session)
    st.download_button("Download ratings (CSV)", csv_text.encode("utf-8"),
                       file_name=f"medscan-ratings-{dt.date.today():%Y%m%d}.csv",
                       mime="text/csv", key="export_csv", type="primary",
                       icon=":material/download:", on_click=_log_export)
    st.subheader("Summary per view")
    st.dataframe(summary, hide_index=True, key="rating_summary",
                 column_config=_columns(summary))
    with st.expander("All ratings"):
        st.dataframe(rows, hide_index=True, key="ratings_all", column_config=_columns(rows))
else:
    st.info("No ratings yet.")
