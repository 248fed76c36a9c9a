"""Training jobs: the ``training_jobs``, ``job_progress`` and ``job_workers`` tables' queries.

Storage only: nothing here starts, probes or stops a process, and nothing here imports the job
package above it. Long work never runs inside a page (DESIGN.md rule 12); processes belong to
``core/jobs/``: ``service.py`` starts jobs, checks their processes, cancels and resumes them (the
pages and ``python -m core jobs`` call it), ``worker.py`` claims and runs queued jobs,
``runner.py`` holds the process plumbing. Here: record a job (:func:`queue_job`, or
:func:`record_direct_job` for one this process runs itself), claim it, write its progress, its
pid and how it ended, the cancel flag, worker rows, job lists and histories, and dead-job
marking that needs no process access.

**Two ways a job runs.**

- *Queued for a worker*: the row waits as ``queued`` until a worker (``python -m core worker``,
  on this machine or another one sharing the database) claims it with :func:`claim_job`, runs
  ``python -m core train KIND ARGS --job-id N``, records its pid (:func:`set_job_pid`) and the
  outcome (:func:`record_exit`).
- *Run here, now*: :func:`record_direct_job` records the job as claimed by the calling process
  (paths on this machine); the caller starts its command and records the pid
  (:func:`record_started`) or the failure to start (:func:`record_start_failure`).

**Claiming** is safe with several workers: on PostgreSQL the candidate row is locked with
``SELECT ... FOR UPDATE SKIP LOCKED``; on SQLite each candidate is taken by an atomic
``UPDATE ... WHERE id = :id AND status = 'queued' AND claimed_by IS NULL`` whose row count says
whether this worker won. The claim sets ``claimed_by`` (the worker's ``host:pid``), ``status =
running``, the log path and the ``--run-dir`` (checkpoints) under the worker's data folder.

**Progress and publishing.** The training process reports through :func:`progress_callback`,
which writes the latest ``Progress`` (JSON + fraction) to the job row and appends a
``job_progress`` row for the loss curve; writes are throttled to one per ``min_interval_s``
except for phase changes, epoch ends and ``phase == "done"``. A trainer ends with
``Progress(phase="done", message=f"version={v}")``; that marks the job ``succeeded`` with
``result_version = v`` (``"published sr/<v>"`` and ``"saved <dir>/<v>"`` are understood too, see
:func:`parse_version`).

**Dead jobs.** :func:`mark_dead_jobs` fails, from the rows alone, a worker's job whose worker's
heartbeat (``job_workers.heartbeat_at``, beaten every few seconds) is older than
:func:`worker_timeout_s`, a queued job nobody claimed within ``START_GRACE_S`` while no live
worker takes its kind, and a job started directly on another host whose progress heartbeat
(``updated_at``) is older than ``config.job_heartbeat_s()``. Jobs started directly on this host
(:func:`direct_jobs_here`) can only be judged by their process: the job service
(``core/jobs/service.py``) probes it and records the outcome with :func:`record_process_gone`.

**Cancel.** :func:`request_cancel` marks the job cancelled and sets ``cancel_requested``; the
worker running it sees the flag and SIGTERMs the training process group.

**Resume.** Each job gets its own checkpoint folder ``<data dir>/jobs/<N>-run`` (``--run-dir``,
:func:`jobs_dir`); the job service's ``resume_job`` starts a new job from it.
"""
from __future__ import annotations

import math
import os
import re
import socket
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from core.db.audit import audit
from core.db.engine import get_engine, session_scope
from core.db.errors import JobError, NotFound
from core.db.tables import JOB_KINDS, JobProgress, JobWorker, TrainingJob, utcnow
from core.db.rows import JobView, ProgressPoint

if TYPE_CHECKING:   # core.progress is not imported at run time: it reaches us, not we it
    from core.progress import Progress, ProgressCallback

__all__ = ["queue_job", "record_direct_job", "record_started", "record_start_failure",
           "claim_job", "set_job_pid", "cancel_requested", "record_exit", "progress_callback",
           "finish_job", "mark_dead_jobs", "direct_jobs_here", "is_direct_here",
           "record_process_gone", "request_cancel", "find_jobs", "read_job", "job_history",
           "job_log_tail", "jobs_dir", "process_name", "arg_value", "parse_version",
           "ACTIVE_STATUSES", "START_GRACE_S", "heartbeat_age_s", "WorkerView",
           "register_worker", "worker_heartbeat", "stop_worker", "list_workers",
           "live_workers", "worker_timeout_s"]

