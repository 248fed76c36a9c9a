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
from core.db import tables as m
from core.db.errors import JobError
from core.jobs import runner, service
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
def engine(db_url):
    yield init_db(db_url)
    for proc in list(runner.children.values()):
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    runner.children.clear()
    dispose_engines()


def _start(engine, mode: str, user_id=None):
    with session_scope(engine) as s:
        return service.start_training_job(s, "sr", ["--data", "/tmp/x"], user_id, argv=argv(mode))


def _wait_exit(job_id: int, timeout: float = 60) -> int:
    return runner.children[job_id].wait(timeout=timeout)


def test_successful_job_reports_progress_and_version(engine, tmp_path):
    job = _start(engine, "ok")
    assert job.status == "running" and job.pid and job.log_path.startswith(str(tmp_path))
    assert _wait_exit(job.id) == 0
    with session_scope(engine) as s:
        assert service.refresh_jobs(s) == []  # the child finished it itself
        done = service.get_job(s, job.id)
        history = jobs.job_history(s, job.id)
    assert done.status == "succeeded" and done.result_version == "sr-20261122-0100"
    assert done.fraction == 1.0 and done.finished_at is not None and done.error is None
    assert done.args == ["--data", "/tmp/x", "--run-dir", str(tmp_path / "jobs" / f"{job.id}-run")]
    assert [p.loss for p in history[:3]] == pytest.approx([1.0, 0.5, 1 / 3])
    assert history[2].metrics == {"psnr": 23.0} and history[-1].phase == "done"
    assert "training finished" in jobs.job_log_tail(done)


def test_crashed_job_is_marked_failed_with_log_tail(engine):
    job = _start(engine, "crash")
    assert _wait_exit(job.id) != 0
    with session_scope(engine) as s:
        # nobody told the database
        assert service.get_job(s, job.id, refresh=False).status == "running"
        changed = service.refresh_jobs(s)
    assert [j.id for j in changed] == [job.id]
    failed = changed[0]
    assert failed.status == "failed" and "exited with status 1" in failed.error
    assert "out of memory (simulated)" in failed.error
    assert failed.progress["epoch"] == 2 and failed.fraction == pytest.approx(2 / 3)


def test_dead_process_of_another_server_is_detected(engine):
    job = _start(engine, "crash")
    _wait_exit(job.id)
    runner.children.clear()  # as if another page process had started it
    with session_scope(engine) as s:
        [failed] = service.refresh_jobs(s)
    assert failed.status == "failed" and "gone" in failed.error


def test_reused_pid_is_not_mistaken_for_the_job(engine):
    with session_scope(engine) as s:
        row = m.TrainingJob(kind="classifier", args=[], status="running", pid=os.getpid(),
                            host=None)
        s.add(row)
    with session_scope(engine) as s:
        [failed] = service.refresh_jobs(s)
    assert failed.id == row.id and failed.status == "failed"


def test_queued_job_that_never_started_fails_after_grace(engine):
    with session_scope(engine) as s:
        s.add(m.TrainingJob(kind="sr", args=[], status="queued"))
        s.add(m.TrainingJob(kind="sr", args=[], status="queued",
                            created_at=m.utcnow() - timedelta(minutes=5)))
    with session_scope(engine) as s:
        changed = service.refresh_jobs(s)
    assert len(changed) == 1 and "never started" in changed[0].error


