"""The rating form shown on the Analyze, Super-resolution and Reader-study pages.

Two 1–5 scales with every step spelled out, each one vertical list (never wrapped into a grid),
and an optional comment; saved with the reader, the scan's hash, the method (what was rated),
the model version, the view (frame, SR scale and mode, ESRGAN α) and the time. A reader sees
and edits only their own rating (pre-filled when one exists for exactly this view); nobody
else's is ever shown.

The form belongs to its image: its widget keys include a digest of (scan hash, frame, method,
scale, mode, α, model version), so nothing typed for one image carries over to another, and its
title names the scan and shows a thumbnail of what is rated. A failed save (``DBError``) shows
the error and keeps what was entered.
"""
from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import datetime

import streamlit as st

from core.db.errors import DBError
from ui.images import thumbnail_png
from ui.resources import db
from ui.scan_ui import markdown_literal, scan_label

__all__ = ["SCALE", "QUESTION_LABELS", "rating_form_ui", "study_rating_form_ui", "view_id"]

SCALE = {1: "1 · extremely bad", 2: "2 · poor", 3: "3 · acceptable", 4: "4 · good",
         5: "5 · excellent"}
#: The two questions every rating answers (the ``ratings`` columns), as the form asks them.
QUESTION_LABELS = {"image_quality": "Image quality",
                   "diagnostic_usefulness": "Diagnostic usefulness"}


def view_id(*parts: object) -> str:
    """A short digest of what a form rates; part of its widget keys."""
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:12]


def _form(key: str, title: str, quality: int | None, usefulness: int | None,
          comment: str | None, when: datetime | None,
          save: Callable[[int, int, str | None], None], *, rated: bool = False,
          thumbnail: bytes | None = None, note: str | None = None, wide: bool = True) -> bool:
    """The form. Each 1–5 scale is one vertical list, 1 at the top, so it never wraps into a
    grid however narrow the column: side by side when the form is ``wide`` (full width), one
    below the other in a narrow column (the reader study)."""
    options = list(SCALE)
    with st.form(f"{key}_form", border=True):
        if thumbnail is not None:
            c_thumb, c_title = st.columns([1, 6], vertical_alignment="center")
            c_thumb.image(thumbnail, width=96)
            c_title.markdown(title)
        else:
            st.markdown(title)
        if note:
            st.caption(note)
        if when is not None:
            st.caption(f"You rated this on {when:%Y-%m-%d %H:%M} UTC; submitting again replaces "
                       "your rating.")
        elif rated:
            st.caption("You have rated this image; submitting again replaces your rating.")
        c_q, c_u = st.columns(2) if wide else (st.container(), st.container())
        q = c_q.radio(QUESTION_LABELS["image_quality"], options, format_func=SCALE.get,
                      index=options.index(quality) if quality else None, key=f"{key}_quality")
        u = c_u.radio(QUESTION_LABELS["diagnostic_usefulness"], options, format_func=SCALE.get,
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
    try:
        save(int(q), int(u), text.strip() or None)
    except DBError as err:       # e.g. StorageError on a failed commit: keep what was entered
        st.error(str(err), icon=":material/error:")
        return False
    st.success("Rating saved.")
    return True


def rating_form_ui(*, reader_id: int, picked, method: str, model_version: str | None, key: str,
                   title: str = "Your rating", scale: int | None = None, mode: str | None = None,
                   alpha: float | None = None, image=None) -> bool:
    """Rate one view of the scan ``picked`` (``ui.scan_ui.Picked``): ``method`` with
    ``model_version``, at SR ``scale`` / ``mode`` / ESRGAN ``alpha`` where they apply; ``image``
    is what is rated (default: the scan), shown as the title's thumbnail. The widget keys start
    with ``key`` and end in the view's digest. Returns True on the run where it was saved."""
    from core.db.ratings import get_my_rating, save_rating
    from core.db.records import label_scan
    from core.db.views import describe_view

    scan = picked.scan
    sha = scan.sha256
    frame = scan.frame_index if scan.n_frames > 1 else None
    alpha = None if alpha is None else round(float(alpha), 4)
    view = (frame, scale, mode, alpha)
    with db() as session:
        mine = get_my_rating(session, reader_id=reader_id, scan_sha256=sha, method=method,
                             model_version=model_version)
    same = mine is not None and (mine.frame, mine.scale, mine.mode, mine.alpha) == view
    note = None
    if mine is not None and not same:
        note = (f"You rated {mine.view} of this scan on {mine.updated_at:%Y-%m-%d %H:%M} UTC; "
                "saving here replaces that rating.")

    def save(q: int, u: int, comment: str | None) -> None:
        with db() as session:
            label_scan(session, sha, display_name=picked.name,
                       thumbnail=thumbnail_png(scan.to_uint8()))
            save_rating(session, reader_id=reader_id, scan_sha256=sha, method=method,
                        model_version=model_version or None, image_quality=q,
                        diagnostic_usefulness=u, comment=comment, frame=frame, scale=scale,
                        mode=mode, alpha=alpha)

    rated_view = describe_view(method, model_version=model_version, frame=frame, scale=scale,
                               mode=mode, alpha=alpha)
    heading = (f"**{title}**  \n{markdown_literal(scan_label(picked.name, scan))}  \n"
               f"_{markdown_literal(rated_view)}_")
    thumb = thumbnail_png(scan.to_uint8() if image is None else image, 96)
    form_key = f"{key}_{view_id(sha, method, model_version or None, *view)}"
    return _form(form_key, heading, mine.image_quality if same else None,
                 mine.diagnostic_usefulness if same else None, mine.comment if same else None,
                 mine.updated_at if same else None, save, thumbnail=thumb, note=note)


def study_rating_form_ui(*, reader_id: int, item, key: str) -> bool:
    """Rate one reader-study item by its id (the method stays hidden when blinded)."""
    from core.db.studies import rate_study_item

    def save(q: int, u: int, comment: str | None) -> None:
        with db() as session:
            rate_study_item(session, reader_id=reader_id, item_id=item.item_id,
                            image_quality=q, diagnostic_usefulness=u, comment=comment)

    return _form(key, f"**Your rating of {item.label}**", item.image_quality,
                 item.diagnostic_usefulness, item.comment, None, save, rated=item.rated,
                 wide=False)
