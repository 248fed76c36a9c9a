"""Training (admin): start a classifier or super-resolution training run on a data folder and
watch it. Training runs as a separate process (core.db.jobs); this page only starts, polls and
cancels it."""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from core.errors import MedScanError
from ui import auth, plots
from ui.resources import db

admin = auth.require_role("admin")
st.title("Training")

from core.db.jobs import (cancel_job, job_history, job_log_tail, list_jobs,  # noqa: E402
                          refresh_jobs, start_training_job)

POLL_SECONDS = 5

with st.expander("Start a training run", expanded=True, icon=":material/play_arrow:"):
    kind = st.segmented_control("Model", ["classifier", "sr"], default="classifier",
                                required=True, key="train_kind",
                                format_func={"classifier": "Classifier",
                                             "sr": "Super-resolution"}.get)
    with st.form("train_form"):
        if kind == "classifier":
            data = st.text_input("Data folder (one sub-folder per class)", key="train_data",
                                 placeholder="/data/brain-mri/Training")
            c1, c2, c3, c4 = st.columns(4)
            arch = c1.selectbox("Architecture", ["vgg16", "vgg16_bn", "cnn"], key="train_arch")
            size = c2.number_input("Input size (px)", 32, 512, 128, 16, key="train_size")
            epochs = c3.number_input("Epochs", 1, 500, 20, key="train_epochs")
            minutes = c4.number_input("Time limit (min)", 1, 24 * 60, 60, key="train_minutes")
            pretrained = st.text_input("Pretrained VGG16 weights (optional: 'imagenet' or a "
                                       "file path; vgg16 only)", key="train_pretrained")
            args = ["--data", data, "--arch", arch, "--input-size", str(size),
                    "--epochs", str(epochs), "--max-minutes", str(minutes)]
            if pretrained.strip():
                args += ["--pretrained", pretrained.strip()]
        else:
            data = st.text_input("Data folder (high-resolution images)", key="train_data",
                                 placeholder="/data/brain-mri-hr")
            c1, c2, c3, c4 = st.columns(4)
            method = c1.selectbox("Network", ["rrdb", "srcnn"], key="train_method")
            stage = c2.selectbox("Stage", ["psnr", "gan"], key="train_stage",
                                 help="gan fine-tunes the active RRDB PSNR model into ESRGAN.")
            scale = c3.selectbox("Scale", [4, 2], key="train_scale")
            minutes = c4.number_input("Time limit (min)", 1, 24 * 60, 60, key="train_minutes")
            steps = st.number_input("Optimizer steps", 10, 1_000_000, 2000, 100,
                                    key="train_steps")
            args = ["--data", data, "--method", method, "--stage", stage, "--scale", str(scale),
                    "--steps", str(steps), "--max-minutes", str(minutes), "--preset", "cpu"]
        activate = st.checkbox("Activate the new version when training succeeds (otherwise "
                               "publish it later on Model versions)", key="train_activate")
        submitted = st.form_submit_button("Start training", type="primary", key="train_submit")
    if submitted:
        if not data.strip() or not Path(data.strip()).expanduser().is_dir():
            st.error(f"Data folder {data!r} does not exist on the server.")
        else:
            args[1] = str(Path(data.strip()).expanduser())
            try:
                with db() as session:
                    job = start_training_job(session, kind, args + (["--activate"] if activate
                                                                    else []), admin["id"])
                st.success(f"Started training job {job.id}.")
            except MedScanError as err:
                st.error(str(err))


def _job_panel(job) -> None:
    status_icon = {"running": ":material/autorenew:", "queued": ":material/schedule:",
                   "succeeded": ":green[:material/check_circle:]",
                   "failed": ":red[:material/error:]",
                   "cancelled": ":material/cancel:"}.get(job.status, "")
    head = f"{status_icon} Job {job.id} · {job.kind} · {job.status}"
    with st.container(border=True):
        c1, c2 = st.columns([4, 1], vertical_alignment="center")
        c1.markdown(f"**{head}** — started {job.created_at:%Y-%m-%d %H:%M} UTC")
        if not job.finished and c2.button("Cancel", key=f"cancel_{job.id}"):
            with db() as session:
                cancel_job(session, job.id, by_user_id=admin["id"])
            st.rerun()
        p = job.progress or {}
        text = " · ".join(x for x in (
            p.get("phase"), f"epoch {p['epoch']}/{p['epochs']}" if p.get("epochs") else "",
            f"step {p['step']}/{p['steps']}" if p.get("steps") else "",
            f"loss {p['loss']:.4f}" if isinstance(p.get("loss"), (int, float)) else "",
            f"about {p['eta_s'] / 60:.0f} min left" if p.get("eta_s") else "",
            p.get("message") or "") if x)
        st.progress(min(max(job.fraction, 0.0), 1.0), text=text or job.status)
        with db() as session:
            history = job_history(session, job.id)
        points = [{"epoch": round(max(h.epoch - 1, 0) + (h.step / h.steps if h.steps else 1), 3)
                   if h.epochs else i + 1, "loss": h.loss, **h.metrics}
                  for i, h in enumerate(history) if h.loss is not None]
        if points:
            st.plotly_chart(plots.loss_curve(points, x="epoch"), key=f"loss_{job.id}",
                            config={"displayModeBar": False})
        if job.result_version:
            st.success(f"Published version {job.result_version}. Compare and activate it on "
                       "Model versions.")
        if job.error:
            st.error(job.error.splitlines()[0])
        with st.expander("Log (last lines)"):
            st.code(job_log_tail(job, lines=30) or "(empty)", language=None)


@st.fragment(run_every=POLL_SECONDS)
def jobs_ui() -> None:
    """Re-rendered every few seconds on its own (the rest of the page does not rerun)."""
    with db() as session:
        refresh_jobs(session)
        jobs = list_jobs(session, limit=10)
    st.subheader("Training runs")
    if not jobs:
        st.info("No training runs yet.")
        return
    st.caption(f"Updates every {POLL_SECONDS} s.")
    for job in jobs:
        _job_panel(job)


jobs_ui()
