"""AppTest: the Training page's self-supervised pre-training (issue 12): the form's defaults,
its refusals, the job it queues, and a classifier run that starts from the base it wrote."""
from __future__ import annotations

import json
from pathlib import Path

from app_env import app_env, logged_in, tiny_weights  # noqa: F401


def _capture_jobs(monkeypatch):
    """``start_training_job`` records (kind, args) instead of starting a process."""
    import core.jobs.service as service

    calls = []

    class Job:
        id = 41

    def start(session, kind, args, user_id, **kw):
        calls.append((kind, list(args)))
        return Job()

    monkeypatch.setattr(service, "start_training_job", start)
    return calls


def _base(folder: Path, name: str, *, arch: str, width: float) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.weights.h5"
    path.write_bytes(b"weights")
    Path(str(path) + ".json").write_text(json.dumps({
        "architecture": arch, "config": {"arch": arch, "width": width, "input_size": 64},
        "epochs_done": 20, "images": 3840,
        "loss": [{"epoch": 1, "loss": 4.0, "seconds": 384.0}]}))
    return path


def test_pretraining_form_queues_a_pretrain_job(app_env, tmp_path, monkeypatch):
    calls = _capture_jobs(monkeypatch)
    images = tmp_path / "unlabelled"
    (images / "a").mkdir(parents=True)
    from PIL import Image

    for i in range(3):
        Image.new("L", (8, 8), i).save(images / "a" / f"{i}.png")
    train_dir = tmp_path / "train"
    train_dir.mkdir()
    at = logged_in("admin", app_env["ids"]).run()
    at.switch_page("app_pages/admin_training.py").run()
    at.segmented_control(key="train_kind").set_value("pretrain").run()
    assert not at.exception, at.exception
    name = at.text_input(key="pre_name")
    assert name.value.startswith("simclr-")

    at.text_area(key="pre_data").input(f"{images}\n{tmp_path / 'missing'}\n")
    at.text_input(key="pre_holdout").input(str(train_dir))
    at.button(key="train_submit").click().run()
    assert "Image folder" in at.error[0].value and "missing" in at.error[0].value
    assert not calls

    at.text_area(key="pre_data").input(f"{images}\n")
    at.text_input(key="pre_name").input("bad name/..")
    at.button(key="train_submit").click().run()
    assert "use letters, digits" in at.error[0].value and not calls

    from core.classifier.pretrain import bases_dir

    from core import registry

    _base(bases_dir(), "taken", arch="vgg16_bn",      # the width of the active recipe
          width=float(registry.load_card("classifier")["network"]["width"]))
    at.text_input(key="pre_name").input("taken")
    at.button(key="train_submit").click().run()
    assert "exists already" in at.error[0].value and not calls
    # ... and so does the name of a base a queued job is about to write (a second click, a
    # second tab)
    from core.db import get_engine, session_scope
    from core.db import tables as m

    with session_scope(get_engine(app_env["MEDSCAN_DATABASE_URL"])) as s:
        s.add(m.TrainingJob(kind="pretrain", status="queued", args=[
            "--data", str(images), "--out", str(bases_dir() / "queued.weights.h5")]))
    at.text_input(key="pre_name").input("queued")
    at.button(key="train_submit").click().run()
    assert "is being pre-trained" in at.error[0].value and not calls

    # the expected duration follows the fields before anything starts, and a time limit
    # shorter than it is called out (0.1 s per image-epoch here: 3 images × 1000 epochs
    # ≈ 6 min against a limit of 2)
    at.text_input(key="pre_name").input("ssl-test")
    at.number_input(key="pre_epochs").set_value(1000)
    at.number_input(key="train_minutes").set_value(2).run()
    assert any("about **6 min** for 1000 epochs" in c.value and
               "The time limit (2 min) is shorter: expect about 333 of 1000 epochs" in c.value
               for c in at.caption), [c.value for c in at.caption]
    assert not calls
    at.number_input(key="train_minutes").set_value(60)
    at.number_input(key="pre_epochs").set_value(3)
    # the expected duration, from the base that recorded its epoch times (384 s for 3,840
    # images at 64 px): 3 images × 3 epochs is about a minute
    assert any("Expected duration on this server" in c.value and "3 images" in c.value
               for c in at.caption), [c.value for c in at.caption]
    at.button(key="train_submit").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert "Started pre-training job 41" in at.success[0].value
    kind, args = calls[-1]
    assert kind == "pretrain"
    joined = " ".join(args)
    assert args[:2] == ["--data", str(images)]
    assert f"--hold-out-validation-of {train_dir}" in joined
    assert f"--out {bases_dir() / 'ssl-test.weights.h5'}" in joined
    assert "--epochs 3" in joined and "--input-size 64" in joined and "--batch-size 64" in joined

    # without a hold-out the page says what that costs, and still starts
    at.text_input(key="pre_holdout").input("")
    at.text_input(key="pre_name").input("ssl-test-2")
    at.button(key="train_submit").click().run()
    assert any("No hold-out" in w.value for w in at.warning)
    assert "--hold-out-validation-of" not in calls[-1][1]


