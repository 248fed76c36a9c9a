"""My ratings: every rating the logged-in reader has given (never anyone else's), each with the
scan's thumbnail, file name and the view rated (method, scale, α, model version, frame)."""
from __future__ import annotations

import base64

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


def _data_uri(png: bytes | None) -> str | None:
    return None if png is None else "data:image/png;base64," + base64.b64encode(png).decode()


st.caption(f"{len(rows)} rating(s), newest first. To change one, open the scan again and submit "
           "the form; your earlier rating is replaced.")
st.dataframe(
    [{"scan": _data_uri(r.thumbnail), "file": r.scan_name or r.scan_sha256[:12] + "…",
      "view": r.view, "updated (UTC)": r.updated_at.strftime("%Y-%m-%d %H:%M"),
      "study": r.study_id if r.study_id is not None else "—",
      "image quality": SCALE[r.image_quality], "diagnostic usefulness":
      SCALE[r.diagnostic_usefulness], "comment": r.comment or "",
      "rated": r.method, "model version": r.model_version or "—",
      "sha256": r.scan_sha256[:12] + "…"} for r in rows],
    hide_index=True, key="my_ratings_table", row_height=72,
    column_config={"scan": st.column_config.ImageColumn("scan", width="small",
                                                        help="The scan as first rated"),
                   "view": st.column_config.TextColumn("view", width="medium",
                                                       help="What was rated: method, scale, "
                                                       "mode, α, model version, frame")})
