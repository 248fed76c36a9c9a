"""The PACS on the Analyze and Super-resolution pages: "Open from PACS" beside the uploader
(search, pick study → series → instances, retrieve with progress) and, on Analyze, "Send to
PACS" (the Grad-CAM Secondary Capture and the tumour DICOM SEG, on the user's click only).

Retrieved instances join the uploads kept in this browser session exactly as uploaded files do
(``st.session_state["uploads"]``, a masked name, the scratch copy, the app-wide selection), so
they are decoded by the same loader and every page treats them alike. What the user types to
search lives only in the search form, which clears on submit; the study list holds masked
identifiers only. The PACS is configured by ``MEDSCAN_DICOMWEB_URL`` (and ``_USER`` /
``_PASSWORD``) or the secrets' ``[dicomweb]`` table (``url``, ``username``, ``password``);
without a URL the source is hidden behind a one-line notice.
"""
from __future__ import annotations

from datetime import date

import streamlit as st

from core.errors import MedScanError

__all__ = ["pacs_config", "pacs_source_ui", "pacs_send_ui", "SOURCES_KEY", "SENT_KEY"]

SOURCES_KEY = "pacs_sources"     # upload sha256 → {study_uid, series_uid, sop_uid}
SENT_KEY = "pacs_sent"           # scan key → [SentObject dicts] shown under "Send to PACS"
_STUDIES = "_pacs_studies"       # the last search's studies (masked summaries, as dicts)
_SERIES = "_pacs_series"         # study UID → its series (dicts); instances per series below
_INSTANCES = "_pacs_instances"   # series UID → its instances (dicts)
_LOADED = "_pacs_loaded"         # message after a retrieval (shown once)
_ERROR = "_pacs_error"           # a search's error (shown once; never holds the search terms)
MODALITIES = ("Any", "MR", "CT", "CR", "DX", "MG", "US", "PT", "NM", "XA")


def pacs_config():
    """The configured PACS (:class:`core.pacs.PacsConfig`), or None when no URL is set.
    Secrets' ``[dicomweb]`` first, then the environment."""
    from core.pacs.client import PacsError, config_from_env

    try:
        section = dict(st.secrets.get("dicomweb", {}) or {})
    except Exception:  # noqa: BLE001 - no secrets.toml at all: same as an empty one
        section = {}
    try:
        return config_from_env(section.get("url") or None,
                               username=section.get("username") or None,
                               password=section.get("password") or None)
    except PacsError as err:
        if err.code == "not_configured":
            return None
        st.error(f"PACS: {err}", icon=":material/lan:")
        return None


def _client(cfg):
    from core.pacs.client import PacsClient

    return PacsClient(cfg)


def _search(cfg, page: str, accession: str, patient_id: str, dates, modality: str) -> None:
    from core.pacs.client import parse_date_range

    lo, hi = (tuple(dates) + (None, None))[:2] if dates else (None, None)
    date_range = parse_date_range(f"{lo:%Y%m%d}-{hi:%Y%m%d}" if lo and hi else
                                  f"{lo:%Y%m%d}-" if lo else None)
    studies = _client(cfg).search_studies(
        accession=accession or None, patient_id=patient_id or None,
        modality=None if modality == "Any" else modality, date=date_range)
    st.session_state[_STUDIES] = [s.to_dict() for s in studies]
    st.session_state[_SERIES], st.session_state[_INSTANCES] = {}, {}
    st.session_state.pop(_LOADED, None)


def _on_search(cfg, page: str) -> None:
    """The search button's callback: search with what was typed, then clear the fields (so
    the terms live in no widget after the search, whatever the browser does)."""
    keys = {k: f"{page}_pacs_{k}" for k in ("accession", "patient", "dates", "modality")}
    values = {k: st.session_state.get(v) for k, v in keys.items()}
    for k, v in keys.items():
        st.session_state[v] = {"dates": (), "modality": MODALITIES[0]}.get(k, "")
    try:
        _search(cfg, page, (values["accession"] or "").strip(),
                (values["patient"] or "").strip(), values["dates"],
                values["modality"] or MODALITIES[0])
    except MedScanError as err:
        st.session_state[_ERROR] = str(err)


def _keep(name: str, data: bytes, source: dict) -> str:
    """Keep one retrieved instance with the uploads (same list, masking and scratch copy)."""
    from core.imaging.phi import mask_upload_name
    from ui.images import sha256_hex
    from ui.scan_ui import UPLOADS_KEY
    from ui.scratch_uploads import keep_upload

    sha = sha256_hex(data)
    kept: dict = st.session_state.setdefault(UPLOADS_KEY, {})
    kept.pop(sha, None)
    kept[sha] = (mask_upload_name(name, data), data)
    keep_upload(sha, *kept[sha])
    st.session_state.setdefault(SOURCES_KEY, {})[sha] = source
    return sha


