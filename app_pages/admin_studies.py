"""Reader studies (admin): design a study from stored cases (case library or a folder on the
server) or from scans uploaded here; make its condition images in the background; open, close,
reopen or delete it; follow each reader's progress; see and export its results."""
from __future__ import annotations

import json

import streamlit as st

from core.errors import MedScanError
from core.sr import available_methods
from core.sr.methods import GAN_METHODS, MODEL_METHODS, uses_alpha
from ui import auth, plots
from ui.analysis import record_scan_once
from ui.rating import QUESTION_LABELS
from ui.engine_and_models import db
from ui.scan_ui import all_scans_ui, upload_ui
from ui.studies import VIEWS, build_study_images, cond_label, state_badge

admin = auth.require_role("admin")
st.title("Reader studies")

from core.db.auth import list_users  # noqa: E402
from core.db.jobs import ACTIVE_STATUSES  # noqa: E402
from core.jobs.service import get_job, start_training_job  # noqa: E402
from core.db.studies import (close_study, create_study, delete_study,  # noqa: E402
                             list_studies, open_study, set_study_job, set_study_readers,
                             study_rating_rows, study_reader_progress, study_response_rows)
from core.studies.design import (CONDITION_LABELS, CONDITIONS, REFERENCE_LABELS,  # noqa: E402
                                 StudyDesign, classifier_classes, design_study, folder_sources,
                                 library_sources, library_summary)
from core.studies.export import (ratings_csv, report_html, results_json,  # noqa: E402
                                 study_dict)
from core.studies.results import (diagnosis_accuracy, reader_details,  # noqa: E402
                                  scores_by_condition, study_results)


@st.cache_data(show_spinner=False, max_entries=16)
def _results(rows: tuple) -> dict:
    """The results of these ratings (bootstrap included), computed once per set of ratings."""
    return study_results(rows)


def _fmt(x, digits: int = 2) -> str:
    return "—" if x is None else f"{x:.{digits}f}"


def _ci(ci) -> str:
    return "—" if ci is None else f"{ci[0]:.2f} – {ci[1]:.2f}"


