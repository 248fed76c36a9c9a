"""Training-job runner: real (tiny) subprocesses reporting progress to the database."""
from __future__ import annotations

import os
import signal
import sys
import textwrap
import time
from datetime import timedelta

import pytest

from core.db import dispose_engines, init_db, jobs, session_scope
from core.db import models as m
from core.db.errors import JobError
from core.progress import Progress

CHILD = textwrap.dedent("""
    import sys, time
    from core.progress import Progress
    from core.db.jobs import progress_callback
    job_id = int(sys.argv[sys.argv.index("--job-id") + 1])
    report = progress_callback(job_id)
    mode = sys.argv[1]
    for epoch in (1, 2, 3):
        report(Progress(task="sr", phase="psnr", epoch=epoch, epochs=3, step=10, steps=10,
                        loss=1.0 / epoch, metrics={"psnr": 20.0 + epoch}, message="epoch end"))
        if mode == "crash" and epoch == 2:
            raise RuntimeError("out of memory (simulated)")
    if mode == "sleep":
        time.sleep(60)
    print("training finished", flush=True)
    if mode == "ok":
        report(Progress(task="sr", phase="done", message="published version=sr-20261122-0100"))
""")


def argv(mode: str) -> list[str]:
    return [sys.executable, "-c", CHILD, mode, "--job-id", "{job_id}"]


