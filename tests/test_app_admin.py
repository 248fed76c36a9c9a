"""AppTest: admin pages (models, training, studies, export) and the reader-study page."""
from __future__ import annotations

import sys
import time

import streamlit as st

from app_env import brain_png_bytes, logged_in, mr_dicom_bytes, app_env, tiny_weights  # noqa: F401


def test_model_versions_compare_and_activate(app_env, tiny_weights):
    from core import registry
    from core.models.vgg16 import build_classifier

    card = registry.load_card("classifier", "clf-test", weights_dir=tiny_weights)
    net = card["network"]
    if "clf-test-2" not in [c["version"] for c in registry.list_versions(
            "classifier", weights_dir=tiny_weights)]:
        registry.save_version("classifier", build_classifier(**net),
                              dict(card, metrics={"validation": {"accuracy": 0.7,
                                                                 "macro_f1": 0.6}}),
                              version="clf-test-2", weights_dir=tiny_weights)
    at = logged_in("admin", app_env["ids"]).run()
    at.switch_page("app_pages/admin_models.py").run()
    assert not at.exception
    table = at.dataframe[0].value
    assert set(table["version"]) == {"clf-test", "clf-test-2"}
    assert at.get("plotly_chart")
    # the active version's test-set calibration and confusion matrix
    charts = {c.proto.id: c for c in at.get("plotly_chart")}
    assert any("clf_reliability" in k for k in charts) and any("clf_confusion" in k for k in charts)
    assert any("clf-test: test set (n = 8)" in s.value for s in at.subheader)
    try:
        at.selectbox(key="clf_pick").set_value("clf-test-2").run()
        # clf-test-2 has validation metrics without bins: no calibration chart for it
        assert not any("clf_reliability" in c.proto.id for c in at.get("plotly_chart"))
        at.checkbox(key="clf_confirm").check().run()   # activation asks for confirmation
        at.button(key="clf_activate").click().run()
        assert not at.exception
        assert registry.active_version("classifier", weights_dir=tiny_weights) == "clf-test-2"
    finally:
        registry.activate("classifier", "clf-test", weights_dir=tiny_weights)
        registry.delete_version("classifier", "clf-test-2", weights_dir=tiny_weights)


def test_training_job_starts_and_is_polled(app_env, tmp_path, monkeypatch):
    """The page starts a real job through core.jobs.service; the training command itself is
    swapped for a short script (a real training run takes minutes), which reports progress like
    a trainer does."""
    import core.jobs.service as service

    script = tmp_path / "fake_train.py"
    script.write_text(
        "import sys\n"
        "from core.progress import Progress\n"
        "from core.db.jobs import progress_callback\n"
        "cb = progress_callback(int(sys.argv[1]), min_interval_s=0)\n"
        "for i in range(1, 4):\n"
        "    cb(Progress(task='classifier', phase='train', epoch=i, epochs=3, loss=1.0 / i))\n"
        "cb(Progress(task='classifier', phase='done', epoch=3, epochs=3, message='version=v-new'))\n")
    original = service.start_training_job

    def start(session, kind, args, user_id, **kw):
        start.args = args
        from core.config import REPO_ROOT

        return original(session, kind, args, user_id, env={"PYTHONPATH": str(REPO_ROOT)},
                        argv=[sys.executable, str(script), "{job_id}"])

    monkeypatch.setattr(service, "start_training_job", start)
    data = tmp_path / "images"
    data.mkdir()
    at = logged_in("admin", app_env["ids"]).run()
    at.switch_page("app_pages/admin_training.py").run()
    assert not at.exception
    at.text_input(key="train_data").input(str(tmp_path / "missing"))
    at.button(key="train_submit").click().run()
    assert "does not exist" in at.error[0].value
    at.text_input(key="train_data").input(str(data))
    at.text_area(key="train_extra").input(str(tmp_path / "no-such-extra"))
    at.button(key="train_submit").click().run()
    assert "Extra training folder" in at.error[0].value and "does not exist" in at.error[0].value
    extra = tmp_path / "extra"
    extra.mkdir()
    at.text_area(key="train_extra").input(f"{extra}\n")
    at.selectbox(key="train_augmentation").set_value("strong")
    at.number_input(key="train_smoothing").set_value(0.1)
    assert at.number_input(key="train_focus").value == 0.0   # the active recipe has none
    at.number_input(key="train_focus").set_value(1.0)
    # source oversampling needs the data set's manifest beside the data: refused without it
    assert at.number_input(key="train_oversample").value == 1
    at.number_input(key="train_oversample").set_value(4).run()
    assert any("Source oversampling ×4 adds the repeated images" in c.value for c in at.caption)
    at.button(key="train_submit").click().run()
    assert "train_manifest.csv" in at.error[0].value and not at.success
    (tmp_path / "train_manifest.csv").write_text("file,source_width,source_height,upscaled\n")
    at.button(key="train_submit").click().run()
    assert not at.exception and "Started training job" in at.success[0].value
    assert "--source-oversample 4" in " ".join(start.args)
    assert start.args[:2] == ["--data", str(data)]
    joined = " ".join(start.args)
    assert "--augmentation strong" in joined and "--label-smoothing 0.1" in joined
    assert "--background-penalty 1" in joined
    assert f"--extra-data {extra}" in joined
    for _ in range(40):
        time.sleep(0.5)
        at.run()
        if any("Published version v-new" in s.value for s in at.success):
            break
    assert any("Published version v-new" in s.value for s in at.success), \
        [e.value for e in at.error] + [c.value for c in at.code]
    assert at.get("plotly_chart")  # loss curve
    assert at.get("progress")


