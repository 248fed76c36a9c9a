"""Training workers (core.jobs.worker): several workers share one queue in the database.

Each test runs on SQLite and, through the ``db_url`` fixture's ``postgres`` run (marked
``postgres``, a fresh database on the server named by ``MEDSCAN_TEST_POSTGRES_URL``, skipped
without it), on PostgreSQL. The training command is swapped for a short script (``argv``) that
reports progress like a trainer and notes each start in a file.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from datetime import timedelta

import pytest

from core.db import dispose_engines, init_db, jobs, session_scope
from core.db import tables as m
from core.jobs import runner, service
from core.jobs.worker import Worker

CHILD = textwrap.dedent("""
    import os, sys, time
    from core.jobs import job_reporter
    from core.progress import Progress
    mode, runs = sys.argv[1], sys.argv[2]
    job_id = int(sys.argv[sys.argv.index("--job-id") + 1])
    with open(runs, "a") as fh:
        fh.write(f"{job_id} {os.getpid()}\\n")
    report = job_reporter(job_id)
    report(Progress(task="sr", phase="psnr", epoch=1, epochs=2, step=5, steps=5, loss=0.5,
                    message="epoch end"))
    time.sleep(60 if mode == "sleep" else 0.3)
    report(Progress(task="sr", phase="done", message=f"published version=v{job_id}"))
