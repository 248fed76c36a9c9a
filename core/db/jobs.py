"""Training jobs: started by the admin page as detached processes, reporting to the database.

Long work never runs inside a page (DESIGN.md rule 12). The page calls
:func:`start_training_job`, which spawns ``python -m core train <kind> ARGS --job-id N`` in its own
session (process group), output to ``<data dir>/jobs/<N>.log``. The training CLI reports through
``core.progress.progress_from_args`` → :func:`progress_callback`, which writes the latest
``Progress`` (JSON + fraction) to the job row and appends a ``job_progress`` row for the loss
curve; writes are throttled to one per ``min_interval_s`` except for phase changes, epoch ends
and ``phase == "done"``.

**Publishing a version:** a trainer ends with ``Progress(phase="done", message=f"version={v}")``;
that marks the job ``succeeded`` with ``result_version = v`` (``"published sr/<v>"`` and
``"saved <dir>/<v>"`` are understood too, see :func:`parse_version`).

**Dead workers.** Every reader of the job list (:func:`list_jobs`, :func:`get_job`, so the page
and ``python -m core jobs list`` alike) first runs :func:`refresh_jobs`: a queued/running job
whose process is gone on this host (``waitpid`` / ``kill(pid, 0)`` / ``/proc``), or, on another
host, whose heartbeat (``updated_at``, the last progress write) is older than
``config.job_heartbeat_s()``, is marked ``failed`` with the reason ("no heartbeat for N min; the
worker process is gone") and the tail of its log, or ``succeeded`` if it exited with status 0.
:func:`cancel_job` sends SIGTERM to the job's process group.

**Resume.** Each job gets its own checkpoint folder ``<data dir>/jobs/<N>-run`` (``--run-dir``);
:func:`checkpoint_of` says whether it holds a checkpoint and :func:`resume_job` starts a new job
with the same arguments plus ``--resume`` from it.
"""
from __future__ import annotations

import math
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from core.db.audit import audit
from core.db.engine import get_engine, session_scope
from core.db.errors import JobError, NotFound
from core.db.models import JOB_KINDS, JobProgress, TrainingJob, utcnow
from core.db.views import JobView, ProgressPoint
from core.progress import Progress, ProgressCallback

__all__ = ["start_training_job", "progress_callback", "finish_job", "refresh_jobs",
           "cancel_job", "list_jobs", "get_job", "job_history", "job_log_tail", "jobs_dir",
           "parse_version", "ACTIVE_STATUSES", "checkpoint_of", "resume_job", "heartbeat_age_s",
           "JOB_COMMANDS"]

ACTIVE_STATUSES = ("queued", "running")
START_GRACE_S = 60          # a queued job with no pid after this long never started
_VERSION = re.compile(r"version=(\S+)")
_PUBLISHED = re.compile(r"(?<!not )\bpublished (?:[a-z]+/)?(\S+)")
_SAVED = re.compile(r"\bsaved (\S+)")
_children: dict[int, subprocess.Popen] = {}
_children_lock = threading.Lock()


def jobs_dir() -> Path:
    from core.config import data_dir

    path = data_dir() / "jobs"
    path.mkdir(parents=True, exist_ok=True)
    return path


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


# ----------------------------------------------------------------------------- page side

# The ``python -m core`` command each kind of job runs (its arguments and ``--job-id N`` follow).
JOB_COMMANDS: dict[str, tuple[str, ...]] = {
    "classifier": ("train", "classifier"),
    "sr": ("train", "sr"),
    "segmentation": ("train", "segmentation"),
    "embeddings": ("library", "embed"),
    "study_images": ("studies", "generate"),
}
assert set(JOB_COMMANDS) == set(JOB_KINDS), "every job kind needs its command"


