"""Rerunning a staged recipe from its card (core.classifier.recipe, ``train classifier
--recipe-of``): the stages read back, their commands rewritten, a tiny three-stage chain run
end to end, resume, and a multi-stage job that only ends at its last stage."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.classifier.recipe import recipe_minutes, recipe_stages, replay_commands
from core.progress import Progress

REPO = Path(__file__).resolve().parents[1]
DATA = "tests/data/brain-mri"          # as a card records it: relative to the project
TINY = ("--input-size 32 --width 0.125 --batch-size 8 --threads 1 --workers 1 --val-fraction "
        "0.25 --warmup-epochs 0")
SSL = (f"python -m core pretrain classifier --data {DATA} --hold-out-validation-of {DATA} "
       "--input-size 32 --width 0.125 --epochs 1 --batch-size 8 --threads 1 --workers 1 "
       "--out runs/ssl/old.weights.h5")
STAGE_A = (f"python -m core train classifier --data {DATA} --arch vgg16_bn {TINY} --epochs 1 "
           "--lr 1e-3 --init-from runs/ssl/old.weights.h5 --run-dir runs/old_a --no-publish")
STAGE_B = (f"python -m core train classifier --data {DATA} --arch vgg16_bn {TINY} --epochs 1 "
           "--lr 3e-4 --background-penalty 1 --init-from runs/old_a/best.weights.h5 "
           "--run-dir runs/old_b --version old-final --activate --job-id 7")


def _card() -> dict:
    """A card whose lineage is SSL -> stage A -> stage B, as `train` records it."""
    return {"version": "old-final", "architecture": "vgg16_bn",
            "training": {"command": STAGE_B, "minutes": 1.5},
            "initialisation": {"path": "runs/old_a/best.weights.h5", "from_run": {
                "run_dir": "runs/old_a", "command": STAGE_A, "minutes": 2.0,
                "initialisation": {"path": "runs/ssl/old.weights.h5",
                                   "self_supervised": {"command": SSL, "minutes": 0.5,
                                                       "images": 24, "epochs_done": 1}}}}}


def _opt(argv, name):
    return argv[argv.index(name) + 1] if name in argv else None


def test_stages_are_read_oldest_first_and_rewritten_for_a_new_run(tmp_path):
    stages = recipe_stages(_card())
    assert [s.argv[0] for s in stages] == ["pretrain", "train", "train"]
    assert stages[0].label == "stage 1 of 3: self-supervised pre-training, 1 epochs at 32²"
    assert recipe_minutes(stages) == pytest.approx(4.0)
    cmds = replay_commands(stages, data="/new/data", version="new-v", run_root=tmp_path,
                           extra_data=["/new/extra"], job_id=12)
    ssl, a, b = cmds
    assert _opt(ssl, "--data") == "/new/data" and _opt(ssl, "--hold-out-validation-of") == "/new/data"
    assert _opt(ssl, "--out") == str(tmp_path / "stage-1.weights.h5")
    assert "--extra-data" not in ssl                          # pre-training keeps its folders
    assert _opt(a, "--init-from") == str(tmp_path / "stage-1.weights.h5")
    assert _opt(a, "--run-dir") == str(tmp_path / "stage-2") and "--no-publish" in a
    assert _opt(a, "--extra-data") == "/new/extra" and "--version" not in a
    assert _opt(b, "--init-from") == str(tmp_path / "stage-2" / "best.weights.h5")
    assert _opt(b, "--version") == "new-v" and "--no-publish" not in b
    assert "--activate" not in b and _opt(b, "--background-penalty") == "1"
    assert [_opt(c, "--job-id") for c in cmds] == ["12"] * 3   # the old run's id is gone
    assert "runs/old_a/best.weights.h5" not in " ".join(b)
    with pytest.raises(ValueError, match="no recorded command"):
        recipe_stages({"version": "x", "training": {}})


def test_a_tiny_three_stage_recipe_reruns_end_to_end_and_resumes(tmp_path, monkeypatch):
    """The replayed chain publishes one version whose card records the new lineage; --resume
    skips the complete stages."""
    from core import registry
    from core.classifier.recipe import run_recipe

    weights = tmp_path / "weights"
    monkeypatch.setenv("MEDSCAN_WEIGHTS_DIR", str(weights))
    monkeypatch.setenv("MEDSCAN_DATA_DIR", str(tmp_path / "data"))
    events = []
    run_recipe(_card(), data=str(REPO / DATA), version="replayed", run_root=tmp_path / "r",
               progress=events.append)
    card = registry.load_card("classifier", "replayed")
    assert card["training"]["config"]["background_penalty"] == 1.0
    assert card["notice"].startswith("no ImageNet weights; started from self-supervised weights")
    assert card["notice"].endswith("then 1 earlier supervised stage")
    assert registry.active_version("classifier") is None        # never activated
    assert [e.message for e in events if "recipe of old-final" in (e.message or "")] == [
        f"recipe of old-final: stage {i} of 3: {w}" for i, w in (
            (1, "self-supervised pre-training, 1 epochs at 32²"),
            (2, "supervised training, 1 epochs at 32²"), (3, "supervised training, 1 epochs at 32²"))]

    # resume: the two complete stages are skipped, the last one runs again (a new version)
    events.clear()
    run_recipe(_card(), data=str(REPO / DATA), version="replayed-2", run_root=tmp_path / "r",
               progress=events.append, resume=True)
    skipped = [e.message for e in events if "already complete" in (e.message or "")]
    assert len(skipped) == 2 and registry.load_card("classifier", "replayed-2")


def test_cli_dry_run_and_a_failing_stage(tmp_path, monkeypatch, capsys):
    from core.classifier.recipe import run_recipe
    from core.cli import main

    monkeypatch.setenv("MEDSCAN_WEIGHTS_DIR", str(tmp_path / "w"))
    _register_staged()
    assert main(["train", "classifier", "--data", str(REPO / DATA), "--recipe-of", "old-final",
                 "--version", "nv", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("# 3 stages of old-final, 4 min as recorded")
    assert out.count("\npython -m core ") == 3 and "--version nv" in out
    assert main(["train", "classifier", "--data", str(REPO / DATA), "--dry-run"]) == 2
    assert main(["train", "classifier", "--data", "x", "--recipe-of", "nope"]) == 2

    broken = _card()
    broken["initialisation"]["from_run"]["command"] = STAGE_A.replace("--lr 1e-3", "--lr oops")
    with pytest.raises(RuntimeError, match="stage 2 of 3: supervised training"):
        run_recipe(broken, data=str(REPO / DATA), version="never", run_root=tmp_path / "b")


def test_an_intermediate_stage_does_not_end_its_job(db_url, monkeypatch):
    """In a recipe job only the last stage's "done" marks the job succeeded."""
    from core.db import init_db, jobs, session_scope
    from core.jobs import RECIPE_STAGE_ENV, job_reporter

    engine = init_db(db_url)
    with session_scope(engine) as s:
        job_id = jobs.queue_job(s, "classifier", ["--data", "/d"], None).id
    monkeypatch.setenv(RECIPE_STAGE_ENV, "1/3")
    job_reporter(job_id)(Progress(task="classifier", phase="done", message="not published"))
    with session_scope(engine) as s:
        assert jobs.read_job(s, job_id).status == "running"
    monkeypatch.delenv(RECIPE_STAGE_ENV)
    job_reporter(job_id)(Progress(task="classifier", phase="done", message="version=v9"))
    with session_scope(engine) as s:
        job = jobs.read_job(s, job_id)
        assert job.status == "succeeded" and job.result_version == "v9"


