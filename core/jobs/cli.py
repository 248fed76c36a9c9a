"""``python -m core jobs list|cancel|resume`` (through ``core.jobs.service``) and ``python -m core
worker``: run queued training jobs (``core.jobs.worker``)."""
from __future__ import annotations

import argparse
import json

__all__ = ["register"]


def register(cmds) -> None:
    from core.db.tables import JOB_KINDS

    jobs = cmds.sub.add_parser("jobs", help="training jobs started from the admin page")
    js = jobs.add_subparsers(dest="jobs_cmd", metavar="ACTION", required=True)
    jl = js.add_parser("list", help="recent jobs (refreshes the status of dead processes)")
    jl.set_defaults(func=_jobs_list)
    jc = js.add_parser("cancel", help="stop a running job")
    jc.add_argument("job_id", type=int)
    jc.set_defaults(func=_jobs_cancel)
    jr = js.add_parser("resume", help="continue a failed or cancelled job from its checkpoint "
                                      "(a new job)")
    jr.add_argument("job_id", type=int)
    jr.set_defaults(func=_jobs_resume)

    p = cmds.sub.add_parser(
        "worker", help="run queued training jobs from the database (on this or another machine)",
        description="Claim queued jobs (the Training page queues them) from the database named "
                    "by MEDSCAN_DATABASE_URL, run each as `python -m core train ... --job-id N`, "
                    "beat a heartbeat and pass cancel requests on. Any number of workers, on any "
                    "machines sharing the database, can serve one queue.")
    p.add_argument("--kinds", default=None, metavar="K1,K2",
                   help=f"job kinds to take, comma-separated (default: all: "
                        f"{','.join(JOB_KINDS)})")
    p.add_argument("--poll-s", type=float, default=2.0, metavar="S",
                   help="seconds between looks at the queue and between heartbeats (default 2)")
    p.add_argument("--once", action="store_true",
                   help="run at most one job, then exit (at once if nothing is queued)")
    p.add_argument("--max-jobs", type=int, default=None, metavar="N",
                   help="exit after running N jobs")
    p.add_argument("--idle-exit", type=float, default=None, metavar="S",
                   help="exit after S seconds without a job (the app starts its own worker so)")
    p.add_argument("--name", default=None,
                   help="the worker's name in the job list (default host:pid; must be unique)")
    # A JSON list that replaces every job's command ({job_id} filled in): tests.
    p.add_argument("--command", default=None, help=argparse.SUPPRESS)
    p.set_defaults(func=_worker)


def _worker(args: argparse.Namespace) -> int:
    import signal
    import threading

    from core.db import init_db
    from core.db.errors import JobError
    from core.jobs.worker import Worker

    kinds = [k.strip() for k in (args.kinds or "").split(",") if k.strip()] or None
    argv = None
    if args.command:
        argv = json.loads(args.command)
        if not (isinstance(argv, list) and argv and all(isinstance(a, str) for a in argv)):
            raise JobError("--command must be a JSON list of strings")
    if args.poll_s <= 0 or (args.max_jobs is not None and args.max_jobs < 1):
        raise JobError("--poll-s must be positive and --max-jobs at least 1")
    engine = init_db()
    try:
        worker = Worker(str(engine.url.render_as_string(hide_password=False)), kinds=kinds,
                        poll_s=args.poll_s, once=args.once, max_jobs=args.max_jobs,
                        idle_exit_s=args.idle_exit, argv=argv, name=args.name)
    except ValueError as err:
        raise JobError(str(err)) from err
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: worker.stop())
    worker.run()
    return 0


def _engine():
    from core.db import init_db

    return init_db()


def _jobs_list(_: argparse.Namespace) -> int:
    from core.db import session_scope
    from core.jobs.service import list_jobs, refresh_jobs

    with session_scope(_engine()) as s:
        refresh_jobs(s)
        jobs = list_jobs(s)
    for j in jobs:
        print(f"{j.id:>4} {j.kind:<10} {j.status:<10} {j.fraction:6.1%} "
              f"{j.result_version or '':<24} {j.created_at:%Y-%m-%d %H:%M}")
        if j.status == "failed" and j.error:
            print(f"       {j.error.splitlines()[0]}")
    if not jobs:
        print("(no training jobs)")
    return 0


def _jobs_cancel(args: argparse.Namespace) -> int:
    from core.db import session_scope
    from core.jobs.service import cancel_job

    with session_scope(_engine()) as s:
        job = cancel_job(s, args.job_id)
    print(f"job {job.id}: {job.status}")
    return 0


def _jobs_resume(args: argparse.Namespace) -> int:
    from core.db import session_scope
    from core.jobs.service import resume_job

    with session_scope(_engine()) as s:
        job = resume_job(s, args.job_id, None)
    print(f"job {job.id}: {job.status} (resumes job {args.job_id}; log {job.log_path})")
    return 0
