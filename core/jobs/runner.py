"""The process side of a job, without database sessions: the command each kind runs, starting it
in its own process group with its output in a log file, probing it, signalling its group, and
starting a worker on this machine.

:mod:`core.jobs.service` (what the pages and the CLI call) and :mod:`core.jobs.worker` (the loop
that claims and runs jobs) use these; ``core.db`` never imports them (it is storage only; the
job folder and the ``host:pid`` names come from ``core.db.jobs``). A job's process is started
with ``start_new_session``, so its process group id is its pid: SIGTERM to the group reaches the
trainer and anything it started. Its output goes to ``<data dir>/jobs/<N>.log`` (appended: a
resumed job's earlier output stays), and it gets ``MEDSCAN_DATABASE_URL`` and ``MEDSCAN_JOB_ID``
so that it reports to the right row.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

from core.db.jobs import jobs_dir, process_name  # the job folder and host:pid names (storage)
from core.db.tables import JOB_KINDS

__all__ = ["JOB_COMMANDS", "TERM_GRACE_S", "LOCAL_WORKER_IDLE_S", "children", "jobs_dir",
           "process_name", "job_command", "child_env", "spawn", "process_state",
           "signal_group", "reap_children", "append_log", "local_worker_enabled",
           "start_local_worker"]

# The ``python -m core`` command each kind of job runs (its arguments and ``--job-id N`` follow).
JOB_COMMANDS: dict[str, tuple[str, ...]] = {
    "classifier": ("train", "classifier"),
    "sr": ("train", "sr"),
    "segmentation": ("train", "segmentation"),
    "embeddings": ("library", "embed"),
    "study_images": ("studies", "generate"),
    "pretrain": ("pretrain", "classifier"),
}
assert set(JOB_COMMANDS) == set(JOB_KINDS), "every job kind needs its command"

# After SIGTERM a trainer saves its checkpoint and exits; past this it gets SIGKILL.
TERM_GRACE_S = 30.0
# A worker the app starts itself exits after this long without a job (the next one starts anew).
LOCAL_WORKER_IDLE_S = 300.0

# Job processes started by this process (job id → Popen): exit codes without waitpid guessing.
children: dict[int, subprocess.Popen] = {}
children_lock = threading.Lock()
_local_worker: subprocess.Popen | None = None
_local_lock = threading.Lock()


def job_command(kind: str, args: Sequence[str], job_id: int,
                argv: Sequence[str] | None = None) -> list[str]:
    """``python -m core <JOB_COMMANDS[kind]> ARGS --job-id N``; ``argv`` replaces it (tests),
    with ``{job_id}`` in it filled in."""
    if argv is not None:
        return [str(a).replace("{job_id}", str(job_id)) for a in argv]
    return [sys.executable, "-m", "core", *JOB_COMMANDS[kind], *map(str, args),
            "--job-id", str(job_id)]


def child_env(url: str, job_id: int, env: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment (all ``MEDSCAN_*`` settings) plus ``env``, the database URL
    the job must report to and ``MEDSCAN_JOB_ID``."""
    return dict(os.environ) | dict(env or {}) | {
        "MEDSCAN_DATABASE_URL": url, "MEDSCAN_JOB_ID": str(job_id), "PYTHONUNBUFFERED": "1"}


def spawn(cmd: Sequence[str], log_path: str | Path, env: Mapping[str, str], *,
          job_id: int | None = None) -> subprocess.Popen:
    """Start ``cmd`` in a new session (its own process group), stdin closed, stdout and stderr
    appended to ``log_path``, in the project folder. With ``job_id`` it is remembered in
    :data:`children`. Raises ``OSError`` when it cannot start."""
    from core.config import REPO_ROOT

    Path(log_path).parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(list(cmd), stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, cwd=REPO_ROOT, env=dict(env),
                                start_new_session=True, close_fds=True)
    if job_id is not None:
        with children_lock:
            children[job_id] = proc
    return proc


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


def process_state(job_id: int, pid: int | None) -> tuple[bool, int | None]:
    """(alive, exit code if known) of job ``job_id``'s process ``pid`` on this host.

    A child of this process is polled; another process's pid is checked with ``kill(pid, 0)``
    and, against pid reuse, its command line must carry ``--job-id <job_id>``.
    """
    with children_lock:
        proc = children.get(job_id)
    if proc is not None:
        rc = proc.poll()
        return rc is None, rc
    if pid is None:
        return False, None
    try:
        done_pid, status = os.waitpid(pid, os.WNOHANG)
        if done_pid == 0:
            return True, None
        return False, os.waitstatus_to_exitcode(status)
    except ChildProcessError:
        pass  # not our child (another process started it)
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
        ours = any(a == "--job-id" and b == str(job_id) for a, b in zip(cmdline, cmdline[1:]))
        ours = ours or f"--job-id={job_id}" in cmdline
        if not ours:
            return False, None
    return True, None


def signal_group(pid: int, sig: int = signal.SIGTERM) -> bool:
    """Send ``sig`` to the process group of ``pid`` (a job process: group id == pid).
    False if it is gone or not ours."""
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def reap_children() -> None:
    """Forget finished children (their exit codes were read)."""
    with children_lock:
        for job_id, proc in list(children.items()):
            if proc.poll() is not None:
                del children[job_id]


def append_log(path: str | Path | None, line: str) -> None:
    """Append one line to a job's log (the worker's own notes); errors are ignored."""
    if not path:
        return
    try:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(line.rstrip("\n") + "\n")
    except OSError:
        pass


def local_worker_enabled() -> bool:
    """Whether the app may start a worker on its own machine when none is alive
    (``MEDSCAN_LOCAL_WORKER``, default on; ``0`` where only dedicated workers should train)."""
    value = os.environ.get("MEDSCAN_LOCAL_WORKER", "1").strip().lower()
    return value not in ("0", "false", "no", "off")


def start_local_worker(url: str, *, argv: Sequence[str] | None = None,
                       env: Mapping[str, str] | None = None,
                       idle_exit_s: float = LOCAL_WORKER_IDLE_S) -> subprocess.Popen:
    """Start ``python -m core worker --idle-exit S`` on this machine, detached (own session,
    output to ``<data dir>/jobs/local-worker.log``), for database ``url``; returns the one
    already started by this process while it still runs. ``argv`` becomes the worker's job
    command (``--command``, tests). Raises ``OSError`` when it cannot start."""
    global _local_worker
    with _local_lock:
        if _local_worker is not None and _local_worker.poll() is None:
            return _local_worker
        cmd = [sys.executable, "-m", "core", "worker", "--idle-exit", f"{idle_exit_s:g}"]
        if argv is not None:
            cmd += ["--command", json.dumps([str(a) for a in argv])]
        worker_env = dict(os.environ) | dict(env or {}) | {
            "MEDSCAN_DATABASE_URL": url, "PYTHONUNBUFFERED": "1"}
        worker_env.pop("MEDSCAN_JOB_ID", None)
        _local_worker = spawn(cmd, jobs_dir() / "local-worker.log", worker_env)
        return _local_worker