ACTIVE_STATUSES = ("queued", "running")
START_GRACE_S = 60          # a queued job no worker took after this long (and none alive) failed
WORKER_TIMEOUT_S = 60.0     # a worker beats every few seconds; this much silence means it is gone
_CLAIM_CANDIDATES = 20      # SQLite: queued rows tried per claim before giving up for this poll
_VERSION = re.compile(r"version=(\S+)")
_PUBLISHED = re.compile(r"(?<!not )\bpublished (?:[a-z]+/)?(\S+)")
_SAVED = re.compile(r"\bsaved (\S+)")



def jobs_dir() -> Path:
    """``<data dir>/jobs``: job logs and run (checkpoint) folders, created if needed."""
    from core.config import data_dir

    path = data_dir() / "jobs"
    path.mkdir(parents=True, exist_ok=True)
    return path


def process_name(pid: int | None = None) -> str:
    """``host:pid``: a worker's (or any process's) name in ``training_jobs.claimed_by``."""
    return f"{socket.gethostname()}:{pid or os.getpid()}"


def worker_timeout_s() -> float:
    """Seconds without a worker heartbeat after which its job is failed
    (``MEDSCAN_WORKER_TIMEOUT_S``, default 60)."""
    return float(os.environ.get("MEDSCAN_WORKER_TIMEOUT_S", WORKER_TIMEOUT_S))


def parse_version(message: str | None) -> str | None:
    """The published version named in a ``done`` message, else ``None``.

    The contract is ``"version=<v>"`` anywhere in the message; the trainers' older wordings
    ``"published sr/<v>"`` and ``"saved <weights dir>/<task>/<v>"`` are understood too.
    """
    text = message or ""
    m = _VERSION.search(text) or _PUBLISHED.search(text)
    if m:
        return m.group(1).strip("'\",;") or None
    m = _SAVED.search(text)
    return Path(m.group(1).rstrip("/")).name or None if m else None


def _view(j: TrainingJob) -> JobView:
    return JobView(id=j.id, kind=j.kind, args=list(j.args or []), status=j.status,
                   user_id=j.user_id, pid=j.pid, host=j.host, created_at=j.created_at,
                   started_at=j.started_at, finished_at=j.finished_at, updated_at=j.updated_at,
                   progress=dict(j.progress) if j.progress else None, fraction=j.fraction,
                   result_version=j.result_version, error=j.error, log_path=j.log_path)


def _job(session: Session, job_id: int) -> TrainingJob:
    job = session.get(TrainingJob, job_id)
    if job is None:
        raise NotFound(f"No training job with id {job_id}.")
    return job


# ----------------------------------------------------------------------------- workers


@dataclass(frozen=True)
class WorkerView:
    """A worker process (``job_workers`` row)."""

    id: int
    name: str                       # host:pid, as in training_jobs.claimed_by
    host: str
    pid: int
    kinds: list[str] | None         # None: every kind
    started_at: datetime
    heartbeat_at: datetime
    stopped_at: datetime | None
    job_id: int | None              # the job it runs now
    jobs_done: int

    def alive(self, now: datetime | None = None, timeout_s: float | None = None) -> bool:
        """Not stopped, and beat within ``timeout_s`` (default :func:`worker_timeout_s`)."""
        age = ((now or utcnow()) - self.heartbeat_at).total_seconds()
        return self.stopped_at is None and age < (timeout_s or worker_timeout_s())

    def takes(self, kind: str) -> bool:
        return not self.kinds or kind in self.kinds


def _worker_view(w: JobWorker) -> WorkerView:
    return WorkerView(id=w.id, name=w.name, host=w.host, pid=w.pid,
                      kinds=list(w.kinds) if w.kinds else None, started_at=w.started_at,
                      heartbeat_at=w.heartbeat_at, stopped_at=w.stopped_at, job_id=w.job_id,
                      jobs_done=w.jobs_done)


