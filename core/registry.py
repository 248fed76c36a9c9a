"""Model registry: ``weights/<task>/<version>/`` holding ``model.weights.h5`` + ``model_card.json``.

One *active* version per task and slot, named in ``weights/<task>/ACTIVE`` (default slot) or
``weights/<task>/ACTIVE.<slot>`` and switched atomically (write a temporary file, then
``os.replace``). Slots let one task hold several active models, e.g. super-resolution keeps one
per method and scale: slot ``"rrdb_psnr_x4"``, ``"esrgan_x4"``, ``"srcnn_x4"``. Weights are stored as a Keras weights file and
loaded into the architecture rebuilt from the card, so weights trained on any Keras 3 backend
load in the TensorFlow app.

Model card (JSON) keys — required for every task: ``task``, ``version``, ``architecture``,
``network`` (the builder's keyword arguments), ``created_at``; required per task:
classifier → ``classes``, ``input_size``, ``preprocessing``; sr → ``scale``. Optional and
recommended: ``calibration`` ({"temperature": T}), ``pretrained`` (bool / description),
``data`` (path, fingerprint, counts), ``training`` (config and command), ``metrics``,
``caveats`` (list of str), ``credits``.
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

from core.config import weights_dir as _default_weights_dir
from core.errors import ModelCardError, ModelNotFoundError

__all__ = [
    "TASKS", "CARD_FILE", "WEIGHTS_FILE", "validate_card", "new_version_name", "save_version",
    "replace_card",
    "list_versions", "load_card", "active_slots", "version_dir", "active_version", "activate", "load_model",
    "delete_version",
]

TASKS = ("classifier", "sr")
CARD_FILE = "model_card.json"
WEIGHTS_FILE = "model.weights.h5"
_REQUIRED = ("task", "version", "architecture", "network", "created_at")
_REQUIRED_BY_TASK = {"classifier": ("classes", "input_size", "preprocessing"), "sr": ("scale",)}
_VERSION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def _root(weights_dir: Path | str | None) -> Path:
    return Path(weights_dir) if weights_dir is not None else _default_weights_dir()


def _check_task(task: str) -> None:
    if task not in TASKS:
        raise ModelCardError(f"Unknown task {task!r}; expected one of {', '.join(TASKS)}.")


def _check_version(version: str) -> None:
    if not isinstance(version, str) or not _VERSION_RE.match(version):
        raise ModelCardError(
            f"Invalid version name {version!r}: use letters, digits, '.', '_' or '-'.")


def validate_card(card: Any, *, task: str | None = None, where: str = "model card") -> dict:
    """Check a card's shape; raise ModelCardError naming the first problem. Returns the card."""
    if not isinstance(card, dict):
        raise ModelCardError(f"{where}: expected a JSON object, got {type(card).__name__}.")
    missing = [k for k in _REQUIRED if k not in card]
    if missing:
        raise ModelCardError(f"{where}: missing key(s) {', '.join(missing)}.")
    _check_task(card["task"])
    if task is not None and card["task"] != task:
        raise ModelCardError(f"{where}: is a {card['task']!r} model, expected {task!r}.")
    missing = [k for k in _REQUIRED_BY_TASK[card["task"]] if k not in card]
    if missing:
        raise ModelCardError(f"{where}: missing {card['task']} key(s) {', '.join(missing)}.")
    if not isinstance(card["network"], dict):
        raise ModelCardError(f"{where}: 'network' must be an object of builder arguments.")
    if card["task"] == "classifier":
        classes = card["classes"]
        if not (isinstance(classes, list) and len(classes) >= 2
                and all(isinstance(c, str) for c in classes)):
            raise ModelCardError(f"{where}: 'classes' must be a list of at least two names.")
    return card


def new_version_name(prefix: str = "v") -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime(f"{prefix}%Y%m%d-%H%M%S")


def version_dir(task: str, version: str, *, weights_dir: Path | str | None = None) -> Path:
    _check_task(task)
    _check_version(version)
    return _root(weights_dir) / task / version


def save_version(task: str, model, card: dict, *, version: str | None = None,
                 activate: bool = False, slot: str | None = None, weights_dir: Path | str | None = None,
                 extra_files: dict[str, Path] | None = None) -> Path:
    """Write weights + card into a new version folder (atomically: temp dir, then rename)."""
    version = version or card.get("version") or new_version_name()
    card = dict(card, task=task, version=version)
    card.setdefault("created_at", _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))
    validate_card(card, task=task)
    final = version_dir(task, version, weights_dir=weights_dir)
    if final.exists():
        raise ModelCardError(f"Version {task}/{version} already exists.")
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{version}-", dir=final.parent))
    try:
        model.save_weights(tmp / WEIGHTS_FILE)
        (tmp / CARD_FILE).write_text(json.dumps(card, indent=2, sort_keys=False) + "\n")
        for name, src in (extra_files or {}).items():
            shutil.copy2(src, tmp / name)
        # mkdtemp creates 0700; a published version must be readable by the app's user too.
        os.chmod(tmp, 0o755)
        for f in tmp.iterdir():
            os.chmod(f, 0o644)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if activate:
        globals()["activate"](task, version, slot=slot, weights_dir=weights_dir)
    return final


