from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("MEDSCAN_FORCE_CPU", "1")

DATA = Path(__file__).parent / "data"


@pytest.fixture(autouse=True)
def _files_decide_active_versions():
    """A test that opened the app's database (or ran ``models activate``) leaves the registry
    reading that database's active versions (``core.shared_registry``); the next test starts
    with the file pointers alone again."""
    yield
    import sys

    if "core.shared_registry" in sys.modules:
        sys.modules["core.shared_registry"].uninstall()


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


PG_URL = os.environ.get("MEDSCAN_TEST_POSTGRES_URL")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request, tmp_path, monkeypatch, fast_hasher) -> str:
    """A fresh, empty database for one test, on SQLite and (a second run of the test) on
    PostgreSQL: a new database created on the server named by ``MEDSCAN_TEST_POSTGRES_URL``
    (``.ci/run`` starts one; see ``scripts/pg_test_cluster.sh``) and dropped afterwards. The
    PostgreSQL run is skipped when that variable is not set."""
    from core.db import dispose_engines

    monkeypatch.setenv("MEDSCAN_DATA_DIR", str(tmp_path))
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'medscan.db'}"
        dropper = None
    else:
        if not PG_URL:
            pytest.skip("MEDSCAN_TEST_POSTGRES_URL not set (PostgreSQL run of a database test)")
        import uuid

        from sqlalchemy import create_engine, text
        from sqlalchemy.engine import make_url

        name = f"medscan_t_{uuid.uuid4().hex[:12]}"
        admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT", poolclass=_null_pool())
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        url = make_url(PG_URL).set(database=name).render_as_string(hide_password=False)

        def dropper():
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()
    monkeypatch.setenv("MEDSCAN_DATABASE_URL", url)
    yield url
    dispose_engines()
    if dropper is not None:
        dropper()


def _null_pool():
    from sqlalchemy.pool import NullPool

    return NullPool


@pytest.fixture(scope="module")
def server():
    """The URL of a real app for one module's browser tests (``streamlit run serve.py`` with the
    tiny test models and a temporary database, tests/browser/harness.py); skipped where
    chromium or playwright is missing. A module that needs another server defines its own."""
    from browser.harness import app_server, require_browser

    require_browser()
    with app_server() as (url, _env):
        yield url
