"""``python -m core models ...``: list, show, evaluate, activate and roll back model versions.

``activate`` and ``rollback`` are audited (``core.db.audit``) exactly like the Model versions
page; ``activate`` shows what changes on the shared evaluation set and asks for confirmation
unless ``--yes``. Like the app, they write the database's active pointers too (every app server
follows them) and every command here reads them (``core.shared_registry``) when the database
exists.
"""
from __future__ import annotations

import argparse
import json
import sys

from core.registry import TASKS

__all__ = ["register"]


def register(cmds) -> None:
    p = cmds.sub.add_parser("models", help="list / show / evaluate / activate / roll back "
                                           "model versions")
    sub = p.add_subparsers(dest="models_cmd", metavar="ACTION", required=True)
    ls = sub.add_parser("list", help="versions of a task: active, candidate or shipped")
    ls.add_argument("task", choices=list(TASKS))
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=_list)
    show = sub.add_parser("show", help="print a model card")
    show.add_argument("task", choices=list(TASKS))
    show.add_argument("version", nargs="?", help="default: the active version")
    show.set_defaults(func=_show)
    ev = sub.add_parser("evaluate", help="evaluate classifier versions on the fixed evaluation "
                                         "set (recorded beside them, never in a shipped card)")
    ev.add_argument("versions", nargs="*", metavar="VERSION",
                    help="default: the active version and every candidate")
    ev.add_argument("--data", default=None,
                    help="evaluation image folder (default $MEDSCAN_EVAL_DIR)")
    ev.set_defaults(func=_evaluate)
    act = sub.add_parser("activate", help="make a version the active one (audited)")
    act.add_argument("task", choices=list(TASKS))
    act.add_argument("version")
    act.add_argument("--slot", default=None, help="sr: e.g. rrdb_psnr_x4 (default: the card's)")
    act.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    act.add_argument("--user", default=None, help="user name recorded in the audit log")
    act.set_defaults(func=_activate)
    rb = sub.add_parser("rollback", help="re-activate the previously active version (audited)")
    rb.add_argument("task", choices=list(TASKS))
    rb.add_argument("--slot", default=None)
    rb.add_argument("--user", default=None, help="user name recorded in the audit log")
    rb.set_defaults(func=_rollback)


def _follow_database(*, migrate: bool = False) -> None:
    """Make the registry read the database's active versions, as every app server does: always
    for ``activate`` / ``rollback`` (``migrate``: they write it), otherwise only when the
    database is configured or its SQLite file exists (a look never creates one)."""
    import os
    from pathlib import Path

    from core import config, shared_registry

    url = config.database_url()
    if migrate:
        from core.db import init_db

        init_db(url)
    elif not os.environ.get("MEDSCAN_DATABASE_URL") and not Path(
            url.removeprefix("sqlite:///")).is_file():
        return
    shared_registry.install(url, interval_s=60)   # one read for this short-lived command


def _list(args: argparse.Namespace) -> int:
    from core import registry

    _follow_database()

    rows = registry.version_rows(args.task)
    if args.json:
        cards = {c["version"]: c for c in registry.list_versions(args.task)}
        print(json.dumps([dict(r, active=r["status"] == "active",
                               metrics=cards[r["version"]].get("metrics", {}))
                          for r in rows], indent=2))
        return 0
    for r in rows:
        mark = "*" if r["status"] == "active" else " "
        print(f"{mark} {r['version']:<32} {r['status']:<10} {r['where']:<20} "
              f"{r['architecture'] or '':<12} {r['created_at']}")
    if not rows:
        print(f"(no {args.task} versions)")
    return 0


def _show(args: argparse.Namespace) -> int:
    from core import registry

    _follow_database()

    print(json.dumps(registry.load_card(args.task, args.version), indent=2))
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from core import registry
    from core.classifier.train import evaluate_versions
    from core.config import eval_dir

    _follow_database()
    data = args.data or eval_dir()
    if data is None:
        print("error: no evaluation set: pass --data DIR or set MEDSCAN_EVAL_DIR",
              file=sys.stderr)
        return 2
    versions = args.versions or [r["version"] for r in registry.version_rows("classifier")
                                 if r["status"] in ("active", "candidate")]
    for report in evaluate_versions(versions, data):
        print(f"{report['version']:<32} accuracy {report['accuracy']:.4f}  macro-F1 "
              f"{report['macro_f1']:.4f}  ECE {report['ece']:.4f}  n={report['n']}  "
              f"set {report['data_fingerprint'][:19]}")
    return 0


def _slot(args: argparse.Namespace) -> str | None:
    if args.slot or args.task != "sr" or getattr(args, "version", None) is None:
        return args.slot
    from core import registry

    card = registry.load_card("sr", args.version)
    return f"{card['method']}_x{card['scale']}" if card.get("method") else None


def _user_id(session, name: str | None) -> int | None:
    if not name:
        return None
    from sqlalchemy import select

    from core.db.tables import User

    user = session.scalar(select(User).where(User.username == name))
    if user is None:
        raise SystemExit(f"error: no user {name!r}")
    return user.id


def _activate(args: argparse.Namespace) -> int:
    from core import registry
    from core.db import init_db, session_scope

    _follow_database(migrate=True)
    slot = _slot(args)
    registry.load_card(args.task, args.version)
    current = registry.active_version(args.task, slot=slot)
    if current == args.version:
        print(f"{args.task} {args.version} is already active")
        return 0
    cmp = registry.compare_on_eval_set(args.task, args.version, current)
    print(f"activate {args.task} {args.version} (now active: {current or 'none'})")
    if cmp["set"]:
        print(f"on evaluation set {cmp['set']['data']} (n={cmp['set']['n']}, "
              f"{cmp['set']['fingerprint'][:19]}):")
        for r in cmp["rows"]:
            print(f"  {r['metric']:<9} {r['reference']:.4f} -> {r['candidate']:.4f} "
                  f"({r['delta']:+.4f})")
    for w in cmp["warnings"] if args.task == "classifier" else []:
        print(f"WARNING: {w}", file=sys.stderr)
    if not args.yes:
        if not sys.stdin.isatty():
            print("error: not confirmed; pass --yes to activate without a prompt",
                  file=sys.stderr)
            return 2
        if input(f"Activate {args.version} for every user? [y/N] ").strip().lower() not in (
                "y", "yes"):
            print("not activated")
            return 1
    with session_scope(init_db()) as s:
        deltas = {r["metric"]: round(r["delta"], 6) for r in cmp["rows"]}
        previous = registry.activate_audited(
            s, args.task, args.version, slot=slot, user_id=_user_id(s, args.user),
            user=args.user, eval_set=(cmp["set"] or {}).get("fingerprint"), deltas=deltas,
            warnings=cmp["warnings"] if args.task == "classifier" else [], via="cli")
    print(f"active {args.task} model: {args.version} (was {previous or 'none'})")
    return 0


def _rollback(args: argparse.Namespace) -> int:
    from core import registry
    from core.db import init_db, session_scope

    _follow_database(migrate=True)
    with session_scope(init_db()) as s:
        now, before = registry.rollback(s, args.task, slot=args.slot,
                                        user_id=_user_id(s, args.user), user=args.user)
    print(f"rolled back {args.task}: {before} -> {now}")
    return 0