def test_training_page_queues_the_job_and_the_app_starts_a_worker(app_env, tmp_path,
                                                                   monkeypatch):
    """Single machine, no worker running: the page queues the job (queue=True) and the app
    starts ``python -m core worker`` itself, which claims and runs it. Only the worker's job
    command is swapped for a short script (its ``--command``)."""
    import core.db.jobs as jobs
    import core.jobs.service as service
    from core.config import REPO_ROOT
    from core.db import init_db, session_scope
    from core.db import tables as m
    from core.jobs import runner

    script = tmp_path / "fake_train.py"
    script.write_text(
        "import sys\n"
        "from core.progress import Progress\n"
        "from core.jobs import job_reporter\n"
        "cb = job_reporter(int(sys.argv[1]))\n"
        "cb(Progress(task='classifier', phase='train', epoch=1, epochs=1, loss=0.5))\n"
        "cb(Progress(task='classifier', phase='done', epoch=1, epochs=1, "
        "message='version=v-worker'))\n")
    original = service.start_training_job

    def start(session, kind, args, user_id, **kw):
        start.kw = kw
        return original(session, kind, args, user_id, env={"PYTHONPATH": str(REPO_ROOT)},
                        argv=[sys.executable, str(script), "{job_id}"], **kw)

    monkeypatch.setattr(service, "start_training_job", start)
    monkeypatch.delenv("MEDSCAN_LOCAL_WORKER", raising=False)
    monkeypatch.setattr(runner, "_local_worker", None)
    data = tmp_path / "images"
    data.mkdir()
    at = logged_in("admin", app_env["ids"]).run()
    at.switch_page("app_pages/admin_training.py").run()
    at.text_input(key="train_data").input(str(data))
    at.text_area(key="train_extra").input("")
    at.button(key="train_submit").click().run()
    try:
        assert not at.exception and "Started training job" in at.success[0].value
        assert start.kw == {"queue": True}
        assert runner._local_worker is not None        # the app started a worker
        for _ in range(80):      # a cold `python -m core worker` takes seconds to start
            time.sleep(0.5)
            at.run()
            if any("Published version v-worker" in s.value for s in at.success):
                break
        assert any("Published version v-worker" in s.value for s in at.success), \
            [e.value for e in at.error] + [c.value for c in at.code]
        with session_scope(init_db()) as s:
            job = s.query(m.TrainingJob).order_by(m.TrainingJob.id.desc()).first()
            [worker] = jobs.live_workers(s)
        assert job.status == "succeeded" and job.claimed_by == worker.name
        assert worker.pid == runner._local_worker.pid  # not the page's own process
    finally:
        if runner._local_worker is not None:
            runner._local_worker.terminate()
            runner._local_worker.wait(timeout=30)


