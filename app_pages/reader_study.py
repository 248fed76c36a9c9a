"""Reader study: work through a (blinded) study's images in your own order, rating each.

Blinded studies show "Image 3 of 12" and, side by side, an unnamed "Reference": never the
method, the file name, the model's prediction or anyone else's ratings. The place you were is
kept on the server, so you come back to it from any browser; the time you spend on an image is
stored with your rating; you can change a rating until the study closes. Keyboard: 1–5, ↑ ↓,
Enter, ← →."""
from __future__ import annotations

import time

import streamlit as st

from core.db.errors import DBError
from ui import auth
from ui.rating import STUDY_KEYS, study_answer_ui
from ui.engine_and_models import db
from ui.viewing import study_viewer_ui, viewer_toggle_ui

user = auth.require_role()
st.title("Reader study")

from core.db.studies import (list_studies, reader_place, set_reader_place,  # noqa: E402
                             study_image_bytes, study_queue, study_reference_bytes)

with db() as session:
    studies = list_studies(session, active_only=True, reader_id=user["id"])
if not studies:
    st.info("No reader study is open for you. An administrator creates studies on the Reader "
            "studies page.", icon=":material/checklist:")
    st.stop()

by_id = {s.id: s for s in studies}
study_id = st.selectbox("Study", list(by_id), format_func=lambda i: by_id[i].name,
                        key="study_pick")
study = by_id[study_id]
try:
    with db() as session:
        queue = study_queue(session, study_id, user["id"])
        saved_place = reader_place(session, study_id, user["id"])
except DBError as err:
    st.error(str(err))
    st.stop()
done = sum(item.rated for item in queue)
finished = " — finished, thank you!" if done == len(queue) else ""
st.progress(done / len(queue) if queue else 1.0, text=f"{done} of {len(queue)} rated{finished}")
if study.blinded:
    st.caption("Blinded study: you do not see how each image was produced. Your order is "
               "shuffled for you and stays the same when you come back. " + STUDY_KEYS)
else:
    st.caption(STUDY_KEYS)

pos_key = f"study_{study_id}_pos"
if pos_key not in st.session_state:    # come back to where you were (on any browser)
    st.session_state[pos_key] = saved_place
pos = max(0, min(st.session_state[pos_key], len(queue) - 1))
item = queue[pos]


def _go(new_pos: int) -> None:
    """Move to another showing and remember it on the server."""
    st.session_state[pos_key] = new_pos
    try:
        with db() as session:
            set_reader_place(session, study_id, user["id"], new_pos)
    except DBError:
        pass          # the place is a convenience: never block reading for it


c_prev, c_label, c_next, c_jump = st.columns([1, 3, 1, 2], vertical_alignment="center")
c_prev.button("◀ Previous", key="study_prev", disabled=pos == 0, shortcut="Left",
              on_click=_go, args=(pos - 1,))
c_label.markdown(f"### {item.label}" + (" :green[:material/check_circle:]" if item.rated
                                        else ""))
c_next.button("Next ▶", key="study_next", disabled=pos == len(queue) - 1, shortcut="Right",
              on_click=_go, args=(pos + 1,))
unrated = [i for i, it in enumerate(queue) if not it.rated]
c_jump.button("Next unrated", key="study_next_unrated", disabled=not unrated, on_click=_go,
              args=(next((i for i in unrated if i > pos), unrated[0] if unrated else pos),))

# The clock of this showing starts when it is first shown in this session.
show_key = f"study_{study_id}_{item.item_id}_{int(item.is_repeat)}"
st.session_state.setdefault(f"{show_key}_t0", time.monotonic())

col_img, col_form = st.columns([3, 2], gap="large")
with col_img:
    with db() as session:
        png = study_image_bytes(session, item.item_id)
        ref = study_reference_bytes(session, item.item_id) if item.has_reference else None
    use_viewer = png is not None and viewer_toggle_ui("study_viewer")
    if png is None:
        st.warning("This item has no stored image; ask the study's administrator.")
    elif use_viewer:
        study_viewer_ui(png, ref)
    elif ref is not None:
        c_ref, c_img = st.columns(2)
        c_ref.image(ref, caption="Reference", width="stretch")
        c_img.image(png, caption="Image to rate", width="stretch")
    else:
        st.image(png, width="stretch")
with col_form:
    if study_answer_ui(reader_id=user["id"], showing=item, key=show_key,
                       ask_comment=study.ask_comment,
                       diagnosis_choices=study.diagnosis_choices,
                       seconds=lambda: time.monotonic() - st.session_state[f"{show_key}_t0"]):
        st.session_state[f"{show_key}_t0"] = time.monotonic()   # a later change adds its time
        st.toast(f"Saved your rating of {item.label}.", icon=":material/check:")
        _go(pos + 1 if pos < len(queue) - 1 else pos)
        st.rerun()
