"""Case library (admin): cases per label, thumbnails with search by label and source, a case's
image with its label to confirm or change, remove; and the retrieval embeddings of the active
classifier, built as a background job."""
from __future__ import annotations

import streamlit as st

from core.errors import MedScanError
from ui import auth
from ui.plots import label_counts_bar
from ui.engine_and_models import active_classifier_version, db
from ui.retrieval import embeddings_status, start_embeddings_job
from ui.viewing import case_viewer_ui, viewer_toggle_ui

admin = auth.require_role("admin")
st.title("Case library")

from core.library import cases  # noqa: E402

PAGE_SIZE = 24
NO_LABEL = "(no label)"
ALL = "(all)"

with db() as session:
    per_label = cases.label_counts(session)
    per_source = cases.source_counts(session)
total = sum(per_label.values())
active = active_classifier_version()


# Polls every few seconds only while an embeddings job runs (then its progress moves).
_running = embeddings_status(active)["job"] is not None


@st.fragment(run_every=3 if _running else None)
def embeddings_panel() -> None:
    status = embeddings_status(active)
    done = status["per_version"].get(active, 0) if active else 0
    job = status["job"]
    if active is None:
        st.info("No classifier is active: similar-case search needs one for its embeddings.")
        return
    left, right = st.columns([3, 2], vertical_alignment="center")
    left.progress(done / total if total else 0.0,
                  text=f"Retrieval embeddings for classifier {active}: {done} of {total} cases")
    if job is None and _running:
        st.rerun()   # the job just finished: one full run shows the final state and stops polling
    if job is not None:
        right.info(f"Embeddings job {job.id} is {job.status} "
                   f"({job.fraction:.0%}); the previous index serves until it is done.",
                   icon=":material/hourglass_top:")
    elif total and done < total:
        if right.button(f"Build embeddings for {active}", key="library_embed", type="primary",
                        icon=":material/play_arrow:"):
            try:
                start_embeddings_job(active, admin)
            except MedScanError as err:
                right.error(str(err))
            st.rerun()
    else:
        right.success("Every case is searchable.", icon=":material/check_circle:")
        last = status["last_job"]
        if last is not None and last.status == "failed":
            right.caption(f":red[The last embeddings job ({last.id}) failed: {last.error}]")


if total == 0:
    st.info("The library is empty. Import confirmed cases on the server with\n\n"
            "`python -m core library import DIR --label-from-folder --name NAME` (an image "
            "folder with one subfolder per diagnosis), or `... --labels labels.csv` for a "
            "DICOM tree, or use **Add to case library** on Analyze.",
            icon=":material/library_add:")
    st.stop()

c1, c2, c3 = st.columns(3)
c1.metric("Cases", f"{total:,}")
c2.metric("Confirmed labels", f"{sum(1 for k in per_label if k is not None)}")
c3.metric("Sources", f"{len(per_source)}")
embeddings_panel()
st.plotly_chart(label_counts_bar(per_label), key="library_counts",
                config={"displayModeBar": False})

f1, f2 = st.columns(2)
label_names = [k for k in per_label if k is not None]
label = f1.selectbox("Label", [ALL, *label_names] + ([NO_LABEL] if None in per_label else []),
                     key="library_filter_label")
source = f2.selectbox("Source", [ALL, *per_source], key="library_filter_source")
query = {"label": None if label in (ALL, NO_LABEL) else label,
         "source": None if source == ALL else source, "unlabelled": label == NO_LABEL}
with db() as session:
    n_match = cases.count_cases(session, **query)
pages = max(1, -(-n_match // PAGE_SIZE))
page = st.number_input(f"Page (of {pages})", 1, pages, 1, key="library_page") if pages > 1 else 1
with db() as session:
    shown = cases.list_cases(session, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE, **query)
st.caption(f"{n_match:,} case(s) match; showing {len(shown)}.")


def _open(case_id: int) -> None:
    """Button callback: runs before the script, so the case shows above the grid at once."""
    st.session_state["library_case"] = case_id


chosen = st.session_state.get("library_case")
case = None
if chosen is not None:
    try:
        with db() as session:
            case = cases.get_case(session, chosen)
            pixels = cases.case_pixels(session, chosen)
    except MedScanError as err:      # removed in another tab, or its image is missing
        st.session_state.pop("library_case", None)
        st.warning(str(err))
        case = chosen = None
if case is not None:
    st.subheader(f"Case {case.id}")
    img_col, info_col = st.columns([3, 2])
    if info_col.button("Close", key="library_close", icon=":material/close:"):
        st.session_state.pop("library_case", None)
        st.rerun()
    with img_col:
        stored_caption = f"{case.width}×{case.height}, {case.bit_depth}-bit, as stored"
        if viewer_toggle_ui("library_viewer"):
            case_viewer_ui(pixels, label=f"Case {case.id}", bit_depth=case.bit_depth,
                           caption=stored_caption)
        else:
            st.image(pixels, width="stretch", clamp=True, caption=stored_caption)
    with info_col:
        origin = "confirmed by an admin" if case.label_source == "admin" else "from the import"
        st.markdown(f"**Label:** {case.label or 'none'}"
                    + (f" ({origin})" if case.label else ""))
        st.markdown(f"**Modality / body part:** {case.modality or '-'} / "
                    f"{case.body_part or '-'}  \n**Source:** {case.source}  \n"
                    f"**File (identifiers masked):** {case.source_path or '-'}  \n**Added:** "
                    f"{case.created_at:%Y-%m-%d %H:%M} UTC")
        with st.form(f"library_label_form_{case.id}", border=False):
            new = st.text_input("Confirmed label", value=case.label or "", max_chars=64,
                                help="Leave empty to clear the label.")
            if st.form_submit_button("Save label"):
                try:
                    with db() as session:
                        cases.set_case_label(session, case.id, new or None,
                                             user_id=admin["id"])
                except (MedScanError, ValueError) as err:
                    st.error(str(err))
                else:
                    st.rerun()
        sure = st.checkbox("Yes, remove this case from the library",
                           key=f"library_rm_ok_{case.id}")
        if st.button("Remove case", key=f"library_remove_{case.id}", disabled=not sure,
                     icon=":material/delete:"):
            try:
                with db() as session:
                    cases.remove_case(session, case.id, user_id=admin["id"])
            except MedScanError as err:
                st.error(str(err))
            else:
                st.session_state.pop("library_case", None)
                st.toast(f"Case {case.id} removed.")
                st.rerun()
    st.divider()

cols = st.columns(6)
for i, c in enumerate(shown):
    with cols[i % 6]:
        if c.thumbnail:
            st.image(c.thumbnail, width="stretch")
        st.markdown(f"**{c.label or 'no label'}**  \n:grey[case {c.id} · {c.source}]")
        st.button("Open", key=f"library_open_{c.id}", width="stretch", on_click=_open,
                  args=(c.id,), type="primary" if c.id == chosen else "secondary")

