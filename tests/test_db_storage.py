"""A database that refuses writes (read-only, full disk, I/O error) raises StorageError with
the reason in words, and logs the driver's message without the statement's parameters."""
from __future__ import annotations

import logging
import sqlite3

import pytest
from sqlalchemy.exc import IntegrityError, OperationalError

from core.db import auth, get_engine, init_db, session_scope
from core.db import tables as m
from core.db.errors import DBError, StorageError


def test_read_only_database(sqlite_url, tmp_path, caplog):
    init_db(sqlite_url)
    ro = get_engine(f"sqlite:///file:{tmp_path / 'medscan.db'}?mode=ro&uri=true")
    with session_scope(ro) as s:           # reading still works
        assert auth.needs_first_admin(s)
    caplog.set_level(logging.ERROR, logger="core.db")
    with pytest.raises(StorageError) as err:
        with session_scope(ro) as s:
            auth.create_user(s, "ann", "a long password 1")
    assert isinstance(err.value, DBError)
    assert str(err.value).startswith("The database could not save this: the database is "
                                     "read-only. Nothing was saved")
    assert "attempt to write a readonly database" in caplog.text
    assert "argon2" not in caplog.text and "ann" not in caplog.text   # no parameters logged


@pytest.mark.parametrize("driver_message, words", [
    ("disk I/O error", "the disk could not be written"),
    ("database or disk is full", "the server's disk is full"),
    ("database is locked", "busy for more than 30 seconds"),
    ("something new", "the database refused the change"),
])
def test_reasons_in_words(sqlite_url, monkeypatch, driver_message, words):
    engine = init_db(sqlite_url)

    def failing_commit(self):
        raise OperationalError("COMMIT", {}, sqlite3.OperationalError(driver_message))

    monkeypatch.setattr("sqlalchemy.orm.Session.commit", failing_commit)
    with pytest.raises(StorageError, match=words):
        with session_scope(engine) as s:
            s.add(m.AuditLog(action="test", detail={}))


def test_integrity_errors_are_not_storage_errors(sqlite_url):
    engine = init_db(sqlite_url)
    with pytest.raises(IntegrityError):
        with session_scope(engine) as s:
            s.add_all([m.User(username="x1", role="admin", password_hash="h"),
                       m.User(username="x1", role="admin", password_hash="h")])
