"""Paths and settings, read from the environment once.

| variable               | default                              |
|------------------------|--------------------------------------|
| MEDSCAN_WEIGHTS_DIR    | <repo>/weights                       |
| MEDSCAN_DATA_DIR       | <repo>/data (database, training runs)|
| MEDSCAN_DATABASE_URL   | sqlite:///<data dir>/medscan.db      |
| MEDSCAN_MAX_PIXELS     | 100_000_000 (decompression-bomb cap) |
"""
from __future__ import annotations

import os
from pathlib import Path

__all__ = ["REPO_ROOT", "weights_dir", "data_dir", "database_url", "max_pixels"]

REPO_ROOT = Path(__file__).resolve().parent.parent


def weights_dir() -> Path:
    return Path(os.environ.get("MEDSCAN_WEIGHTS_DIR", REPO_ROOT / "weights"))


def data_dir() -> Path:
    path = Path(os.environ.get("MEDSCAN_DATA_DIR", REPO_ROOT / "data"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def database_url() -> str:
    url = os.environ.get("MEDSCAN_DATABASE_URL")
    return url or f"sqlite:///{data_dir() / 'medscan.db'}"


def max_pixels() -> int:
    return int(os.environ.get("MEDSCAN_MAX_PIXELS", 100_000_000))