def test_reader_study_create_rate_export(app_env):
    st.cache_data.clear()
    admin = logged_in("admin", app_env["ids"]).run()
    admin.switch_page("app_pages/admin_studies.py").run()
    admin.file_uploader(key="scan").set_value([
        ("head.png", brain_png_bytes(64), "image/png"),
        ("MR_small", mr_dicom_bytes(), "application/octet-stream")]).run()
    assert not admin.exception
    admin.multiselect(key="study_views").set_value(["original", "esrgan"])
    admin.text_input(key="study_name").input("Pilot").run()
    admin.button(key="study_create").click().run()
    assert not admin.exception, admin.exception
    assert "with 4 images" in admin.success[0].value

    reader = logged_in("radiologist", app_env["ids"]).run()
    reader.switch_page("app_pages/reader_study.py").run()
    assert not reader.exception
    assert reader.markdown and any("Image 1 of 4" in m.value for m in reader.markdown)
    text = " ".join(m.value for m in reader.markdown)
    assert "esrgan" not in text.lower() and "original" not in text.lower()  # blinded
    radios = [r for r in reader.radio if r.key and r.key.endswith("_quality")]
    prefix = radios[0].key[: -len("_quality")]
    reader.radio(key=f"{prefix}_quality").set_value(2)
    reader.radio(key=f"{prefix}_usefulness").set_value(3)
    reader.button(key=f"{prefix}_submit").click().run()
    assert not reader.exception
    assert any("Image 2 of 4" in m.value for m in reader.markdown)   # moved on
    assert "1 of 4 rated" in reader.get("progress")[0].proto.text

    admin.switch_page("app_pages/admin_export.py").run()
    assert not admin.exception
    assert admin.download_button(key="export_csv")
    summary = admin.dataframe[0].value
    assert int(summary["n_ratings"].sum()) == 1


def test_audit_log_page_filters_and_exports(app_env):
    """Issue 14: the audit log on its own admin page, filtered by user, action and dates, with
    a CSV of exactly what is shown."""
    import csv
    import io
    from datetime import timedelta

    from core.db import init_db, session_scope
    from core.db.audit import audit
    from core.db.tables import AuditLog, utcnow

    ids = app_env["ids"]
    with session_scope(init_db(app_env["MEDSCAN_DATABASE_URL"])) as s:
        audit(s, ids["reader"], "login_ok")
        audit(s, ids["reader"], "rate", scan="ab" * 32, method="=HYPERLINK(1)")
        audit(s, ids["admin"], "model_activate", version="v2")
        s.add(AuditLog(user_id=ids["reader"], action="logout", detail={},
                       at=utcnow() - timedelta(days=30)))      # outside the default week
    at = logged_in("admin", ids).run()
    at.switch_page("app_pages/admin_audit.py").run()
    assert not at.exception and at.title[0].value == "Audit log"
    table = at.dataframe[0].value
    assert {"login_ok", "rate", "model_activate", "user_add"} <= set(table["action"])
    assert "logout" not in set(table["action"])
    at.selectbox(key="audit_user").select("reader").run()
    assert set(at.dataframe[0].value["user"]) == {"reader"}
    at.multiselect(key="audit_actions").select("rate").run()
    rows = at.dataframe[0].value
    assert list(rows["action"]) == ["rate"]
    assert at.get("download_button")[0].proto.label == "Download CSV"
    from core.db.audit import audit_csv, search_audit   # the CSV the button serves
    with session_scope(init_db(app_env["MEDSCAN_DATABASE_URL"])) as s:
        got = list(csv.DictReader(io.StringIO(audit_csv(search_audit(
            s, user_id=ids["reader"], actions=["rate"])))))
    assert len(got) == 1 and got[0]["user"] == "reader" and got[0]["action"] == "rate"
    assert '"method": "=HYPERLINK(1)"' in got[0]["detail"]
    at.date_input(key="audit_dates").set_value(
        (utcnow().date() - timedelta(days=40), utcnow().date() - timedelta(days=20))).run()
    at.multiselect(key="audit_actions").unselect("rate").run()
    assert list(at.dataframe[0].value["action"]) == ["logout"]
    at.selectbox(key="audit_user").select("admin").run()
    assert not at.exception and "No events match" in at.info[0].value


def test_radiologist_cannot_open_the_audit_log(app_env):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file("../app_pages/admin_audit.py", default_timeout=60)
    at.session_state["user"] = {"id": app_env["ids"]["reader"], "name": "reader",
                                "role": "radiologist"}
    at.run()
    assert not at.exception and "for admin accounts" in at.error[0].value


