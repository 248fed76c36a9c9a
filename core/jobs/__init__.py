"""Background jobs (training, embeddings, study images): the runner and the worker.

- :mod:`core.jobs.runner`: the process side, no database: the command each job kind runs
  (``python -m core train KIND ARGS --job-id N``), starting it in its own process group with
  its output in ``<data dir>/jobs/<N>.log``, probing it, SIGTERM to its group, starting a local
  worker.
- :mod:`core.jobs.worker`: ``python -m core worker``: claims queued jobs from the database, runs
  them through the runner, beats its heartbeat, passes cancel requests on to the training
  process and records how it ended.

``core.db.jobs`` holds the tables' queries (queue, claim, progress, cancel request, dead-job
detection). This package imports nothing at import time, so ``core.db.jobs`` can use the runner
without an import cycle.
"""
from __future__ import annotations

__all__ = ["job_reporter"]


def job_reporter(job_id: int, *, url: str | None = None):
    """The training process's progress callback for job ``job_id``: each ``Progress`` goes to
    the job's row (``core.db.jobs.progress_callback``: throttled, ``done`` publishes the
    version). ``core.progress`` reaches the database only through here."""
    from core.db.jobs import progress_callback

    return progress_callback(job_id, url=url)
