"""Start the real app (``streamlit run serve.py``, what ``make run`` starts) on a free port with a temporary database and
model registry, and drive it with Playwright + Debian's chromium. Used by
``tests/test_browser_app.py`` and ``scripts/screenshots.py``."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-dev-shm-usage"]
VIEWPORT = {"width": 1280, "height": 900}
UPLOADER = '[data-testid="stFileUploader"] input[type="file"]'


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def app_server(weights: Path | None = None, *, startup_timeout: float = 90, secrets=None,
               entry: str = "serve.py"):
    """Yield ``(url, env)`` of a running app; users ``admin`` / ``reader`` exist (see app_env).
    ``secrets``: a function of the app's URL returning the text of a ``secrets.toml`` for the
    server (e.g. single sign-on settings); none by default. ``entry``: ``"serve.py"`` runs
    the app with the login-session cookie routes, as ``make run`` does."""
    sys.path.insert(0, str(REPO / "tests"))
    import app_env

    tmp = Path(tempfile.mkdtemp(prefix="medscan-browser-"))
    proc = None
    try:
        if weights is None:
            weights = app_env.build_tiny_weights(tmp / "weights")
        else:  # a copy: training from the app must not publish into the caller's registry
            weights = Path(shutil.copytree(weights, tmp / "weights"))
        env = dict(os.environ) | app_env.set_env(tmp, weights)
        app_env.make_db(env["MEDSCAN_DATABASE_URL"])
        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        secrets_file = tmp / "secrets.toml"   # also keeps the repo's own secrets out of tests
        secrets_file.write_text(secrets(url) if secrets else "")
        extra = ["--secrets.files", str(secrets_file)]
        log = open(tmp / "streamlit.log", "wb")
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", str(REPO / entry),
             "--server.port", str(port), "--server.address", "127.0.0.1",
             "--server.headless", "true", "--server.fileWatcherType", "none",
             "--browser.gatherUsageStats", "false", *extra],
            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + startup_timeout
        while True:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("streamlit did not start:\n" +
                                   (tmp / "streamlit.log").read_text()[-3000:])
            time.sleep(0.5)
        yield url, env | {"tmp": str(tmp)}
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(tmp, ignore_errors=True)


def require_browser() -> None:
    """Skip the calling test (with the reason) where Debian's chromium or playwright is absent."""
    import pytest

    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium; .ci/run does it)")
    pytest.importorskip("playwright")


@contextmanager
def browser_page():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport=VIEWPORT)
            page.set_default_timeout(90_000)
            yield page
        finally:
            browser.close()


def wait_idle(page, timeout: float = 120_000) -> None:
    """Wait until the script run finished (Streamlit shows a 'Running…' status widget while it
    runs) and the page stopped changing."""
    page.wait_for_timeout(300)
    page.locator('[data-testid="stStatusWidget"]').wait_for(state="hidden", timeout=timeout)
    page.wait_for_timeout(300)


def login(page, url: str, name: str, password: str) -> None:
    page.goto(url)
    page.get_by_label("User name").fill(name)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("heading", name="Analyze").wait_for()
    wait_idle(page)


def open_page(page, title: str) -> None:
    page.locator('[data-testid="stSidebarNav"]').get_by_text(title, exact=True).click()
    page.get_by_role("heading", name=title).first.wait_for()
    wait_idle(page)


def upload(page, path: Path | str) -> None:
    page.set_input_files(UPLOADER, str(path))
    wait_idle(page)


def choose_radio(page, label: str, option: str) -> None:
    group = page.locator('[data-testid="stRadio"]').filter(has_text=label).first
    group.get_by_text(option, exact=True).click()
