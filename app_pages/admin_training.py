"""Training (admin): start a classifier or super-resolution training run on a data folder and
watch it. Training runs as a separate process: this page queues the job (core.jobs.service) and a
worker (``python -m core worker``, core.jobs) runs it; with no live worker the app starts one on
this machine. The page only queues, polls, cancels and resumes. The form's defaults are the
active version's recipe (its model card); a finished run is published as a candidate, never
activated here."""
from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import streamlit as st

from core.errors import MedScanError
from ui import auth, plots
from ui.version_tables import progress_text
from ui.engine_and_models import db

admin = auth.require_role("admin")
st.title("Training")

from core import registry  # noqa: E402
from core.classifier.pretrain import (BASE_NAME_RE, base_label, base_mismatch,  # noqa: E402
                                      bases_dir, expected_pretrain_minutes, list_bases,
                                      list_unlabelled)
from core.classifier.train import (ARCHITECTURES, AUGMENTATION_CHOICES,  # noqa: E402
                                   default_eval_data, default_extra_data, default_train_data,
                                   expected_minutes, recipe_from_card,
                                   staged_recipe_note)
from core.classifier.sources import SOURCE_MANIFEST_NAME, find_source_manifest  # noqa: E402
from core.classifier.recipe import (recipe_folders, recipe_minutes,  # noqa: E402
                                    staged_stages)
from core.config import job_heartbeat_s  # noqa: E402
from core.sr.methods import GAN_PARTNER, METHOD_LABELS, TRAINING_METHODS  # noqa: E402
from core.db.jobs import arg_value, heartbeat_age_s, job_history, job_log_tail  # noqa: E402
from core.jobs.service import (cancel_job, checkpoint_of, list_jobs, resume_job,  # noqa: E402
                               start_training_job)

POLL_SECONDS = 5

if flash := st.session_state.pop("training_flash", None):
    st.success(flash, icon=":material/check_circle:")

try:
    active_card = registry.load_card("classifier")
except MedScanError:
    active_card = None
recipe = recipe_from_card(active_card)
bases = list_bases()
KINDS = {"classifier": "Classifier", "pretrain": "Pre-training (self-supervised)",
         "sr": "Super-resolution", "segmentation": "Segmentation"}


@st.cache_data(ttl=60, show_spinner=False)
def _count_images(folders: tuple[str, ...]) -> int | None:
    """Images under the folders (what pre-training would read before its hold-out), or None
    when a folder is missing."""
    try:
        return len(list_unlabelled(folders))
    except (FileNotFoundError, ValueError):
        return None


def _free_name(stem: str) -> str:
    """``stem``, or ``stem-2``, ``stem-3``, … : the first name no base has yet."""
    taken = {b["name"] for b in bases}
    return next(n for n in (stem, *(f"{stem}-{i}" for i in range(2, 1000))) if n not in taken)


def _over_limit(eta: float, minutes: float, epochs: int) -> str:
    """A warning to append to an expected-duration caption when the time limit is shorter."""
    if eta <= minutes:
        return ""
    done = max(1, int(epochs * minutes / eta))
    return (f" :orange[**The time limit ({minutes:g} min) is shorter: expect about {done} of "
            f"{int(epochs)} epochs.**]")


def _queued_bases() -> set[str]:
    """The ``--out`` of every queued or running pre-training job."""
    with db() as session:
        active = list_jobs(session, limit=200, status=("queued", "running"), refresh=False)
    return {arg_value(list(j.args or []), "--out") for j in active if j.kind == "pretrain"}


def _lines(text: str) -> list[str]:
    return [str(Path(line.strip()).expanduser()) for line in text.splitlines() if line.strip()]


