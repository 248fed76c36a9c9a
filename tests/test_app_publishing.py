"""Publishing safeguards (issue 14 item 6) and dead / resumable jobs (issue 15 item 8) on the
Training and Model versions pages, with a read-only shipped registry and the app's own registry
in the data directory."""
from __future__ import annotations

import shutil
import sys

import pytest
from sqlalchemy import select

from app_env import CLASSES, logged_in, make_db  # noqa: F401

RECIPE = {"arch": "vgg16_bn", "input_size": 48, "width": 0.125, "epochs": 7, "lr": 0.0003,
          "batch_size": 16, "patience": 4, "lr_schedule": "cosine", "warmup_epochs": 1,
          "dropout": 0.5, "val_fraction": 0.15, "seed": 42, "init_from": "runs/x/best.h5"}


def _snapshot(root):
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


@pytest.fixture()
def shipped_env(tmp_path, monkeypatch, data_dir):
    """weights/ as shipped (READ_ONLY, one active tiny vgg16_bn whose card records a recipe and
    its test folder), a data dir with the app registry and a database with an admin."""
    import keras

    from core import registry
    from core.classifier.preprocess import preprocessing_config
    from core.models.vgg16 import build_classifier_bn

    shipped, data = tmp_path / "shipped", tmp_path / "data"
    data.mkdir()
    eval_dir = tmp_path / "eval"
    shutil.copytree(data_dir / "brain-mri", eval_dir)
    keras.utils.set_random_seed(0)
    net = {"num_classes": 4, "input_shape": [48, 48, 3], "width": 0.125}
    registry.save_version("classifier", build_classifier_bn(**net), {
        "architecture": "vgg16_bn", "network": net, "classes": CLASSES, "input_size": 48,
        "preprocessing": preprocessing_config("vgg16", 3, 48),
        "calibration": {"temperature": 1.0}, "training": {"config": RECIPE},
        "metrics": {"test": {"accuracy": 0.9, "macro_f1": 0.9, "n": 160, "data": str(eval_dir)},
                    "validation": {"accuracy": 0.95, "n": 574}}},
        version="ship-v1", activate=True, weights_dir=shipped)
    (shipped / registry.READ_ONLY_MARKER).write_text("shipped\n")
    env = {"MEDSCAN_WEIGHTS_DIR": str(shipped), "MEDSCAN_DATA_DIR": str(data),
           "MEDSCAN_DATABASE_URL": f"sqlite:///{data / 'medscan.db'}"}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("MEDSCAN_REGISTRY_DIR", raising=False)
    monkeypatch.delenv("MEDSCAN_EVAL_DIR", raising=False)
    ids = make_db(env["MEDSCAN_DATABASE_URL"])
    from core.jobs import runner

    runner.children.clear()   # children are keyed by job id: ids restart in each database
    yield {"ids": ids, "shipped": shipped, "data": data, "eval": eval_dir, "net": net}
    from core.db import dispose_engines

    for proc in list(runner.children.values()):
        proc.wait(timeout=60)
    runner.children.clear()
    dispose_engines()


def _candidate(env, version="cand-32img"):
    from core import registry
    from core.models.vgg16 import build_classifier_bn

    card = registry.load_card("classifier", "ship-v1")
    card = {k: v for k, v in card.items() if k not in ("version", "created_at", "metrics")}
    registry.save_version("classifier", build_classifier_bn(**env["net"]),
                          dict(card, metrics={"validation": {"accuracy": 0.25, "n": 4}}),
                          version=version)
    return version


def _report(acc, n, fp):
    return {"accuracy": acc, "macro_f1": acc, "ece": 0.1, "n": n, "data": "/eval/test",
            "data_fingerprint": fp}


def test_training_page_defaults_to_the_active_recipe_and_publishes_a_candidate(
        shipped_env, monkeypatch, tmp_path):
    import core.jobs.service as service

    seen = {}

    def start(session, kind, args, user_id, **kw):
        seen["args"] = list(args)
        return original(session, kind, args, user_id,
                        argv=[sys.executable, "-c", "pass"])

    original = service.start_training_job
    monkeypatch.setattr(service, "start_training_job", start)
    at = logged_in("admin", shipped_env["ids"]).run()
    at.switch_page("app_pages/admin_training.py").run()
    assert not at.exception
    assert at.selectbox(key="train_arch").value == "vgg16_bn"        # not vgg16 (chance)
    assert at.number_input(key="train_size").value == 48              # the card's, not 128
    assert at.number_input(key="train_width").value == 0.125
    assert at.number_input(key="train_epochs").value == 7
    assert at.number_input(key="train_lr").value == pytest.approx(0.0003)
    assert at.text_input(key="train_eval").value == str(shipped_env["eval"])
    assert "ship-v1" in " ".join(c.value for c in at.caption)
    assert not [c for c in at.checkbox if c.key == "train_activate"]  # no activate box
    data = tmp_path / "train-data"
    data.mkdir()
    at.text_input(key="train_data").input(str(data))
    at.button(key="train_submit").click().run()
    assert not at.exception and "candidate" in at.success[0].value
    args = seen["args"]
    pairs = dict(zip(args[::2], args[1::2]))
    assert pairs["--arch"] == "vgg16_bn" and pairs["--input-size"] == "48"
    assert pairs["--width"] == "0.125" and pairs["--epochs"] == "7"
    assert pairs["--eval-data"] == str(shipped_env["eval"])
    assert "--activate" not in args and "--init-from" not in args   # recipe, not its checkpoint