def test_cancel_sends_sigterm_to_the_process_group(engine):
    job = _start(engine, "sleep")
    with session_scope(engine) as s:  # wait for the first epoch report
        deadline = time.monotonic() + 60
        while service.get_job(s, job.id).progress is None and time.monotonic() < deadline:
            time.sleep(0.1)
            s.expire_all()
        cancelled = service.cancel_job(s, job.id)
    assert cancelled.status == "cancelled"
    assert _wait_exit(job.id, 20) == -signal.SIGTERM
    with session_scope(engine) as s:
        assert service.refresh_jobs(s) == []
        assert service.list_jobs(s)[0].status == "cancelled"
        assert service.cancel_job(s, job.id).status == "cancelled"  # idempotent


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
        job = service.get_job(s, row.id)
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

    monkeypatch.setattr(runner.subprocess, "Popen", FakePopen)  # spawning moved to core.jobs
    with session_scope(engine) as s:
        job = service.start_training_job(s, "classifier", ["--data", "d", "--epochs", 2], None)
        with pytest.raises(JobError, match="kind"):
            service.start_training_job(s, "gan", [], None)
        with pytest.raises(JobError, match="job-id"):
            service.start_training_job(s, "sr", ["--job-id", "3"], None)
    assert seen["cmd"] == [sys.executable, "-m", "core", "train", "classifier", "--data", "d",
                           "--epochs", "2", "--run-dir", str(jobs.jobs_dir() / f"{job.id}-run"),
                           "--job-id", str(job.id)]
    assert seen["start_new_session"] is True
    assert seen["env"]["MEDSCAN_DATABASE_URL"] == str(engine.url)
    assert seen["env"]["MEDSCAN_JOB_ID"] == str(job.id)
    runner.children.clear()


@pytest.mark.parametrize("message, version", [
    ("version=v1", "v1"),
    ("published version=sr-2026 (active)", "sr-2026"),
    ("published sr/esrgan_x4-20261122", "esrgan_x4-20261122"),   # the trainers' wording
    ("saved /w/classifier/clf-20261122/", "clf-20261122"),
    ("not published", None), ("not published yet", None), ("", None),
])
def test_parse_version(message, version):
    assert jobs.parse_version(message) == version


# ------------------------------------------------------------ dead workers and resume (issue 15)


def test_killed_job_is_marked_failed_by_any_reader(engine, capsys):
    """SIGKILL leaves the row 'running'; list_jobs (and so the CLI) marks it failed with the
    reason, without anyone calling refresh_jobs."""
    job = _start(engine, "sleep")
    with session_scope(engine) as s:
        deadline = time.monotonic() + 60
        while service.get_job(s, job.id, refresh=False).progress is None:
            assert time.monotonic() < deadline
            time.sleep(0.1)
            s.expire_all()
    os.killpg(job.pid, signal.SIGKILL)
    _wait_exit(job.id, 20)
    runner.children.clear()  # as if another page process had started it: only the pid is known
    with session_scope(engine) as s:
        [listed] = service.list_jobs(s)
    assert listed.status == "failed" and listed.finished_at is not None
    assert listed.error.startswith("no heartbeat for ")
    assert f"the worker process is gone (pid {job.pid})" in listed.error
    from core.cli import main

    assert main(["jobs", "list"]) == 0
    out = capsys.readouterr().out
    assert f"{job.id:>4} sr         failed" in out, out


def test_job_of_another_host_fails_only_when_its_heartbeat_is_stale(engine, monkeypatch):
    monkeypatch.setenv("MEDSCAN_JOB_HEARTBEAT_MIN", "10")
    now = m.utcnow()
    with session_scope(engine) as s:
        fresh = m.TrainingJob(kind="sr", args=[], status="running", host="gpu-box", pid=1,
                              updated_at=now - timedelta(minutes=3))
        stale = m.TrainingJob(kind="sr", args=[], status="running", host="gpu-box", pid=1,
                              updated_at=now - timedelta(minutes=25))
        s.add_all([fresh, stale])
    with session_scope(engine) as s:
        listed = {j.id: j for j in service.list_jobs(s)}
    assert listed[fresh.id].status == "running"
    assert listed[stale.id].status == "failed"
    assert listed[stale.id].error.startswith("no heartbeat for 25 min; the worker process on "
                                             "host gpu-box is presumed gone")


def test_resume_needs_a_finished_job_with_a_checkpoint(engine, tmp_path):
    run = tmp_path / "run"
    with session_scope(engine) as s:
        running = m.TrainingJob(kind="classifier", args=["--run-dir", str(run)],
                                status="running", host="elsewhere", updated_at=m.utcnow())
        failed = m.TrainingJob(kind="classifier", args=["--run-dir", str(run)], status="failed")
        s.add_all([running, failed])
    with session_scope(engine) as s:
        with pytest.raises(JobError, match="only a failed or cancelled"):
            service.resume_job(s, running.id, None)
        assert service.checkpoint_of(service.get_job(s, failed.id)) is None
        with pytest.raises(JobError, match="no checkpoint"):
            service.resume_job(s, failed.id, None)


