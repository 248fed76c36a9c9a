"""``python -m core users|db|ratings|jobs``."""
from __future__ import annotations

import csv
import getpass
import io
import subprocess
import sys

import pytest

from core.cli import main
from core.db import auth, init_db, session_scope

PW = "a long password 1"


@pytest.fixture()
def url(sqlite_url):
    return sqlite_url


def _stdin(monkeypatch, text: str) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(text))


def test_users_add_list_set_password_deactivate(url, monkeypatch, capsys):
    _stdin(monkeypatch, PW + "\n")
    assert main(["users", "add", " Root ", "--role", "admin", "--password-stdin"]) == 0
    _stdin(monkeypatch, PW + "\n")
    assert main(["users", "add", "reader1", "--password-stdin"]) == 0
    assert main(["users", "list"]) == 0
    out = capsys.readouterr().out
    assert "added admin root" in out and "reader1" in out and "radiologist" in out
    assert PW not in out

    _stdin(monkeypatch, "another long password\n")
    assert main(["users", "set-password", "reader1", "--password-stdin"]) == 0
    assert main(["users", "deactivate", "reader1"]) == 0
    with session_scope(init_db(url)) as s:
        assert auth.authenticate(s, "root", PW) is not None
        assert auth.authenticate(s, "reader1", "another long password") is None  # inactive
        active = {u.username: u.active for u in auth.list_users(s)}
        assert active == {"root": True, "reader1": False}


def test_users_add_errors_are_one_line(url, monkeypatch, capsys):
    _stdin(monkeypatch, "short\n")
    assert main(["users", "add", "bob", "--password-stdin"]) == 2
    assert "at least 10 characters" in capsys.readouterr().err
    _stdin(monkeypatch, PW + "\n")
    assert main(["users", "add", "bob", "--password-stdin"]) == 0
    _stdin(monkeypatch, PW + "\n")
    assert main(["users", "add", "BOB", "--password-stdin"]) == 2
    assert "already exists" in capsys.readouterr().err


def test_users_add_prompts_twice(url, monkeypatch, capsys):
    answers = iter([PW, PW + "typo"])
    monkeypatch.setattr(getpass, "getpass", lambda prompt="": next(answers))
    assert main(["users", "add", "carol"]) == 2
    assert "do not match" in capsys.readouterr().err
    answers = iter([PW, PW])
    assert main(["users", "add", "carol"]) == 0


def test_no_password_option_on_the_command_line(url):
    with pytest.raises(SystemExit) as exit_:
        main(["users", "add", "dave", "--password", PW])
    assert exit_.value.code == 2


def test_db_upgrade_check_and_ratings_export(url, tmp_path, capsys):
    assert main(["db", "upgrade"]) == 0
    assert main(["db", "check"]) == 0
    assert "revision 0001" in capsys.readouterr().out
    out = tmp_path / "ratings.csv"
    assert main(["ratings", "export", "--out", str(out)]) == 0
    with open(out, newline="") as fh:
        reader = csv.DictReader(fh)
        assert reader.fieldnames[:3] == ["rating_id", "reader", "scan_sha256"]
        assert list(reader) == []
    assert main(["jobs", "list"]) == 0
    assert "no training jobs" in capsys.readouterr().out


def test_module_entry_point_users_add_via_stdin(url, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "core", "users", "add", "eve", "--role",
                           "admin", "--password-stdin"], input=PW + "\n", capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "added admin eve" in proc.stdout