def start_training_job(session: Session, kind: str, args: Sequence[str], user_id: int | None,
                       *, argv: Sequence[str] | None = None,
                       env: Mapping[str, str] | None = None) -> JobView:
    """Record a job, commit, and spawn its command (:data:`JOB_COMMANDS`, e.g.
    ``python -m core train KIND ARGS --job-id N``).

    ``argv`` replaces the command (tests); ``{job_id}`` in it is replaced by the job id. The
    child inherits the environment (all ``MEDSCAN_*`` settings) plus ``MEDSCAN_DATABASE_URL`` of
    this session's engine and ``MEDSCAN_JOB_ID``. Raises :class:`JobError` if it cannot start
    (the job is then recorded as failed).
    """
    if kind not in JOB_KINDS:
        raise JobError(f"Unknown training kind {kind!r}; expected one of {', '.join(JOB_KINDS)}.")
    args = [str(a) for a in args]
    if any(a == "--job-id" or a.startswith("--job-id=") for a in args):
        raise JobError("--job-id is set by the job runner.")
    job = TrainingJob(kind=kind, args=args, status="queued", user_id=user_id,
                      host=socket.gethostname(), fraction=0.0)
    session.add(job)
    session.flush()
    job.log_path = str(jobs_dir() / f"{job.id}.log")
    if _arg(args, "--run-dir") is None:   # its own checkpoint folder, so it can be resumed
        job.args = args = [*args, "--run-dir", str(jobs_dir() / f"{job.id}-run")]
    audit(session, user_id, "train_start", job_id=job.id, kind=kind, args=args)
    session.commit()  # the child reads and writes this row

    bind = session.get_bind()
    cmd = ([a.replace("{job_id}", str(job.id)) for a in argv] if argv is not None else
           [sys.executable, "-m", "core", *JOB_COMMANDS[kind], *args, "--job-id", str(job.id)])
    child_env = dict(os.environ) | dict(env or {}) | {
        "MEDSCAN_DATABASE_URL": bind.url.render_as_string(hide_password=False),
        "MEDSCAN_JOB_ID": str(job.id), "PYTHONUNBUFFERED": "1"}
    from core.config import REPO_ROOT

    try:
        with open(job.log_path, "ab") as log:
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=subprocess.STDOUT, cwd=REPO_ROOT, env=child_env,
                                    start_new_session=True, close_fds=True)
    except OSError as err:
        job.status, job.finished_at = "failed", utcnow()
        job.error = f"could not start: {err}"
        session.commit()
        raise JobError(f"Could not start the training process: {err}") from err
    with _children_lock:
        _children[job.id] = proc
    now = utcnow()
    session.execute(update(TrainingJob).where(TrainingJob.id == job.id)
                    .values(pid=proc.pid))
    session.execute(update(TrainingJob)  # unless the child already moved it on
                    .where(TrainingJob.id == job.id, TrainingJob.status == "queued")
                    .values(status="running", started_at=now))
    session.commit()
    session.refresh(job)
    return _view(job)