def test_resume_continues_a_killed_real_training_run(engine, tmp_path, tmp_weights, data_dir):
    """A tiny real classifier run is killed after its first checkpoint; resume_job starts a new
    job with --resume in the same run folder, which trains one more epoch and publishes a
    candidate (not active)."""
    import sqlalchemy as sa

    from core import registry
    from core.config import REPO_ROOT

    env = {"PYTHONPATH": str(REPO_ROOT), "MEDSCAN_FORCE_CPU": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}
    args = ["--data", str(data_dir / "brain-mri"), "--arch", "cnn", "--input-size", "32",
            "--epochs", "200", "--patience", "200", "--batch-size", "8", "--val-fraction",
            "0.25", "--warmup-epochs", "0", "--threads", "1", "--version", "resumed-tiny"]
    with session_scope(engine) as s:
        first = service.start_training_job(s, "classifier", args, None, env=env)
    state = jobs.jobs_dir() / f"{first.id}-run" / "state.json"
    deadline = time.monotonic() + 240
    while not state.is_file():
        assert time.monotonic() < deadline, jobs.job_log_tail(first)
        assert runner.children[first.id].poll() is None, jobs.job_log_tail(first)
        time.sleep(0.2)
    os.killpg(first.pid, signal.SIGKILL)
    _wait_exit(first.id, 20)
    import json

    done_epochs = json.loads(state.read_text())["epoch"]
    assert 1 <= done_epochs < 200
    with session_scope(engine) as s:
        killed = service.get_job(s, first.id)
        assert killed.status == "failed" and "worker process is gone" in killed.error
        assert service.checkpoint_of(killed) is not None
        second = service.resume_job(s, first.id, None, env=env,
                                 overrides=["--epochs", str(done_epochs + 1)])
    assert second.id != first.id and "--resume" in second.args
    assert _wait_exit(second.id, 300) == 0, jobs.job_log_tail(second)
    with session_scope(engine) as s:
        finished = service.get_job(s, second.id)
        audit_rows = s.scalars(sa.select(m.AuditLog).where(m.AuditLog.action == "train_resume")).all()
    assert finished.status == "succeeded" and finished.result_version == "resumed-tiny"
    assert f"after epoch {done_epochs}" in jobs.job_log_tail(second, lines=400)
    assert json.loads(state.read_text())["epoch"] == done_epochs + 1
    assert registry.version_status("classifier", "resumed-tiny") == "candidate"
    assert audit_rows and audit_rows[0].detail["resumed_from"] == first.id


def test_cli_jobs_resume(engine, tmp_path, monkeypatch, capsys):
    seen = {}

    class FakePopen:
        pid = 999998

        def __init__(self, cmd, **kw):
            seen["cmd"] = cmd

        def poll(self):
            return None

    run = tmp_path / "run"
    (run / "ckpt").mkdir(parents=True)
    (run / "ckpt" / "state.json").write_text("{}")
    with session_scope(engine) as s:
        old = m.TrainingJob(kind="sr", status="cancelled",
                            args=["--data", "/d", "--run-dir", str(run), "--activate"])
        s.add(old)
    monkeypatch.setattr(runner.subprocess, "Popen", FakePopen)  # spawning moved to core.jobs
    from core.cli import main

    assert main(["jobs", "resume", str(old.id)]) == 0
    assert f"resumes job {old.id}" in capsys.readouterr().out
    cmd = seen["cmd"]
    assert cmd[3:5] == ["train", "sr"] and "--resume" in cmd and "--activate" not in cmd
    assert cmd[cmd.index("--run-dir") + 1] == str(run)
    assert main(["jobs", "resume", "12345"]) == 2          # no such job: one line, exit 2
    runner.children.clear()