def _retrieve(cfg, study: dict, series: dict, sop_uids: list[str]) -> None:
    from ui.scan_ui import MAX_KEPT_UPLOADS, UPLOADS_KEY, select_scan

    bar = st.progress(0.0, text=f"Retrieving {len(sop_uids)} instance(s) from the PACS…")

    def progress(done: int, total: int) -> None:
        bar.progress(done / total, text=f"Retrieved {done} of {total}")

    got = _client(cfg).fetch(study["study_uid"], series_uid=series["series_uid"],
                             sop_uids=sop_uids, progress=progress)
    shas = []
    for inst, data in got:
        name = (f"PACS {series['modality'] or 'DICOM'} s{series['number'] or 0}"
                f"-i{inst.number or 0}.dcm")
        shas.append(_keep(name, data, {"study_uid": inst.study_uid,
                                       "series_uid": inst.series_uid, "sop_uid": inst.sop_uid}))
    kept = st.session_state[UPLOADS_KEY]
    while len(kept) > MAX_KEPT_UPLOADS:
        kept.pop(next(iter(kept)))
    if shas and shas[0] in kept:
        select_scan(f"{shas[0]}:0")
    bar.empty()
    st.session_state[_LOADED] = f"Loaded {len(shas)} instance(s) from the PACS."


def pacs_source_ui(page: str) -> None:
    """"Open from PACS" (an expander above the uploader); a short notice when no PACS is
    configured. ``page`` prefixes the widget keys."""
    cfg = pacs_config()
    if cfg is None:
        st.caption(":material/lan: Open from PACS is off: no PACS is configured "
                   "(MEDSCAN_DICOMWEB_URL or `[dicomweb]` in the secrets).")
        return
    studies = st.session_state.get(_STUDIES)
    loaded = st.session_state.pop(_LOADED, None)
    with st.expander("Open from PACS", icon=":material/lan:",
                     expanded=studies is not None and loaded is None):
        _search_and_pick_ui(cfg, page)
    if loaded:          # outside the (now folded) expander, so it is seen
        st.success(loaded, icon=":material/download_done:")


def _search_and_pick_ui(cfg, page: str) -> None:
    with st.form(f"{page}_pacs_search", clear_on_submit=True, border=False):
        c1, c2, c3, c4 = st.columns([1, 1, 1.3, 0.8])
        c1.text_input("Accession number", key=f"{page}_pacs_accession")
        c2.text_input("Patient ID", key=f"{page}_pacs_patient")
        c3.date_input("Study date (from – to)", value=(), min_value=date(1950, 1, 1),
                      max_value=date.today(), format="YYYY-MM-DD", key=f"{page}_pacs_dates")
        c4.selectbox("Modality", MODALITIES, key=f"{page}_pacs_modality")
        st.form_submit_button("Search the PACS", icon=":material/search:",
                              key=f"{page}_pacs_search_button", on_click=_on_search,
                              args=(cfg, page))
    error = st.session_state.pop(_ERROR, None)
    if error:
        st.error(error, icon=":material/lan:")
        return
    studies = st.session_state.get(_STUDIES)
    if studies is None:
        st.caption("Search by accession number, patient ID, study date or modality (what you "
                   "type is sent to the PACS only and cleared after the search). Identifiers "
                   "in the list are masked.")
        return
    if not studies:
        st.info("No study in the PACS matches that search.", icon=":material/search_off:")
        return
    _pick_and_retrieve_ui(cfg, page, studies)


def _pick_and_retrieve_ui(cfg, page: str, studies: list[dict]) -> None:
    from core.pacs.client import SeriesSummary, StudySummary, InstanceSummary

    by_uid = {s["study_uid"]: StudySummary(**s) for s in studies}
    study_uid = st.selectbox(f"Study ({len(studies)} found, newest first)", list(by_uid),
                             format_func=lambda u: by_uid[u].label, key=f"{page}_pacs_study")
    series_cache: dict = st.session_state.setdefault(_SERIES, {})
    try:
        if study_uid not in series_cache:
            series_cache[study_uid] = [s.to_dict() for s in _client(cfg).series(study_uid)]
        series = {s["series_uid"]: SeriesSummary(**s) for s in series_cache[study_uid]}
        if not series:
            st.info("That study has no series.")
            return
        c1, c2 = st.columns([1, 1])
        series_uid = c1.selectbox("Series", list(series), format_func=lambda u: series[u].label,
                                  key=f"{page}_pacs_series")
        inst_cache: dict = st.session_state.setdefault(_INSTANCES, {})
        if series_uid not in inst_cache:
            inst_cache[series_uid] = [i.to_dict() for i in
                                      _client(cfg).instances(study_uid, series_uid)]
        instances = {i["sop_uid"]: InstanceSummary(**i) for i in inst_cache[series_uid]}
        chosen = c2.multiselect("Instances", list(instances), default=list(instances),
                                format_func=lambda u: instances[u].label,
                                key=f"{page}_pacs_instances_{series_uid[-12:]}")
        if st.button("Open in MedScan", icon=":material/download:", type="primary",
                     disabled=not chosen, key=f"{page}_pacs_retrieve"):
            _retrieve(cfg, by_uid[study_uid].to_dict(), series[series_uid].to_dict(), chosen)
            st.rerun()
    except MedScanError as err:
        st.error(str(err), icon=":material/lan:")


