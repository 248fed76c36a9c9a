"""My ratings: every rating the logged-in reader has given (never anyone else's)."""
from __future__ import annotations

import streamlit as st

from ui import auth
from ui.rating import SCALE
from ui.resources import db

user = auth.require_role()
st.title("My ratings")

from core.db.ratings import my_ratings  # noqa: E402

with db() as session:
    rows = my_ratings(session, user["id"])
if not rows:
    st.info("You have not rated any images yet. Rate a scan on the Analyze or Super-resolution "
            "page, or work through a reader study.", icon=":material/star_rate:")
    st.stop()

st.caption(f"{len(rows)} rating(s), newest first. To change one, open the scan again and submit "
           "the form; your earlier rating is replaced.")
st.dataframe(
    [{"updated (UTC)": r.updated_at.strftime("%Y-%m-%d %H:%M"),
      "scan": r.scan_sha256[:12] + "…", "rated": r.method,
      "model version": r.model_version or "—",
      "study": r.study_id if r.study_id is not None else "—",
      "image quality": SCALE[r.image_quality], "diagnostic usefulness":
      SCALE[r.diagnostic_usefulness], "comment": r.comment or ""} for r in rows],
    hide_index=True, key="my_ratings_table")
