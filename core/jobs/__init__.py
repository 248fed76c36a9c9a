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
here; this package uses it, never the other way round. The CLI glue of long commands
(:func:`add_progress_args`, :func:`progress_from_args`) lives here too, so ``core.progress``
(the ``Progress`` record and stdout printing) imports nothing of the project's jobs or database.
"""
from __future__ import annotations

from core.progress import ProgressCallback, fanout, null_progress, print_progress

__all__ = ["job_reporter", "add_progress_args", "progress_from_args", "RECIPE_STAGE_ENV"]


#: set (to "i/n") by ``core.classifier.recipe`` for a stage of a multi-stage job that is not
#: its last: that stage's ``done`` is reported as ``stage done`` so the job keeps running
RECIPE_STAGE_ENV = "MEDSCAN_RECIPE_STAGE"


def job_reporter(job_id: int, *, url: str | None = None):
    """The training process's progress callback for job ``job_id``: each ``Progress`` goes to
    the job's row (``core.db.jobs.progress_callback``: throttled, ``done`` publishes the
    version). The CLI reaches the database only through here. In an intermediate stage of a
    recipe (:data:`RECIPE_STAGE_ENV`) ``done`` is passed on as ``stage done``."""
    import dataclasses
    import os

    from core.db.jobs import progress_callback

    report = progress_callback(job_id, url=url)
    stage = os.environ.get(RECIPE_STAGE_ENV)
    if not stage:
        return report

    def intermediate(p):
        if p.phase == "done":
            p = dataclasses.replace(p, phase="stage done",
                                    message=f"stage {stage} done: {p.message or ''}".strip())
        report(p)

    return intermediate


def add_progress_args(parser) -> None:
    """Options every long-running CLI command takes (training, evaluation)."""
    parser.add_argument("--job-id", type=int, default=None,
                        help="report progress to this training job in the database "
                             "(set by the admin page)")
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stdout")


def progress_from_args(args) -> ProgressCallback:
    """stdout lines, plus database rows when ``--job-id`` is given.

    The database side is :func:`job_reporter` (the job's row; the database module is imported
    only when a job id is given, so the CLI works without a database). In a multi-worker run
    (``TF_CONFIG``) only the chief reports to the job; every worker prints.
    """
    from core.device import is_chief

    callbacks: list[ProgressCallback] = [] if getattr(args, "quiet", False) else [print_progress]
    job_id = getattr(args, "job_id", None)
    if job_id is not None and is_chief():
        callbacks.append(job_reporter(job_id))
    return fanout(*callbacks) if callbacks else null_progress
