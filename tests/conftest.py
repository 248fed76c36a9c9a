from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("MEDSCAN_FORCE_CPU", "1")

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """Small fixtures shipped inside the repo (never ../shared)."""
    return DATA


@pytest.fixture()
def tmp_weights(tmp_path, monkeypatch) -> Path:
    """An empty, isolated weights registry."""
    root = tmp_path / "weights"
    root.mkdir()
    monkeypatch.setenv("MEDSCAN_WEIGHTS_DIR", str(root))
    return root


@pytest.fixture()
def fast_hasher(monkeypatch):
    """Cheap argon2 parameters keep the tests fast; production uses the library defaults."""
    from argon2 import PasswordHasher

    from core.db import auth

    monkeypatch.setattr(auth, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024,
                                                        parallelism=1))
    monkeypatch.setattr(auth, "_dummy_hash", None)


@pytest.fixture()
def sqlite_url(tmp_path, monkeypatch, fast_hasher) -> str:
    """A fresh SQLite database file (and data dir) for one test, named by the environment too;
    engines are disposed of afterwards."""
    from core.db import dispose_engines

    monkeypatch.setenv("MEDSCAN_DATA_DIR", str(tmp_path))
    url = f"sqlite:///{tmp_path / 'medscan.db'}"
    monkeypatch.setenv("MEDSCAN_DATABASE_URL", url)
    yield url
    dispose_engines()