def register_worker(session: Session, *, name: str | None = None,
                    kinds: Sequence[str] | None = None) -> WorkerView:
    """Record a starting worker (default name: this process's ``host:pid``) and commit."""
    bad = [k for k in kinds or () if k not in JOB_KINDS]
    if bad:
        raise JobError(f"Unknown job kind {bad[0]!r}; expected some of {', '.join(JOB_KINDS)}.")
    now = utcnow()
    row = JobWorker(name=name or process_name(), host=socket.gethostname(),
                    pid=os.getpid(), kinds=list(kinds) if kinds else None, started_at=now,
                    heartbeat_at=now, jobs_done=0)
    session.add(row)
    session.commit()
    return _worker_view(row)


def worker_heartbeat(session: Session, worker_id: int, *, job_id: int | None = None,
                     jobs_done: int | None = None) -> None:
    """The worker is alive (and runs ``job_id``, or nothing); commits."""
    values: dict[str, Any] = {"heartbeat_at": utcnow(), "stopped_at": None, "job_id": job_id}
    if jobs_done is not None:
        values["jobs_done"] = jobs_done
    session.execute(update(JobWorker).where(JobWorker.id == worker_id).values(**values))
    session.commit()


def stop_worker(session: Session, worker_id: int) -> None:
    """The worker exits (or is about to look for work one last time); commits."""
    session.execute(update(JobWorker).where(JobWorker.id == worker_id)
                    .values(stopped_at=utcnow(), job_id=None))
    session.commit()


def list_workers(session: Session, *, limit: int = 50) -> list[WorkerView]:
    """Newest first."""
    rows = session.scalars(select(JobWorker).order_by(JobWorker.id.desc()).limit(limit))
    return [_worker_view(w) for w in rows]


def live_workers(session: Session, kind: str | None = None, *,
                 timeout_s: float | None = None) -> list[WorkerView]:
    """Workers that are not stopped and beat within ``timeout_s`` (and take ``kind``)."""
    now = utcnow()
    timeout_s = timeout_s or worker_timeout_s()
    rows = session.scalars(select(JobWorker).where(
        JobWorker.stopped_at.is_(None),
        JobWorker.heartbeat_at > now - timedelta(seconds=timeout_s)))
    views = [_worker_view(w) for w in rows]
    return [w for w in views if w.alive(now, timeout_s) and (kind is None or w.takes(kind))]


def _workers_named(session: Session, names: set[str]) -> dict[str, WorkerView]:
    """The newest worker row of each name (a host may reuse a pid, much later)."""
    if not names:
        return {}
    rows = session.scalars(select(JobWorker).where(JobWorker.name.in_(sorted(names)))
                           .order_by(JobWorker.id))
    return {w.name: _worker_view(w) for w in rows}


# ----------------------------------------------------------------------------- queue and claim


def arg_value(args: Sequence[str], name: str) -> str | None:
    """The value of option ``name`` in an argument list (the last one wins, as in argparse)."""
    value = None
    for i, a in enumerate(args):
        if a == name and i + 1 < len(args):
            value = args[i + 1]
        elif a.startswith(name + "="):
            value = a.split("=", 1)[1]
    return value


def _set_paths(job: TrainingJob) -> None:
    """Log file and (unless given) ``--run-dir`` under this machine's ``<data dir>/jobs``."""
    job.log_path = job.log_path or str(jobs_dir() / f"{job.id}.log")
    args = list(job.args or [])
    if arg_value(args, "--run-dir") is None:   # its own checkpoint folder, so it can be resumed
        job.args = [*args, "--run-dir", str(jobs_dir() / f"{job.id}-run")]


def _new_job(session: Session, kind: str, args: Sequence[str], user_id: int | None, *,
             direct: bool) -> TrainingJob:
    if kind not in JOB_KINDS:
        raise JobError(f"Unknown training kind {kind!r}; expected one of {', '.join(JOB_KINDS)}.")
    args = [str(a) for a in args]
    if any(a == "--job-id" or a.startswith("--job-id=") for a in args):
        raise JobError("--job-id is set by the job runner.")
    job = TrainingJob(kind=kind, args=args, status="queued", user_id=user_id, fraction=0.0,
                      cancel_requested=False)
    if direct:   # claimed by this process at once; paths on this machine
        job.host, job.claimed_by, job.claimed_at = (socket.gethostname(), process_name(),
                                                    utcnow())
    session.add(job)
    session.flush()
    if direct:
        _set_paths(job)
    audit(session, user_id, "train_start", job_id=job.id, kind=kind, args=list(job.args),
          queued=not direct)
    session.commit()  # the child (or a worker) reads and writes this row
    return job


