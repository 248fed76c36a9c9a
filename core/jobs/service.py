"""Jobs as the pages and the CLI see them: start, refresh, list, cancel and resume, with the
process side that storage (``core.db.jobs``) leaves out.

- :func:`start_training_job` records a job and has it run: ``queue=True`` (the Training page)
  queues it for a worker and, with no live worker for that kind, starts one on this machine
  (:func:`core.jobs.runner.start_local_worker`; ``MEDSCAN_LOCAL_WORKER=0`` turns that off); the
  default (the CLI, the studies and retrieval pages, tests) claims it for this process and
  starts its command at once as a child in its own process group.
- :func:`refresh_jobs` marks dead jobs: from the rows (``core.db.jobs.mark_dead_jobs``: worker
  heartbeats, unclaimed queue entries, other hosts' progress heartbeats; an orphaned training
  process of a dead worker on this host is sent SIGTERM), and, for jobs started directly on this
  host, from their process (``waitpid`` / ``kill(pid, 0)`` / ``/proc``, through the runner).
- :func:`list_jobs` and :func:`get_job` refresh first (quietly: a database that cannot be
  written must not hide the list), so no reader shows a killed job as running.
- :func:`cancel_job` marks the job cancelled and sets its ``cancel_requested`` flag (the worker
  running it SIGTERMs the training process group); a job started directly on this host gets the
  SIGTERM here, at once.
- :func:`resume_job` starts a new job with the same arguments plus ``--resume`` from the
  checkpoint in the old job's ``--run-dir`` (:func:`checkpoint_of`).
"""
from __future__ import annotations

import signal
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from core.db import jobs
from core.db.audit import audit
from core.db.errors import JobError
from core.db.rows import JobView
from core.db.tables import TrainingJob, utcnow
from core.jobs import runner

__all__ = ["start_training_job", "refresh_jobs", "list_jobs", "get_job", "cancel_job",
           "checkpoint_of", "resume_job"]


def _url(session: Session) -> str:
    return session.get_bind().url.render_as_string(hide_password=False)


def start_training_job(session: Session, kind: str, args: Sequence[str], user_id: int | None,
                       *, argv: Sequence[str] | None = None,
                       env: Mapping[str, str] | None = None, queue: bool = False) -> JobView:
    """Record a job and have it run.

    ``queue=True`` (the Training page): the job waits for a worker; if no live worker takes
    ``kind`` (and ``MEDSCAN_LOCAL_WORKER`` allows it), a worker is started on this machine,
    with ``argv`` as its job command and ``env`` added to its environment.

    ``queue=False``: the job is claimed by this process and its command (``JOB_COMMANDS``, e.g.
    ``python -m core train KIND ARGS --job-id N``; ``argv`` replaces it, ``{job_id}`` filled in)
    starts now as a child in its own process group, output to ``<data dir>/jobs/<N>.log``. The
    child inherits the environment (all ``MEDSCAN_*`` settings) plus ``env``,
    ``MEDSCAN_DATABASE_URL`` of this session's engine and ``MEDSCAN_JOB_ID``.

    Raises :class:`JobError` if it cannot start (the job is then recorded as failed).
    """
    job = (jobs.queue_job(session, kind, args, user_id) if queue
           else jobs.record_direct_job(session, kind, args, user_id))
    url = _url(session)
    try:
        if queue:
            if runner.local_worker_enabled() and not jobs.live_workers(session, kind):
                runner.start_local_worker(url, argv=argv, env=env)
            return job
        cmd = runner.job_command(kind, job.args, job.id, argv)
        proc = runner.spawn(cmd, job.log_path, runner.child_env(url, job.id, env), job_id=job.id)
    except OSError as err:
        jobs.record_start_failure(session, job.id, f"could not start: {err}")
        what = "a training worker" if queue else "the training process"
        raise JobError(f"Could not start {what}: {err}") from err
    return jobs.record_started(session, job.id, proc.pid)


def _stop_orphan(job_id: int, pid: int) -> bool:
    """SIGTERM to the process group of a dead worker's training process on this host, if it
    still runs; whether it was sent."""
    return runner.process_state(job_id, pid)[0] and runner.signal_group(pid)


