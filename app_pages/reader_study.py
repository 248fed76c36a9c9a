"""Reader study: work through a (blinded) study's images in your own shuffled order, rating each."""
from __future__ import annotations

import streamlit as st

from ui import auth
from ui.rating import study_rating_form_ui
from ui.resources import db

user = auth.require_role()
st.title("Reader study")

from core.db.studies import list_studies, study_image_bytes, study_queue  # noqa: E402

with db() as session:
    studies = list_studies(session, active_only=True)
if not studies:
    st.info("No reader study is open. An administrator creates studies on the Reader studies "
            "page.", icon=":material/checklist:")
    st.stop()

by_id = {s.id: s for s in studies}
study_id = st.selectbox("Study", list(by_id), format_func=lambda i: by_id[i].name,
                        key="study_pick")
study = by_id[study_id]
with db() as session:
    queue = study_queue(session, study_id, user["id"])
done = sum(item.rated for item in queue)
st.progress(done / len(queue) if queue else 1.0,
            text=f"{done} of {len(queue)} rated" + (" — finished, thank you!" if done == len(queue)
                                                    else ""))
if study.blinded:
    st.caption("Blinded study: you do not see how each image was produced. Your order is "
               "shuffled for you and stays the same when you come back.")

pos_key = f"study_{study_id}_pos"
if pos_key not in st.session_state:  # start at the first image not yet rated
    st.session_state[pos_key] = next((i for i, it in enumerate(queue) if not it.rated), 0)
pos = min(st.session_state[pos_key], len(queue) - 1)
item = queue[pos]

c_prev, c_label, c_next, c_jump = st.columns([1, 3, 1, 2], vertical_alignment="center")
if c_prev.button("◀ Previous", key="study_prev", disabled=pos == 0):
    st.session_state[pos_key] = pos - 1
    st.rerun()
c_label.markdown(f"### {item.label}" + (" :green[:material/check_circle:]" if item.rated
                                        else ""))
if c_next.button("Next ▶", key="study_next", disabled=pos == len(queue) - 1):
    st.session_state[pos_key] = pos + 1
    st.rerun()
unrated = [i for i, it in enumerate(queue) if not it.rated]
if c_jump.button("Next unrated", key="study_next_unrated", disabled=not unrated):
    st.session_state[pos_key] = next((i for i in unrated if i > pos), unrated[0])
    st.rerun()

col_img, col_form = st.columns([3, 2], gap="large")
with col_img:
    with db() as session:
        png = study_image_bytes(session, item.item_id)
    if png is None:
        st.warning("This item has no stored image; ask the study's administrator.")
    else:
        st.image(png, width="stretch")
with col_form:
    if study_rating_form_ui(reader_id=user["id"], item=item, key=f"study_item_{item.item_id}"):
        st.toast(f"Saved your rating of {item.label}.", icon=":material/check:")
        if pos < len(queue) - 1:
            st.session_state[pos_key] = pos + 1   # move on to the next image
        st.rerun()