@pytest.fixture()
def engine(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDSCAN_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("MEDSCAN_DATABASE_URL", raising=False)
    yield init_db(f"sqlite:///{tmp_path / 'medscan.db'}")
    for proc in list(jobs._children.values()):
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    jobs._children.clear()
    dispose_engines()


def _start(engine, mode: str, user_id=None):
    with session_scope(engine) as s:
        return jobs.start_training_job(s, "sr", ["--data", "/tmp/x"], user_id, argv=argv(mode))


def _wait_exit(job_id: int, timeout: float = 60) -> int:
    return jobs._children[job_id].wait(timeout=timeout)


def test_successful_job_reports_progress_and_version(engine, tmp_path):
    job = _start(engine, "ok")
    assert job.status == "running" and job.pid and job.log_path.startswith(str(tmp_path))
    assert _wait_exit(job.id) == 0
    with session_scope(engine) as s:
        assert jobs.refresh_jobs(s) == []  # the child finished it itself
        done = jobs.get_job(s, job.id)
        history = jobs.job_history(s, job.id)
    assert done.status == "succeeded" and done.result_version == "sr-20261122-0100"
    assert done.fraction == 1.0 and done.finished_at is not None and done.error is None
    assert done.args == ["--data", "/tmp/x"]
    assert [p.loss for p in history[:3]] == pytest.approx([1.0, 0.5, 1 / 3])
    assert history[2].metrics == {"psnr": 23.0} and history[-1].phase == "done"
    assert "training finished" in jobs.job_log_tail(done)


def test_crashed_job_is_marked_failed_with_log_tail(engine):
    job = _start(engine, "crash")
    assert _wait_exit(job.id) != 0
    with session_scope(engine) as s:
        assert jobs.get_job(s, job.id).status == "running"  # nobody told the database
        changed = jobs.refresh_jobs(s)
    assert [j.id for j in changed] == [job.id]
    failed = changed[0]
    assert failed.status == "failed" and "exited with status 1" in failed.error
    assert "out of memory (simulated)" in failed.error
    assert failed.progress["epoch"] == 2 and failed.fraction == pytest.approx(2 / 3)


def test_dead_process_of_another_server_is_detected(engine):
    job = _start(engine, "crash")
    _wait_exit(job.id)
    jobs._children.clear()  # as if another page process had started it
    with session_scope(engine) as s:
        [failed] = jobs.refresh_jobs(s)
    assert failed.status == "failed" and "gone" in failed.error


def test_reused_pid_is_not_mistaken_for_the_job(engine):
    with session_scope(engine) as s:
        row = m.TrainingJob(kind="classifier", args=[], status="running", pid=os.getpid(),
                            host=None)
        s.add(row)
    with session_scope(engine) as s:
        [failed] = jobs.refresh_jobs(s)
    assert failed.id == row.id and failed.status == "failed"


def test_queued_job_that_never_started_fails_after_grace(engine):
    with session_scope(engine) as s:
        s.add(m.TrainingJob(kind="sr", args=[], status="queued"))
        s.add(m.TrainingJob(kind="sr", args=[], status="queued",
                            created_at=m.utcnow() - timedelta(minutes=5)))
    with session_scope(engine) as s:
        changed = jobs.refresh_jobs(s)
    assert len(changed) == 1 and "never started" in changed[0].error


def test_cancel_sends_sigterm_to_the_process_group(engine):
    job = _start(engine, "sleep")
    with session_scope(engine) as s:  # wait for the first epoch report
        deadline = time.monotonic() + 60
        while jobs.get_job(s, job.id).progress is None and time.monotonic() < deadline:
            time.sleep(0.1)
            s.expire_all()
        cancelled = jobs.cancel_job(s, job.id)
    assert cancelled.status == "cancelled"
    assert _wait_exit(job.id, 20) == -signal.SIGTERM
    with session_scope(engine) as s:
        assert jobs.refresh_jobs(s) == []
        assert jobs.list_jobs(s)[0].status == "cancelled"
        assert jobs.cancel_job(s, job.id).status == "cancelled"  # idempotent


def test_progress_callback_throttles_with_injected_clock(engine):
    with session_scope(engine) as s:
        row = m.TrainingJob(kind="classifier", args=[], status="queued")
        s.add(row)
    now = [0.0]
    report = jobs.progress_callback(row.id, url=str(engine.url), min_interval_s=2.0,
                                    clock=lambda: now[0])

    def step(t: float, **kw) -> None:
        now[0] = t
        report(Progress(task="classifier", phase=kw.pop("phase", "frozen"), epochs=2,
                        steps=10, **kw))

    step(0.0, epoch=1, step=1, loss=0.9)      # first: written
    step(0.5, epoch=1, step=2, loss=0.8)      # throttled
    step(1.0, epoch=1, step=3, loss=0.7)      # throttled
    step(2.5, epoch=1, step=4, loss=0.6)      # interval passed: written
    step(2.6, epoch=1, step=10, loss=0.5)     # epoch end: written
    step(2.7, epoch=1, step=1, loss=0.5, phase="finetune")  # phase change: written
    step(2.8, phase="done", message="version=clf-9")        # done: written
    with session_scope(engine) as s:
        history = jobs.job_history(s, row.id)
        job = jobs.get_job(s, row.id)
    assert [p.step for p in history] == [1, 4, 10, 1, 0]
    assert job.status == "succeeded" and job.result_version == "clf-9"
    assert job.started_at is not None and job.progress["phase"] == "done"


def test_default_command_and_validation(engine, monkeypatch):
    seen = {}

    class FakePopen:
        pid = 999999

        def __init__(self, cmd, **kw):
            seen.update(cmd=cmd, **kw)

        def poll(self):
            return None

    monkeypatch.setattr(jobs.subprocess, "Popen", FakePopen)
    with session_scope(engine) as s:
        job = jobs.start_training_job(s, "classifier", ["--data", "d", "--epochs", 2], None)
        with pytest.raises(JobError, match="kind"):
            jobs.start_training_job(s, "gan", [], None)
        with pytest.raises(JobError, match="job-id"):
            jobs.start_training_job(s, "sr", ["--job-id", "3"], None)
    assert seen["cmd"] == [sys.executable, "-m", "core", "train", "classifier", "--data", "d",
                           "--epochs", "2", "--job-id", str(job.id)]
    assert seen["start_new_session"] is True
    assert seen["env"]["MEDSCAN_DATABASE_URL"] == str(engine.url)
    assert seen["env"]["MEDSCAN_JOB_ID"] == str(job.id)
    jobs._children.clear()


@pytest.mark.parametrize("message, version", [
    ("version=v1", "v1"),
    ("published version=sr-2026 (active)", "sr-2026"),
    ("published sr/esrgan_x4-20261122", "esrgan_x4-20261122"),   # the trainers' wording
    ("saved /w/classifier/clf-20261122/", "clf-20261122"),
    ("not published", None), ("not published yet", None), ("", None),
])
def test_parse_version(message, version):
    assert jobs.parse_version(message) == version