def test_classifier_run_starts_from_a_pretrained_base(app_env, tiny_weights, tmp_path,
                                                      monkeypatch):
    from core import registry
    from core.classifier.pretrain import bases_dir

    calls = _capture_jobs(monkeypatch)
    card = registry.load_card("classifier")
    arch, width = card["architecture"], float(card["network"]["width"])
    good = _base(bases_dir(), "good", arch=arch, width=width)
    _base(bases_dir(), "narrow", arch=arch, width=width / 2)
    data = tmp_path / "images"
    data.mkdir()

    at = logged_in("admin", app_env["ids"]).run()
    at.switch_page("app_pages/admin_training.py").run()
    assert not at.exception, at.exception
    start = at.selectbox(key="train_start")
    assert start.value == "scratch"
    assert set(start.options) >= {"Random weights (from scratch)"}
    labels = [start.format_func(o) for o in ("base:good", "base:narrow")]
    assert labels[0].startswith("Self-supervised base good (") and "20 epochs" in labels[0]
    at.text_input(key="train_data").input(str(data))
    at.text_area(key="train_extra").input("")
    at.selectbox(key="train_start").set_value("base:narrow")
    at.button(key="train_submit").click().run()
    assert "Choose the same architecture and width" in at.error[0].value and not calls

    at.selectbox(key="train_start").set_value("base:good")
    at.button(key="train_submit").click().run()
    assert not at.exception and calls, [e.value for e in at.error]
    kind, args = calls[-1]
    assert kind == "classifier" and f"--init-from {good}" in " ".join(args)

    at.selectbox(key="train_start").set_value("active")
    at.button(key="train_submit").click().run()
    init = registry.version_dir("classifier", card["version"]) / registry.WEIGHTS_FILE
    assert f"--init-from {init}" in " ".join(calls[-1][1])
    at.selectbox(key="train_start").set_value("scratch")
    at.button(key="train_submit").click().run()
    assert "--init-from" not in calls[-1][1]


def test_a_staged_active_version_is_called_out(app_env, tiny_weights):
    """When the active version continued from other weights, the defaults are only its last
    stage: the page says so. It still starts from random weights unless told otherwise (the
    active weights only fit a run on the same classes)."""
    from core import registry

    card = registry.load_card("classifier")
    at = logged_in("admin", app_env["ids"]).run()
    at.switch_page("app_pages/admin_training.py").run()
    assert at.selectbox(key="train_start").value == "scratch"
    assert not any("repeat only its last stage" in c.value for c in at.caption)

    original = dict(card)
    card["initialisation"] = {"path": "runs/a/best.weights.h5",
                              "describe": "the weights runs/a/best.weights.h5"}
    registry.replace_card("classifier", card["version"], card)
    try:   # the tiny registry is shared by the session's tests: put the card back after
        at = logged_in("admin", app_env["ids"]).run()
        at.switch_page("app_pages/admin_training.py").run()
        assert not at.exception, at.exception
        assert at.selectbox(key="train_start").value == "scratch"
        note = next(c.value for c in at.caption if "repeat only its last stage" in c.value)
        assert "continued from the weights runs/a/best.weights.h5" in note
    finally:
        registry.replace_card("classifier", original["version"], original)


def test_the_whole_recipe_of_a_staged_active_version_can_be_queued(app_env, tiny_weights,
                                                                    tmp_path, monkeypatch):
    """A staged active version whose card records every stage: a toggle replaces the form by
    the data / extra / evaluation folders, lists the stages with their minutes, and queues
    ``train classifier --recipe-of VERSION`` on the chosen data."""
    from core import registry
    from tests.test_classifier_recipe import _card

    calls = _capture_jobs(monkeypatch)
    card = registry.load_card("classifier")
    original = dict(card)
    lineage = _card()
    card.update(training=dict(card.get("training") or {}, **lineage["training"]),
                initialisation=lineage["initialisation"])
    registry.replace_card("classifier", card["version"], card)
    data = tmp_path / "images"
    data.mkdir()
    try:
        at = logged_in("admin", app_env["ids"]).run()
        at.switch_page("app_pages/admin_training.py").run()
        assert not at.exception, at.exception
        assert at.number_input(key="train_epochs")       # the single-run form by default
        at.toggle(key="train_whole").set_value(True).run()
        assert not at.exception, at.exception
        assert not [n for n in at.number_input if n.key == "train_epochs"]
        listed = " ".join(m.value for m in at.markdown)
        assert "self-supervised pre-training, 1 epochs at 32² — 0 min" in listed
        assert "supervised training, 1 epochs at 32² — 2 min" in listed
        assert any("about **4 min**" in c.value for c in at.caption)
        at.text_input(key="train_data").input(str(tmp_path / "missing"))
        at.button(key="train_submit").click().run()
        assert "does not exist" in at.error[0].value and not calls
        at.text_input(key="train_data").input(str(data))
        at.text_area(key="train_extra").input("")
        at.button(key="train_submit").click().run()
        assert not at.exception and calls, [e.value for e in at.error]
        kind, args = calls[-1]
        assert kind == "classifier"
        assert args[:4] == ["--data", str(data), "--recipe-of", card["version"]]
        assert "--epochs" not in args and "--extra-data" not in args
    finally:
        registry.replace_card("classifier", original["version"], original)
