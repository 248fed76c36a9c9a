"""Several app servers on one database (issue 17).

- The registry's active versions shared through the database (``registry_state``): two
  "servers" in this process (two writable registries, one read-only shipped root, one
  database) on SQLite and PostgreSQL — an audited activation or rollback on one is what the
  other uses; the file pointers still decide without a row or a reader.
- Two real ``streamlit run`` servers on two loopback ports with one database (PostgreSQL, and
  one SQLite file), driven with Playwright + Debian's chromium: a rating saved through server A
  is listed through server B, and an activation on A's Model versions page changes the
  classifier version B's Analyze page uses within seconds.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest

from core import registry, shared_registry
from core.db import init_db, session_scope

REPO = Path(__file__).resolve().parent.parent


class _NoWeights:
    """Stands in for a Keras model: the registry only calls ``save_weights``."""

    def save_weights(self, path):
        Path(path).write_bytes(b"")


def _card(version: str) -> dict:
    return {"architecture": "vgg16", "network": {"num_classes": 2}, "classes": ["a", "b"],
            "input_size": 32, "preprocessing": {}, "version": version}


@pytest.fixture()
def servers(tmp_path, monkeypatch, db_url):
    """A shipped read-only root with versions v1 (active there) and v2, two app servers' own
    writable registries, one database with an admin; ``serve("a")`` makes this process act as
    server a (its ``MEDSCAN_REGISTRY_DIR``)."""
    shipped = tmp_path / "shipped"
    for v in ("v1", "v2", "v3"):
        registry.save_version("classifier", _NoWeights(), _card(v), version=v,
                              activate=(v == "v1"), weights_dir=shipped)
    (shipped / registry.READ_ONLY_MARKER).write_text("")
    monkeypatch.setenv("MEDSCAN_WEIGHTS_DIR", str(shipped))
    engine = init_db(db_url)
    from core.db.auth import create_user

    with session_scope(engine) as s:
        admin = create_user(s, "admin", "admin-pass-1234", "admin").id

    def serve(name: str) -> None:
        monkeypatch.setenv("MEDSCAN_REGISTRY_DIR", str(tmp_path / f"registry-{name}"))

    serve("a")
    return {"serve": serve, "engine": engine, "admin": admin, "url": db_url,
            "shipped": shipped}


def test_activation_and_rollback_on_one_server_reach_the_other(servers):
    serve, engine, admin = servers["serve"], servers["engine"], servers["admin"]
    shared_registry.install(servers["url"], interval_s=0)
    serve("b")
    assert registry.active_version("classifier") == "v1"       # no row yet: the files decide

    serve("a")
    with session_scope(engine) as s:
        previous = registry.activate_audited(s, "classifier", "v2", user_id=admin,
                                             user="admin")
    assert previous == "v1"
    row = registry.shared_state("classifier")
    assert (row.version, row.previous, row.generation, row.username, row.action) == (
        "v2", "v1", 1, "admin", "activate")
    serve("b")                                                 # nothing on b's disk changed
    assert not (Path(os.environ["MEDSCAN_REGISTRY_DIR"]) / "classifier" / "ACTIVE").exists()
    assert registry.active_version("classifier") == "v2"
    assert registry.active_slots("classifier") == {"default": "v2"}
    assert registry.version_status("classifier", "v2") == "active"
    assert registry.version_status("classifier", "v1") == "shipped"
    assert registry.load_card("classifier")["version"] == "v2"

    with session_scope(engine) as s:                           # b activates v3 ...
        assert registry.activate_audited(s, "classifier", "v3", user_id=admin) == "v2"
    serve("a")                                                 # ... a's own pointer says v2
    assert registry.active_version("classifier") == "v3"
    assert registry.shared_state("classifier").generation == 2
    assert registry.previous_version("classifier") == "v2"     # from the row, not a's history
    with session_scope(engine) as s:
        assert registry.rollback(s, "classifier", user_id=admin) == ("v2", "v3")
    serve("b")
    assert registry.active_version("classifier") == "v2"
    row = registry.shared_state("classifier")
    assert (row.action, row.generation, row.previous) == ("rollback", 3, "v3")
    from core.db.audit import recent_audit

    with session_scope(engine) as s:
        actions = [a.action for a in recent_audit(s, limit=10)]
    assert actions.count("model_activate") == 2 and actions.count("model_rollback") == 1


def test_files_decide_without_reader_row_or_the_version(servers):
    serve, engine, admin = servers["serve"], servers["engine"], servers["admin"]
    with session_scope(engine) as s:                           # written, but nobody reads it
        registry.activate_audited(s, "classifier", "v2", user_id=admin)
    serve("b")
    assert registry.active_version("classifier") == "v1"
    shared_registry.install(servers["url"], interval_s=0)
    assert registry.active_version("classifier") == "v2"

    # a row naming a version this server cannot load (not on its storage) is ignored
    from core.db.registry_state import record_active

    with session_scope(engine) as s:
        record_active(s, "classifier", None, "elsewhere", previous="v2")
    assert registry.active_version("classifier") == "v1"
    shared_registry.uninstall()
    assert registry.active_version("classifier") == "v1"


def test_a_later_file_only_activation_wins_where_its_pointer_is(servers):
    """``train --activate`` writes only its server's pointer: newer than the row, it wins
    there (and everywhere when the registry folder is shared storage); elsewhere the row."""
    serve, engine, admin = servers["serve"], servers["engine"], servers["admin"]
    shared_registry.install(servers["url"], interval_s=0)
    with session_scope(engine) as s:
        registry.activate_audited(s, "classifier", "v2", user_id=admin)
    registry.activate("classifier", "v3")                      # file only (no session)
    pointer = Path(os.environ["MEDSCAN_REGISTRY_DIR"]) / "classifier" / "ACTIVE"
    later = time.time() + 10
    os.utime(pointer, (later, later))
    assert registry.active_version("classifier") == "v3"
    os.utime(pointer, (later - 20, later - 20))                # older than the row: the row
    assert registry.active_version("classifier") == "v2"
    serve("b")
    assert registry.active_version("classifier") == "v2"


def test_reader_is_throttled_and_survives_a_database_error(servers, monkeypatch, caplog):
    engine, admin = servers["engine"], servers["admin"]
    clock = [1000.0]
    monkeypatch.setattr(shared_registry.time, "monotonic", lambda: clock[0])
    reader = shared_registry.install(servers["url"], interval_s=3)
    assert registry.active_version("classifier") == "v1" and reader.queries == 1
    with session_scope(engine) as s:
        from core.db.registry_state import record_active

        record_active(s, "classifier", None, "v2", user_id=admin)
    for _ in range(20):                                        # reruns within 3 s: no query
        assert registry.active_version("classifier") == "v1"
    assert reader.queries == 1
    clock[0] += 3.0
    assert registry.active_version("classifier") == "v2" and reader.queries == 2
    assert shared_registry.generation("classifier") == 1
    assert shared_registry.generation("sr", "esrgan_x4") == 0

    broken = shared_registry.SharedPointers("sqlite:////nonexistent/dir/x.db", interval_s=0)
    registry.set_shared_pointers(broken)
    with caplog.at_level("WARNING", logger="medscan.registry"):
        assert registry.active_version("classifier") == "v1"   # the files decide
        assert registry.active_version("classifier") == "v1"
    assert sum("shared model registry not read" in r.message for r in caplog.records) == 1


def test_cli_activate_writes_the_row_and_list_follows_it(servers, capsys):
    from core.cli import main

    os.environ["MEDSCAN_DATABASE_URL"] = servers["url"]     # db_url set it; explicit here
    assert main(["models", "activate", "classifier", "v2", "--yes", "--user", "admin"]) == 0
    shared_registry.uninstall()
    with session_scope(servers["engine"]) as s:
        from core.db.registry_state import active_models

        row = active_models(s)[("classifier", None)]
    assert (row.version, row.username, row.user_id) == ("v2", "admin", servers["admin"])
    servers["serve"]("b")
    capsys.readouterr()
    assert main(["models", "list", "classifier"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert any(line.startswith("* v2") and "active" in line for line in lines), lines


def test_downgrade_drops_the_table_and_files_still_decide(servers):
    from alembic import command
    from sqlalchemy import inspect

    from core.db.migrate import alembic_config, upgrade_to_head

    engine = servers["engine"]
    with session_scope(engine) as s:
        registry.activate_audited(s, "classifier", "v2", user_id=servers["admin"])
    cfg = alembic_config(engine)
    with engine.connect() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0007")
        conn.commit()
    assert "registry_state" not in inspect(engine).get_table_names()
    shared_registry.install(servers["url"], interval_s=0)
    assert registry.active_version("classifier") == "v2"      # server a's own pointer
    servers["serve"]("b")
    assert registry.active_version("classifier") == "v1"
    upgrade_to_head(engine, force=True)
    assert "registry_state" in inspect(engine).get_table_names()


# ------------------------------------------------------------ two real servers, one browser


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def _postgres_database():
    """A new, empty database on the server of ``MEDSCAN_TEST_POSTGRES_URL``, dropped after."""
    import uuid

    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url
    from sqlalchemy.pool import NullPool

    from conftest import PG_URL

    if not PG_URL:
        pytest.skip("MEDSCAN_TEST_POSTGRES_URL not set (PostgreSQL run of a database test)")
    name = f"medscan_t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        from core.db import dispose_engines

        dispose_engines()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _start(name: str, tmp: Path, env: dict) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    secrets = tmp / "secrets.toml"        # keeps the repository's own secrets out of the test
    secrets.write_text("")
    log = open(tmp / f"server-{name}.log", "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(REPO / "serve.py"),
         "--server.port", str(port), "--server.address", "127.0.0.1",
         "--server.headless", "true", "--server.fileWatcherType", "none",
         "--browser.gatherUsageStats", "false", "--secrets.files", str(secrets)],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    return proc, f"http://127.0.0.1:{port}"


def _wait_healthy(procs: dict, tmp: Path, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    waiting = dict(procs)
    while waiting:
        for name, (proc, url) in list(waiting.items()):
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        del waiting[name]
                        continue
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"server {name} did not start:\n" +
                                   (tmp / f"server-{name}.log").read_text()[-3000:])
        time.sleep(0.5)


@contextmanager
def _two_servers(backend: str):
    """Servers ``a`` and ``b``: one database, one data folder, one read-only weights root
    (tiny classifier versions ``clf-test``, active there, and ``clf-b``), and each its *own*
    writable registry (``MEDSCAN_REGISTRY_DIR``), so nothing on disk tells b about an
    activation on a: only the database does. Yields ``{"a": url, "b": url}``."""
    sys.path.insert(0, str(REPO / "tests"))
    import app_env

    tmp = Path(tempfile.mkdtemp(prefix="medscan-2servers-"))
    procs: dict = {}
    with ExitStack() as stack:
        try:
            weights = app_env.build_tiny_weights(tmp / "weights")
            src, dst = weights / "classifier" / "clf-test", weights / "classifier" / "clf-b"
            shutil.copytree(src, dst)
            card = json.loads((dst / registry.CARD_FILE).read_text())
            card.update(version="clf-b", created_at="2026-12-03T12:00:00+00:00")
            (dst / registry.CARD_FILE).write_text(json.dumps(card))
            (weights / registry.READ_ONLY_MARKER).write_text("")
            (tmp / "data").mkdir()
            url = (f"sqlite:///{tmp / 'data' / 'medscan.db'}" if backend == "sqlite"
                   else stack.enter_context(_postgres_database()))
            app_env.make_db(url)
            for name in ("a", "b"):
                env = dict(os.environ, MEDSCAN_WEIGHTS_DIR=str(weights),
                           MEDSCAN_DATA_DIR=str(tmp / "data"), MEDSCAN_DATABASE_URL=url,
                           MEDSCAN_REGISTRY_DIR=str(tmp / f"registry-{name}"),
                           MEDSCAN_REGISTRY_POLL_S="2", MEDSCAN_LOCAL_WORKER="0",
                           MEDSCAN_FORCE_CPU="1", TF_CPP_MIN_LOG_LEVEL="3")
                procs[name] = _start(name, tmp, env)
            _wait_healthy(procs, tmp)
            yield {name: url for name, (_, url) in procs.items()}
        finally:
            for proc, _ in procs.values():
                proc.terminate()
            for proc, _ in procs.values():
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
            shutil.rmtree(tmp, ignore_errors=True)


def _version_on_analyze(page) -> str:
    """The classifier version Analyze used for the kept upload ("About this model")."""
    import re

    from browser.harness import wait_idle

    page.get_by_role("button", name="About this model").click()
    text = page.get_by_text(re.compile(r"Version\s+\S+\s+·\s+classes")).first
    text.wait_for()
    version = re.search(r"Version\s+(\S+)", text.inner_text()).group(1)
    page.keyboard.press("Escape")
    wait_idle(page)
    return version


@pytest.mark.browser
@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_two_servers_share_ratings_sessions_and_the_active_model(backend, tmp_path):
    from app_env import PASSWORDS, brain_png_bytes
    from browser.harness import (CHROMIUM, CHROMIUM_ARGS, VIEWPORT, choose_radio, login,
                                 open_page, require_browser, upload, wait_idle)

    require_browser()
    from playwright.sync_api import sync_playwright

    scan = tmp_path / "head.png"
    scan.write_bytes(brain_png_bytes(96))
    with _two_servers(backend) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            reader = browser.new_page(viewport=VIEWPORT)       # one browser profile (cookies)
            reader.set_default_timeout(90_000)
            login(reader, url["a"], "reader", PASSWORDS["reader"])
            upload(reader, scan)
            reader.locator('[data-testid="stMetric"]').first.wait_for()
            choose_radio(reader, "Image quality", "4 · good")
            choose_radio(reader, "Diagnostic usefulness", "3 · acceptable")
            reader.get_by_role("button", name="Save rating").click()
            reader.get_by_text("Rating saved.").wait_for()

            # server b: the login session (cookie → database) and the rating made through a
            reader.goto(url["b"] + "/my_ratings")
            reader.get_by_role("heading", name="My ratings").wait_for()
            wait_idle(reader)
            assert reader.get_by_label("Password", exact=True).count() == 0
            reader.get_by_text("1 rating(s), newest first").wait_for()

            open_page(reader, "Analyze")
            upload(reader, scan)
            reader.locator('[data-testid="stMetric"]').first.wait_for()
            assert _version_on_analyze(reader) == "clf-test"

            # an admin activates clf-b on server a's Model versions page
            admin_ctx = browser.new_context(viewport=VIEWPORT)
            admin = admin_ctx.new_page()
            admin.set_default_timeout(90_000)
            login(admin, url["a"], "admin", PASSWORDS["admin"])
            open_page(admin, "Model versions")
            box = admin.locator('[data-testid="stSelectbox"]').filter(
                has=admin.get_by_role("combobox", name="Version to activate", exact=True))
            box.get_by_role("button", name="Open").click()
            admin.get_by_role("option").filter(has_text="clf-b").first.click()
            wait_idle(admin)
            admin.get_by_text("Yes, make clf-b the active classifier model").click()
            wait_idle(admin)
            admin.get_by_role("button", name="Activate clf-b").click()
            admin.get_by_text("Activated clf-b (was clf-test).").wait_for()
            activated = time.monotonic()

            # server b follows within seconds, with no restart and nothing on its disk
            seen = []
            while time.monotonic() - activated < 30:
                open_page(reader, "My ratings")
                open_page(reader, "Analyze")
                reader.locator('[data-testid="stMetric"]').first.wait_for()
                seen.append(_version_on_analyze(reader))
                if seen[-1] == "clf-b":
                    break
            took = time.monotonic() - activated
            assert seen[-1] == "clf-b", f"server b still uses {seen} after {took:.0f} s"
            assert took < 30
            print(f"server b used clf-b {took:.1f} s after the activation on a "
                  f"(versions seen: {seen})")
        finally:
            browser.close()
