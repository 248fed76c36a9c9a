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
from ui.engine_and_models import db
from ui.scan_ui import markdown_literal, scan_label

__all__ = ["SCALE", "QUESTION_LABELS", "STUDY_KEYS", "rating_form_ui", "rating_form_fragment", "study_rating_form_ui",
           "study_answer_ui", "view_id"]

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
    from core.db.scans import label_scan
    from core.db.rows import describe_view

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


#: :func:`rating_form_ui` as a fragment: choosing a score or saving reruns the form only.
rating_form_fragment = st.fragment(rating_form_ui)


def study_rating_form_ui(*, reader_id: int, item, key: str) -> bool:
    """Rate one reader-study showing by its item id (the method stays hidden when blinded).
    The simple form (no keyboard); the reader-study page uses :func:`study_answer_ui`."""
    from core.db.studies import rate_study_item

    def save(q: int, u: int, comment: str | None) -> None:
        with db() as session:
            rate_study_item(session, reader_id=reader_id, item_id=item.item_id,
                            image_quality=q, diagnostic_usefulness=u, comment=comment,
                            repeat=getattr(item, "is_repeat", False))

    return _form(key, f"**Your rating of {item.label}**", item.image_quality,
                 item.diagnostic_usefulness, item.comment, None, save, rated=item.rated,
                 wide=False)


#: The keys of the reader-study form: 1–5 answer the highlighted question, ↑ / ↓ pick the
#: question, Enter saves and moves on (the page adds ← / → for previous / next).
STUDY_KEYS = "Keyboard: 1–5 answer the highlighted question · ↑ ↓ pick the question · " \
             "Enter saves and moves on · ← → previous / next image"


# Widget-key suffix of each question in the reader-study form.
_SUFFIX = {"image_quality": "quality", "diagnostic_usefulness": "usefulness"}


def _pick(state_key: str, active_key: str, value: int, order: list[str]) -> None:
    """Shortcut button callback: answer the active question, then highlight the next one."""
    active = st.session_state.get(active_key, order[0])
    st.session_state[f"{state_key}_{_SUFFIX[active]}"] = value
    i = order.index(active)
    st.session_state[active_key] = order[min(i + 1, len(order) - 1)]


def _move(active_key: str, order: list[str], step: int) -> None:
    i = order.index(st.session_state.get(active_key, order[0]))
    st.session_state[active_key] = order[max(0, min(len(order) - 1, i + step))]


def study_answer_ui(*, reader_id: int, showing, key: str, ask_comment: bool = True,
                    diagnosis_choices: tuple[str, ...] | None = None,
                    seconds: Callable[[], float] | None = None) -> bool:
    """The reader-study answer: both 1–5 scales (pre-filled with the reader's own answer to
    this showing), the optional diagnosis and comment, keyboard shortcuts (:data:`STUDY_KEYS`)
    and a save button. ``seconds()`` is the time spent on the showing, stored with the answer.
    Widget keys start with ``key`` (one per showing). Returns True on the run it was saved."""
    from core.db.studies import rate_study_item

    order = list(QUESTION_LABELS)
    active_key = f"{key}_active"
    for q, value in (("image_quality", showing.image_quality),
                     ("diagnostic_usefulness", showing.diagnostic_usefulness)):
        st.session_state.setdefault(f"{key}_{_SUFFIX[q]}", value)
    if active_key not in st.session_state:
        st.session_state[active_key] = next(
            (q for q in order if st.session_state.get(f"{key}_{_SUFFIX[q]}") is None), order[0])
    active = st.session_state[active_key]
    options = list(SCALE)
    with st.container(border=True):
        st.markdown(f"**Your rating of {showing.label}**")
        if showing.rated:
            st.caption("You have rated this image; saving again replaces your rating until the "
                       "study closes.")
        for q in order:
            mark = " ◀" if q == active else ""
            st.radio(f"{QUESTION_LABELS[q]}{mark}", options, format_func=SCALE.get, index=None,
                     key=f"{key}_{_SUFFIX[q]}")
        cols = st.columns(5)
        for value, col in zip(options, cols):
            col.button(str(value), key=f"{key}_k{value}", shortcut=str(value),
                       on_click=_pick, args=(key, active_key, value, order),
                       help=f"Answer the highlighted question ◀ with {SCALE[value]}",
                       width="stretch")
        c_up, c_down = st.columns(2)
        c_up.button("↑ question", key=f"{key}_up", shortcut="Up", on_click=_move,
                    args=(active_key, order, -1), width="stretch")
        c_down.button("↓ question", key=f"{key}_down", shortcut="Down", on_click=_move,
                      args=(active_key, order, 1), width="stretch")
        diagnosis = None
        if diagnosis_choices:
            choices = list(diagnosis_choices)
            st.session_state.setdefault(f"{key}_diagnosis", showing.diagnosis
                                        if showing.diagnosis in choices else None)
            diagnosis = st.radio("Diagnosis (optional)", choices, index=None,
                                 key=f"{key}_diagnosis", horizontal=True)
        comment = None
        if ask_comment:
            st.session_state.setdefault(f"{key}_comment", showing.comment or "")
            comment = st.text_area("Comment (optional)", key=f"{key}_comment", height=68)
        submitted = st.button("Update rating" if showing.rated else "Save and next",
                              type="primary", key=f"{key}_submit", shortcut="Enter",
                              width="stretch")
    if not submitted:
        return False
    q, u = (st.session_state.get(f"{key}_{_SUFFIX[x]}") for x in order)
    if q is None or u is None:
        st.warning("Choose a value on both scales before saving.")
        return False
    try:
        with db() as session:
            rate_study_item(session, reader_id=reader_id, item_id=showing.item_id,
                            image_quality=int(q), diagnostic_usefulness=int(u),
                            comment=(comment or "").strip() or None, diagnosis=diagnosis,
                            seconds=seconds() if seconds else None, repeat=showing.is_repeat)
    except DBError as err:       # closed meanwhile, storage error: keep what was entered
        st.error(str(err), icon=":material/error:")
        return False
    return True
