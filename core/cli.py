"""``python -m core``: the headless entry point.

Each feature package owns its commands in ``core/<pkg>/cli.py`` with a function
``register(cmds: Commands)`` that adds subparsers and sets ``func`` (a callable taking the parsed
``argparse.Namespace`` and returning an exit code). Those modules import heavy libraries
(TensorFlow) inside their handlers only, so ``--help`` stays fast.

Errors derived from :class:`core.errors.MedScanError` print one line on stderr and exit 2.
"""
from __future__ import annotations

import argparse
import importlib
import os
import shlex
import sys
from dataclasses import dataclass

from core import __version__
from core.errors import MedScanError

__all__ = ["Commands", "build_parser", "main", "command_line"]

# Packages that contribute commands, in help order.
_COMMAND_MODULES = ("core.imaging.cli", "core.classifier.cli", "core.sr.cli", "core.db.cli",
                    "core.registry_cli")


@dataclass
class Commands:
    sub: argparse._SubParsersAction        # top level: inspect, convert, predict, ...
    train: argparse._SubParsersAction      # train classifier | train sr
    evaluate: argparse._SubParsersAction   # evaluate classifier | evaluate sr


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m core",
        description="MedScan: load scans, classify, explain (Grad-CAM), super-resolve, train.")
    parser.add_argument("--version", action="version", version=f"medscan {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    train = sub.add_parser("train", help="train a model (classifier | sr)").add_subparsers(
        dest="model_kind", metavar="MODEL", required=True)
    evaluate = sub.add_parser("evaluate", help="evaluate a model on a data folder").add_subparsers(
        dest="model_kind", metavar="MODEL", required=True)
    cmds = Commands(sub=sub, train=train, evaluate=evaluate)
    for name in _COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as err:
            if err.name == name:  # feature not built yet
                continue
            raise
        module.register(cmds)
    return parser


def command_line() -> str:
    """This process's command as a user would retype it (recorded in model cards)."""
    argv = list(sys.argv)
    if argv and argv[0].endswith("__main__.py"):
        argv[0:1] = ["python", "-m", "core"]
    return " ".join(shlex.quote(a) for a in argv)


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 0 if args.command is None else 2
    try:
        return int(func(args) or 0)
    except MedScanError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
