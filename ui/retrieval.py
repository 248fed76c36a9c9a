"""Similar cases on Analyze, "Add to case library" (admin), and the Case library page's
widgets. Model, index and SQL work is in ``core.library`` / ``core.retrieval``; this module only
lays it out.

The search result is cached per (upload, frame, serving classifier version, library state):
moving a slider on Analyze re-uses it; adding or removing a case, or a finished embeddings
job, changes the state and so the result.
"""
from __future__ import annotations

import numpy as np
import streamlit as st

from core import config
from core.errors import MedScanError
from ui import engine_and_models
from ui.images import to_rgb

__all__ = ["similar_cases_ui", "add_to_library_ui", "library_state", "start_embeddings_job",
           "queue_embeddings_if_needed",
           "embeddings_status", "DEFAULT_K"]

DEFAULT_K = 6


def library_state(active: str | None) -> tuple:
    """(serving version, notice, (cases, embedded, last embedding id)): a cheap fingerprint of
    what a search would see."""
    from core.db.cases import embedding_state
    from core.retrieval.search import serving_version

    with engine_and_models.db() as s:
        version, notice = serving_version(s, active)
        state = embedding_state(s, version) if version else (0, 0, 0)
    return version, notice, state


@st.cache_data(show_spinner=False, max_entries=128, ttl=3600)
def _search(key: str, version: str, state: tuple, k: int, weights_dir: str, _pixels):
    from core.retrieval.search import search_library

    with engine_and_models.db() as s:
        return search_library(s, _pixels, k=k, active_version=version,
                              load_classifier=engine_and_models.classifier)


@st.cache_data(show_spinner=False, max_entries=256, ttl=3600)
def _case_image(case_id: int, state: tuple) -> np.ndarray:
    from core.library.cases import case_pixels

    with engine_and_models.db() as s:
        return case_pixels(s, case_id)


def similar_cases_ui(picked, shown, clf, *, k: int = DEFAULT_K) -> None:
    """The "Similar cases" section: top ``k`` library cases with label and similarity, a
    one-line summary, and a side-by-side comparison of a chosen case with the scan."""
    from core.retrieval.search import summary_text

    st.subheader("Similar cases")
    try:
        version, notice, state = library_state(clf.version)
    except MedScanError as err:
        st.info(str(err), icon=":material/info:")
        return
    if state[0] == 0:
        st.caption("The case library is empty. An administrator can import confirmed cases "
                   "(`python -m core library import DIR --label-from-folder`) or add scans "
                   "from this page.")
        return
    if version is None:
        st.info("No library case has a retrieval embedding yet: an administrator can build "
                "them on the Case library page.", icon=":material/hourglass_empty:")
        return
    with st.spinner("Searching the case library…"):
        try:
            res = _search(picked.key, version, state, k, str(config.weights_dir()),
                          _pixels=picked.scan.pixels)
        except MedScanError as err:
            st.warning(str(err), icon=":material/warning:")
            return
    if notice:
        st.caption(f":grey[{notice}]")
    st.markdown(f"**{summary_text(res)}**")
    st.caption(f"Most similar of {res.n_index} library cases by the classifier's features "
               f"(version {res.version}; cosine similarity, 1 = identical). Similar-looking "
               "cases with confirmed diagnoses are context, not a second opinion.")
    cols = st.columns(len(res.matches) or 1)
    for col, m in zip(cols, res.matches):
        with col:
            st.image(_case_image(m.case_id, state), width="stretch")
            st.markdown(f"**{m.label or 'no label'}**  \n:grey[{m.similarity:.3f} · case "
                        f"{m.case_id}]")
            if st.button("Compare", key=f"similar_cmp_{m.case_id}", width="stretch",
                         help="Show this case next to the scan, at the same size"):
                st.session_state["similar_compare"] = (picked.key, m.case_id)
    chosen = st.session_state.get("similar_compare")
    if chosen and chosen[0] == picked.key:
        match = next((m for m in res.matches if m.case_id == chosen[1]), None)
        if match is not None:
            _compare(shown, match, _case_image(match.case_id, state))