def queue_job(session: Session, kind: str, args: Sequence[str],
              user_id: int | None) -> JobView:
    """Record a ``queued`` job for a worker to claim, and commit. Its log path and ``--run-dir``
    are set by the claim (on the worker's machine)."""
    return _view(_new_job(session, kind, args, user_id, direct=False))


def record_direct_job(session: Session, kind: str, args: Sequence[str],
                      user_id: int | None) -> JobView:
    """Record a job that the calling process starts itself, and commit: claimed by this process
    (``host:pid``) at once, its log path and ``--run-dir`` under this machine's
    ``<data dir>/jobs``; still ``queued`` until :func:`record_started`. Raises :class:`JobError`
    for an unknown kind or a ``--job-id`` in ``args``."""
    return _view(_new_job(session, kind, args, user_id, direct=True))


def record_started(session: Session, job_id: int, pid: int) -> JobView:
    """The job's process ``pid`` started on this host: record the pid and (unless the process
    already moved the job on) ``running``; commits."""
    now = utcnow()
    session.execute(update(TrainingJob).where(TrainingJob.id == job_id)
                    .values(pid=pid))
    session.execute(update(TrainingJob)  # unless the child already moved it on
                    .where(TrainingJob.id == job_id, TrainingJob.status == "queued")
                    .values(status="running", started_at=now))
    session.commit()
    job = _job(session, job_id)
    session.refresh(job)
    return _view(job)


def record_start_failure(session: Session, job_id: int, error: str) -> None:
    """The job (or the worker that was to run it) could not be started: failed with ``error``;
    commits."""
    job = _job(session, job_id)
    job.status, job.finished_at = "failed", utcnow()
    job.error = error
    session.commit()


def claim_job(session: Session, worker: WorkerView,
              kinds: Sequence[str] | None = None) -> JobView | None:
    """Take the oldest queued job (of ``kinds``, default the worker's) for ``worker``, or
    ``None`` when there is none; commits. Never hands one job to two workers: PostgreSQL locks
    the row (``FOR UPDATE SKIP LOCKED``: another worker skips it), SQLite takes it with an
    atomic conditional ``UPDATE`` and checks its row count."""
    now = utcnow()
    kinds = list(kinds if kinds is not None else worker.kinds or [])
    q = (select(TrainingJob.id)
         .where(TrainingJob.status == "queued", TrainingJob.claimed_by.is_(None),
                TrainingJob.cancel_requested.is_(False))
         .order_by(TrainingJob.id))
    if kinds:
        q = q.where(TrainingJob.kind.in_(kinds))
    if session.get_bind().dialect.name == "postgresql":
        candidates = list(session.scalars(q.limit(1).with_for_update(skip_locked=True)))
    else:   # a plain read (no transaction held), then one atomic UPDATE per candidate
        candidates = list(session.scalars(q.limit(_CLAIM_CANDIDATES)))
    claimed = None
    for job_id in candidates:
        result = session.execute(
            update(TrainingJob)
            .where(TrainingJob.id == job_id, TrainingJob.status == "queued",
                   TrainingJob.claimed_by.is_(None))
            .values(status="running", claimed_by=worker.name, claimed_at=now, started_at=now,
                    updated_at=now, host=worker.host, pid=None)
            .execution_options(synchronize_session=False))
        if result.rowcount == 1:
            claimed = job_id
            break
    if claimed is None:
        session.rollback()
        return None
    job = session.get(TrainingJob, claimed, populate_existing=True)
    _set_paths(job)
    session.execute(update(JobWorker).where(JobWorker.id == worker.id)
                    .values(job_id=claimed, heartbeat_at=now, stopped_at=None))
    session.commit()
    return _view(job)


def set_job_pid(session: Session, job_id: int, pid: int) -> None:
    """The claimed job's training process is ``pid`` (on the claiming worker's host)."""
    session.execute(update(TrainingJob).where(TrainingJob.id == job_id).values(pid=pid))
    session.commit()


def cancel_requested(session: Session, job_id: int) -> bool:
    """Whether the job should stop: a cancel was requested (or it was cancelled otherwise)."""
    row = session.execute(select(TrainingJob.cancel_requested, TrainingJob.status)
                          .where(TrainingJob.id == job_id)).first()
    session.rollback()   # end the read: SQLite must not hold a snapshot between polls
    return row is None or bool(row.cancel_requested) or row.status == "cancelled"


