"""``python -m core worker``: claim queued jobs from the database and run them.

The loop: claim the oldest queued job of this worker's kinds (``core.db.jobs.claim_job``, safe
with any number of workers on any number of machines), run its command through
:mod:`core.jobs.runner` (own process group, output to the job's log), and while it runs beat
the worker heartbeat every ``poll_s`` seconds and look for a cancel request: one found sends
SIGTERM to the training process group (SIGKILL after ``term_grace_s``). Then record how it
ended (``core.db.jobs.record_exit``; a trainer's own ``done`` report has already published the
version). With nothing queued it beats and sleeps ``poll_s``.

Exits: ``once`` after one job (or at once when none is queued), ``max_jobs`` after that many,
``idle_exit_s`` after that long without a job. Before an idle exit the worker marks itself
stopped and then looks at the queue one last time: a job queued meanwhile is either taken by
that look or seen by the app with no live worker, which then starts a new one. :meth:`Worker.stop`
(SIGTERM / SIGINT on the command line) ends the loop; a running job's process is sent SIGTERM
and the job fails with "the worker was stopped" (resumable from its checkpoint).

Database errors in the loop are printed and retried on the next poll: a busy or briefly
unreachable database does not kill the worker or its training run.
"""
from __future__ import annotations

import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TextIO

from sqlalchemy.exc import SQLAlchemyError

from core.db.engine import get_engine, session_scope
from core.db.errors import DBError
from core.db.jobs import (cancel_requested, claim_job, record_exit, register_worker,
                          set_job_pid, stop_worker, worker_heartbeat)
from core.db.tables import JOB_KINDS
from core.db.rows import JobView
from core.jobs import runner

__all__ = ["Worker", "DEFAULT_POLL_S"]

DEFAULT_POLL_S = 2.0


class Worker:
    """One worker: ``Worker(url).run()`` returns the number of jobs it ran.

    ``argv`` replaces every job's command (``{job_id}`` filled in; tests);
    ``env`` is added to the jobs' environment; ``name`` defaults to ``host:pid`` (several
    workers in one process need their own names).
    """

    def __init__(self, url: str | None = None, *, kinds: Sequence[str] | None = None,
                 poll_s: float = DEFAULT_POLL_S, once: bool = False,
                 max_jobs: int | None = None, idle_exit_s: float | None = None,
                 argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None,
                 name: str | None = None, term_grace_s: float = runner.TERM_GRACE_S,
                 out: TextIO | None = None) -> None:
        bad = [k for k in kinds or () if k not in JOB_KINDS]
        if bad:
            raise ValueError(f"unknown job kind {bad[0]!r}; expected some of "
                             f"{', '.join(JOB_KINDS)}")
        self.engine = get_engine(url)
        self.url = self.engine.url.render_as_string(hide_password=False)
        self.kinds = list(kinds) if kinds else None
        self.poll_s, self.once, self.max_jobs = float(poll_s), once, max_jobs
        self.idle_exit_s, self.term_grace_s = idle_exit_s, term_grace_s
        self.argv = list(argv) if argv is not None else None
        self.env = dict(env or {})
        self.name = name or runner.process_name()
        self.out = out
        self.jobs_done = 0
        self.worker_id: int | None = None
        self._stop = threading.Event()

    # ------------------------------------------------------------------ plumbing

    def stop(self) -> None:
        """Ask the loop to end (safe from a signal handler or another thread)."""
        self._stop.set()

    def _say(self, text: str) -> None:
        print(f"[worker {self.name}] {text}", file=self.out or sys.stdout, flush=True)

    def _db(self, fn: Callable[..., Any], *args: Any, **kw: Any) -> Any:
        """``fn(session, *args, **kw)`` in its own session; a database error is printed and
        gives ``None`` (the loop tries again on its next poll)."""
        try:
            with session_scope(self.engine) as s:
                return fn(s, *args, **kw)
        except (SQLAlchemyError, DBError) as err:   # DBError: StorageError, NotFound
            self._say(f"database error in {fn.__name__}: {err}")
            return None

    def _beat(self, job_id: int | None) -> None:
        self._db(worker_heartbeat, self.worker_id, job_id=job_id, jobs_done=self.jobs_done)

    def _claim(self) -> JobView | None:
        return self._db(claim_job, self.me)

    # ------------------------------------------------------------------ the loop

    def run(self) -> int:
        with session_scope(self.engine) as s:
            self.me = register_worker(s, name=self.name, kinds=self.kinds)
        self.worker_id = self.me.id
        self._say(f"started; kinds {','.join(self.kinds or JOB_KINDS)}; polling every "
                  f"{self.poll_s:g} s")
        idle_since = time.monotonic()
        try:
            while not self._stop.is_set():
                job = self._claim()
                if job is None:
                    if self.once:
                        break
                    if (self.idle_exit_s is not None
                            and time.monotonic() - idle_since >= self.idle_exit_s):
                        self._db(stop_worker, self.worker_id)
                        job = self._claim()   # one last look, now that the app sees us stopped
                        if job is None:
                            self._say(f"idle for {self.idle_exit_s:g} s: exiting")
                            break
                    else:
                        self._beat(None)
                        self._stop.wait(self.poll_s)
                        continue
                self._run(job)
                self.jobs_done += 1
                idle_since = time.monotonic()
                if self.once or (self.max_jobs and self.jobs_done >= self.max_jobs):
                    break
        finally:
            self._db(stop_worker, self.worker_id)
        self._say(f"stopped after {self.jobs_done} job(s)")
        return self.jobs_done

    def _note(self, job: JobView, text: str) -> None:
        runner.append_log(job.log_path, f"[worker {self.name} {time.strftime('%H:%M:%S')}] "
                                        f"{text}")

    def _run(self, job: JobView) -> None:
        cmd = runner.job_command(job.kind, job.args, job.id, self.argv)
        self._say(f"job {job.id} ({job.kind}): {shlex.join(cmd)}")
        self._note(job, f"job {job.id}: {shlex.join(cmd)}")
        try:
            proc = runner.spawn(cmd, job.log_path, runner.child_env(self.url, job.id, self.env))
        except OSError as err:
            self._db(record_exit, job.id, None,
                     reason=f"could not start the training process: {err}")
            self._say(f"job {job.id}: could not start: {err}")
            return
        self._db(set_job_pid, job.id, proc.pid)
        reason, term_at = None, None
        while True:
            try:
                rc = proc.wait(timeout=self.poll_s)
                break
            except subprocess.TimeoutExpired:
                pass
            self._beat(job.id)
            if term_at is None:
                if self._stop.is_set():
                    reason = (f"the worker {self.name} was stopped; its training process was "
                              "sent SIGTERM.")
                elif not self._db(cancel_requested, job.id):
                    continue
                why = "worker stopping" if reason else "cancel requested"
                self._note(job, f"{why}: SIGTERM to process group {proc.pid}")
                self._say(f"job {job.id}: {why}: SIGTERM to process group {proc.pid}")
                runner.signal_group(proc.pid, signal.SIGTERM)
                term_at = time.monotonic()
            elif time.monotonic() - term_at > self.term_grace_s:
                self._note(job, f"still running {self.term_grace_s:g} s after SIGTERM: SIGKILL")
                runner.signal_group(proc.pid, signal.SIGKILL)
                term_at = float("inf")   # once
        done = self._db(record_exit, job.id, rc, reason=reason)
        self._note(job, f"job {job.id}: process exited with status {rc}"
                        + (f"; job {done.status}" if done else ""))
        self._say(f"job {job.id}: exit status {rc}" + (f", {done.status}" if done else ""))
        self._beat(None)