def replace_card(task: str, version: str, card: dict, *,
                 weights_dir: Path | str | None = None) -> Path:
    """Validate ``card`` and swap it in for ``version``'s card atomically (temp file, then
    rename), readable by the app's user like a freshly saved version (0644)."""
    validate_card(card, task=task)
    folder = version_dir(task, version, weights_dir=weights_dir)
    if not folder.is_dir():
        raise ModelNotFoundError(f"No version {task}/{version} in {folder.parent}.")
    fd, tmp = tempfile.mkstemp(prefix=".card-", dir=folder)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(json.dumps(card, indent=2) + "\n")
        os.chmod(tmp, 0o644)   # mkstemp creates 0600
        os.replace(tmp, folder / CARD_FILE)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return folder / CARD_FILE


def load_card(task: str, version: str | None = None, *, slot: str | None = None,
              weights_dir: Path | str | None = None) -> dict:
    """The card of ``version`` (default: the active version of ``slot``)."""
    _check_task(task)
    version = version or active_version(task, slot=slot, weights_dir=weights_dir)
    if version is None:
        what = f"{task} model" + (f" for {slot}" if slot else "")
        raise ModelNotFoundError(
            f"No active {what} in {_root(weights_dir) / task}. "
            f"Train one (python -m core train {task} ...) or activate a version.")
    path = version_dir(task, version, weights_dir=weights_dir) / CARD_FILE
    if not path.is_file():
        raise ModelNotFoundError(f"No {task} model version {version!r} (looked for {path}).")
    try:
        card = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ModelCardError(f"{path}: not valid JSON ({err.msg}, line {err.lineno}).") from None
    validate_card(card, task=task, where=str(path))
    if card["version"] != version:
        raise ModelCardError(f"{path}: card says version {card['version']!r}, folder is {version!r}.")
    return card


def list_versions(task: str, *, weights_dir: Path | str | None = None) -> list[dict]:
    """Cards of every valid version of ``task``, newest first; broken folders are skipped."""
    root = _root(weights_dir) / task
    cards = []
    if root.is_dir():
        for d in root.iterdir():
            if d.is_dir() and not d.name.startswith(".") and (d / CARD_FILE).is_file():
                try:
                    cards.append(load_card(task, d.name, weights_dir=weights_dir))
                except ModelCardError:
                    continue
    return sorted(cards, key=lambda c: c.get("created_at", ""), reverse=True)


def _pointer_name(slot: str | None) -> str:
    if slot is None:
        return "ACTIVE"
    _check_version(slot)
    return f"ACTIVE.{slot}"


def active_version(task: str, *, slot: str | None = None,
                   weights_dir: Path | str | None = None) -> str | None:
    _check_task(task)
    pointer = _root(weights_dir) / task / _pointer_name(slot)
    if not pointer.is_file():
        return None
    name = pointer.read_text().strip()
    return name or None


def activate(task: str, version: str, *, slot: str | None = None,
             weights_dir: Path | str | None = None) -> None:
    """Make ``version`` the active one of ``slot``; atomic, so readers never see a half-written
    pointer."""
    load_card(task, version, weights_dir=weights_dir)  # validates that it exists and is sound
    folder = _root(weights_dir) / task
    fd, tmp = tempfile.mkstemp(prefix=".ACTIVE-", dir=folder)
    with os.fdopen(fd, "w") as fh:
        fh.write(version + "\n")
    os.chmod(tmp, 0o644)  # mkstemp creates 0600
    os.replace(tmp, folder / _pointer_name(slot))


def active_slots(task: str, *, weights_dir: Path | str | None = None) -> dict[str, str]:
    """Every slot's active version: ``{"default" | slot: version}``."""
    folder = _root(weights_dir) / task
    out = {}
    for p in sorted(folder.glob("ACTIVE*")) if folder.is_dir() else []:
        slot = "default" if p.name == "ACTIVE" else p.name[len("ACTIVE."):]
        if p.read_text().strip():
            out[slot] = p.read_text().strip()
    return out


def delete_version(task: str, version: str, *, weights_dir: Path | str | None = None) -> None:
    if version in active_slots(task, weights_dir=weights_dir).values():
        raise ModelCardError(f"{task}/{version} is active; activate another version first.")
    shutil.rmtree(version_dir(task, version, weights_dir=weights_dir))


def load_model(task: str, version: str | None = None, *, slot: str | None = None,
               weights_dir: Path | str | None = None):
    """Rebuild the model from its card and load its weights. Returns ``(model, card)``."""
    from core.models import build_model

    card = load_card(task, version, slot=slot, weights_dir=weights_dir)
    folder = version_dir(task, card["version"], weights_dir=weights_dir)
    weights = folder / WEIGHTS_FILE
    if not weights.is_file():
        raise ModelCardError(f"{folder}: weights file {WEIGHTS_FILE} is missing.")
    model = build_model(card)
    try:
        model.load_weights(weights)
    except Exception as err:  # Keras raises ValueError/KeyError on shape or layer mismatch
        raise ModelCardError(
            f"{folder}: weights do not fit the architecture in the card ({err}).") from None
    return model, card
