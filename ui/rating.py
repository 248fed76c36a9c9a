"""The rating form shown on the Analyze, Super-resolution and Reader-study pages.

Two 1–5 scales with every step spelled out, an optional comment; saved with the reader, the
scan's hash, the method (what was rated), the model version and the time. A reader sees and
edits only their own rating (pre-filled when one exists); nobody else's is ever shown.
"""
from __future__ import annotations

import streamlit as st

from ui.resources import db

__all__ = ["SCALE", "rating_form_ui"]

SCALE = {1: "1 · extremely bad", 2: "2 · poor", 3: "3 · acceptable", 4: "4 · good",
         5: "5 · excellent"}


def rating_form_ui(*, reader_id: int, scan_sha256: str, method: str, model_version: str | None,
                   key: str, study_id: int | None = None, title: str = "Your rating") -> bool:
    """Draw the form; return True on the run where a rating was saved."""
    from core.db.ratings import get_my_rating, save_rating

    with db() as session:
        mine = get_my_rating(session, reader_id=reader_id, scan_sha256=scan_sha256,
                             method=method, model_version=model_version, study_id=study_id)
    with st.form(f"{key}_form", border=True):
        st.markdown(f"**{title}** — _{method}_" + (f", model {model_version}" if model_version
                                                    else ""))
        if mine is not None:
            st.caption(f"You rated this on {mine.updated_at:%Y-%m-%d %H:%M} UTC; "
                       "submitting again replaces your rating.")
        options = list(SCALE)
        quality = st.radio("Image quality", options, format_func=SCALE.get, horizontal=True,
                           index=options.index(mine.image_quality) if mine else None,
                           key=f"{key}_quality")
        usefulness = st.radio("Diagnostic usefulness", options, format_func=SCALE.get,
                              horizontal=True,
                              index=options.index(mine.diagnostic_usefulness) if mine else None,
                              key=f"{key}_usefulness")
        comment = st.text_area("Comment (optional)", value=(mine.comment or "") if mine else "",
                               key=f"{key}_comment", height=80)
        submitted = st.form_submit_button("Update rating" if mine else "Save rating",
                                          type="primary", key=f"{key}_submit")
    if not submitted:
        return False
    if quality is None or usefulness is None:
        st.warning("Choose a value on both scales before saving.")
        return False
    with db() as session:
        save_rating(session, reader_id=reader_id, scan_sha256=scan_sha256, method=method,
                    model_version=model_version or "", image_quality=int(quality),
                    diagnostic_usefulness=int(usefulness), comment=comment.strip() or None,
                    study_id=study_id)
    st.success("Rating saved.")
    return True