def test_models_page_compares_on_one_set_confirms_warns_activates_and_rolls_back(shipped_env):
    from core import registry
    from core.db import init_db, session_scope
    from core.db.tables import AuditLog

    before = _snapshot(shipped_env["shipped"])
    cand = _candidate(shipped_env)
    registry.record_evaluation("classifier", "ship-v1", _report(0.75, 4, "sha256:small"))
    registry.record_evaluation("classifier", cand, _report(0.25, 4, "sha256:small"))
    at = logged_in("admin", shipped_env["ids"]).run()
    at.switch_page("app_pages/admin_models.py").run()
    assert not at.exception
    table = at.dataframe[0].value
    status = dict(zip(table["version"], table["status"]))
    assert status == {"ship-v1": "active", cand: "candidate"}
    assert "val acc (card)" in table.columns and "test acc (card)" in table.columns
    assert "metrics from" not in table.columns                       # no mixed column
    cells = [str(v) for col in table.columns for v in table[col]]
    assert "None" not in cells and "nan" not in cells                # a missing figure is "—"
    assert dict(zip(table["version"], table["test acc (card)"])) == {
        "ship-v1": "0.900 (n=160)", cand: "—"}
    chart = next(c for c in at.get("plotly_chart") if "clf_eval_chart" in c.proto.id)
    assert "same images" in chart.proto.spec and "n=4" in chart.proto.spec
    at.selectbox(key="clf_pick").set_value(cand).run()
    errors = " ".join(e.value for e in at.error)
    assert "WORSE" in errors and "only 4 images" in errors
    assert at.button(key="clf_activate").disabled                   # confirm first
    at.checkbox(key="clf_confirm").check().run()
    deltas = at.dataframe[1].value                                   # the change table
    assert list(deltas["metric"]) == ["accuracy", "macro-F1", "ECE (lower is better)"]
    at.button(key="clf_activate").click().run()
    assert not at.exception
    assert not at.success        # activated despite warnings: warning-coloured, not green
    success = at.warning[0].value
    assert f"Activated {cand} (was ship-v1)" in success and "accuracy 0.750 → 0.250 (-0.500)" \
        in success and "Activated despite" in success
    assert registry.active_version("classifier") == cand
    assert (shipped_env["data"] / "weights" / "classifier" / "ACTIVE").read_text().strip() == cand
    at.button(key="clf_rollback").click().run()
    assert not at.exception
    assert "ship-v1 is active again" in at.success[0].value
    assert registry.active_version("classifier") == "ship-v1"
    assert not [b for b in at.button if b.key == "clf_rollback"]     # not toggled back
    assert _snapshot(shipped_env["shipped"]) == before               # shipped untouched
    with session_scope(init_db()) as s:
        actions = [(r.action, r.user_id, r.detail.get("version")) for r in
                   s.scalars(select(AuditLog).where(AuditLog.action.like("model_%"))
                             .order_by(AuditLog.id))]
    admin = shipped_env["ids"]["admin"]
    assert actions == [("model_activate", admin, cand), ("model_rollback", admin, "ship-v1")]


def test_models_page_without_a_shared_set_warns(shipped_env):
    cand = _candidate(shipped_env)
    at = logged_in("admin", shipped_env["ids"]).run()
    at.switch_page("app_pages/admin_models.py").run()
    assert any("No version has been evaluated on a fixed evaluation set" in i.value
               for i in at.info)
    at.selectbox(key="clf_pick").set_value(cand).run()
    assert any("have not been evaluated on the same evaluation set" in e.value for e in at.error)
    assert any("own figures come from only 4 images" in e.value for e in at.error)