def record_exit(session: Session, job_id: int, returncode: int | None, *,
                reason: str | None = None) -> JobView:
    """How the job's process ended, as its worker saw it; commits. A job already finished by
    its own ``done`` report (or cancelled) keeps that; otherwise exit status 0 is success (the
    version from the log) and anything else a failure with the log's tail. ``reason`` (e.g. the
    worker was stopped) fails it with those words."""
    job = session.get(TrainingJob, job_id, populate_existing=True)
    if job is None:
        raise NotFound(f"No training job with id {job_id}.")
    now = utcnow()
    if job.status not in ACTIVE_STATUSES:
        if job.finished_at is None:
            job.finished_at = now
        session.commit()
        return _view(job)
    tail = job_log_tail(job)
    job.finished_at = now
    if returncode == 0 and reason is None:
        job.status, job.fraction = "succeeded", 1.0
        job.result_version = job.result_version or _last_version(tail)
    else:
        job.status = "failed"
        why = reason or (f"the training process exited with status {returncode} before "
                         "reporting a result.")
        job.error = f"{why}\n{tail}".strip()
    session.commit()
    return _view(job)


# ----------------------------------------------------------------------------- readers


def job_log_tail(job: JobView | TrainingJob | str | Path | None, lines: int = 40,
                 max_chars: int = 4000) -> str:
    """Last ``lines`` lines of a job's log ('' if there is none)."""
    path = job if isinstance(job, str | Path) or job is None else job.log_path
    if not path:
        return ""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 64 * 1024))
            text = fh.read().decode(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])[-max_chars:]


def heartbeat_age_s(job: JobView | TrainingJob, now=None) -> float:
    """Seconds since the job's last progress write (or start, or creation)."""
    last = job.updated_at or job.started_at or job.created_at
    return ((now or utcnow()) - last).total_seconds()


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds >= 90 else f"{seconds:.0f} s"


def _is_direct_here(job: TrainingJob, workers: Mapping[str, WorkerView], host: str) -> bool:
    """Started directly on this host (not run by a worker, not waiting for one): only its
    process can tell whether it is alive."""
    if job.claimed_by and job.claimed_by in workers:
        return False
    if job.status == "queued" and job.claimed_by is None:
        return False
    return job.host in (None, host)


def mark_dead_jobs(session: Session, *, worker_timeout: float | None = None,
                   stop_orphan: Callable[[int, int], bool] | None = None,
                   now: datetime | None = None) -> list[JobView]:
    """Mark queued/running jobs whose worker is gone as failed, judging by the rows alone;
    returns the jobs changed (flushed, not committed).

    A worker's job: the worker's heartbeat is older than ``worker_timeout`` (default
    :func:`worker_timeout_s`) or it stopped; when its training process ran on this host,
    ``stop_orphan(job_id, pid)`` (if given) is asked to stop it and says whether it did (the
    error then says so). A queued job nobody claimed: older than ``START_GRACE_S`` while no live
    worker takes its kind. A job started directly on another host (a pid means nothing here):
    its progress heartbeat is older than ``config.job_heartbeat_s()``. Jobs started directly on
    this host are left alone (:func:`direct_jobs_here`).
    """
    from core.config import job_heartbeat_s

    changed = []
    host = socket.gethostname()
    jobs = session.scalars(select(TrainingJob)
                           .where(TrainingJob.status.in_(ACTIVE_STATUSES))
                           .order_by(TrainingJob.id)).all()
    workers = _workers_named(session, {j.claimed_by for j in jobs if j.claimed_by})
    timeout = worker_timeout or worker_timeout_s()
    live: list[WorkerView] | None = None
    now = now or utcnow()
    for job in jobs:
        age = heartbeat_age_s(job, now)
        worker = workers.get(job.claimed_by) if job.claimed_by else None
        if worker is not None:   # run by a worker: its heartbeat says whether it is alive
            if worker.alive(now, timeout):
                continue
            session.refresh(job)
            if job.status not in ACTIVE_STATUSES:
                continue
            silent = (now - worker.heartbeat_at).total_seconds()
            why = (f"the worker {worker.name} stopped before the job ended"
                   if worker.stopped_at is not None and silent < timeout else
                   f"no heartbeat for {_minutes(silent)} from worker {worker.name}; the worker "
                   "process is presumed gone")
            if (job.host == host and job.pid is not None and stop_orphan is not None
                    and stop_orphan(job.id, job.pid)):
                why += f" (its training process {job.pid} was sent SIGTERM)"
            job.status, job.finished_at = "failed", now
            job.error = f"{why}.\n{job_log_tail(job)}".strip()
            changed.append(job)
            continue
        if job.status == "queued" and job.claimed_by is None:   # waiting for a worker
            if (now - job.created_at).total_seconds() < START_GRACE_S:
                continue
            if live is None:
                live = live_workers(session, timeout_s=timeout)
            if any(w.takes(job.kind) for w in live):
                continue
            session.refresh(job)
            if job.status != "queued" or job.claimed_by is not None:
                continue
            job.status, job.finished_at = "failed", now
            job.error = (f"no heartbeat for {_minutes(age)}; no worker took the job: the worker "
                         "process never started. Start one with `python -m core worker`.")
            changed.append(job)
            continue
        if job.host not in (None, host):   # a pid means nothing here: judge by the heartbeat
            if age < job_heartbeat_s():
                continue
            session.refresh(job)
            if job.status not in ACTIVE_STATUSES or heartbeat_age_s(job, now) < job_heartbeat_s():
                continue
            job.status, job.finished_at = "failed", now
            job.error = (f"no heartbeat for {_minutes(age)}; the worker process on host "
                         f"{job.host} is presumed gone.")
            changed.append(job)
    session.flush()
    return [_view(j) for j in changed]


