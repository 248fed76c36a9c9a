"""Rerun a version's whole recipe: every stage its card records, oldest first, on new data.

A staged classifier (self-supervised pre-training, then supervised runs each started from the
previous one's best checkpoint, as the shipped model is) records its lineage in the card:
``initialisation`` names what the last run started from, nested through ``from_run`` down to
the first stage, each with the command it ran and its minutes. :func:`recipe_stages` reads it
back; :func:`replay_commands` rewrites those commands for a new run (the training folder, the
run folders, each stage's ``--init-from`` = the previous stage's output, only the last stage
publishing, under the new version name); :func:`run_recipe` runs them one after another as
child processes (``python -m core ...``, in the project folder because the recorded paths are
relative to it), stopping at the first stage that fails.

    python -m core train classifier --data DIR --recipe-of VERSION [--version NAME]
"""
from __future__ import annotations

import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from core.progress import Progress, ProgressCallback, null_progress

__all__ = ["Stage", "recipe_stages", "replay_commands", "run_recipe", "recipe_minutes",
           "recipe_folders", "staged_stages"]

TASK = "classifier"
# options a replayed stage never keeps (they are set per stage or belong to the original run)
_DROP_VALUE = {"--run-dir", "--init-from", "--version", "--out", "--job-id", "--eval-data"}
_DROP_FLAG = {"--resume", "--activate", "--no-publish", "--quiet"}


@dataclass(frozen=True)
class Stage:
    """One recorded stage: ``argv`` after ``python -m core`` (``pretrain classifier ...`` or
    ``train classifier ...``), its recorded minutes and a short label."""
    argv: tuple[str, ...]
    minutes: float | None
    label: str

    @property
    def pretrain(self) -> bool:
        return self.argv[:1] == ("pretrain",)


def _core_argv(command: str | None) -> tuple[str, ...]:
    if not command:
        raise ValueError("a stage of this recipe has no recorded command")
    parts = shlex.split(command)
    if "core" not in parts:
        raise ValueError(f"not a 'python -m core' command: {command!r}")
    return tuple(parts[parts.index("core") + 1:])


def _option(argv: Sequence[str], name: str) -> str | None:
    for i, a in enumerate(argv):
        if a == name and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith(name + "="):
            return a.split("=", 1)[1]
    return None


def recipe_stages(card: dict) -> list[Stage]:
    """The stages that produced ``card``'s version, oldest first (one stage for a version
    trained in one run). A chain that began from a plain weights file keeps that file as the
    first stage's ``--init-from``. Raises ValueError when a stage's command is missing."""
    training = card.get("training") or {}
    stages = [Stage(_core_argv(training.get("command")), training.get("minutes"), "")]
    node = card.get("initialisation") or {}
    while node:
        run = node.get("from_run")
        if run:
            stages.insert(0, Stage(_core_argv(run.get("command")), run.get("minutes"), ""))
            node = run.get("initialisation") or {}
            continue
        ssl = node.get("self_supervised")
        if ssl:
            stages.insert(0, Stage(_core_argv(ssl.get("command")), ssl.get("minutes"), ""))
        break
    n = len(stages)
    out = []
    for i, s in enumerate(stages):
        size = _option(s.argv, "--input-size")
        epochs = _option(s.argv, "--epochs")
        what = "self-supervised pre-training" if s.pretrain else "supervised training"
        label = f"stage {i + 1} of {n}: {what}" + (f", {epochs} epochs" if epochs else "") + \
            (f" at {size}²" if size else "")
        out.append(Stage(s.argv, s.minutes, label))
    return out


def recipe_minutes(stages: Sequence[Stage]) -> float | None:
    """The recorded minutes of all stages (None if any is unknown)."""
    if any(s.minutes is None for s in stages):
        return None
    return float(sum(s.minutes for s in stages))


def staged_stages(card: dict | None) -> list[Stage] | None:
    """:func:`recipe_stages` of a version made in more than one stage whose every stage is
    recorded; None otherwise (a single run, an ensemble, a card without commands)."""
    if not card:
        return None
    try:
        stages = recipe_stages(card)
    except ValueError:
        return None
    return stages if len(stages) > 1 else None


def recipe_folders(stages: Sequence[Stage], *, data: str,
                   extra_data: Sequence[str] | None = None) -> list[tuple[str, str]]:
    """(what, folder) of every folder a replay on ``data`` reads, so that a form can check they
    exist before queueing; recorded relative paths are taken from the project folder (where
    the stages run)."""
    from core.config import REPO_ROOT

    def here(p: str) -> str:
        return p if Path(p).is_absolute() else str((REPO_ROOT / p).resolve())

    original = _option(stages[-1].argv, "--data")
    out: list[tuple[str, str]] = [("Data folder", data)]
    for stage in stages:
        argv = list(stage.argv)
        for i, a in enumerate(argv[:-1]):
            value = argv[i + 1]
            if value == original:
                continue
            if a == "--data" and stage.pretrain:
                out.append(("Pre-training folder", here(value)))
            elif a == "--extra-data" and extra_data is None:
                out.append(("Extra training folder", here(value)))
    out += [("Extra training folder", e) for e in extra_data or ()]
    return list(dict.fromkeys(out))