def test_real_tiny_training_publishes_a_candidate_evaluated_with_the_active_one(
        shipped_env, data_dir, tmp_path):
    """train() with an evaluation set: the new version lands in the data-dir registry, stays a
    candidate, and it and the active version are evaluated on the same images."""
    from core import registry
    from core.classifier.train import TrainConfig, train

    before = _snapshot(shipped_env["shipped"])
    result = train(TrainConfig(
        data=str(data_dir / "brain-mri"), arch="vgg16_bn", width=0.0625, input_size=32,
        epochs=1, batch_size=16, val_fraction=0.25, warmup_epochs=0, version="tiny-cand",
        run_dir=str(tmp_path / "run"), eval_data=str(shipped_env["eval"])))
    assert result.path == shipped_env["data"] / "weights" / "classifier" / "tiny-cand"
    assert registry.version_status("classifier", "tiny-cand") == "candidate"
    assert registry.active_version("classifier") == "ship-v1"
    cmp = registry.compare_on_eval_set("classifier", "tiny-cand", "ship-v1")
    assert cmp["set"]["n"] == 32 and {r["metric"] for r in cmp["rows"]} >= {"accuracy",
                                                                            "macro_f1"}
    assert any("only 32 images" in w for w in cmp["warnings"])
    assert _snapshot(shipped_env["shipped"]) == before


def test_training_page_marks_a_dead_job_failed_and_resumes_it(shipped_env, monkeypatch):
    import core.jobs.service as service
    from core.db import init_db, session_scope
    from core.db import tables as m

    run = shipped_env["data"] / "jobs" / "run-7"
    run.mkdir(parents=True)
    (run / "last.keras").write_bytes(b"checkpoint")
    (run / "state.json").write_text('{"epoch": 3}')
    dead = 2 ** 22 + 12345   # above the default pid_max: no such process
    with session_scope(init_db()) as s:
        row = m.TrainingJob(kind="classifier", status="running", pid=dead, host=None,
                            args=["--data", "/d", "--run-dir", str(run)],
                            created_at=m.utcnow(), started_at=m.utcnow(),
                            updated_at=m.utcnow(), progress={"phase": "train", "epoch": 3,
                                                             "epochs": 8})
        s.add(row)
    original = service.start_training_job
    monkeypatch.setattr(service, "start_training_job", lambda s, kind, args, uid, **kw: original(
        s, kind, args, uid, argv=[sys.executable, "-c", "pass"]))
    at = logged_in("admin", shipped_env["ids"]).run()
    at.switch_page("app_pages/admin_training.py").run()
    assert not at.exception
    assert any("no heartbeat for" in e.value and "the worker process is gone" in e.value
               for e in at.error), [e.value for e in at.error] + [m.value for m in at.markdown]
    at.button(key=f"resume_{row.id}").click().run()
    assert not at.exception
    assert any(f"resumes job {row.id}" in s.value for s in at.success)
    with session_scope(init_db()) as s:
        newest = service.list_jobs(s, refresh=False)[0]
    assert newest.id != row.id and newest.args[-1] == "--resume"
    assert "--run-dir" in newest.args and str(run) in newest.args


def test_cli_models_evaluate_records_the_active_version_on_the_set(shipped_env, capsys):
    from core import registry
    from core.cli import main

    assert main(["models", "evaluate", "--data", str(shipped_env["eval"])]) == 0
    out = capsys.readouterr().out
    assert out.startswith("ship-v1") and "n=32" in out
    [report] = registry.evaluations("classifier", "ship-v1")
    assert report["n"] == 32 and report["data"] == str(shipped_env["eval"])
    assert report["data_fingerprint"].startswith("sha256:")
    assert not (shipped_env["shipped"] / "classifier" / ".evaluations").exists()


def test_a_broken_evaluation_set_does_not_lose_the_candidate(shipped_env, data_dir, tmp_path):
    from core import registry
    from core.classifier.train import TrainConfig, train

    wrong = tmp_path / "wrong-eval"
    for c in ("cats", "dogs"):
        (wrong / c).mkdir(parents=True)
    events = []
    result = train(TrainConfig(
        data=str(data_dir / "brain-mri"), arch="cnn", input_size=32, epochs=1, batch_size=16,
        val_fraction=0.25, warmup_epochs=0, version="cand-noeval",
        run_dir=str(tmp_path / "run"), eval_data=str(wrong)), events.append)
    assert result.version == "cand-noeval"
    assert registry.version_status("classifier", "cand-noeval") == "candidate"
    assert any("evaluation set" in (e.message or "") and "skipped" in (e.message or "")
               for e in events)
    assert registry.evaluations("classifier") == []