def direct_jobs_here(session: Session) -> list[JobView]:
    """Queued/running jobs started directly on this host (by a page, the CLI, a test): not run
    by a worker and not waiting for one. Only their process says whether they are alive."""
    host = socket.gethostname()
    jobs = session.scalars(select(TrainingJob)
                           .where(TrainingJob.status.in_(ACTIVE_STATUSES))
                           .order_by(TrainingJob.id)).all()
    workers = _workers_named(session, {j.claimed_by for j in jobs if j.claimed_by})
    return [_view(j) for j in jobs if _is_direct_here(j, workers, host)]


def is_direct_here(session: Session, job_id: int) -> bool:
    """Whether the job has a process started directly on this host (a pid, this host, not run
    by a worker): only then may this process stop it itself."""
    job = _job(session, job_id)
    if job.pid is None or job.host not in (None, socket.gethostname()):
        return False
    return not (job.claimed_by and job.claimed_by in _workers_named(session, {job.claimed_by}))


def record_process_gone(session: Session, job_id: int, returncode: int | None, *,
                        age_s: float, now: datetime | None = None) -> JobView | None:
    """A job started directly on this host has no process any more (``returncode`` if known;
    its progress heartbeat was ``age_s`` old): succeeded on exit status 0 (the version from the
    log), else failed with the reason and the log's tail. ``None`` when the job was finished
    meanwhile (by its own ``done`` report, a cancel). Flushes, does not commit."""
    job = _job(session, job_id)
    session.refresh(job)  # the child may have finished it meanwhile
    if job.status not in ACTIVE_STATUSES:
        return None
    tail = job_log_tail(job)
    job.finished_at = now or utcnow()
    if returncode == 0:
        job.status, job.fraction = "succeeded", 1.0
        job.result_version = job.result_version or _last_version(tail)
    else:
        job.status = "failed"
        why = ("the worker process never started" if job.pid is None else
               f"the worker process is gone (pid {job.pid} exited with status {returncode})"
               if returncode is not None else f"the worker process is gone (pid {job.pid})")
        job.error = (f"no heartbeat for {_minutes(age_s)}; {why} before reporting a result."
                     f"\n{tail}").strip()
    session.flush()
    return _view(job)


def _last_version(text: str) -> str | None:
    versions = _VERSION.findall(text)
    return parse_version(f"version={versions[-1]}") if versions else None


def request_cancel(session: Session, job_id: int, *, by_user_id: int | None = None) -> JobView:
    """Mark the job cancelled and set its ``cancel_requested`` flag (no-op if already
    finished); flushes. The worker running it sees the flag and SIGTERMs its process group; a
    job started directly gets its SIGTERM from the job service's ``cancel_job``."""
    job = _job(session, job_id)
    if job.status not in ACTIVE_STATUSES:
        return _view(job)
    job.cancel_requested = True
    job.status, job.finished_at = "cancelled", utcnow()
    job.error = job.error or "cancelled by a user"
    audit(session, by_user_id, "train_cancel", job_id=job.id, kind=job.kind)
    session.flush()
    return _view(job)