def test_audit_log_detail_is_readable_and_the_csv_keeps_full_values(app_env):
    """Detail as ``key: value`` text: hashes shortened to 12 characters, None dropped, lists
    joined; the CSV keeps the full values."""
    import csv
    import io

    from core.db import init_db, session_scope
    from core.db.audit import audit, audit_csv, detail_text, search_audit

    sha = "41eb44d26b06a51d3eee8f5cfa5525c3a065480d8509944aac74477bc8df3e97"
    detail = {"task": "classifier", "slot": None, "args": ["--data", "/d", "--arch", "cnn"],
              "eval_set": "sha256:" + sha, "scan": sha, "blinded": True}
    text = detail_text(detail)
    assert text == ("task: classifier; args: --data /d --arch cnn; eval set: sha256:41eb44d26b06…; "
                    "scan: 41eb44d26b06…; blinded: yes")
    assert "None" not in text and "[" not in text and sha not in text
    ids = app_env["ids"]
    with session_scope(init_db(app_env["MEDSCAN_DATABASE_URL"])) as s:
        audit(s, ids["admin"], "model_activate", **detail)
    at = logged_in("admin", ids).run()
    at.switch_page("app_pages/admin_audit.py").run()
    assert not at.exception
    table = at.dataframe[0].value
    shown = table[table["action"] == "model_activate"]["detail"].iloc[0]
    assert shown == text
    with session_scope(init_db(app_env["MEDSCAN_DATABASE_URL"])) as s:
        got = list(csv.DictReader(io.StringIO(audit_csv(search_audit(
            s, actions=["model_activate"])))))
    assert sha in got[0]["detail"] and '"slot": null' in got[0]["detail"]   # complete


def test_export_page_shows_readable_column_labels(app_env):
    """The summary keeps machine names in its data (and the CSV), the page shows words."""
    import json

    from core.db import init_db, session_scope
    from core.db.ratings import export_ratings_csv, save_rating
    from core.db.scans import record_scan

    ids = app_env["ids"]
    with session_scope(init_db(app_env["MEDSCAN_DATABASE_URL"])) as s:
        record_scan(s, "ab" * 32, {}, "png", "MR", (8, 8), ids["reader"], display_name="x.png")
        save_rating(s, scan_sha256="ab" * 32, reader_id=ids["reader"], method="original",
                    model_version=None, image_quality=4, diagnostic_usefulness=3)
        csv_text = export_ratings_csv(s)
    assert "image_quality" in csv_text.splitlines()[0]                # CSV: machine names
    at = logged_in("admin", ids).run()
    at.switch_page("app_pages/admin_export.py").run()
    assert not at.exception
    config = json.loads(at.dataframe[0].proto.columns)
    labels = {k: v.get("label") for k, v in config.items()}
    assert labels["n_ratings"] == "ratings" and labels["model_version"] == "model version"
    assert labels["mean_image_quality"].startswith("mean image quality")
    assert not any("_" in (v or "") for v in labels.values())


def test_sr_versions_tables_keep_their_decimals_and_name_each_networks_size(app_env):
    """Model versions → Super-resolution: PSNR with 2 decimals and SSIM with 4 on every row;
    blocks and features read from RRDB's and SRResNet's own card fields."""
    import json

    from ui.version_tables import sr_rows

    at = logged_in("admin", app_env["ids"]).run()
    at.switch_page("app_pages/admin_models.py").run()
    assert not at.exception
    tables = [d for d in at.dataframe if "bicubic PSNR" in d.value.columns]
    assert tables
    for d in tables:
        columns = json.loads(d.proto.columns)
        assert columns["PSNR (dB)"]["type_config"]["format"] == "%.2f"
        assert columns["SSIM"]["type_config"]["format"] == "%.4f"
    rows, _ = sr_rows([{"version": "a", "method": "srresnet", "scale": 4,
                        "network": {"num_blocks": 16, "features": 32}},
                       {"version": "b", "method": "rrdb_psnr", "scale": 4,
                        "network": {"num_block": 6, "num_feat": 32}}], "a")
    assert [(r["blocks"], r["features"]) for r in rows] == [(16, 32), (6, 32)]
