"""Reader studies (admin): build a blinded study from uploaded scans and their super-resolved
views; follow each reader's progress; close or reopen a study; see a study's results."""
from __future__ import annotations

import streamlit as st

from core.errors import MedScanError
from core.sr import available_methods
from ui import auth, plots
from ui.analysis import record_scan_once
from ui.rating import QUESTION_LABELS
from ui.resources import db
from ui.scan_ui import all_scans_ui, upload_ui
from ui.studies import VIEWS, build_study_images

admin = auth.require_role("admin")
st.title("Reader studies")

from core.db.auth import list_users  # noqa: E402
from core.db.studies import (create_study, list_studies, set_study_active,  # noqa: E402
                             study_rating_rows, study_reader_progress)
from core.studies.results import scores_by_condition, study_results  # noqa: E402



def _cond(condition: str) -> str:
    """A condition (``method`` or ``method@version``) as people read it."""
    from core.db.views import view_label

    method, _, version = str(condition).partition("@")
    return view_label(method) + (f" ({version})" if version else "")


@st.cache_data(show_spinner=False, max_entries=16)
def _results(rows: tuple) -> dict:
    """The results of these ratings (bootstrap included), computed once per set of ratings."""
    return study_results(rows)


def _fmt(x, digits: int = 2) -> str:
    return "—" if x is None else f"{x:.{digits}f}"


def _ci(ci) -> str:
    return "—" if ci is None else f"{ci[0]:.2f} – {ci[1]:.2f}"


tab_new, tab_list, tab_results = st.tabs(["New study", "Studies", "Results"])
with tab_new:
    st.caption("Pick scans (uploaded here or on Analyze / Super-resolution in this session) and "
               "the views readers should rate. Each view is stored as an image in the database, "
               "so the study does not depend on the files. Super-resolved views are made in "
               "simulate mode (the scan shrunk, then restored), so every view has the scan's "
               "size and readers cannot tell methods apart by resolution.")
    upload_ui("scan")
    scans = all_scans_ui()
    if not scans:
        st.info("Upload the scans for the study first.")
    else:
        labels = {p.key: p.name for p in scans}
        chosen = st.multiselect("Scans", list(labels), default=list(labels),
                                format_func=labels.get, key="study_scans")
        c1, c2, c3 = st.columns([3, 1, 1], vertical_alignment="bottom")
        name = c1.text_input("Study name", key="study_name")
        scale = c2.selectbox("SR scale", [4, 2], key="study_scale")
        blinded = c3.checkbox("Blinded", value=True, key="study_blinded")
        offered = ["original", "bicubic"] + [m for m, v in available_methods(scale).items()
                                             if v and m in VIEWS]
        learned = [m for m in ("esrgan", "rrdb_psnr", "srcnn") if m in offered][:1]
        views = st.multiselect("Views to rate", offered, default=["original", "bicubic", *learned],
                               format_func=lambda v: VIEWS[v], key="study_views")
        if st.button("Create study", type="primary", key="study_create",
                     disabled=not (chosen and views and name.strip())):
            picked = [p for p in scans if p.key in chosen]
            try:
                for p in picked:
                    record_scan_once(admin, p)
                with st.spinner("Preparing the study images…", show_time=True):
                    items = build_study_images(picked, views, scale)
                with db() as session:
                    study = create_study(session, name, admin["id"], items, blinded=blinded)
                st.success(f"Created “{study.name}” with {study.n_items} images.")
            except MedScanError as err:
                st.error(str(err))

