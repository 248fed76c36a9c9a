"""``python -m core users|db|ratings ...``: accounts, migrations, ratings export.

Passwords are never taken from the command line: ``--password-stdin`` reads one line from
stdin, otherwise ``getpass`` prompts twice. Every command first upgrades the database schema.
"""
from __future__ import annotations

import argparse
import getpass
import json
import sys

__all__ = ["register"]


def register(cmds) -> None:
    users = cmds.sub.add_parser("users", help="manage accounts (add, list, set-password, ...)")
    us = users.add_subparsers(dest="users_cmd", metavar="ACTION", required=True)
    add = us.add_parser("add", help="add a user")
    add.add_argument("name")
    add.add_argument("--role", choices=["radiologist", "admin"], default="radiologist")
    add.add_argument("--password-stdin", action="store_true",
                     help="read the password from the first line of stdin")
    add.add_argument("--sso-email", metavar="EMAIL",
                     help="e-mail of the user's single sign-on (OIDC) identity")
    add.set_defaults(func=_users_add)
    ls = us.add_parser("list", help="list users")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=_users_list)
    pw = us.add_parser("set-password", help="set a user's password (also unlocks)")
    pw.add_argument("name")
    pw.add_argument("--password-stdin", action="store_true")
    pw.set_defaults(func=_users_set_password)
    sso = us.add_parser("set-sso-email",
                        help="link a user to a single sign-on (OIDC) e-mail, or --clear it")
    sso.add_argument("name")
    which = sso.add_mutually_exclusive_group(required=True)
    which.add_argument("email", nargs="?", metavar="EMAIL",
                       help="the identity's e-mail (stored lower-cased)")
    which.add_argument("--clear", action="store_true", help="remove the user's SSO e-mail")
    sso.set_defaults(func=_users_set_sso_email)
    for action, help_ in (("deactivate", "stop a user from logging in (ratings are kept)"),
                          ("activate", "allow a deactivated user to log in again"),
                          ("unlock", "clear a lock after too many failed logins")):
        p = us.add_parser(action, help=help_)
        p.add_argument("name")
        p.set_defaults(func=_users_simple, users_action=action)

    db = cmds.sub.add_parser("db", help="database schema (upgrade, check, revision)")
    ds = db.add_subparsers(dest="db_cmd", metavar="ACTION", required=True)
    up = ds.add_parser("upgrade", help="migrate the database to the newest schema")
    up.set_defaults(func=_db_upgrade)
    chk = ds.add_parser("check", help="exit 1 if the schema differs from the ORM models")
    chk.set_defaults(func=_db_check)
    rev = ds.add_parser("revision", help="(developers) autogenerate a migration from tables.py")
    rev.add_argument("-m", "--message", required=True)
    rev.set_defaults(func=_db_revision)

    ratings = cmds.sub.add_parser("ratings", help="export reader ratings, inter-reader agreement")
    rs = ratings.add_subparsers(dest="ratings_cmd", metavar="ACTION", required=True)
    cmds.ratings = rs
    exp = rs.add_parser("export", help="all ratings as CSV (scan hash, masked file name, view)")
    exp.add_argument("--out", required=True, help="CSV file to write ('-' for stdout)")
    exp.set_defaults(func=_ratings_export)


def _engine():
    from core.db import init_db

    return init_db()


def _read_password(args: argparse.Namespace, prompt: str) -> str:
    if args.password_stdin:
        line = sys.stdin.readline()
        return line[:-1] if line.endswith("\n") else line
    first = getpass.getpass(prompt)
    if getpass.getpass("Repeat: ") != first:
        from core.db.errors import PolicyError

        raise PolicyError("The passwords do not match.")
    return first


def _users_add(args: argparse.Namespace) -> int:
    from core.db import auth, session_scope

    engine = _engine()
    password = _read_password(args, f"Password for {args.name}: ")
    with session_scope(engine) as s:
        user = auth.create_user(s, args.name, password, args.role, sso_email=args.sso_email)
    print(f"added {user.role} {user.username}"
          + (f" (SSO e-mail {user.sso_email})" if user.sso_email else ""))
    return 0


def _users_list(args: argparse.Namespace) -> int:
    from core.db import auth, session_scope

    with session_scope(_engine()) as s:
        users = auth.list_users(s)
    if args.json:
        print(json.dumps([{"username": u.username, "role": u.role, "active": u.active,
                           "created_at": u.created_at.isoformat(),
                           "locked_until": u.locked_until and u.locked_until.isoformat(),
                           "sso_email": u.sso_email}
                          for u in users], indent=2))
        return 0
    for u in users:
        flags = ("" if u.active else " (inactive)") + (" (locked)" if u.locked_until else "")
        print(f"{u.username:<32} {u.role:<12} {u.created_at:%Y-%m-%d} "
              f"{u.sso_email or '-':<40}{flags}".rstrip())
    if not users:
        print("(no users; add the first admin with: python -m core users add NAME --role admin)")
    return 0


def _users_set_password(args: argparse.Namespace) -> int:
    from core.db import auth, session_scope

    engine = _engine()
    password = _read_password(args, f"New password for {args.name}: ")
    with session_scope(engine) as s:
        user = auth.set_password(s, args.name, password)
    print(f"password set for {user.username}")
    return 0


def _users_set_sso_email(args: argparse.Namespace) -> int:
    from core.db import auth, session_scope

    with session_scope(_engine()) as s:
        user = auth.set_sso_email(s, args.name, None if args.clear else args.email)
    print(f"SSO e-mail of {user.username}: {user.sso_email}" if user.sso_email
          else f"SSO e-mail of {user.username} cleared")
    return 0


def _users_simple(args: argparse.Namespace) -> int:
    from core.db import auth, session_scope

    with session_scope(_engine()) as s:
        if args.users_action == "unlock":
            user = auth.unlock_user(s, args.name)
        else:
            user = auth.set_active(s, args.name, args.users_action == "activate")
    print(f"{args.users_action}d {user.username}" if args.users_action != "unlock"
          else f"unlocked {user.username}")
    return 0


def _db_upgrade(_: argparse.Namespace) -> int:
    from core.db.migrate import current_revision

    engine = _engine()
    print(f"database at revision {current_revision(engine)}: "
          f"{engine.url.render_as_string(hide_password=True)}")
    return 0


def _db_check(_: argparse.Namespace) -> int:
    from core.db.migrate import schema_diff

    diff = schema_diff(_engine())
    for d in diff:
        print(d)
    print("schema matches the models" if not diff else "schema differs: add a migration")
    return 1 if diff else 0


def _db_revision(args: argparse.Namespace) -> int:
    from core.db.migrate import make_revision

    make_revision(args.message)
    return 0


def _ratings_export(args: argparse.Namespace) -> int:
    from core.db import session_scope
    from core.db.ratings import export_ratings, write_ratings_csv

    with session_scope(_engine()) as s:
        rows = export_ratings(s)
    write_ratings_csv(rows, sys.stdout if args.out == "-" else args.out)
    if args.out != "-":
        print(f"wrote {len(rows)} ratings to {args.out}")
    return 0
