"""``python -m core models ...``: list, show and activate model versions."""
from __future__ import annotations

import argparse
import json

__all__ = ["register"]


def register(cmds) -> None:
    p = cmds.sub.add_parser("models", help="list / show / activate model versions")
    sub = p.add_subparsers(dest="models_cmd", metavar="ACTION", required=True)
    ls = sub.add_parser("list", help="list versions of a task")
    ls.add_argument("task", choices=["classifier", "sr"])
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=_list)
    show = sub.add_parser("show", help="print a model card")
    show.add_argument("task", choices=["classifier", "sr"])
    show.add_argument("version", nargs="?", help="default: the active version")
    show.set_defaults(func=_show)
    act = sub.add_parser("activate", help="make a version the active one")
    act.add_argument("task", choices=["classifier", "sr"])
    act.add_argument("version")
    act.set_defaults(func=_activate)


def _list(args: argparse.Namespace) -> int:
    from core import registry

    active = registry.active_version(args.task)
    cards = registry.list_versions(args.task)
    if args.json:
        print(json.dumps([{"version": c["version"], "active": c["version"] == active,
                           "architecture": c["architecture"], "created_at": c["created_at"],
                           "metrics": c.get("metrics", {})} for c in cards], indent=2))
        return 0
    for c in cards:
        mark = "*" if c["version"] == active else " "
        print(f"{mark} {c['version']:<24} {c['architecture']:<12} {c['created_at']}")
    if not cards:
        print(f"(no {args.task} versions)")
    return 0


def _show(args: argparse.Namespace) -> int:
    from core import registry

    print(json.dumps(registry.load_card(args.task, args.version), indent=2))
    return 0


def _activate(args: argparse.Namespace) -> int:
    from core import registry

    registry.activate(args.task, args.version)
    print(f"active {args.task} model: {args.version}")
    return 0