def find_jobs(session: Session, limit: int = 50, *,
              status: str | Sequence[str] | None = None) -> list[JobView]:
    """Newest first, as stored (the job service's ``list_jobs`` first marks dead ones)."""
    q = select(TrainingJob).order_by(TrainingJob.id.desc()).limit(limit)
    if status is not None:
        q = q.where(TrainingJob.status.in_([status] if isinstance(status, str) else status))
    return [_view(j) for j in session.scalars(q)]


def read_job(session: Session, job_id: int) -> JobView:
    """One job as stored (:class:`NotFound` if there is none)."""
    return _view(_job(session, job_id))


def job_history(session: Session, job_id: int) -> list[ProgressPoint]:
    """Progress rows in order (for a loss curve)."""
    rows = session.scalars(select(JobProgress).where(JobProgress.job_id == job_id)
                           .order_by(JobProgress.id))
    return [ProgressPoint(at=r.at, phase=r.phase, epoch=r.epoch, epochs=r.epochs, step=r.step,
                          steps=r.steps, loss=r.loss, fraction=r.fraction,
                          metrics=dict(r.metrics or {})) for r in rows]


# ------------------------------------------------------------------- training-process side


def _finite(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, dict):
        return {str(k): _finite(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_finite(x) for x in v]
    return v


def _write_progress(engine: Engine, job_id: int, p: Progress) -> None:
    now = utcnow()
    data = _finite(p.to_dict())
    with session_scope(engine) as s:
        job = s.get(TrainingJob, job_id)
        if job is None:
            print(f"warning: training job {job_id} not found in the database", file=sys.stderr)
            return
        job.progress, job.fraction, job.updated_at = data, p.fraction, now
        if job.status == "queued":
            job.status, job.started_at = "running", job.started_at or now
        s.add(JobProgress(job_id=job_id, at=now, phase=p.phase[:32], epoch=p.epoch,
                          epochs=p.epochs, step=p.step, steps=p.steps, loss=_finite(p.loss),
                          metrics=data.get("metrics") or {}, fraction=p.fraction))
        if p.phase == "done" and job.status in ACTIVE_STATUSES:
            job.status, job.finished_at, job.fraction = "succeeded", now, 1.0
            job.result_version = parse_version(p.message) or job.result_version


def progress_callback(job_id: int, *, url: str | None = None, min_interval_s: float = 2.0,
                      clock: Callable[[], float] = time.monotonic) -> ProgressCallback:
    """A callback for the training process that writes ``Progress`` to job ``job_id``.

    Opens its own engine (``url``, default ``core.config.database_url()``). Database errors are
    printed and swallowed (training goes on), except that the final ``done`` report is retried.
    """
    engine = get_engine(url)
    state: dict[str, Any] = {"last": None, "phase": None, "epoch": None}

    def report(p: Progress) -> None:
        now = clock()
        important = (p.phase == "done" or p.phase != state["phase"]
                     or p.epoch != state["epoch"] or p.message == "epoch end"
                     or (p.steps > 0 and p.step >= p.steps))
        if not important and state["last"] is not None and now - state["last"] < min_interval_s:
            return
        state.update(last=now, phase=p.phase, epoch=p.epoch)
        for attempt in range(5 if p.phase == "done" else 1):
            try:
                _write_progress(engine, job_id, p)
                return
            except SQLAlchemyError as err:
                print(f"warning: could not record progress of job {job_id}: {err}",
                      file=sys.stderr)
                time.sleep(0.5 * (attempt + 1))

    return report


def finish_job(job_id: int, *, version: str | None = None, error: str | None = None,
               url: str | None = None) -> None:
    """Explicitly end a job from the training process: failed if ``error`` else succeeded."""
    with session_scope(get_engine(url)) as s:
        job = _job(s, job_id)
        if job.status not in ACTIVE_STATUSES:
            return
        job.finished_at = utcnow()
        if error is not None:
            job.status, job.error = "failed", error[-4000:]
        else:
            job.status, job.fraction = "succeeded", 1.0
            job.result_version = version or job.result_version