def _compare(shown, match, case_img: np.ndarray) -> None:
    with st.container(border=True):
        head, close = st.columns([6, 1])
        head.markdown(f"**Scan** next to **case {match.case_id}** ({match.label or 'no label'}, "
                      f"similarity {match.similarity:.3f}, from {match.source})")
        if close.button("Close", key="similar_close", icon=":material/close:"):
            st.session_state.pop("similar_compare", None)
            st.rerun()
        left, right = st.columns(2)
        query = to_rgb(shown.to_uint8())
        other = to_rgb(np.rint(np.clip(case_img, 0, 1) * 255).astype(np.uint8))
        left.image(query, width="stretch", caption="this scan")
        right.image(other, width="stretch",
                    caption=f"case {match.case_id}: {match.label or 'no label'} (as stored)")


def add_to_library_ui(picked, user: dict, classes: list[str]) -> None:
    """Admin only: add the current scan's displayed pixels (no header) with a confirmed label."""
    from core.db.errors import DBError
    from core.library.cases import add_scan

    with st.popover("Add to case library", icon=":material/library_add:"):
        st.caption("Stores the image as shown (no DICOM header: only modality and body part) "
                   "with a confirmed diagnosis, for similar-case search and reader studies.")
        choice = st.selectbox("Confirmed label", [*classes, "other…", "no label yet"],
                              key="library_label", index=None,
                              placeholder="Choose the confirmed diagnosis")
        other = (st.text_input("Label", key="library_label_other", max_chars=64)
                 if choice == "other…" else None)
        label = other if choice == "other…" else (None if choice == "no label yet" else choice)
        if st.button("Add", key="library_add", type="primary", disabled=choice is None
                     or (choice == "other…" and not (other or "").strip())):
            try:
                with engine_and_models.db() as s:
                    res = add_scan(s, picked.scan, label=label, added_by=user["id"])
            except (MedScanError, DBError, ValueError) as err:
                st.error(f"Not added: {err}")
                return
            if res.created:
                st.success(f"Added as case {res.case.id}"
                           + (f" ({res.case.label})." if res.case.label else "."))
            else:
                st.info(f"This image is already in the library as case {res.case.id} "
                        f"({res.case.label or 'no label'}); nothing was added.")


def embeddings_status(active: str | None) -> dict:
    """Cases, embedded cases per version, and the running embeddings job (if any)."""
    from core.db.cases import count_cases, embedding_counts
    from core.jobs.service import list_jobs

    with engine_and_models.db() as s:
        jobs = [j for j in list_jobs(s, 20) if j.kind == "embeddings"]
        return {"cases": count_cases(s), "per_version": embedding_counts(s), "active": active,
                "job": next((j for j in jobs if j.status in ("queued", "running")), None),
                "last_job": jobs[0] if jobs else None}


def start_embeddings_job(version: str, user: dict):
    """Queue ``python -m core library embed --model VERSION`` as a background job."""
    from core.jobs.service import start_training_job

    with engine_and_models.db() as s:
        return start_training_job(s, "embeddings", ["--model", version], user["id"])


def queue_embeddings_if_needed(version: str, user: dict) -> str | None:
    """After a classifier version is activated: start its embeddings job when library cases
    lack them (and none is running). Returns a sentence for the page, or None."""
    status = embeddings_status(version)
    missing = status["cases"] - status["per_version"].get(version, 0)
    if missing <= 0:
        return None
    if status["job"] is not None:
        return (f"An embeddings job ({status['job'].id}) is already running; start one for "
                f"{version} on the Case library page when it is done.")
    try:
        job = start_embeddings_job(version, user)
    except MedScanError as err:
        return f"The case library's embeddings for {version} were not started: {err}"
    return (f"Embedding {missing} library cases with {version} in the background (job "
            f"{job.id}); similar cases use the previous index until it is done.")
