"""Background jobs (training, embeddings, study images): the service, the runner and the worker.

- :mod:`core.jobs.service`: what the pages and ``python -m core jobs`` call: start a job (queued
  for a worker, or run at once as this process's child), refresh (dead workers and dead
  processes marked failed), list and get (refreshed first), cancel (SIGTERM to a job started
  directly on this host), resume from a checkpoint.
- :mod:`core.jobs.runner`: the process plumbing, no sessions: the command each job kind runs
  (``python -m core train KIND ARGS --job-id N``), starting it in its own process group with
  its output in ``<data dir>/jobs/<N>.log``, probing it (``waitpid`` / ``kill(pid, 0)`` /
  ``/proc``), SIGTERM to its group, starting a local worker.
- :mod:`core.jobs.worker`: ``python -m core worker``: claims queued jobs from the database, runs
  them through the runner, beats its heartbeat, passes cancel requests on to the training
  process and records how it ended.

``core.db.jobs`` is storage only (the tables' queries: queue, claim, progress, pid and exit,
cancel flag, worker rows, lists, heartbeat-based dead-job marking) and imports nothing from
here; this package uses it, never the other way round. ``core.progress`` reaches the database
through :func:`job_reporter`, imported lazily.
"""
from __future__ import annotations

__all__ = ["job_reporter"]


def job_reporter(job_id: int, *, url: str | None = None):
    """The training process's progress callback for job ``job_id``: each ``Progress`` goes to
    the job's row (``core.db.jobs.progress_callback``: throttled, ``done`` publishes the
    version). ``core.progress`` reaches the database only through here."""
    from core.db.jobs import progress_callback

    return progress_callback(job_id, url=url)