def _proc_cmdline(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return raw.decode(errors="replace").split("\0")


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[:1] == ["Z"]


def _process_state(job: TrainingJob) -> tuple[bool, int | None]:
    """(alive, exit code if known) of the job's process on this host."""
    with _children_lock:
        proc = _children.get(job.id)
    if proc is not None:
        rc = proc.poll()
        return rc is None, rc
    pid = job.pid
    if pid is None:
        return False, None
    try:
        done_pid, status = os.waitpid(pid, os.WNOHANG)
        if done_pid == 0:
            return True, None
        return False, os.waitstatus_to_exitcode(status)
    except ChildProcessError:
        pass  # not our child (another page process started it)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False, None
    except PermissionError:
        return False, None  # exists but not ours: the pid was reused
    if _is_zombie(pid):
        return False, None
    cmdline = _proc_cmdline(pid)
    if cmdline is not None:  # pid reuse check: it must be our job's process
        ours = any(a == "--job-id" and b == str(job.id) for a, b in zip(cmdline, cmdline[1:]))
        ours = ours or f"--job-id={job.id}" in cmdline
        if not ours:
            return False, None
    return True, None


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


def _arg(args: Sequence[str], name: str) -> str | None:
    """The value of option ``name`` in an argument list (the last one wins, as in argparse)."""
    value = None
    for i, a in enumerate(args):
        if a == name and i + 1 < len(args):
            value = args[i + 1]
        elif a.startswith(name + "="):
            value = a.split("=", 1)[1]
    return value


def heartbeat_age_s(job: JobView | TrainingJob, now=None) -> float:
    """Seconds since the job's last progress write (or start, or creation)."""
    last = job.updated_at or job.started_at or job.created_at
    return ((now or utcnow()) - last).total_seconds()


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds >= 90 else f"{seconds:.0f} s"


def _reap_children() -> None:
    with _children_lock:
        for job_id, proc in list(_children.items()):
            if proc.poll() is not None:
                del _children[job_id]


def refresh_jobs(session: Session) -> list[JobView]:
    """Mark queued/running jobs whose worker is gone as finished; returns the jobs changed.

    On this host the process itself is checked; a job of another host (a pid means nothing
    here) is presumed dead when its heartbeat is older than ``config.job_heartbeat_s()``.
    """
    from core.config import job_heartbeat_s

    changed = []
    host = socket.gethostname()
    jobs = session.scalars(select(TrainingJob)
                           .where(TrainingJob.status.in_(ACTIVE_STATUSES))).all()
    now = utcnow()
    for job in jobs:
        age = heartbeat_age_s(job, now)
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
            continue
        if job.pid is None:
            if (now - job.created_at).total_seconds() < START_GRACE_S:
                continue
            alive, rc = False, None
        else:
            alive, rc = _process_state(job)
        if alive:
            continue
        session.refresh(job)  # the child may have finished it meanwhile
        if job.status not in ACTIVE_STATUSES:
            continue
        tail = job_log_tail(job)
        job.finished_at = now
        if rc == 0:
            job.status, job.fraction = "succeeded", 1.0
            job.result_version = job.result_version or _last_version(tail)
        else:
            job.status = "failed"
            why = ("the worker process never started" if job.pid is None else
                   f"the worker process is gone (pid {job.pid} exited with status {rc})"
                   if rc is not None else f"the worker process is gone (pid {job.pid})")
            job.error = (f"no heartbeat for {_minutes(age)}; {why} before reporting a result."
                         f"\n{tail}").strip()
        changed.append(job)
    session.flush()
    _reap_children()
    return [_view(j) for j in changed]


def _last_version(text: str) -> str | None:
    versions = _VERSION.findall(text)
    return parse_version(f"version={versions[-1]}") if versions else None


def cancel_job(session: Session, job_id: int, *, by_user_id: int | None = None) -> JobView:
    """SIGTERM the job's process group and mark it cancelled (no-op if already finished)."""
    job = _job(session, job_id)
    if job.status not in ACTIVE_STATUSES:
        return _view(job)
    if job.pid is not None and job.host in (None, socket.gethostname()):
        alive, _ = _process_state(job)
        if alive:
            try:
                os.killpg(job.pid, signal.SIGTERM)  # start_new_session: pgid == pid
            except (ProcessLookupError, PermissionError):
                pass
    job.status, job.finished_at = "cancelled", utcnow()
    job.error = job.error or "cancelled by a user"
    audit(session, by_user_id, "train_cancel", job_id=job.id, kind=job.kind)
    session.flush()
    return _view(job)


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
    q = select(TrainingJob).order_by(TrainingJob.id.desc()).limit(limit)
    if status is not None:
        q = q.where(TrainingJob.status.in_([status] if isinstance(status, str) else status))
    return [_view(j) for j in session.scalars(q)]


def get_job(session: Session, job_id: int, *, refresh: bool = True) -> JobView:
    if refresh:
        _refresh_quietly(session)
    return _view(_job(session, job_id))


def checkpoint_of(job: JobView | TrainingJob) -> Path | None:
    """The checkpoint a finished (failed / cancelled) job left in its ``--run-dir``, else
    ``None``: classifier ``last.keras`` + ``state.json``, super-resolution ``ckpt/state.json``."""
    run_dir = _arg(list(job.args or []), "--run-dir")
    if not run_dir:
        return None
    run = Path(run_dir)
    if job.kind == "classifier":
        ok = (run / "last.keras").is_file() and (run / "state.json").is_file()
        return run / "last.keras" if ok else None
    return run / "ckpt" if (run / "ckpt" / "state.json").is_file() else None


def resume_job(session: Session, job_id: int, user_id: int | None, *,
               overrides: Sequence[str] = (), argv: Sequence[str] | None = None,
               env: Mapping[str, str] | None = None) -> JobView:
    """Start a new job that continues ``job_id``'s checkpoint: the same arguments (and run
    folder) plus ``--resume``; ``overrides`` are appended (e.g. ``["--epochs", "12"]``).
    Only a failed or cancelled job with a checkpoint can be resumed (:class:`JobError`)."""
    old = _job(session, job_id)
    if old.status not in ("failed", "cancelled"):
        raise JobError(f"Job {job_id} is {old.status}: only a failed or cancelled job can be "
                       "resumed.")
    if checkpoint_of(old) is None:
        raise JobError(f"Job {job_id} left no checkpoint to resume from.")
    args = [a for a in (old.args or []) if a not in ("--resume", "--activate")]
    job = start_training_job(session, old.kind, [*args, "--resume", *overrides], user_id,
                             argv=argv, env=env)
    audit(session, user_id, "train_resume", job_id=job.id, resumed_from=job_id,
          checkpoint=str(checkpoint_of(old)))
    session.commit()
    return job


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
