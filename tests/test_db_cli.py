"""``python -m core users|db|ratings|jobs``."""
from __future__ import annotations

import csv
import getpass
import io
import json
import subprocess
import sys

import pytest

from core.cli import main
from core.db import auth, init_db, session_scope

PW = "a long password 1"


@pytest.fixture()
def url(db_url):
    return db_url


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
    from core.db.migrate import head_revision

    assert f"revision {head_revision()}" in capsys.readouterr().out
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


def test_users_sso_email_add_set_clear_and_list(url, monkeypatch, capsys):
    _stdin(monkeypatch, PW + "\n")
    assert main(["users", "add", "tara", "--role", "admin", "--password-stdin",
                 "--sso-email", " Tara@Hospital.ORG "]) == 0
    _stdin(monkeypatch, PW + "\n")
    assert main(["users", "add", "uwe", "--password-stdin"]) == 0
    out = capsys.readouterr().out
    assert "added admin tara (SSO e-mail tara@hospital.org)" in out
    assert "added radiologist uwe\n" in out

    assert main(["users", "set-sso-email", "UWE", "Uwe@Hospital.org"]) == 0
    assert "SSO e-mail of uwe: uwe@hospital.org" in capsys.readouterr().out
    assert main(["users", "list"]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()}
    assert "tara@hospital.org" in lines["tara"] and "uwe@hospital.org" in lines["uwe"]
    assert main(["users", "list", "--json"]) == 0
    listed = {u["username"]: u["sso_email"] for u in json.loads(capsys.readouterr().out)}
    assert listed == {"tara": "tara@hospital.org", "uwe": "uwe@hospital.org"}

    assert main(["users", "set-sso-email", "uwe", "--clear"]) == 0
    assert "SSO e-mail of uwe cleared" in capsys.readouterr().out
    with session_scope(init_db(url)) as s:
        assert {u.username: u.sso_email for u in auth.list_users(s)} == {
            "tara": "tara@hospital.org", "uwe": None}
        assert auth.authenticate_sso(s, "TARA@hospital.org", email_verified=True).username \
            == "tara"
    assert main(["users", "list"]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()}
    assert "@" not in lines["uwe"]


def test_users_sso_email_errors(url, monkeypatch, capsys):
    _stdin(monkeypatch, PW + "\n")
    assert main(["users", "add", "vera", "--password-stdin", "--sso-email", "v@h.org"]) == 0
    _stdin(monkeypatch, PW + "\n")
    assert main(["users", "add", "walt", "--password-stdin", "--sso-email", "V@H.org"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "v@h.org" in err and "already" in err
    _stdin(monkeypatch, PW + "\n")
    assert main(["users", "add", "walt", "--password-stdin", "--sso-email", "walt"]) == 2
    assert capsys.readouterr().err.startswith("error: E-mail address must look like")
    _stdin(monkeypatch, PW + "\n")
    assert main(["users", "add", "walt", "--password-stdin"]) == 0
    assert main(["users", "set-sso-email", "walt", "v@h.org"]) == 2
    assert "already belongs to user 'vera'" in capsys.readouterr().err
    assert main(["users", "set-sso-email", "walt", "no email"]) == 2
    assert "error: E-mail" in capsys.readouterr().err
    assert main(["users", "set-sso-email", "nobody", "n@h.org"]) == 2
    assert "error: No user named 'nobody'" in capsys.readouterr().err
    for argv in (["users", "set-sso-email", "walt"],                         # neither
                 ["users", "set-sso-email", "walt", "w@h.org", "--clear"]):  # both
        with pytest.raises(SystemExit) as exit_:
            main(argv)
        assert exit_.value.code == 2
    with session_scope(init_db(url)) as s:
        assert {u.username: u.sso_email for u in auth.list_users(s)} == {
            "vera": "v@h.org", "walt": None}


def test_recorded_command_line_has_no_machine_paths(monkeypatch):
    """Model cards record the training command; absolute paths of this machine must not leak
    into them (a card travels with the weights)."""
    from core.cli import command_line
    from core.config import REPO_ROOT

    monkeypatch.setattr(sys, "argv", [
        str(REPO_ROOT / "core" / "__main__.py"), "train", "sr",
        "--data", str(REPO_ROOT.parent / "shared" / "datasets" / "x"),
        "--run-dir", str(REPO_ROOT.parent / "sr_runs" / "rrdb_mixed"), f"--out={REPO_ROOT / 'runs' / 'a'}", "--steps", "5"])
    line = command_line()
    assert line == ("python -m core train sr --data ../shared/datasets/x "
                    "--run-dir '<local>/rrdb_mixed' --out=runs/a --steps 5")