def _strip(argv: Sequence[str]) -> list[str]:
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
            continue
        name = a.split("=", 1)[0]
        if name in _DROP_VALUE:
            skip = "=" not in a
            continue
        if name in _DROP_FLAG:
            continue
        out.append(a)
    return out


def _replace_option(argv: list[str], name: str, values: Sequence[str]) -> list[str]:
    """``argv`` without any ``name VALUE``, then ``name v`` for each of ``values``."""
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
            continue
        if a == name:
            skip = True
            continue
        if a.startswith(name + "="):
            continue
        out.append(a)
    for v in values:
        out += [name, v]
    return out


def replay_commands(stages: Sequence[Stage], *, data: str, version: str, run_root: str | Path,
                    extra_data: Sequence[str] | None = None, eval_data: str | None = None,
                    job_id: int | None = None) -> list[list[str]]:
    """Each stage's ``python -m core`` arguments for a new run of the recipe on ``data``.

    The recorded training folder (the last stage's ``--data``) becomes ``data`` wherever a
    stage names it (``--data``, ``--hold-out-validation-of``); ``extra_data``, when given,
    replaces every supervised stage's ``--extra-data``. Stage i writes into
    ``run_root/stage-i`` (pre-training: ``run_root/stage-i.weights.h5``) and starts from stage
    i-1's best weights; only the last stage publishes, as ``version``."""
    if not stages:
        raise ValueError("a recipe needs at least one stage")
    original = _option(stages[-1].argv, "--data")
    root = Path(run_root)
    out, previous = [], None
    for i, stage in enumerate(stages, start=1):
        argv = _strip(stage.argv)
        argv = [data if original is not None and a == original else a for a in argv]
        if extra_data is not None and not stage.pretrain:
            argv = _replace_option(argv, "--extra-data", extra_data)
        if stage.pretrain:
            target = root / f"stage-{i}.weights.h5"
            argv += ["--out", str(target)]
        else:
            target = root / f"stage-{i}" / "best.weights.h5"
            argv += ["--run-dir", str(root / f"stage-{i}")]
            init = str(previous) if previous is not None else _option(stage.argv, "--init-from")
            if init:
                argv += ["--init-from", init]
            if i == len(stages):
                argv += ["--version", version]
                if eval_data:
                    argv += ["--eval-data", eval_data]
            else:
                argv.append("--no-publish")
        if job_id is not None:
            argv += ["--job-id", str(job_id)]
        out.append(argv)
        previous = target
    return out


def _stage_complete(stage: Stage, argv: Sequence[str]) -> bool:
    """Whether a replayed stage's output is all there: a pre-training's weights and sidecar,
    a training run's ``card_draft.json`` (written after its last epoch and calibration)."""
    if stage.pretrain:
        out = _option(argv, "--out")
        return bool(out) and Path(out).is_file() and Path(out + ".json").is_file()
    run_dir = _option(argv, "--run-dir")
    return bool(run_dir) and (Path(run_dir) / "card_draft.json").is_file() and \
        (Path(run_dir) / "best.weights.h5").is_file()


def run_recipe(card: dict, *, data: str, version: str, run_root: str | Path,
               extra_data: Sequence[str] | None = None, eval_data: str | None = None,
               job_id: int | None = None, progress: ProgressCallback = null_progress,
               cwd: str | Path | None = None, dry_run: bool = False,
               resume: bool = False) -> list[list[str]]:
    """Run the recipe of ``card`` stage by stage (child processes of this Python, in ``cwd``,
    default the project folder). Returns the commands; raises RuntimeError naming the stage
    that failed. ``dry_run``: only return them. ``resume``: skip the stages (but the last)
    whose output is complete in ``run_root`` and continue the first other one from its last
    checkpoint."""
    from core.config import REPO_ROOT

    stages = recipe_stages(card)
    commands = replay_commands(stages, data=data, version=version, run_root=run_root,
                               extra_data=extra_data, eval_data=eval_data, job_id=job_id)
    if dry_run:
        return commands
    import os

    from core.jobs import RECIPE_STAGE_ENV

    continuing = resume
    for i, (stage, argv) in enumerate(zip(stages, commands), start=1):
        if continuing and i < len(stages) and _stage_complete(stage, argv):
            progress(Progress(task=TASK, phase="load", message=(
                f"recipe of {card.get('version')}: {stage.label} already complete, skipped")))
            continue
        if continuing and not stage.pretrain:
            argv = [*argv, "--resume"]
        continuing = False
        progress(Progress(task=TASK, phase="load", message=f"recipe of {card.get('version')}: "
                                                              f"{stage.label}"))
        env = dict(os.environ)
        env.pop(RECIPE_STAGE_ENV, None)
        if i < len(stages):     # its "done" must not end the job
            env[RECIPE_STAGE_ENV] = f"{i}/{len(stages)}"
        rc = subprocess.call([sys.executable, "-m", "core", *argv], cwd=str(cwd or REPO_ROOT),
                             env=env)
        if rc != 0:
            raise RuntimeError(f"{stage.label} failed (exit code {rc}); its checkpoints are in "
                               f"{Path(run_root)}")
    return commands