def _design_from_cases() -> None:
    """The form for a study from the case library or a server folder (a draft, then images)."""
    source = st.radio("Cases from", ["library", "folder"], horizontal=True, key="design_source",
                      format_func={"library": "Case library",
                                   "folder": "Image folder on the server"}.get)
    with db() as session:
        summary = library_summary(session)
        users = [u for u in list_users(session) if u.active]
    pick, value, folder = "all", None, None
    if source == "library":
        if not summary["total"]:
            st.info("The case library is empty; import cases first, or use a folder.")
        c1, c2 = st.columns(2)
        pick = c1.selectbox("Pick", ["all", "label", "source"], key="design_pick",
                            format_func={"all": f"All cases ({summary['total']})",
                                         "label": "By label", "source": "By import"}.get)
        if pick == "label":
            value = c2.selectbox("Label", [k for k in summary["labels"] if k is not None],
                                 key="design_label",
                                 format_func=lambda k: f"{k} ({summary['labels'][k]})")
        elif pick == "source":
            value = c2.selectbox("Import", list(summary["sources"]), key="design_import",
                                 format_func=lambda k: f"{k} ({summary['sources'][k]})")
    else:
        folder = st.text_input("Folder on the server (labels from first-level subfolders)",
                               key="design_folder")
    limit = st.number_input("At most this many cases (0: all)", 0, 5000, 0, key="design_limit")
    c1, c2, c3 = st.columns([3, 1, 1])
    conditions = c1.multiselect("Conditions", list(CONDITIONS), default=["original", "bicubic"],
                                format_func=CONDITION_LABELS.get, key="design_conditions")
    scale = c2.selectbox("SR scale", [4, 2], key="design_scale")
    alpha = c3.number_input("GAN α", 0.0, 1.0, 0.8, 0.05, key="design_alpha",
                            disabled=not any(uses_alpha(c) for c in conditions),
                            help="Network interpolation of the GAN conditions (" + ", ".join(
                                CONDITION_LABELS[m] for m in GAN_METHODS) + "): 0 = their "
                            "PSNR-trained generator, 1 = the GAN.")
    c1, c2, c3 = st.columns(3)
    presentation = c1.radio("Presentation", ["single", "side_by_side"], key="design_present",
                            format_func={"single": "Single image",
                                         "side_by_side": "Side by side with a reference"}.get)
    reference = c2.selectbox("Reference (shown as “reference”)", list(REFERENCE_LABELS),
                             format_func=REFERENCE_LABELS.get, key="design_reference",
                             disabled=presentation == "single")
    repeat = c3.slider("Items shown twice (intra-reader consistency)", 0.0, 0.5, 0.1, 0.05,
                       key="design_repeat")
    c1, c2, c3 = st.columns(3)
    ask_comment = c1.checkbox("Ask for a comment", value=True, key="design_comment")
    blinded = c2.checkbox("Blinded", value=True, key="design_blinded")
    ask_diagnosis = c3.checkbox("Ask for a diagnosis", value=False, key="design_ask_dx")
    choices = None
    if ask_diagnosis:
        default = ", ".join(classifier_classes())
        choices = st.text_input("Diagnosis choices (comma-separated; default: the "
                                "classifier's classes)", value=default, key="design_dx")
    names = {u.id: u.username for u in users}
    readers = st.multiselect("Readers (none: anyone signed in)", list(names),
                             format_func=names.get, key="design_readers")
    name = st.text_input("Study name", key="design_name")
    if st.button("Create draft study", type="primary", key="design_create",
                 disabled=not (conditions and name.strip())):
        try:
            with db() as session:
                sources = (folder_sources(folder or "", limit=limit or None)
                           if source == "folder" else
                           library_sources(session, label=value if pick == "label" else None,
                                           source=value if pick == "source" else None,
                                           limit=limit or None))
                design = StudyDesign(
                    name=name, conditions=tuple(conditions), scale=int(scale),
                    alpha=float(alpha), presentation=presentation,
                    reference=reference if presentation == "side_by_side" else None,
                    repeat_fraction=float(repeat), blinded=blinded, ask_comment=ask_comment,
                    diagnosis_choices=tuple(c.strip() for c in (choices or "").split(",")
                                            if c.strip()) or None,
                    readers=tuple(readers))
                study = design_study(session, design, sources, admin["id"],
                                     folder=folder if source == "folder" else None)
            st.success(f"Created the draft “{study.name}”: {study.n_cases} cases, "
                       f"{study.n_items} images to make. Start making them under Studies.")
        except MedScanError as err:
            st.error(str(err))


def _design_from_uploads() -> None:
    st.caption("Pick scans (uploaded here or on Analyze / Super-resolution in this session) and "
               "the views readers should rate. Each view is stored as an image in the database, "
               "so the study does not depend on the files. Super-resolved views are made in "
               "simulate mode (the scan shrunk, then restored), so every view has the scan's "
               "size and readers cannot tell methods apart by resolution.")
    upload_ui("scan")
    scans = all_scans_ui()
    if not scans:
        st.info("Upload the scans for the study first.")
        return
    labels = {p.key: p.name for p in scans}
    chosen = st.multiselect("Scans", list(labels), default=list(labels),
                            format_func=labels.get, key="study_scans")
    c1, c2, c3 = st.columns([3, 1, 1], vertical_alignment="bottom")
    name = c1.text_input("Study name", key="study_name")
    scale = c2.selectbox("SR scale", [4, 2], key="study_scale")
    blinded = c3.checkbox("Blinded", value=True, key="study_blinded")
    offered = ["original", "bicubic"] + [m for m, v in available_methods(scale).items()
                                         if v and m in VIEWS]
    learned = [m for m in reversed(MODEL_METHODS) if m in offered][:1]   # esrgan first
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
                study = create_study(session, name, admin["id"], items, blinded=blinded,
                                     scale=scale)
            st.success(f"Created “{study.name}” with {study.n_items} images.")
        except MedScanError as err:
            st.error(str(err))


def _act(fn, *args, **kw) -> None:
    try:
        with db() as session:
            fn(session, *args, **kw)
    except MedScanError as err:
        st.session_state["studies_error"] = str(err)


def _generate(study_id: int) -> None:
    try:
        with db() as session:
            job = start_training_job(session, "study_images", [str(study_id)], admin["id"])
            set_study_job(session, study_id, job.id)
    except MedScanError as err:
        st.session_state["studies_error"] = str(err)