def _register_staged(version="old-final"):
    from core import registry
    from core.classifier.preprocess import preprocessing_config
    from core.models.vgg16 import build_classifier_bn

    card = dict(_card(), classes=["glioma", "meningioma", "notumor", "pituitary"],
                network={"num_classes": 4, "input_shape": [32, 32, 3], "width": 0.125},
                input_size=32, calibration={"temperature": 1.0},
                preprocessing=preprocessing_config("vgg16", 3, 32))
    card.pop("version")
    registry.save_version("classifier", build_classifier_bn(num_classes=4, input_shape=(32, 32, 3),
                                                            width=0.125), card, version=version)


def test_a_recipe_job_runs_every_stage_and_ends_with_the_last(db_url, tmp_path, monkeypatch):
    """The Training page's job, with real processes: ``train classifier --recipe-of`` under a
    job id; the stages' progress reaches the job, which succeeds only when the last stage has
    published (an intermediate stage's end does not finish it)."""
    from core.db import dispose_engines, init_db, jobs, session_scope
    from core.jobs import runner, service

    monkeypatch.setenv("MEDSCAN_WEIGHTS_DIR", str(tmp_path / "w"))
    _register_staged()
    engine = init_db(db_url)
    try:
        with session_scope(engine) as s:
            job = service.start_training_job(
                s, "classifier", ["--data", str(REPO / DATA), "--recipe-of", "old-final",
                                  "--version", "from-job"], None)
        assert runner.children[job.id].wait(timeout=600) == 0, jobs.job_log_tail(job)
        with session_scope(engine) as s:
            service.refresh_jobs(s)
            done = service.get_job(s, job.id)
            history = jobs.job_history(s, job.id)
        assert done.status == "succeeded" and done.result_version == "from-job"
        phases = [p.phase for p in history]
        assert phases.count("stage done") == 2 and phases[-1] == "done"
        assert phases.count("done") == 1
        run_dir = Path(jobs.arg_value(done.args, "--run-dir"))
        assert (run_dir / "stage-1.weights.h5").is_file()
        assert (run_dir / "stage-2" / "card_draft.json").is_file()
    finally:
        for proc in list(runner.children.values()):
            if proc.poll() is None:
                proc.kill()
        runner.children.clear()
        dispose_engines()


def test_a_run_started_from_a_registry_version_keeps_its_lineage(tmp_path):
    """``--init-from weights/classifier/V/model.weights.h5`` (fine-tuning a published version):
    the new card's initialisation names V's run and command from V's own card, so the recipe
    of the new version has V's stages and then its own."""
    from core.classifier.train import init_source

    vdir = tmp_path / "weights" / "classifier" / "old-final"
    vdir.mkdir(parents=True)
    (vdir / "model.weights.h5").write_bytes(b"")
    card = _card()
    card["training"].update(run_dir="runs/old_b", epochs_run=1, best_epoch=1)
    card["input_size"] = 32
    (vdir / "model_card.json").write_text(json.dumps(card))
    start = init_source(str(vdir / "model.weights.h5"))
    run = start["from_run"]
    assert run["run_dir"] == "runs/old_b" and run["version"] == "old-final"
    assert run["command"] == STAGE_B
    assert "then 2 earlier supervised stages" in start["reader"]
    new = {"version": "new", "training": {"command": STAGE_B.replace("runs/old_a/best", str(
        vdir / "model")).replace("old_b", "new_c")}, "initialisation": start}
    stages = recipe_stages(new)
    assert [s.argv[0] for s in stages] == ["pretrain", "train", "train", "train"]
    cmds = replay_commands(stages, data="/d", version="v2", run_root=tmp_path / "r")
    assert _opt(cmds[3], "--init-from") == str(tmp_path / "r" / "stage-3" / "best.weights.h5")
