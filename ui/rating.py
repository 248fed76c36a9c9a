"""The rating form shown on the Analyze, Super-resolution and Reader-study pages.

Two 1–5 scales with every step spelled out, an optional comment; saved with the reader, the
scan's hash, the method (what was rated), the model version and the time. A reader sees and
edits only their own rating (pre-filled when one exists); nobody else's is ever shown.
"""
from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import streamlit as st

from ui.resources import db

__all__ = ["SCALE", "rating_form_ui", "study_rating_form_ui"]

SCALE = {1: "1 · extremely bad", 2: "2 · poor", 3: "3 · acceptable", 4: "4 · good",
         5: "5 · excellent"}


def _form(key: str, title: str, quality: int | None, usefulness: int | None,
          comment: str | None, when: datetime | None,
          save: Callable[[int, int, str | None], None], *, rated: bool = False) -> bool:
    options = list(SCALE)
    with st.form(f"{key}_form", border=True):
        st.markdown(title)
        if when is not None:
            st.caption(f"You rated this on {when:%Y-%m-%d %H:%M} UTC; submitting again replaces "
                       "your rating.")
        elif rated:
            st.caption("You have rated this image; submitting again replaces your rating.")
        q = st.radio("Image quality", options, format_func=SCALE.get, horizontal=True,
                     index=options.index(quality) if quality else None, key=f"{key}_quality")
        u = st.radio("Diagnostic usefulness", options, format_func=SCALE.get, horizontal=True,
                     index=options.index(usefulness) if usefulness else None,
                     key=f"{key}_usefulness")
        text = st.text_area("Comment (optional)", value=comment or "", key=f"{key}_comment",
                            height=80)
        submitted = st.form_submit_button("Update rating" if when or rated else "Save rating",
                                          type="primary", key=f"{key}_submit")
    if not submitted:
        return False
    if q is None or u is None:
        st.warning("Choose a value on both scales before saving.")
        return False
    save(int(q), int(u), text.strip() or None)
    st.success("Rating saved.")
    return True


def rating_form_ui(*, reader_id: int, scan_sha256: str, method: str, model_version: str | None,
                   key: str, title: str = "Your rating") -> bool:
    """Rate one view (``method``) of a scan; returns True on the run where it was saved."""
    from core.db.ratings import get_my_rating, save_rating

    with db() as session:
        mine = get_my_rating(session, reader_id=reader_id, scan_sha256=scan_sha256,
                             method=method, model_version=model_version)

    def save(q: int, u: int, comment: str | None) -> None:
        with db() as session:
            save_rating(session, reader_id=reader_id, scan_sha256=scan_sha256, method=method,
                        model_version=model_version or None, image_quality=q,
                        diagnostic_usefulness=u, comment=comment)

    heading = f"**{title}** — _{method}_" + (f", model {model_version}" if model_version else "")
    return _form(key, heading, mine.image_quality if mine else None,
                 mine.diagnostic_usefulness if mine else None, mine.comment if mine else None,
                 mine.updated_at if mine else None, save)


def study_rating_form_ui(*, reader_id: int, item, key: str) -> bool:
    """Rate one reader-study item by its id (the method stays hidden when blinded)."""
    from core.db.studies import rate_study_item

    def save(q: int, u: int, comment: str | None) -> None:
        with db() as session:
            rate_study_item(session, reader_id=reader_id, item_id=item.item_id,
                            image_quality=q, diagnostic_usefulness=u, comment=comment)

    return _form(key, f"**Your rating of {item.label}**", item.image_quality,
                 item.diagnostic_usefulness, item.comment, None, save, rated=item.rated)