@st.fragment(run_every=3)
def _job_ui(study_id: int, job_id: int) -> None:
    """The image job's progress; reruns the page once it has finished."""
    with db() as session:
        job = get_job(session, job_id)
    if job.status in ACTIVE_STATUSES:
        st.progress(job.fraction, text=f"Making images: {job.progress.get('message', '')}"
                    if job.progress else "Making images…")
    elif job.status == "succeeded":
        st.caption("Images made.")
    else:
        first = (job.error or "").strip().splitlines()[:1]
        st.error(f"Making the images {job.status}" + (f": {first[0]}" if first else "."))
    if st.session_state.get(f"job_{job_id}_seen") != job.status:
        st.session_state[f"job_{job_id}_seen"] = job.status
        if job.status not in ACTIVE_STATUSES:
            st.rerun(scope="app")


def _readers_ui(s, users: dict[int, str]) -> None:
    """Change a draft or open study's reader list (none: anyone signed in)."""
    with st.expander("Readers"):
        by_name = {name: uid for uid, name in users.items()}
        current = [] if s.open_to_all else [r for r in s.readers if r in by_name]
        st.multiselect("Readers (none: anyone signed in)", list(by_name), default=current,
                       key=f"study_readers_{s.id}")
        st.button("Save readers", key=f"study_readers_save_{s.id}", on_click=_save_readers,
                  args=(s.id, by_name))


def _save_readers(study_id: int, by_name: dict[str, int]) -> None:
    """Callback: the readers chosen at click time (the multiselect's state, not its value
    when the button was drawn)."""
    names = st.session_state.get(f"study_readers_{study_id}") or []
    _act(set_study_readers, study_id, [by_name[n] for n in names], admin["id"])


def _studies_tab(studies, users) -> None:
    if err := st.session_state.pop("studies_error", None):
        st.error(err)
    if not studies:
        st.info("No studies yet.")
    with db() as session:
        progress = {s.id: study_reader_progress(session, s.id) for s in studies}
    for s in studies:
        with st.container(border=True):
            c1, c2 = st.columns([4, 2], vertical_alignment="center")
            c1.markdown(
                f"**{s.name}** · {state_badge(s.state)} · {s.n_cases} cases · {s.n_items} "
                f"images ({s.n_ready} ready) · {'blinded' if s.blinded else 'not blinded'} · "
                f"{'side by side' if s.presentation == 'side_by_side' else 'single image'} · "
                f"repeats {s.repeat_fraction:.0%} · readers: "
                f"{', '.join(s.readers) if not s.open_to_all else 'anyone'} · created by "
                f"{s.created_by or '—'} on {s.created_at:%Y-%m-%d}")
            b1, b2, b3 = c2.columns(3)
            if s.state == "draft":
                b1.button("Make images", key=f"study_generate_{s.id}", on_click=_generate,
                          args=(s.id,), disabled=s.ready)
                b2.button("Open", key=f"study_open_{s.id}", disabled=not s.ready,
                          on_click=_act, args=(open_study, s.id, admin["id"]))
            elif s.state == "open":
                b1.button("Close", key=f"study_toggle_{s.id}", on_click=_act,
                          args=(close_study, s.id, admin["id"]))
            else:
                b1.button("Reopen", key=f"study_toggle_{s.id}", on_click=_act,
                          args=(open_study, s.id, admin["id"]))
            rated = any(p.rated for p in progress[s.id])
            confirm = (c2.checkbox("Also delete its ratings", key=f"study_confirm_{s.id}")
                       if rated else False)
            b3.button("Delete", key=f"study_delete_{s.id}", disabled=rated and not confirm,
                      on_click=_act, args=(delete_study, s.id, admin["id"]),
                      kwargs={"confirm": confirm})
            if s.state == "draft" and s.job_id is not None:
                _job_ui(s.id, s.job_id)
            if s.state != "closed":
                _readers_ui(s, users)
            rows = [{"reader": users.get(p.reader_id, p.reader_id), "rated": p.rated,
                     "of": p.total, "done": p.done} for p in progress[s.id]]
            if rows:
                st.dataframe(rows, hide_index=True, key=f"study_progress_{s.id}")
            elif s.state != "draft":
                st.caption("No reader has started yet.")


@st.cache_data(show_spinner=False, max_entries=16)
def _exports(study_json: str, rows: tuple, responses_json: str) -> tuple[str, str, str]:
    """CSV, JSON and HTML of one state of a study's ratings (computed once per state)."""
    study = json.loads(study_json)
    responses = json.loads(responses_json)
    report = {"study": study, **_results(rows), "reader_details": reader_details(responses),
              "diagnosis": diagnosis_accuracy(responses), "scores": scores_by_condition(rows)}
    return ratings_csv(study["id"], responses), results_json(report), report_html(report)