def _whole_recipe_form(stages) -> tuple[str, list[str], str, list[str], list[tuple[str, str]]]:
    """The classifier form when the active version's whole recipe is rerun: the data, extra
    and evaluation folders, the stages in words and their recorded duration. Returns (data,
    extra folders, evaluation folder, job arguments, folders that must exist)."""
    data = st.text_input("Data folder (one sub-folder per class)", key="train_data",
                         placeholder="/data/brain-mri/Training")
    extra = st.text_area(
        "Extra training data (optional; one folder per line, <class>/ sub-folders)",
        value="\n".join(default_extra_data(active_card)), key="train_extra", height=90,
        help="Replaces every supervised stage's extra training folders (training only, never "
             "validation). Pre-training keeps the folders it recorded.")
    eval_data = st.text_input(
        "Evaluation set (image folder, one sub-folder per class)", key="train_eval",
        value=default_eval_data(active_card) or "",
        help="After the last stage, the new version and the active one are both evaluated on "
             "these same images, so Model versions can compare them.")
    st.markdown("\n".join(f"{i}. {s.label[s.label.index(':') + 2:]}"
                          + (f" — {s.minutes:.0f} min" if s.minutes is not None else "")
                          for i, s in enumerate(stages, start=1)))
    total = recipe_minutes(stages)
    if total is not None:
        st.caption(f":material/schedule: Expected duration: about **{total:.0f} min**, the "
                   "stages' minutes as recorded when this version was trained (on this "
                   "server's hardware if it was trained here); more images take longer. Each "
                   "stage keeps its own recorded time limit.")
    extra_dirs = _lines(extra)
    args = ["--data", data, "--recipe-of", active_card["version"]]
    for folder in extra_dirs:
        args += ["--extra-data", folder]
    if eval_data.strip():
        args += ["--eval-data", str(Path(eval_data.strip()).expanduser())]
    checks = recipe_folders(stages, data=data.strip(), extra_data=extra_dirs or None)
    if eval_data.strip():
        checks.append(("Evaluation folder", eval_data.strip()))
    return data, extra_dirs, eval_data, args, checks