def pacs_send_ui(picked, user: dict, clf) -> None:
    """"Send to PACS" under Analyze's results, for a scan opened from the PACS: the Grad-CAM
    Secondary Capture (predicted class) and, with an active segmentation model, the tumour
    DICOM SEG. Sends only on the button; each object is audited and listed with its UIDs."""
    source = st.session_state.get(SOURCES_KEY, {}).get(picked.upload_sha)
    if source is None or clf is None:
        return
    cfg = pacs_config()
    if cfg is None:
        return
    from ui.segmentation import segmenter

    try:
        seg_model = segmenter()
    except MedScanError:
        seg_model = None
    st.subheader("Send to PACS")
    st.caption("Stores derived DICOM objects in this scan's study, in new series, marked NOT "
               "FOR DIAGNOSTIC USE. Nothing is sent until you press the button; every send is "
               "audited.")
    c1, c2, c3 = st.columns([1, 1, 1], vertical_alignment="center")
    want_sc = c1.checkbox("Grad-CAM (Secondary Capture)", value=True, key="pacs_send_sc",
                          help="The Grad-CAM of the predicted class with the prediction, "
                               "calibrated probability, model version and NOT FOR DIAGNOSTIC "
                               "USE burned in and in the header.")
    want_seg = c2.checkbox("Tumour mask (DICOM SEG)", value=seg_model is not None,
                           disabled=seg_model is None, key="pacs_send_seg",
                           help="Needs an active segmentation model." if seg_model is None
                           else f"Segmentation model {seg_model.version}.")
    if c3.button("Send to PACS", icon=":material/upload:", key="pacs_send",
                 disabled=not (want_sc or (want_seg and seg_model is not None))):
        try:
            sent = _send(cfg, picked, source, user, clf, seg_model if want_seg else None,
                         want_sc)
        except MedScanError as err:
            st.error(f"Nothing was sent: {err}", icon=":material/error:")
        else:
            st.session_state.setdefault(SENT_KEY, {})[picked.key] = [o.to_dict() for o in sent]
    sent = st.session_state.get(SENT_KEY, {}).get(picked.key)
    if sent:
        st.success(f"Stored {len(sent)} object(s) in the PACS (audited).",
                   icon=":material/cloud_done:")
        names = {"secondary_capture": "Grad-CAM Secondary Capture",
                 "segmentation": "Tumour segmentation (SEG)"}
        st.dataframe([{"object": names.get(o["kind"], o["kind"]),
                       "SOP Instance UID": o["sop_uid"], "Series Instance UID": o["series_uid"],
                       "Study Instance UID": o["study_uid"]} for o in sent],
                     hide_index=True, key="pacs_sent_table")


def _send(cfg, picked, source: dict, user: dict, clf, seg_model, want_sc: bool) -> list:
    from core.pacs.send import (gradcam_overlay, gradcam_secondary_capture, read_source,
                                segmentation_object, send_objects)
    from ui import upload_results, engine_and_models

    ds = read_source(picked.data)
    scan = picked.scan
    objects = []
    with st.spinner("Building and sending the DICOM objects…", show_time=True):
        if want_sc:
            pred, maps = upload_results.explain_all(picked.key, clf.version,
                                                    upload_results.weights_key(),
                                                    _pixels=scan.pixels)
            heatmap = maps[("gradcam", pred.label)]     # the predicted class, as on Analyze
            objects.append(("secondary_capture", gradcam_secondary_capture(
                ds, gradcam_overlay(scan, heatmap), label=pred.label,
                probability=pred.confidence, model_version=clf.version,
                calibrated=bool(clf.card.get("calibration")), frame_index=scan.frame_index),
                source["sop_uid"]))
        if seg_model is not None:
            mask = seg_model.segment_scan(scan).mask
            objects.append(("segmentation", segmentation_object(
                ds, mask, model_version=seg_model.version, frame_index=scan.frame_index),
                source["sop_uid"]))
        with engine_and_models.db() as session:
            return send_objects(_client(cfg), objects, user=user, session=session)
