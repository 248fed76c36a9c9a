"""Heavy objects loaded once per server process with ``st.cache_resource`` (shared by every
user, never mutated): the database engine and the models.

Keys include the weights folder and database URL so that a test (or a reconfigured server)
with other settings never gets a stale object; the classifier is keyed by the *active* version
and its generation in the database (``core.shared_registry``, read at most every few seconds),
so that activating a version on the admin page of *any* app server takes effect on every server
within seconds, without a restart.
"""
from __future__ import annotations

from contextlib import contextmanager

import streamlit as st

from core import config, registry

__all__ = ["engine", "db", "db_write", "device", "active_classifier_version", "classifier", "sr_model"]


@st.cache_resource(show_spinner="Opening the database…")
def _engine(url: str):
    from core.db import get_engine, upgrade_to_head

    eng = get_engine(url)
    upgrade_to_head(eng)
    return eng


def engine():
    from core import shared_registry

    url = config.database_url()
    eng = _engine(url)
    shared_registry.install(url)   # the registry follows activations made on other servers
    return eng


@contextmanager
def db():
    """``with db() as session:`` a transaction on the cached engine (commit on success)."""
    from core.db import session_scope

    with session_scope(engine()) as session:
        yield session


@contextmanager
def db_write(what: str):
    """``with db_write("The prediction") as session:`` a transaction whose failure (read-only
    or full database: ``core.db.errors.DBError``) shows "<what> was not stored. <why>" as a
    warning and lets the page go on, instead of Streamlit's error page. For records the page
    can live without (scan, prediction, SR metrics); forms that must keep their input catch
    ``DBError`` themselves."""
    from core.db.errors import DBError

    try:
        with db() as session:
            yield session
    except DBError as err:
        st.warning(f"{what} was not stored. {err}", icon=":material/database:")


@st.cache_resource(show_spinner=False)
def device():
    """Pick GPU or CPU once per server (GPU memory growth on; no mixed precision for inference)."""
    from core.device import configure_device

    return configure_device(mixed_precision=False)


def active_classifier_version() -> str | None:
    engine()   # opens the database once per process and installs the shared registry reader
    return registry.active_version("classifier")


@st.cache_resource(show_spinner="Loading the classifier…", max_entries=3)
def _classifier(version: str, generation: int, weights_dir: str):
    from core.classifier import Classifier

    device()
    return Classifier.load(version, weights_dir=weights_dir)


def classifier(version: str | None = None):
    """The classifier (default: the active version). Raises ModelNotFoundError if none.

    Cached per ``(version, generation)``: a version activated again on another server (a new
    generation of the database row) is loaded afresh, e.g. after its card was recalibrated."""
    from core import shared_registry
    from core.errors import ModelNotFoundError

    active = active_classifier_version()
    version = version or active
    if version is None:
        raise ModelNotFoundError(
            "No classifier model is active yet. An administrator can train one or activate a "
            "version on the Models page.")
    generation = shared_registry.generation("classifier") if version == active else 0
    return _classifier(version, generation, str(config.weights_dir()))


@st.cache_resource(show_spinner="Loading the super-resolution model…", max_entries=8)
def _sr_model(method: str, scale: int, version: str, weights_dir: str):
    from core.sr.upscalers import load_sr_model

    device()
    return load_sr_model(method, scale, version=version, weights_dir=weights_dir)


def sr_model(method: str, scale: int, version: str):
    return _sr_model(method, scale, version, str(config.weights_dir()))