with st.expander("Start a training run", expanded=True, icon=":material/play_arrow:"):
    kind = st.segmented_control("Model", list(KINDS), default="classifier", required=True,
                                key="train_kind", format_func=KINDS.get)
    extra_dirs: list[str] = []
    checks: list[tuple[str, str]] = []      # (what, folder) that must exist on the server
    problem = None                          # a reason the form cannot start (shown on submit)
    # Not a form: the expected duration follows every change before the run starts.
    with st.container(border=True):
        if kind == "classifier":
            st.caption("Defaults: the recipe of the active version "
                       f"**{active_card['version']}** (its model card)." if active_card else
                       "No active classifier: defaults are the training code's own.")
            staged = staged_recipe_note(active_card)
            if staged:
                st.caption(f":orange[:material/info:] {staged}")
            stages = staged_stages(active_card)
            whole = bool(stages) and st.toggle(
                f"Run the whole recipe of {active_card['version']} ({len(stages)} stages)",
                key="train_whole",
                help="Every stage its model card records, pre-training included, on the data "
                     "folder below, each started from the previous one's best weights; only "
                     "the last stage publishes a candidate. The stages' own settings are used "
                     "as recorded.")
            if whole:
                data, extra_dirs, eval_data, args, checks = _whole_recipe_form(stages)
            else:
                data = st.text_input("Data folder (one sub-folder per class)", key="train_data",
                                     placeholder="/data/brain-mri/Training")
                archs = list(ARCHITECTURES)
                c1, c2, c3, c4 = st.columns(4)
                arch = c1.selectbox("Architecture", archs, key="train_arch",
                                    index=archs.index(recipe["arch"]) if recipe["arch"] in archs
                                    else 0, help="\n".join(f"- **{a}**: {d}"
                                                            for a, d in ARCHITECTURES.items()))
                width = c2.number_input("Width (VGG filter multiplier)", 0.0625, 1.0,
                                        float(recipe["width"]), 0.0625, key="train_width")
                size = c3.number_input("Input size (px)", 32, 512, int(recipe["input_size"]), 16,
                                       key="train_size")
                epochs = c4.number_input("Epochs", 1, 500, int(recipe["epochs"]), key="train_epochs")
                c1, c2, c3, c4 = st.columns(4)
                lr = c1.number_input("Learning rate", 1e-6, 1.0, float(recipe["lr"]), 1e-4,
                                     format="%.5f", key="train_lr",
                                     help="Peak learning rate of the optimizer; − and + change it "
                                          "by 0.0001 (type a value for finer steps).")
                batch = c2.number_input("Batch size", 1, 512, int(recipe["batch_size"]),
                                        key="train_batch")
                patience = c3.number_input("Patience (epochs)", 1, 100, int(recipe["patience"]),
                                           key="train_patience",
                                           help="Early stopping: the run stops after this many "
                                                "epochs without a lower validation loss.")
                minutes = c4.number_input("Time limit (min)", 1, 24 * 60, 60, key="train_minutes")
                c1, c2 = st.columns([1, 3])
                augs = list(AUGMENTATION_CHOICES)
                augmentation = c1.selectbox(
                    "Augmentation", augs, key="train_augmentation",
                    index=augs.index(recipe["augmentation"]) if recipe["augmentation"] in augs else 0,
                    help="**strong** adds what differs between the data set's sources: bias field, "
                         "noise, JPEG re-compression, padding bars, wider rotation and zoom, "
                         "cut-out.")
                smoothing = c1.number_input("Label smoothing", 0.0, 0.5,
                                            float(recipe.get("label_smoothing") or 0.0), 0.05,
                                            key="train_smoothing")
                focus = c1.number_input(
                    "Background penalty", 0.0, 10.0, float(recipe.get("background_penalty") or 0.0),
                    0.5, key="train_focus",
                    help="Adds this weight × the share of the Grad-CAM layer's activation that lies "
                         "outside the head to the loss, so that the explanations stay on the "
                         "anatomy (0: off).")
                oversample = c1.number_input(
                    "Source oversampling", 1, 16, int(recipe.get("source_oversample") or 1), 1,
                    key="train_oversample",
                    help="Repeats, this many times per epoch, the training images of a class's "
                         "rare source look (a padded or upscaled tumour scan, a plain notumor "
                         "scan: the data set's source bias). Needs the data set's "
                         "train_manifest.csv in or beside the data folder (1: off).")
                extra = c2.text_area(
                    "Extra training data (optional; one folder per line, <class>/ sub-folders)",
                    value="\n".join(default_extra_data(active_card)), key="train_extra", height=90,
                    help="Used for training only, never for validation; images that are near "
                         "copies of a validation image are dropped and counted in the model card.")
                eval_data = st.text_input(
                    "Evaluation set (image folder, one sub-folder per class)", key="train_eval",
                    value=default_eval_data(active_card) or "",
                    help="After training, the new version and the active one are both evaluated on "
                         "these same images, so Model versions can compare them (default "
                         "MEDSCAN_EVAL_DIR, else the active version's recorded test folder).")
                # An active ensemble has no weights file of its own: fine-tune its first member.
                init_version = registry.weights_version(active_card) if active_card else None
                starts = {"scratch": "Random weights (from scratch)"}
                if init_version is not None:
                    starts["active"] = (
                        f"The weights of {init_version}, the active ensemble's first member "
                        "(fine-tune)" if registry.is_ensemble(active_card) else
                        f"The active version's weights, {init_version} (fine-tune)")
                starts.update({f"base:{b['name']}": "Self-supervised base " + base_label(b)
                               for b in bases})
                # random weights by default even for a staged active version (its note says what
                # that costs): its weights only fit a run on the same classes
                start = st.selectbox(
                    "Start from", list(starts), format_func=starts.get, key="train_start",
                    help="A self-supervised base comes from a *Pre-training* run on this page; it "
                         "and the active version's weights need the same architecture and width "
                         "as this run (any input size).")
                pretrained = st.text_input("Pretrained VGG16 weights (optional: 'imagenet' or a "
                                           "file path; vgg16 only)", key="train_pretrained")
                args = ["--data", data, "--arch", arch, "--input-size", str(size),
                        "--width", f"{width:g}", "--epochs", str(epochs), "--lr", f"{lr:g}",
                        "--batch-size", str(batch), "--patience", str(patience),
                        "--max-minutes", str(minutes)]
                for name in ("lr_schedule", "warmup_epochs", "dropout", "val_fraction", "seed"):
                    args += [f"--{name.replace('_', '-')}", str(recipe[name])]
                args += ["--augmentation", augmentation, "--label-smoothing", f"{smoothing:g}"]
                if focus:
                    args += ["--background-penalty", f"{focus:g}"]
                if oversample > 1:
                    args += ["--source-oversample", str(int(oversample))]
                    if data.strip() and find_source_manifest(data.strip()) is None:
                        problem = (f"Source oversampling needs the data set's "
                                   f"{SOURCE_MANIFEST_NAME} in or beside {data.strip()}: set it "
                                   f"to 1 or add the manifest.")
                extra_dirs = _lines(extra)
                for folder in extra_dirs:
                    args += ["--extra-data", folder]
                eta = expected_minutes(active_card, input_size=int(size), width=float(width),
                                       epochs=int(epochs))
                if eta is not None:
                    st.caption(f":material/schedule: Expected duration on this server: about "
                               f"**{eta:.0f} min** for {int(epochs)} epochs at {int(size)} px, "
                               f"width {width:g} (from the active version's recorded seconds per "
                               f"epoch, scaled by pixels and width; more images take longer). "
                               f"The time limit stops the run after the epoch that passes it."
                               + _over_limit(eta, minutes, epochs))
                if oversample > 1:
                    st.caption(f":material/schedule: Source oversampling ×{int(oversample)} adds "
                               f"the repeated images to every epoch (on brain-mri, ×4 made "
                               f"epochs 9 % longer, ×8 21 %).")
                if eval_data.strip():
                    args += ["--eval-data", str(Path(eval_data.strip()).expanduser())]
                if start == "active":
                    args += ["--init-from", str(registry.version_dir(
                        "classifier", init_version) / registry.WEIGHTS_FILE)]
                elif start.startswith("base:"):
                    base = next(b for b in bases if f"base:{b['name']}" == start)
                    problem = base_mismatch(base, arch, float(width))
                    args += ["--init-from", str(base["path"])]
                if pretrained.strip():
                    args += ["--pretrained", pretrained.strip()]
                checks = [("Data folder", data.strip())]
                checks += [("Extra training folder", f) for f in extra_dirs]
                if eval_data.strip():
                    checks.append(("Evaluation folder", eval_data.strip()))
        elif kind == "pretrain":
            eval_data = ""
            st.caption("SimCLR on unlabelled brain images: the classifier's convolutional base "
                       "learns what stays the same under the training augmentations, as a "
                       "stand-in for an ImageNet start. The base it writes is offered under "
                       "*Start from* in a classifier run (same architecture and width).")
            default_train = default_train_data(active_card)
            folders = st.text_area(
                "Image folders (one per line; searched recursively, labels not used)",
                value="\n".join([*([default_train] if default_train else []),
                                  *default_extra_data(active_card)]),
                key="pre_data", height=90,
                help="Never the test set. Any brain images count: the classification, "
                     "segmentation and high-resolution folders alike.")
            holdout = st.text_input(
                "Leave out the validation split of (the classifier's training folder)",
                value=default_train or "", key="pre_holdout",
                help="The images a classifier run on this folder validates on (same fraction "
                     "and seed as the active recipe) and their near copies in the other "
                     "folders are left out, so the fine-tuned model is chosen on images "
                     "pre-training never saw.")
            archs = list(ARCHITECTURES)
            c1, c2, c3, c4 = st.columns(4)
            arch = c1.selectbox("Architecture", archs, key="pre_arch",
                                index=archs.index(recipe["arch"]) if recipe["arch"] in archs
                                else 0)
            width = c2.number_input("Width (VGG filter multiplier)", 0.0625, 1.0,
                                    float(recipe["width"]), 0.0625, key="pre_width")
            size = c3.number_input("Input size (px)", 32, 512, 64, 16, key="pre_size",
                                   help="64 px pre-trains about 2.25 times faster than 96 px; "
                                        "the base fits any input size later.")
            epochs = c4.number_input("Epochs", 1, 1000, 20, key="pre_epochs")
            c1, c2, c3 = st.columns([1, 1, 2])
            batch = c1.number_input("Batch size", 2, 1024, 64, key="pre_batch",
                                    help="Each image is contrasted with the other images of "
                                         "its batch: larger batches give more negatives.")
            minutes = c2.number_input("Time limit (min)", 1, 24 * 60, 60, key="train_minutes")
            name = c3.text_input(
                "Name of the base", key="pre_name",
                value=_free_name(f"simclr-{date.today():%Y%m%d}"),
                help="Letters, digits, '.', '_' and '-'. Written to "
                     f"{bases_dir()}/NAME.weights.h5 with a .json description.")
            folder_list = _lines(folders)
            out = bases_dir() / f"{name.strip()}.weights.h5"
            n_images = _count_images(tuple(folder_list)) if folder_list else None
            if n_images:
                eta = expected_pretrain_minutes(n_images=n_images, input_size=int(size),
                                                width=float(width), epochs=int(epochs),
                                                bases=bases, card=active_card)
                if eta is not None:
                    st.caption(f":material/schedule: Expected duration on this server: about "
                               f"**{eta:.0f} min** for {int(epochs)} epochs over up to "
                               f"{n_images:,} images at {int(size)} px, width {width:g} (the "
                               "hold-out removes some). The time limit stops the run after the "
                               "epoch that passes it." + _over_limit(eta, minutes, epochs))
            data = folder_list[0] if folder_list else ""
            args = [a for f in folder_list for a in ("--data", f)]
            if holdout.strip():
                args += ["--hold-out-validation-of", str(Path(holdout.strip()).expanduser()),
                         "--val-fraction", str(recipe["val_fraction"]),
                         "--split-seed", str(recipe["seed"])]
            args += ["--out", str(out), "--arch", arch, "--input-size", str(size),
                     "--width", f"{width:g}", "--epochs", str(epochs), "--batch-size",
                     str(batch), "--max-minutes", str(minutes)]
            checks = [("Image folder", f) for f in folder_list] or [("Image folder", "")]
            if holdout.strip():
                checks.append(("Hold-out folder", holdout.strip()))
            if not re.match(BASE_NAME_RE, name.strip()):
                problem = (f"Name {name.strip()!r}: use letters, digits, '.', '_' and '-' "
                           "(up to 80).")
            elif out.exists() or str(out) in _queued_bases():
                problem = (f"A base named {name.strip()!r} exists already or is being "
                           "pre-trained; choose another name.")
        elif kind == "segmentation":
            eval_data = ""
            data = st.text_input("Data folder (images/<class>/ and masks/<class>/)",
                                 key="train_data", placeholder="/data/brain-mri-seg")
            c1, c2, c3, c4 = st.columns(4)
            size = c1.number_input("Input size (px)", 32, 512, 160, 16, key="train_seg_size")
            depth = c2.number_input("Depth", 2, 6, 4, key="train_seg_depth")
            epochs = c3.number_input("Epochs", 1, 500, 80, key="train_seg_epochs")
            minutes = c4.number_input("Time limit (min)", 1, 24 * 60, 75, key="train_minutes")
            args = ["--data", data, "--input-size", str(size), "--depth", str(depth),
                    "--epochs", str(epochs), "--max-minutes", str(minutes)]
            checks = [("Data folder", data.strip())]
        else:
            eval_data = ""
            data = st.text_input("Data folder (high-resolution images)", key="train_data",
                                 placeholder="/data/brain-mri-hr")
            c1, c2, c3, c4 = st.columns(4)
            method = c1.selectbox("Network", list(TRAINING_METHODS), key="train_method",
                                  format_func=lambda n: " / ".join(
                                      METHOD_LABELS[m] for m in TRAINING_METHODS[n].values()))
            stage = c2.selectbox("Stage", ["psnr", "gan"], key="train_stage",
                                 help="psnr: L1 training from scratch. gan fine-tunes the active "
                                      "PSNR model of the network: " + ", ".join(
                                          f"{METHOD_LABELS[GAN_PARTNER[g]]} → {METHOD_LABELS[g]}"
                                          for g in GAN_PARTNER) + ".")
            scale = c3.selectbox("Scale", [4, 2], key="train_scale")
            minutes = c4.number_input("Time limit (min)", 1, 24 * 60, 60, key="train_minutes")
            steps = st.number_input("Optimizer steps", 10, 1_000_000, 2000, 100,
                                    key="train_steps")
            args = ["--data", data, "--method", method, "--stage", stage, "--scale", str(scale),
                    "--steps", str(steps), "--max-minutes", str(minutes), "--preset", "cpu"]
            checks = [("Data folder", data.strip())]
        st.caption("The base is written for later classifier runs; nothing is published."
                   if kind == "pretrain" else
                   "The new version is published as a **candidate**: it serves nobody until an "
                   "admin compares and activates it on Model versions.")
        submitted = st.button("Start pre-training" if kind == "pretrain" else "Start training",
                              type="primary", key="train_submit")
    if submitted:
        missing = next(((what, f) for what, f in checks
                        if not f or not Path(f).expanduser().is_dir()), None)
        if missing:
            st.error(f"{missing[0]} {missing[1]!r} does not exist on the server.")
        elif problem:
            st.error(problem)
        else:
            if kind == "classifier" and not eval_data.strip():
                st.warning("No evaluation set: the candidate cannot be compared with the active "
                           "version until both are evaluated on the same images.")
            if kind == "pretrain" and "--hold-out-validation-of" not in args:
                st.warning("No hold-out: pre-training will see the images a classifier run "
                           "validates on, which flatters its validation figures.")
            if kind != "pretrain":
                args[1] = str(Path(data.strip()).expanduser())
            try:
                with db() as session:
                    job = start_training_job(session, kind, args, admin["id"], queue=True)
                st.success(f"Started pre-training job {job.id}. When it finishes, its base "
                           "is offered under *Start from* in a classifier run."
                           if kind == "pretrain" else
                           f"Started training job {job.id}. Its version will be a candidate; "
                           "compare and activate it on Model versions.")
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
        text = progress_text(job.progress or {}, job.status)
        st.progress(min(max(job.fraction, 0.0), 1.0), text=text)
        if not job.finished and heartbeat_age_s(job) > job_heartbeat_s():
            st.warning(f"No progress for {heartbeat_age_s(job) / 60:.0f} min, but the worker "
                       "process is still alive: it may be stuck. Cancel it to resume later.",
                       icon=":material/hourglass_disabled:")
        with db() as session:
            history = job_history(session, job.id)
        points = [{"epoch": round(max(h.epoch - 1, 0) + (h.step / h.steps if h.steps else 1), 3)
                   if h.epochs else i + 1, "loss": h.loss, **h.metrics}
                  for i, h in enumerate(history) if h.loss is not None]
        if points:
            st.plotly_chart(plots.loss_curve(points, x="epoch"), key=f"loss_{job.id}",
                            config={"displayModeBar": False})
        if job.kind == "pretrain" and job.status == "succeeded":
            st.success("Pre-trained base ready: choose it under *Start from* in a classifier "
                       "run.", icon=":material/check_circle:")
        if job.result_version:
            st.success(f"Published version {job.result_version} as a candidate (not active). "
                       "Compare and activate it on Model versions.")
        if job.error:
            st.error(job.error.splitlines()[0])
        if job.status in ("failed", "cancelled") and checkpoint_of(job) is not None:
            if st.button("Resume from checkpoint", key=f"resume_{job.id}",
                         icon=":material/replay:",
                         help=f"A new job continues from {checkpoint_of(job)}."):
                try:
                    with db() as session:
                        new = resume_job(session, job.id, admin["id"], queue=True)
                    st.session_state["training_flash"] = (
                        f"Started job {new.id}: it resumes job {job.id} from its checkpoint.")
                except MedScanError as err:
                    st.session_state["training_flash"] = None
                    st.error(str(err))
                    return
                st.rerun()
        with st.expander("Log (last lines)"):
            st.code(job_log_tail(job, lines=30) or "(empty)", language=None)


@st.fragment(run_every=POLL_SECONDS)
def jobs_ui() -> None:
    """Re-rendered every few seconds on its own (the rest of the page does not rerun)."""
    with db() as session:
        jobs = list_jobs(session, limit=10)   # marks dead workers failed first
    st.subheader("Training runs")
    if not jobs:
        st.info("No training runs yet.")
        return
    st.caption(f"Updates every {POLL_SECONDS} s.")
    for job in jobs:
        _job_panel(job)


jobs_ui()