def _results_tab(studies) -> None:
    if not studies:
        st.info("No studies yet.")
        return
    names = {s.id: s.name for s in studies}
    sid = st.selectbox("Study", list(names), format_func=names.get, key="results_study")
    study = next(s for s in studies if s.id == sid)
    with db() as session:
        rows = tuple(study_rating_rows(session, sid))
        responses = study_response_rows(session, sid)
    if not rows:
        st.info("No ratings in this study yet.")
        return
    res = _results(rows)
    st.caption(f"{res['n_ratings']} scores · {res['n_cases']} cases · "
               f"{res['n_readers']} reader(s) · reference condition: "
               f"{cond_label(res['reference'])}. 95% CIs: bootstrap over cases (seeded); "
               "p-values: Wilcoxon signed-rank over cases (per case the mean over "
               "readers), Holm-corrected; r: matched-pairs rank-biserial.")
    csv_text, json_text, html_text = _exports(json.dumps(study_dict(study)), rows,
                                              json.dumps(responses))
    d1, d2, d3 = st.columns(3)
    d1.download_button("Ratings (CSV)", csv_text, f"study-{sid}-ratings.csv", "text/csv",
                       key=f"results_csv_{sid}")
    d2.download_button("Results (JSON)", json_text, f"study-{sid}-results.json",
                       "application/json", key=f"results_json_{sid}")
    d3.download_button("Report (HTML, printable)", html_text, f"study-{sid}-report.html",
                       "text/html", key=f"results_html_{sid}")
    scores = scores_by_condition(rows)
    st.plotly_chart(plots.score_distribution(
        {q: {cond_label(c): scores.get(q, {}).get(c, []) for c in res["conditions"]}
         for q in res["questions"]}, labels=QUESTION_LABELS), key=f"results_plot_{sid}")
    for q, qres in res["questions"].items():
        st.subheader(QUESTION_LABELS.get(q, q))
        st.dataframe([{"condition": cond_label(c), "cases": e["n_cases"],
                       "ratings": e["n_ratings"],
                       "mean": _fmt(e["mean"]), "mean 95% CI": _ci(e["mean_ci95"]),
                       "median": _fmt(e["median"]),
                       "median 95% CI": _ci(e["median_ci95"])}
                      for c, e in qres["by_condition"].items()],
                     hide_index=True, key=f"results_conditions_{sid}_{q}")
        if qres["comparisons"]:
            st.dataframe([{"condition": cond_label(c["condition"]),
                           "vs": cond_label(c["reference"]),
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
    details = reader_details(responses)
    st.dataframe([{"reader": d["reader"], "showings answered": d["n_showings"],
                   "median s per image": _fmt(d["seconds_median"], 1),
                   "total min": _fmt(d["seconds_total"] / 60 if d["seconds_total"] else None,
                                     1),
                   **{f"repeats agree ({QUESTION_LABELS[q].lower()})":
                      (f"{_fmt(c['exact'])} of {c['n_pairs']}" if c["n_pairs"] else "—")
                      for q, c in d["consistency"].items()}}
                  for d in details], hide_index=True, key=f"results_reader_time_{sid}")
    if dx := diagnosis_accuracy(responses):
        st.subheader("Diagnosis")
        st.dataframe([{"condition": cond_label(c), "answers": d["n"], "correct": d["correct"],
                       "accuracy": _fmt(d["accuracy"])} for c, d in dx.items()],
                     hide_index=True, key=f"results_dx_{sid}")


tab_new, tab_list, tab_results = st.tabs(["New study", "Studies", "Results"])
with tab_new:
    how = st.radio("Build from", ["cases", "uploads"], horizontal=True, key="study_how",
                   format_func={"cases": "Stored cases (library or server folder)",
                                "uploads": "Scans uploaded here"}.get, index=1)
    if how == "cases":
        _design_from_cases()
    else:
        _design_from_uploads()

with db() as session:
    all_studies = list_studies(session)
    user_names = {u.id: u.username for u in list_users(session)}
with tab_list:
    _studies_tab(all_studies, user_names)
with tab_results:
    _results_tab(all_studies)
