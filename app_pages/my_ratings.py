"""My ratings: every rating the logged-in reader has given (never anyone else's), each with the
scan's thumbnail, file name and the view rated (method, scale, α, model version, frame)."""
from __future__ import annotations

import base64

import streamlit as st

from ui import auth
from ui.rating import SCALE
from ui.engine_and_models import db

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
# Column widths in pixels: together they fit the main column at 1280 px with the sidebar open
# (about 820 px); long views and comments wrap in the 72 px rows (hover a cell for all of it).
_WIDTHS = {"scan": 76, "file": 110, "view": 180, "updated (UTC)": 86, "study": 52,
           "image quality": 96, "diagnostic usefulness": 96, "comment": 170}
has_study = any(r.study_id is not None for r in rows)
column_order = [c for c in _WIDTHS if c != "study" or has_study]
if has_study:
    _WIDTHS["comment"] -= _WIDTHS["study"]
text = st.column_config.TextColumn
st.dataframe(
    [{"scan": _data_uri(r.thumbnail), "file": r.scan_name or r.scan_sha256[:12] + "…",
      "view": r.view, "updated (UTC)": r.updated_at.strftime("%Y-%m-%d %H:%M"),
      "study": str(r.study_id) if r.study_id is not None else "—",
      "image quality": SCALE[r.image_quality], "diagnostic usefulness":
      SCALE[r.diagnostic_usefulness], "comment": r.comment or ""} for r in rows],
    hide_index=True, key="my_ratings_table", row_height=72, column_order=column_order,
    column_config={
        "scan": st.column_config.ImageColumn("scan", width=_WIDTHS["scan"],
                                             help="The scan as first rated"),
        "file": text("file", width=_WIDTHS["file"], help="The scan's file name (names that "
                     "look like patient data are masked); when none, the start of its SHA-256"),
        "view": text("view", width=_WIDTHS["view"], help="What was rated: method, scale, mode, "
                     "α, model version, frame"),
        "updated (UTC)": text("updated", width=_WIDTHS["updated (UTC)"],
                              help="When you last saved it (UTC)"),
        "study": text("study", width=_WIDTHS["study"], help="Reader study id (— : none)"),
        "image quality": text("quality", width=_WIDTHS["image quality"],
                              help="Image quality, 1–5"),
        "diagnostic usefulness": text("usefulness", width=_WIDTHS["diagnostic usefulness"],
                                      help="Diagnostic usefulness, 1–5"),
        "comment": text("comment", width=_WIDTHS["comment"], help="Your comment")})