with tab_list:
    with db() as session:
        studies = list_studies(session)
        users = {u.id: u.username for u in list_users(session)}
        progress = {s.id: study_reader_progress(session, s.id) for s in studies}
    if not studies:
        st.info("No studies yet.")
    for s in studies:
        with st.container(border=True):
            c1, c2 = st.columns([4, 1], vertical_alignment="center")
            c1.markdown(f"**{s.name}** · {s.n_items} images · "
                        f"{'blinded' if s.blinded else 'not blinded'} · "
                        f"{'open' if s.active else 'closed'} · created by {s.created_by or '—'} "
                        f"on {s.created_at:%Y-%m-%d}")
            if c2.button("Close" if s.active else "Reopen", key=f"study_toggle_{s.id}"):
                with db() as session:
                    set_study_active(session, s.id, not s.active)
                st.rerun()
            rows = [{"reader": users.get(p.reader_id, p.reader_id), "rated": p.rated,
                     "of": p.total, "done": p.done} for p in progress[s.id]]
            if rows:
                st.dataframe(rows, hide_index=True, key=f"study_progress_{s.id}")
            else:
                st.caption("No reader has started yet.")


with tab_results:
    if not studies:
        st.info("No studies yet.")
    else:
        names = {s.id: s.name for s in studies}
        sid = st.selectbox("Study", list(names), format_func=names.get, key="results_study")
        with db() as session:
            rows = tuple(study_rating_rows(session, sid))
        if not rows:
            st.info("No ratings in this study yet.")
        else:
            res = _results(rows)
            st.caption(f"{res['n_ratings']} scores · {res['n_cases']} cases · "
                       f"{res['n_readers']} reader(s) · reference condition: "
                       f"{_cond(res['reference'])}. 95% CIs: bootstrap over cases (seeded); "
                       "p-values: Wilcoxon signed-rank over cases (per case the mean over "
                       "readers), Holm-corrected; r: matched-pairs rank-biserial.")
            scores = scores_by_condition(rows)
            st.plotly_chart(plots.score_distribution(
                {q: {_cond(c): scores.get(q, {}).get(c, []) for c in res["conditions"]}
                 for q in res["questions"]}, labels=QUESTION_LABELS), key=f"results_plot_{sid}")
            for q, qres in res["questions"].items():
                st.subheader(QUESTION_LABELS.get(q, q))
                st.dataframe([{"condition": _cond(c), "cases": e["n_cases"],
                               "ratings": e["n_ratings"],
                               "mean": _fmt(e["mean"]), "mean 95% CI": _ci(e["mean_ci95"]),
                               "median": _fmt(e["median"]),
                               "median 95% CI": _ci(e["median_ci95"])}
                              for c, e in qres["by_condition"].items()],
                             hide_index=True, key=f"results_conditions_{sid}_{q}")
                if qres["comparisons"]:
                    st.dataframe([{"condition": _cond(c["condition"]),
                                   "vs": _cond(c["reference"]),
                                   "cases": c["n_pairs"],
                                   "mean difference": _fmt(c["mean_difference"]),
                                   "W": _fmt(c["statistic"], 1), "p": _fmt(c["p_value"], 4),
                                   "p (Holm)": _fmt(c["p_holm"], 4),
                                   "r": _fmt(c["rank_biserial"]), "note": c["reason"] or ""}
                                  for c in qres["comparisons"]],
                                 hide_index=True, key=f"results_compare_{sid}_{q}")
                f = qres["friedman"]
                st.caption("Friedman test across conditions: " + (
                    f"χ² = {f['statistic']:.2f}, p = {f['p_value']:.4f} "
                    f"({f['n_cases']} cases rated under every condition)"
                    if f["reason"] is None else f["reason"]))
                a = qres["agreement"]
                if a is None:
                    st.caption(f"Inter-reader agreement: {qres['agreement_reason']}")
                else:
                    st.caption(
                        f"Inter-reader agreement: ICC(2,1) {_fmt(a['icc']['ICC2']['value'])} "
                        f"({a['icc']['ICC2']['reading']}); ICC(3,1) "
                        f"{_fmt(a['icc']['ICC3']['value'])}; Krippendorff's α ordinal "
                        f"{_fmt(a['alpha_ordinal'])} ({a['readings']['alpha_ordinal']})")
            st.subheader("Readers")
            st.dataframe([{"reader": r["reader"], "rated": r["n_rated"],
                           **{QUESTION_LABELS.get(q, q): _fmt(m) for q, m in r["mean"].items()}}
                          for r in res["readers"]], hide_index=True, key=f"results_readers_{sid}")