""")


def argv(mode: str, runs) -> list[str]:
    return [sys.executable, "-c", CHILD, mode, str(runs), "--job-id", "{job_id}"]


@pytest.fixture()
def engine(db_url):
    yield init_db(db_url)
    dispose_engines()


def _wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def _job(engine, job_id: int, refresh: bool = False):
    with session_scope(engine) as s:
        return service.get_job(s, job_id, refresh=refresh)


def _gone(job_id: int, pid: int) -> bool:
    return not runner.process_state(job_id, pid)[0]


def test_three_workers_share_one_queue_and_run_every_job_once(engine, db_url, tmp_path):
    runs = tmp_path / "runs.txt"
    with session_scope(engine) as s:
        ids = [jobs.queue_job(s, "sr", ["--data", f"/data/{i}"], None).id for i in range(6)]
    assert all(_job(engine, i).status == "queued" for i in ids)
    workers = [Worker(db_url, name=f"w{i}", poll_s=0.2, idle_exit_s=1.5, argv=argv("ok", runs))
               for i in range(3)]
    threads = [threading.Thread(target=w.run) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads)
    started = Counter(int(line.split()[0]) for line in runs.read_text().splitlines())
    assert started == {i: 1 for i in ids}            # every job ran, none twice
    assert sum(w.jobs_done for w in workers) == 6
    with session_scope(engine) as s:
        done = [service.get_job(s, i) for i in ids]
        claimed = {r.id: r.claimed_by for r in s.query(m.TrainingJob)}
        workers_rows = jobs.list_workers(s)
    assert [j.status for j in done] == ["succeeded"] * 6
    assert [j.result_version for j in done] == [f"v{i}" for i in ids]
    assert set(claimed.values()) <= {"w0", "w1", "w2"}
    for j in done:   # the claim gave each job its log and checkpoint folder on the worker
        assert j.args[-2:] == ["--run-dir", str(jobs.jobs_dir() / f"{j.id}-run")]
        assert f"job {j.id}: process exited with status 0" in jobs.job_log_tail(j)
    assert {w.name for w in workers_rows} == {"w0", "w1", "w2"}
    assert all(w.stopped_at is not None for w in workers_rows)   # idle exit recorded


def test_concurrent_claims_never_hand_out_a_job_twice(engine):
    with session_scope(engine) as s:
        ids = [jobs.queue_job(s, "classifier", [], None).id for _ in range(12)]
        ws = [jobs.register_worker(s, name=f"c{i}") for i in range(6)]
    got: dict[str, list[int]] = {w.name: [] for w in ws}
    barrier = threading.Barrier(len(ws))
    errors = []

    def grab(worker):
        try:
            barrier.wait()
            while True:
                with session_scope(engine) as s:
                    job = jobs.claim_job(s, worker)
                if job is None:
                    return
                got[worker.name].append(job.id)
        except Exception as err:  # noqa: BLE001 - reported below
            errors.append(err)

    threads = [threading.Thread(target=grab, args=(w,)) for w in ws]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors
    assert sorted(i for lst in got.values() for i in lst) == ids
    with session_scope(engine) as s:
        rows = {r.id: r for r in s.query(m.TrainingJob)}
    for name, claimed in got.items():
        for i in claimed:
            assert rows[i].claimed_by == name and rows[i].status == "running"


def test_kinds_limit_what_a_worker_claims(engine):
    with session_scope(engine) as s:
        clf = jobs.queue_job(s, "classifier", [], None)
        sr = jobs.queue_job(s, "sr", [], None)
        only_sr = jobs.register_worker(s, name="sr-box", kinds=["sr"])
        assert jobs.claim_job(s, only_sr).id == sr.id
        assert jobs.claim_job(s, only_sr) is None
    assert _job(engine, clf.id).status == "queued"


def test_a_dead_workers_job_is_failed_from_its_heartbeat(engine, db_url, tmp_path,
                                                          monkeypatch):
    """SIGKILL the worker: its job stays 'running' until any reader sees the worker's heartbeat
    older than the timeout; then it is failed, and its orphaned training process (this host)
    gets SIGTERM."""
    from core.config import REPO_ROOT

    runs = tmp_path / "runs.txt"
    with session_scope(engine) as s:
        job = jobs.queue_job(s, "sr", [], None)
    code = ("import sys; from core.jobs.worker import Worker; "
            "Worker(sys.argv[1], name='doomed', poll_s=0.2, argv=sys.argv[2:]).run()")
    worker = subprocess.Popen([sys.executable, "-c", code, db_url, *argv("sleep", runs)],
                              cwd=REPO_ROOT, stdout=subprocess.DEVNULL,
                              env=dict(os.environ, MEDSCAN_DATABASE_URL=db_url))
    try:
        running = _wait_for(lambda: (j := _job(engine, job.id)).progress and j, 30,
                            "the job's first progress report")
        assert running.status == "running" and running.pid
        monkeypatch.setenv("MEDSCAN_WORKER_TIMEOUT_S", "3")
        with session_scope(engine) as s:
            assert service.refresh_jobs(s) == []          # the worker beats: alive
    finally:
        worker.kill()                                  # the worker dies; its child lives on
        worker.wait(10)
    time.sleep(3.5)
    with session_scope(engine) as s:
        [listed] = [j for j in service.list_jobs(s) if j.id == job.id]
    assert listed.status == "failed" and listed.finished_at is not None
    assert listed.error.startswith("no heartbeat for ")
    assert "from worker doomed; the worker process is presumed gone" in listed.error
    assert f"its training process {running.pid} was sent SIGTERM" in listed.error
    _wait_for(lambda: _gone(job.id, running.pid), 10, "the orphaned training process to end")


def test_cancel_reaches_the_running_job_through_its_worker(engine, db_url, tmp_path):
    runs = tmp_path / "runs.txt"
    with session_scope(engine) as s:
        job = jobs.queue_job(s, "sr", [], None)
    worker = Worker(db_url, name="w-cancel", poll_s=0.2, max_jobs=1, argv=argv("sleep", runs))
    thread = threading.Thread(target=worker.run)
    thread.start()
    try:
        running = _wait_for(lambda: (j := _job(engine, job.id)).progress and j, 30,
                            "the job's first progress report")
        with session_scope(engine) as s:
            cancelled = service.cancel_job(s, job.id)
        assert cancelled.status == "cancelled"
        thread.join(timeout=20)      # SIGTERM ends the sleeping script at once
        assert not thread.is_alive()
    finally:
        worker.stop()
        thread.join(timeout=40)
    done = _job(engine, job.id, refresh=True)
    assert done.status == "cancelled" and done.error == "cancelled by a user"
    log = jobs.job_log_tail(done, lines=50)
    assert f"cancel requested: SIGTERM to process group {running.pid}" in log
    assert f"process exited with status {-signal.SIGTERM}" in log
    assert _gone(job.id, running.pid)
    assert worker.jobs_done == 1


def test_a_stopped_worker_terminates_its_job_and_fails_it(engine, db_url, tmp_path):
    """SIGTERM to a worker (Worker.stop): the training process gets SIGTERM, the job fails
    with the reason (it can be resumed from its checkpoint), the worker exits."""
    runs = tmp_path / "runs.txt"
    with session_scope(engine) as s:
        job = jobs.queue_job(s, "sr", [], None)
    worker = Worker(db_url, name="w-stop", poll_s=0.2, argv=argv("sleep", runs))
    thread = threading.Thread(target=worker.run)
    thread.start()
    try:
        running = _wait_for(lambda: (j := _job(engine, job.id)).progress and j, 30,
                            "the job's first progress report")
    finally:
        worker.stop()
        thread.join(timeout=20)
    assert not thread.is_alive()
    done = _job(engine, job.id, refresh=True)
    assert done.status == "failed"
    assert done.error.startswith("the worker w-stop was stopped; its training process was sent "
                                 "SIGTERM.")
    assert _gone(job.id, running.pid)
    with session_scope(engine) as s:
        [row] = jobs.list_workers(s)
    assert row.name == "w-stop" and row.stopped_at is not None and row.job_id is None


def test_a_queued_job_waits_only_while_a_live_worker_takes_its_kind(engine):
    old = m.utcnow() - timedelta(minutes=5)
    with session_scope(engine) as s:
        sr = m.TrainingJob(kind="sr", args=[], status="queued", created_at=old)
        clf = m.TrainingJob(kind="classifier", args=[], status="queued", created_at=old)
        s.add_all([sr, clf])
        s.flush()
        jobs.register_worker(s, name="sr-box", kinds=["sr"])
    with session_scope(engine) as s:
        changed = service.refresh_jobs(s)
    assert [j.id for j in changed] == [clf.id]
    assert "no worker took the job" in changed[0].error and "never started" in changed[0].error
    assert _job(engine, sr.id).status == "queued"


def test_queueing_starts_a_local_worker_only_when_none_is_alive(engine, monkeypatch):
    started = []
    monkeypatch.setattr(runner, "start_local_worker",
                        lambda url, **kw: started.append((url, kw)))
    monkeypatch.delenv("MEDSCAN_LOCAL_WORKER", raising=False)
    url = engine.url.render_as_string(hide_password=False)
    with session_scope(engine) as s:
        job = service.start_training_job(s, "sr", ["--data", "/d"], None, queue=True,
                                      argv=["fake", "{job_id}"])
    assert job.status == "queued" and job.pid is None and job.log_path is None
    assert started == [(url, {"argv": ["fake", "{job_id}"], "env": None})]
    with session_scope(engine) as s:
        busy = jobs.register_worker(s, name="busy")
        service.start_training_job(s, "classifier", [], None, queue=True)
        assert len(started) == 1                    # a live worker takes it
        jobs.stop_worker(s, busy.id)
        monkeypatch.setenv("MEDSCAN_LOCAL_WORKER", "0")
        service.start_training_job(s, "classifier", [], None, queue=True)
        assert len(started) == 1                    # dedicated workers only
        monkeypatch.setenv("MEDSCAN_LOCAL_WORKER", "1")
        service.start_training_job(s, "classifier", [], None, queue=True)
    assert len(started) == 2


def test_worker_cli_runs_one_job_and_exits(engine, db_url, tmp_path, capsys):
    """``python -m core worker --once`` (in-process through core.cli.main)."""
    import json

    from core.cli import main

    runs = tmp_path / "runs.txt"
    with session_scope(engine) as s:
        job = jobs.queue_job(s, "segmentation", [], None)
    assert main(["worker", "--once", "--poll-s", "0.2", "--kinds", "segmentation,sr",
                 "--command", json.dumps(argv("ok", runs))]) == 0
    assert _job(engine, job.id).status == "succeeded"
    out = capsys.readouterr().out
    assert f"job {job.id} (segmentation)" in out and "stopped after 1 job(s)" in out
    assert main(["worker", "--once", "--kinds", "gan"]) == 2