def test_training_page_warns_about_a_stuck_but_alive_worker(shipped_env):
    from datetime import timedelta

    import core.jobs.service as service
    from core.db import init_db, session_scope
    from core.db import tables as m
    from core.jobs import runner

    with session_scope(init_db()) as s:
        job = service.start_training_job(s, "sr", ["--data", "/d"], None, argv=[
            sys.executable, "-c", "import time; time.sleep(60)", "--job-id", "{job_id}"])
        row = s.get(m.TrainingJob, job.id)
        row.updated_at = m.utcnow() - timedelta(minutes=20)
    try:
        at = logged_in("admin", shipped_env["ids"]).run()
        at.switch_page("app_pages/admin_training.py").run()
        assert not at.exception
        assert any("No progress for 20 min" in w.value and "still alive" in w.value
                   for w in at.warning), [w.value for w in at.warning]
        with session_scope(init_db()) as s:
            assert service.get_job(s, job.id).status == "running"   # alive: not failed
    finally:
        runner.children[job.id].kill()


def _folder(root, names):
    for cls in CLASSES:
        (root / cls).mkdir(parents=True)
        for n in names:
            (root / cls / n).write_bytes(b"x")
    return root


def test_training_overlap_detects_the_training_data_by_fingerprint_folder_and_names(tmp_path):
    from core.classifier.train import training_overlap

    train = _folder(tmp_path / "ds" / "train", ["Tr-a_1.jpg", "Tr-a_2.jpg", "Tr-b_3.jpg"])
    card = {"version": "v1", "classes": CLASSES,
            "data": {"path": str(train), "fingerprint": "sha256:train"}}
    assert "same fingerprint" in training_overlap(card, "/elsewhere", "sha256:train")
    assert "is the training folder" in training_overlap(card, train, "sha256:other")
    assert "inside the training folder" in training_overlap(card, train / "glioma", None)
    same = _folder(tmp_path / "slices", ["Tr-a_2.jpg", "Te-x_1.jpg"])
    why = training_overlap(card, same, "sha256:slices")
    assert why.startswith("4 of 8 evaluation images have the same class and file name")
    tagged = _folder(tmp_path / "other", ["Tr-z_9.jpg"])
    assert "start with 'Tr-'" in training_overlap(card, tagged, "sha256:o")
    held_out = _folder(tmp_path / "ds" / "test", ["Te-a_1.jpg", "Te-b_2.jpg"])
    assert training_overlap(card, held_out, "sha256:test") is None
    assert training_overlap({"version": "v0", "classes": CLASSES}, held_out, "x") is None


def test_models_page_warns_when_the_evaluation_set_is_a_versions_training_data(shipped_env):
    """A candidate trained on the evaluation folder itself (same fingerprint): the page says so
    beside the chart and in the comparison, naming what was detected."""
    from core import registry
    from core.classifier.data import fingerprint, list_image_folder

    cand = _candidate(shipped_env)
    fp = fingerprint(list_image_folder(shipped_env["eval"], CLASSES))
    card = registry.load_card("classifier", cand)
    card["data"] = {"path": str(shipped_env["eval"]), "fingerprint": fp}
    registry.replace_card("classifier", cand, card)
    for version, acc in (("ship-v1", 0.5), (cand, 1.0)):
        registry.record_evaluation("classifier", version, dict(
            _report(acc, 32, fp), data=str(shipped_env["eval"])))
    at = logged_in("admin", shipped_env["ids"]).run()
    at.switch_page("app_pages/admin_models.py").run()
    assert not at.exception
    warnings = [w.value for w in at.warning]
    assert len(warnings) == 1 and cand in warnings[0] and "same fingerprint" in warnings[0]
    assert "not a held-out test" in warnings[0]
    at.selectbox(key="clf_pick").set_value(cand).run()
    assert sum(cand in w.value and "trained on these images" in w.value
               for w in at.warning) == 2                     # beside the chart and the change


def test_training_progress_line_and_loss_chart(shipped_env):
    from ui.version_tables import progress_text
    from ui.plots import loss_curve

    line = progress_text({"phase": "done", "epoch": 3, "epochs": 3,
                          "message": "version=cnn-1 saved /tmp/x/data/weights/classifier/cnn-1"})
    assert line == "done · epoch 3/3 · version cnn-1" and "/tmp" not in line
    fig = loss_curve([{"epoch": e, "loss": 1.4 - e / 10, "val_loss": 1.3, "accuracy": 0.3,
                       "val_accuracy": 0.25} for e in (1, 2)])
    assert fig.layout.yaxis.title.text == "loss" and fig.layout.yaxis2.title.text == "accuracy"
    assert {t.yaxis for t in fig.data if "loss" in str(t.y)} <= {"y", "y2"}
    assert [t.yaxis for t in fig.data] == ["y", "y", "y2", "y2"]
    at = logged_in("admin", shipped_env["ids"]).run()
    at.switch_page("app_pages/admin_training.py").run()
    lr = at.number_input(key="train_lr")
    assert lr.step == pytest.approx(1e-4) and lr.value - lr.step >= lr.min   # "−" works
    assert at.number_input(key="train_patience").label == "Patience (epochs)"