def refresh_jobs(session: Session, *, worker_timeout: float | None = None) -> list[JobView]:
    """Mark queued/running jobs whose worker is gone as finished; returns the jobs changed
    (flushed, not committed), in id order.

    A worker's job: the worker's heartbeat is older than ``worker_timeout`` (default
    ``core.db.jobs.worker_timeout_s()``) or it stopped; its training process, if on this host,
    is sent SIGTERM. A queued job nobody claimed: older than ``START_GRACE_S`` while no live
    worker takes its kind. A job started directly: on this host its process is checked; on
    another (a pid means nothing here) it is presumed dead when its progress heartbeat is older
    than ``config.job_heartbeat_s()``.
    """
    now = utcnow()
    changed = {j.id: j for j in jobs.mark_dead_jobs(session, worker_timeout=worker_timeout,
                                                    stop_orphan=_stop_orphan, now=now)}
    for job in jobs.direct_jobs_here(session):
        age = jobs.heartbeat_age_s(job, now)
        if job.pid is None:
            if (now - job.created_at).total_seconds() < jobs.START_GRACE_S:
                continue
            alive, rc = False, None
        else:
            alive, rc = runner.process_state(job.id, job.pid)
        if alive:
            continue
        done = jobs.record_process_gone(session, job.id, rc, age_s=age, now=now)
        if done is not None:
            changed[done.id] = done
    session.flush()
    runner.reap_children()
    return [changed[i] for i in sorted(changed)]


def _refresh_quietly(session: Session) -> None:
    """:func:`refresh_jobs` for readers: a database that cannot be written (read-only, locked)
    must not stop the list from being shown."""
    try:
        if refresh_jobs(session):
            session.commit()
    except SQLAlchemyError as err:
        session.rollback()
        print(f"warning: could not refresh training jobs: {err}", file=sys.stderr)


def list_jobs(session: Session, limit: int = 50, *,
              status: str | Sequence[str] | None = None, refresh: bool = True) -> list[JobView]:
    """Newest first. Dead workers are detected first (:func:`refresh_jobs`), so no reader
    shows a killed job as running."""
    if refresh:
        _refresh_quietly(session)
    return jobs.find_jobs(session, limit, status=status)


def get_job(session: Session, job_id: int, *, refresh: bool = True) -> JobView:
    """One job (``NotFound`` if there is none), dead workers detected first."""
    if refresh:
        _refresh_quietly(session)
    return jobs.read_job(session, job_id)


def cancel_job(session: Session, job_id: int, *, by_user_id: int | None = None) -> JobView:
    """Mark the job cancelled and request its stop (no-op if already finished): the worker
    running it SIGTERMs its process group; a job started directly on this host is sent the
    SIGTERM here."""
    job = jobs.read_job(session, job_id)
    if job.status in jobs.ACTIVE_STATUSES and jobs.is_direct_here(session, job_id):
        alive, _ = runner.process_state(job.id, job.pid)
        if alive:
            runner.signal_group(job.pid, signal.SIGTERM)  # start_new_session: pgid == pid
    return jobs.request_cancel(session, job_id, by_user_id=by_user_id)


def checkpoint_of(job: JobView | TrainingJob) -> Path | None:
    """The checkpoint a finished (failed / cancelled) job left in its ``--run-dir``, else
    ``None``: classifier ``last.keras`` + ``state.json``, super-resolution ``ckpt/state.json``."""
    run_dir = jobs.arg_value(list(job.args or []), "--run-dir")
    if not run_dir:
        return None
    run = Path(run_dir)
    if job.kind == "classifier":
        ok = (run / "last.keras").is_file() and (run / "state.json").is_file()
        return run / "last.keras" if ok else None
    return run / "ckpt" if (run / "ckpt" / "state.json").is_file() else None


def resume_job(session: Session, job_id: int, user_id: int | None, *,
               overrides: Sequence[str] = (), argv: Sequence[str] | None = None,
               env: Mapping[str, str] | None = None, queue: bool = False) -> JobView:
    """Start a new job that continues ``job_id``'s checkpoint: the same arguments (and run
    folder) plus ``--resume``; ``overrides`` are appended (e.g. ``["--epochs", "12"]``).
    ``queue`` as in :func:`start_training_job` (a worker resumes it: the run folder must be
    reachable there). Only a failed or cancelled job with a checkpoint can be resumed
    (:class:`JobError`)."""
    old = jobs.read_job(session, job_id)
    if old.status not in ("failed", "cancelled"):
        raise JobError(f"Job {job_id} is {old.status}: only a failed or cancelled job can be "
                       "resumed.")
    if checkpoint_of(old) is None:
        raise JobError(f"Job {job_id} left no checkpoint to resume from.")
    args = [a for a in (old.args or []) if a not in ("--resume", "--activate")]
    job = start_training_job(session, old.kind, [*args, "--resume", *overrides], user_id,
                             argv=argv, env=env, queue=queue)
    audit(session, user_id, "train_resume", job_id=job.id, resumed_from=job_id,
          checkpoint=str(checkpoint_of(old)))
    session.commit()
    return job
