from __future__ import annotations

import subprocess
import sys

from core.cli import main


def test_help_lists_commands(capsys):
    try:
        main(["--help"])
    except SystemExit as exit_:
        assert exit_.code == 0
    out = capsys.readouterr().out
    assert "train" in out and "evaluate" in out and "models" in out


def test_module_entry_point_runs():
    proc = subprocess.run([sys.executable, "-m", "core", "--help"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "usage: python -m core" in proc.stdout


def test_models_list_empty(tmp_weights, capsys):
    assert main(["models", "list", "classifier"]) == 0
    assert "no classifier versions" in capsys.readouterr().out


def test_every_command_and_subcommand_prints_its_help():
    """``--help`` of every (sub)command formats (a bare ``%`` in a help text made ``evaluate
    --help`` a traceback)."""
    import argparse

    from core.cli import build_parser

    def walk(parser, path):
        yield path, parser
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    yield from walk(sub, [*path, name])

    seen = 0
    for path, parser in walk(build_parser(), []):
        text = parser.format_help()
        assert text.startswith("usage:"), path
        seen += 1
    assert seen > 20
