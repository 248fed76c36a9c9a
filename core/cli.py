"""``python -m core``: the headless entry point.

Each feature package owns its commands in ``core/<pkg>/cli.py`` with a function
``register(cmds: Commands)`` that adds subparsers and sets ``func`` (a callable taking the parsed
``argparse.Namespace`` and returning an exit code). Those modules import heavy libraries
(TensorFlow) inside their handlers only, so ``--help`` stays fast.

Errors derived from :class:`core.errors.MedScanError` print one line on stderr and exit 2.
"""
from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.abc
import importlib.util
import os
import shlex
from pathlib import Path
import sys
from dataclasses import dataclass

from core import __version__
from core.errors import MedScanError

__all__ = ["Commands", "build_parser", "main", "command_line", "quiet_tensorflow_startup"]

# Packages that contribute commands, in help order.
_COMMAND_MODULES = ("core.imaging.cli", "core.classifier.cli", "core.sr.cli",
                    "core.segmentation.cli", "core.library.cli", "core.retrieval.cli",
                    "core.db.cli", "core.jobs.cli", "core.studies.cli", "core.registry_cli",
                    "core.pacs.cli")


@dataclass
class Commands:
    sub: argparse._SubParsersAction        # top level: inspect, convert, predict, ...
    train: argparse._SubParsersAction      # train classifier | sr | segmentation
    evaluate: argparse._SubParsersAction   # evaluate classifier | sr | segmentation | ...
    # ratings export | ratings agreement: set by the first module that adds the group
    ratings: argparse._SubParsersAction | None = None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m core",
        description="MedScan: load scans, classify, explain (Grad-CAM), super-resolve, train.")
    parser.add_argument("--version", action="version", version=f"medscan {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    train = sub.add_parser("train", help="train a model (classifier | sr | segmentation)").add_subparsers(
        dest="model_kind", metavar="MODEL", required=True)
    evaluate = sub.add_parser("evaluate", help="evaluate a model on a data folder").add_subparsers(
        dest="model_kind", metavar="MODEL", required=True)
    cmds = Commands(sub=sub, train=train, evaluate=evaluate)
    for name in _COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as err:
            if err.name and (name == err.name or name.startswith(err.name + ".")):
                continue  # feature not built yet
            raise
        module.register(cmds)
    return parser


def command_line() -> str:
    """This process's command as a user would retype it (recorded in model cards)."""
    argv = list(sys.argv)
    if argv and argv[0].endswith("__main__.py"):
        argv[0:1] = ["python", "-m", "core"]
    return " ".join(shlex.quote(_portable_arg(a)) for a in argv)


def _portable_arg(arg: str) -> str:
    """An argument without this machine's absolute paths: a path inside the project (or next to
    it, like ``../shared``) becomes relative to the project; any other absolute path keeps only
    its last part under ``<local>/`` (a scratch folder means nothing on another machine)."""
    if "=" in arg and arg.startswith("--"):
        flag, value = arg.split("=", 1)
        return f"{flag}={_portable_arg(value)}"
    if not arg.startswith("/"):
        return arg
    from core.config import REPO_ROOT

    path = Path(os.path.normpath(arg))
    root = REPO_ROOT.resolve()
    try:
        return str(path.relative_to(root))
    except ValueError:
        pass
    try:  # the team's shared data folder next to the project (../shared/datasets/...)
        return "../shared/" + str(path.relative_to(root.parent / "shared"))
    except ValueError:
        pass
    return f"<local>/{path.name}"


@contextlib.contextmanager
def _native_stderr_silenced():
    """Point file descriptor 2 at /dev/null (Python's own ``sys.stderr`` writes are flushed
    first and work again afterwards)."""
    sys.stderr.flush()
    try:
        saved = os.dup(2)
        null = os.open(os.devnull, os.O_WRONLY)
    except OSError:  # no fd 2 (embedded): nothing to silence
        yield
        return
    os.dup2(null, 2)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)


class _QuietLoader(importlib.abc.Loader):
    def __init__(self, loader) -> None:
        self._loader = loader

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module) -> None:
        with _native_stderr_silenced():
            self._loader.exec_module(module)

    def __getattr__(self, name: str):
        return getattr(self._loader, name)


class _QuietTensorFlowImport(importlib.abc.MetaPathFinder):
    """Keeps stderr for MedScan's own messages: TensorFlow's native libraries log start-up
    lines ("oneDNN custom operations are on", "Could not find cuda drivers", ...) straight to
    file descriptor 2 while they load, before TF_CPP_MIN_LOG_LEVEL or absl logging apply.
    Only that import runs with descriptor 2 silenced; later errors still reach stderr."""

    def find_spec(self, fullname, path, target=None):
        if fullname != "tensorflow":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(fullname)
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader)
        return spec


def quiet_tensorflow_startup() -> None:
    """Silence TensorFlow's start-up log lines in this process (call before it is imported)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if "tensorflow" not in sys.modules and not any(
            isinstance(f, _QuietTensorFlowImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _QuietTensorFlowImport())


def main(argv: list[str] | None = None) -> int:
    quiet_tensorflow_startup()
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
