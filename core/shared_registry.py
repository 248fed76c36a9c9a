"""Active model versions shared by several app servers through the database.

An activation or rollback on one server (``core.registry.activate_audited`` / ``rollback``)
writes the ``registry_state`` row of its task and slot with a new *generation*. Every server
process reads those rows with one small query at most every ``MEDSCAN_REGISTRY_POLL_S``
seconds (default 3; a page rerun in between gets the last snapshot), and ``core.registry``
prefers them to the file pointers (:func:`core.registry.active_version`). The app keys its
loaded models by ``(version, generation)``, so within a few seconds of an activation every
server predicts with the new version, without a restart and without reading the disk on every
rerun.

Installed once per process by the app (``ui.engine_and_models``) and by ``python -m core models``:
:func:`install`. Without it (tests, the other CLI commands) the registry reads only its files.
A database that cannot be read (down, not migrated yet) leaves the last snapshot in place and is
logged once; the files then decide.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping

from core import config

__all__ = ["SharedPointers", "install", "uninstall", "installed", "generation", "refresh"]

_log = logging.getLogger("medscan.registry")


class SharedPointers:
    """``registry_state`` rows of one database, read at most once per ``interval_s`` seconds
    (thread-safe: one thread queries, the others get the last snapshot meanwhile)."""

    def __init__(self, url: str, *, interval_s: float | None = None):
        self.url = url
        self.interval_s = config.registry_poll_s() if interval_s is None else interval_s
        self._rows: dict = {}
        self._read_at: float | None = None
        self._lock = threading.Lock()
        self._failing = False
        self.queries = 0     # how many times the table was read (tests, diagnostics)

    def __call__(self) -> Mapping:
        """``{(task, slot): ActiveModelView}`` (slot None: the default slot)."""
        now = time.monotonic()
        if self._read_at is not None and now - self._read_at < self.interval_s:
            return self._rows
        if not self._lock.acquire(blocking=self._read_at is None):
            return self._rows            # another thread is reading it right now
        try:
            if self._read_at is None or time.monotonic() - self._read_at >= self.interval_s:
                self._read()
        finally:
            self._lock.release()
        return self._rows

    def refresh(self) -> Mapping:
        """Read now (after this process wrote a row)."""
        with self._lock:
            self._read()
        return self._rows

    def _read(self) -> None:
        from core.db import get_engine, session_scope
        from core.db.registry_state import active_models

        try:
            with session_scope(get_engine(self.url)) as session:
                rows = active_models(session)
            self.queries += 1
        except Exception as err:  # noqa: BLE001 - the file pointers still work
            if not self._failing:
                _log.warning("shared model registry not read (%s); using the file pointers",
                             str(err).splitlines()[0][:200])
            self._failing = True
        else:
            self._rows, self._failing = rows, False
        self._read_at = time.monotonic()

    def generation(self, task: str, slot: str | None = None) -> int:
        """The generation of ``task``'s ``slot`` row (0: no row)."""
        row = self().get((task, slot))
        return row.generation if row is not None else 0


_installed: SharedPointers | None = None
_install_lock = threading.Lock()


def install(url: str | None = None, *, interval_s: float | None = None) -> SharedPointers:
    """Make ``core.registry`` consult the database at ``url`` (default: the configured one) in
    this process; the same object again for the same URL and interval."""
    from core import registry

    global _installed
    url = str(url or config.database_url())
    if (_installed is not None and _installed.url == url and interval_s is None
            and registry._shared_pointers is _installed):
        return _installed            # the common case: every page run calls this
    with _install_lock:
        if (_installed is None or _installed.url != url
                or (interval_s is not None and _installed.interval_s != interval_s)):
            _installed = SharedPointers(url, interval_s=interval_s)
        registry.set_shared_pointers(_installed)
        return _installed


def uninstall() -> None:
    """Back to the file pointers alone in this process."""
    from core import registry

    global _installed
    with _install_lock:
        _installed = None
        registry.set_shared_pointers(None)


def installed() -> SharedPointers | None:
    return _installed


def generation(task: str, slot: str | None = None) -> int:
    """The installed reader's generation of ``task``'s ``slot`` (0 when none is installed)."""
    return _installed.generation(task, slot) if _installed is not None else 0


def refresh() -> None:
    if _installed is not None:
        _installed.refresh()
