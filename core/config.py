"""Paths and settings, read from the environment once.

| variable               | default                              |
|------------------------|--------------------------------------|
| MEDSCAN_WEIGHTS_DIR    | <repo>/weights                       |
| MEDSCAN_DATA_DIR       | <repo>/data (database, training runs)|
| MEDSCAN_DATABASE_URL   | sqlite:///<data dir>/medscan.db      |
| MEDSCAN_MAX_PIXELS     | 100_000_000 (decompression-bomb cap) |
| MEDSCAN_REGISTRY_DIR   | <data dir>/weights (versions trained in the app, the app's active pointers) |
| MEDSCAN_EVAL_DIR       | unset: fixed evaluation set (image folder) for candidates vs the active version |
| MEDSCAN_JOB_HEARTBEAT_MIN | 10 (a job on another host with no progress this long is presumed dead) |
| MEDSCAN_SR_MEMORY_MB   | 3072: activation memory one SR model call may use; larger images are tiled |
| MEDSCAN_REGISTRY_POLL_S | 3: seconds between two reads of the shared active versions (database) per process |
"""
from __future__ import annotations

import os
import re
from pathlib import Path

__all__ = ["REPO_ROOT", "weights_dir", "data_dir", "database_url", "max_pixels", "registry_dir",
           "eval_dir", "job_heartbeat_s", "portable", "recorded_path", "sr_memory_mb",
           "registry_poll_s"]

REPO_ROOT = Path(__file__).resolve().parent.parent


def portable(text: str) -> str:
    """``text`` with this machine's paths inside the project, or in a folder beside it (the
    shared data sets), written relative to the project root: ``<repo>/tests/data`` →
    ``tests/data``, ``<repo>/../shared/datasets/x`` → ``../shared/datasets/x``. Model cards are
    written through it, so a card never records an absolute path of the machine that made it."""
    root, parent = str(REPO_ROOT), str(REPO_ROOT.parent)
    subs = [(root + os.sep, ""), (root, ".")]
    if parent != os.sep:
        subs.append((parent + os.sep, ".." + os.sep))
    for prefix, repl in subs:
        text = re.sub(r"(?<![\w.-])" + re.escape(prefix) + (r"(?![\w.-])" if prefix == root
                                                              else ""), repl, text)
    return text


def recorded_path(path: str | Path) -> Path:
    """A path as a card records it (:func:`portable`) back on this machine: relative paths are
    relative to the project root."""
    p = Path(path).expanduser()
    return p if p.is_absolute() else Path(os.path.normpath(REPO_ROOT / p))


def weights_dir() -> Path:
    return Path(os.environ.get("MEDSCAN_WEIGHTS_DIR", REPO_ROOT / "weights"))


def data_dir() -> Path:
    path = Path(os.environ.get("MEDSCAN_DATA_DIR", REPO_ROOT / "data"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def registry_dir() -> Path:
    """Writable model registry: versions trained in the app and the app's active pointers.
    The shipped ``weights_dir()`` is read-only when it holds a ``READ_ONLY`` marker
    (``core.registry``)."""
    return Path(os.environ.get("MEDSCAN_REGISTRY_DIR") or data_dir() / "weights")


def eval_dir() -> Path | None:
    """The fixed evaluation set candidates and the active version are compared on (unset: none;
    the Training page then offers the active version's recorded test folder)."""
    value = os.environ.get("MEDSCAN_EVAL_DIR", "").strip()
    return Path(value).expanduser() if value else None


def job_heartbeat_s() -> float:
    """Seconds without a progress write after which a job on another host counts as dead."""
    return float(os.environ.get("MEDSCAN_JOB_HEARTBEAT_MIN", 10)) * 60


def database_url() -> str:
    url = os.environ.get("MEDSCAN_DATABASE_URL")
    return url or f"sqlite:///{data_dir() / 'medscan.db'}"


def max_pixels() -> int:
    return int(os.environ.get("MEDSCAN_MAX_PIXELS", 100_000_000))


def sr_memory_mb() -> float:
    """Memory budget (MB) for one super-resolution model call; the default tile size follows
    from it (:func:`core.sr.tiling.auto_tile`)."""
    return float(os.environ.get("MEDSCAN_SR_MEMORY_MB", 3072))


def registry_poll_s() -> float:
    """Seconds between two reads of the active model versions shared through the database
    (``core.shared_registry``): how soon an activation on one app server reaches another."""
    return max(0.0, float(os.environ.get("MEDSCAN_REGISTRY_POLL_S", 3)))
