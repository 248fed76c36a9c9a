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

**Ensembles** (classifier only): a version whose card has ``"architecture": "ensemble"`` holds
no weights file; its ``members`` (1 to :data:`MAX_ENSEMBLE_MEMBERS` entries ``{"version",
"weights_sha256"}``) name other versions of the same registry (any root: an ensemble in the
writable registry may use shipped members) and the SHA-256 of their weights file when the
ensemble was made; it needs no ``network``. :func:`ensemble_member_cards` checks that every
member is there, unchanged and consistent with the ensemble (classes, input size,
preprocessing apart from ``tta``); ``core.classifier.inference.Classifier.load`` joins the
members (:func:`load_model` has no single model for an ensemble);
:func:`weights_version` names the member that stands for it where one network is needed;
:func:`delete_version` refuses to delete a member.

**Shipped and trained versions.** A weights root holding a ``READ_ONLY`` marker file (the
repository's ``weights/``) is *shipped*: nothing is ever written there by default. The registry
then reads two roots, the writable one first: ``config.registry_dir()``
(``$MEDSCAN_DATA_DIR/weights``: versions trained in the app, the app's ``ACTIVE`` pointers and
their history) and the shipped one. New versions are *candidates* until activated; activation
and :func:`rollback` are recorded in ``<task>/HISTORY.jsonl`` and, through
:func:`activate_audited` / :func:`rollback`, in the audit log. Evaluations of versions on a
fixed evaluation set are kept beside them (:func:`record_evaluation`, keyed by the set's
fingerprint), never in a shipped card. A root without the marker is one plain read-write
registry, as before (tests, developer tools).

**Several app servers.** :func:`activate_audited` and :func:`rollback` also write the active
version of the task's slot into the database (``registry_state``, with a generation counter,
in the audit row's transaction). A process that installed a reader of those rows
(:func:`set_shared_pointers`, done by ``core.shared_registry.install``: the app, ``python -m
core models``) takes the database's version over the file pointers' — unless that version is
not in this server's registry, or the writable registry's pointer was written *later* than the
row (a file-only activation such as ``train --activate``). Without a reader or a row, the file
pointers decide, as before; both are always written.
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from core.config import weights_dir as _default_weights_dir
from core.errors import ModelCardError, ModelNotFoundError

__all__ = [
    "TASKS", "CARD_FILE", "WEIGHTS_FILE", "validate_card", "new_version_name", "save_version",
    "replace_card",
    "list_versions", "load_card", "active_slots", "version_dir", "active_version", "activate", "load_model",
    "delete_version", "READ_ONLY_MARKER", "is_read_only", "roots", "location", "version_status",
    "version_rows", "history", "previous_version", "activate_audited", "rollback",
    "record_evaluation", "evaluations", "compare_on_eval_set", "MIN_EVAL_IMAGES", "METRIC_LABELS",
    "set_shared_pointers", "shared_state", "ENSEMBLE", "MAX_ENSEMBLE_MEMBERS", "is_ensemble",
    "ensemble_member_cards", "ensembles_using", "weights_sha256", "weights_version",
]

TASKS = ("classifier", "sr", "segmentation")
CARD_FILE = "model_card.json"
WEIGHTS_FILE = "model.weights.h5"
_REQUIRED = ("task", "version", "architecture", "network", "created_at")
_REQUIRED_BY_TASK = {"classifier": ("classes", "input_size", "preprocessing"), "sr": ("scale",),
                     "segmentation": ("input_size", "preprocessing")}
ENSEMBLE = "ensemble"            # card["architecture"] of an ensemble version (no weights file)
MAX_ENSEMBLE_MEMBERS = 3
_VERSION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
READ_ONLY_MARKER = "READ_ONLY"   # in a weights root: shipped versions, never written by default
HISTORY_FILE = "HISTORY.jsonl"
_EVAL_DIR = ".evaluations"
MIN_EVAL_IMAGES = 100            # fewer images than this: activation warns loudly
_COMPARE = ("accuracy", "macro_f1", "ece", "nll", "brier")   # higher is better: first two
_HIGHER_BETTER = {"accuracy", "macro_f1"}
#: The one table of compared metrics as people read them (warnings here; chart axes, change
#: tables and messages in the app take it from here).
METRIC_LABELS = {"accuracy": "accuracy", "macro_f1": "macro-F1",
                 "ece": "ECE (lower is better)", "nll": "NLL (lower is better)",
                 "brier": "Brier score (lower is better)"}


def _root(weights_dir: Path | str | None) -> Path:
    return Path(weights_dir) if weights_dir is not None else _default_weights_dir()


def is_read_only(weights_dir: Path | str | None = None) -> bool:
    """Whether the (shipped) weights root is marked read-only."""
    return (_root(weights_dir) / READ_ONLY_MARKER).is_file()


def roots(weights_dir: Path | str | None = None) -> list[tuple[Path, bool]]:
    """``(root, writable)`` in lookup order: the data-dir registry, then a read-only shipped
    root; just ``[(root, True)]`` for a root without the marker."""
    base = _root(weights_dir)
    if not (base / READ_ONLY_MARKER).is_file():
        return [(base, True)]
    from core.config import registry_dir

    local = registry_dir()
    if local.resolve() == base.resolve():
        return [(base, False)]
    return [(local, True), (base, False)]


def _write_root(weights_dir: Path | str | None) -> Path:
    for root, writable in roots(weights_dir):
        if writable:
            return root
    raise ModelCardError(f"{_root(weights_dir)} is read-only (shipped versions) and no writable "
                         "registry is configured (MEDSCAN_REGISTRY_DIR).")


def location(task: str, version: str, *, weights_dir: Path | str | None = None
             ) -> tuple[Path, bool] | None:
    """``(version folder, writable)`` of an existing version, else ``None``."""
    _check_task(task)
    _check_version(version)
    for root, writable in roots(weights_dir):
        if (root / task / version).is_dir():
            return root / task / version, writable
    return None


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
    ensemble = is_ensemble(card)
    missing = [k for k in _REQUIRED if k not in card and not (ensemble and k == "network")]
    if missing:
        raise ModelCardError(f"{where}: missing key(s) {', '.join(missing)}.")
    _check_task(card["task"])
    if task is not None and card["task"] != task:
        raise ModelCardError(f"{where}: is a {card['task']!r} model, expected {task!r}.")
    missing = [k for k in _REQUIRED_BY_TASK[card["task"]] if k not in card]
    if missing:
        raise ModelCardError(f"{where}: missing {card['task']} key(s) {', '.join(missing)}.")
    if not isinstance(card.get("network", {}), dict):
        raise ModelCardError(f"{where}: 'network' must be an object of builder arguments.")
    if card["task"] == "classifier":
        classes = card["classes"]
        if not (isinstance(classes, list) and len(classes) >= 2
                and all(isinstance(c, str) for c in classes)):
            raise ModelCardError(f"{where}: 'classes' must be a list of at least two names.")
    if ensemble:
        _validate_members(card, where)
    return card


def is_ensemble(card: Any) -> bool:
    """Whether ``card`` describes an ensemble version (members, no weights file)."""
    return isinstance(card, dict) and card.get("architecture") == ENSEMBLE


def weights_version(card: dict) -> str:
    """The version whose weights file stands for ``card`` when one network is needed (to
    fine-tune from, to take features from, to read a training recipe from): the card's own,
    or an ensemble's first member."""
    return card["members"][0]["version"] if is_ensemble(card) else card["version"]


def _validate_members(card: dict, where: str) -> None:
    if card["task"] != "classifier":
        raise ModelCardError(f"{where}: only classifier versions can be ensembles.")
    members = card.get("members")
    if not (isinstance(members, list) and 1 <= len(members) <= MAX_ENSEMBLE_MEMBERS
            and all(isinstance(m, dict) and isinstance(m.get("version"), str)
                    and isinstance(m.get("weights_sha256"), str) for m in members)):
        raise ModelCardError(
            f"{where}: an ensemble's 'members' must be a list of 1 to {MAX_ENSEMBLE_MEMBERS} "
            "entries, each with 'version' and 'weights_sha256'.")
    names = [m["version"] for m in members]
    for name in names:
        _check_version(name)
    if len(set(names)) != len(names):
        raise ModelCardError(f"{where}: an ensemble lists the same member twice.")
    if card.get("version") in names:
        raise ModelCardError(f"{where}: an ensemble cannot be its own member.")


def new_version_name(prefix: str = "v") -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime(f"{prefix}%Y%m%d-%H%M%S")


def version_dir(task: str, version: str, *, weights_dir: Path | str | None = None) -> Path:
    """The folder of ``version`` wherever it lives; for a new one, where it would be written."""
    found = location(task, version, weights_dir=weights_dir)
    return found[0] if found else _write_root(weights_dir) / task / version


def save_version(task: str, model, card: dict, *, version: str | None = None,
                 activate: bool = False, slot: str | None = None, weights_dir: Path | str | None = None,
                 extra_files: dict[str, Path] | None = None) -> Path:
    """Write weights + card into a new version folder (atomically: temp dir, then rename), in
    the writable registry (never a read-only shipped root). Not activated unless asked: a
    new version is a candidate. An ensemble card is written alone (``model`` is not saved:
    its members hold the weights; they must be in this registry, unchanged)."""
    version = version or card.get("version") or new_version_name()
    card = dict(card, task=task, version=version)
    card.setdefault("created_at", _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))
    validate_card(card, task=task)
    if location(task, version, weights_dir=weights_dir) is not None:
        raise ModelCardError(f"Version {task}/{version} already exists.")
    if is_ensemble(card):
        ensemble_member_cards(task, card, weights_dir=weights_dir)
    elif model is None:
        raise ModelCardError(f"Version {task}/{version}: no model to save (only an ensemble "
                             "card has no weights).")
    final = _write_root(weights_dir) / task / version
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{version}-", dir=final.parent))
    try:
        if not is_ensemble(card):
            model.save_weights(tmp / WEIGHTS_FILE)
        (tmp / CARD_FILE).write_text(_card_text(card))
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


def _card_text(card: dict) -> str:
    """A card as written to disk: JSON, with paths of this machine made relative to the project
    (:func:`core.config.portable`: data sets and commands stay meaningful on another machine)."""
    from core.config import portable

    return portable(json.dumps(card, indent=2)) + "\n"


def replace_card(task: str, version: str, card: dict, *,
                 weights_dir: Path | str | None = None) -> Path:
    """Validate ``card`` and swap it in for ``version``'s card atomically (temp file, then
    rename), readable by the app's user like a freshly saved version (0644). A developer's
    tool (``evaluate --record``, ``calibrate``): it edits the card where the version lives,
    a shipped one included; the app never calls it."""
    validate_card(card, task=task)
    found = location(task, version, weights_dir=weights_dir)
    if found is None:
        raise ModelNotFoundError(f"No version {task}/{version} in {_root(weights_dir) / task}.")
    folder = found[0]
    fd, tmp = tempfile.mkstemp(prefix=".card-", dir=folder)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(_card_text(card))
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
    """Cards of every valid version of ``task`` in every root, newest first; broken folders
    are skipped."""
    _check_task(task)
    cards, seen = [], set()
    for base, _ in roots(weights_dir):
        root = base / task
        if not root.is_dir():
            continue
        for d in root.iterdir():
            if (d.is_dir() and not d.name.startswith(".") and d.name not in seen
                    and (d / CARD_FILE).is_file()):
                try:
                    cards.append(load_card(task, d.name, weights_dir=weights_dir))
                    seen.add(d.name)
                except ModelCardError:
                    continue
    return sorted(cards, key=lambda c: c.get("created_at", ""), reverse=True)


def _pointer_name(slot: str | None) -> str:
    if slot is None:
        return "ACTIVE"
    _check_version(slot)
    return f"ACTIVE.{slot}"


# The database's active pointers, when this process reads them (core.shared_registry): a
# callable returning {(task, slot): view with .version and .updated_at}; None: files only.
_shared_pointers: Callable[[], Mapping] | None = None


def set_shared_pointers(reader: Callable[[], Mapping] | None) -> None:
    """Install (or, with None, remove) the reader of the database's active pointers."""
    global _shared_pointers
    _shared_pointers = reader


def shared_state(task: str, slot: str | None = None):
    """The database row of ``task``'s ``slot`` as the installed reader last saw it (version,
    generation, updated_at, username, ...), else None."""
    if _shared_pointers is None:
        return None
    try:
        return _shared_pointers().get((task, slot))
    except Exception:  # noqa: BLE001 - the files still decide
        return None


def _file_active(task: str, slot: str | None, weights_dir) -> tuple[str | None, Path | None]:
    """The file pointers' active version and the pointer file it came from."""
    for root, _ in roots(weights_dir):
        pointer = root / task / _pointer_name(slot)
        if pointer.is_file():
            name = pointer.read_text().strip()
            if name:
                return name, pointer
    return None, None


def active_version(task: str, *, slot: str | None = None,
                   weights_dir: Path | str | None = None) -> str | None:
    """The active version of ``slot``: the database's (see the module doc), else the writable
    registry's pointer, else the shipped one."""
    _check_task(task)
    name, pointer = _file_active(task, slot, weights_dir)
    row = shared_state(task, slot)
    if row is None or row.version == name:
        return name
    if location(task, row.version, weights_dir=weights_dir) is None:
        return name            # not on this server's storage: the files decide
    if pointer is not None and name is not None and _written_later(pointer, row, weights_dir):
        return name
    return row.version


def _written_later(pointer: Path, row, weights_dir) -> bool:
    """Whether the writable registry's ``pointer`` was written after the database ``row``: a
    file-only activation (``train --activate``, a developer's ``activate``) then wins; an
    audited activation writes the row after the file. Compares the file's mtime with the row's
    time, so the machines' clocks must agree (NTP)."""
    if not any(writable and pointer.parent.parent == root for root, writable in roots(weights_dir)):
        return False           # a shipped pointer never overrides an activation
    try:
        return pointer.stat().st_mtime > row.updated_at.timestamp()
    except OSError:
        return False


def activate(task: str, version: str, *, slot: str | None = None,
             weights_dir: Path | str | None = None, user: str | None = None,
             action: str = "activate", session=None, user_id: int | None = None) -> str | None:
    """Make ``version`` the active one of ``slot`` (pointer in the writable registry; atomic,
    so readers never see a half-written pointer) and append it to the task's history; with a
    database ``session``, also its ``registry_state`` row (every app server follows it).
    Returns the previously active version. See :func:`activate_audited` for the app's path."""
    card = load_card(task, version, weights_dir=weights_dir)  # it exists and is sound
    if is_ensemble(card):
        ensemble_member_cards(task, card, weights_dir=weights_dir)
    previous = active_version(task, slot=slot, weights_dir=weights_dir)
    folder = _write_root(weights_dir) / task
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".ACTIVE-", dir=folder)
    with os.fdopen(fd, "w") as fh:
        fh.write(version + "\n")
    os.chmod(tmp, 0o644)  # mkstemp creates 0600
    os.replace(tmp, folder / _pointer_name(slot))
    entry = {"at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
             "action": action, "slot": slot, "version": version, "previous": previous,
             "user": user}
    with open(folder / HISTORY_FILE, "a") as fh:
        fh.write(json.dumps(entry) + "\n")
    if session is not None:
        from core.db.registry_state import record_active

        record_active(session, task, slot, version, previous=previous, action=action,
                      user_id=user_id, username=user)
    return previous


def history(task: str, *, slot: str | None = None,
            weights_dir: Path | str | None = None) -> list[dict]:
    """Activations of ``slot`` in the writable registry, oldest first."""
    path = _write_root(weights_dir) / task / HISTORY_FILE
    out = []
    if path.is_file():
        for line in path.read_text().splitlines():
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                continue
            if entry.get("slot") == slot:
                out.append(entry)
    return out


def previous_version(task: str, *, slot: str | None = None,
                     weights_dir: Path | str | None = None) -> str | None:
    """The version a rollback would re-activate: the one active before the current one was
    activated (a rollback itself is not undone by another rollback)."""
    current = active_version(task, slot=slot, weights_dir=weights_dir)
    row = shared_state(task, slot)
    if (row is not None and row.version == current and row.action != "rollback"
            and row.previous and row.previous != current):
        return row.previous     # the activation every server follows (any server's history)
    for entry in reversed(history(task, slot=slot, weights_dir=weights_dir)):
        if entry.get("version") == current and entry.get("action") != "rollback":
            prev = entry.get("previous")
            return prev if prev and prev != current else None
    return None


def activate_audited(session, task: str, version: str, *, user_id: int | None,
                     slot: str | None = None, weights_dir: Path | str | None = None,
                     user: str | None = None, **details) -> str | None:
    """:func:`activate` and an audit-log row ``model_activate`` (task, version, slot, previous
    and ``details``, e.g. metric deltas). Returns the previous version."""
    from core.db.audit import audit

    previous = activate(task, version, slot=slot, weights_dir=weights_dir, user=user,
                        session=session, user_id=user_id)
    audit(session, user_id, "model_activate", task=task, version=version, slot=slot,
          previous=previous, **details)
    return previous


def rollback(session, task: str, *, user_id: int | None, slot: str | None = None,
             weights_dir: Path | str | None = None, user: str | None = None) -> tuple[str, str]:
    """Re-activate the previously active version, audited as ``model_rollback``. Returns
    ``(now active, rolled back from)``; ``ModelNotFoundError`` when there is nothing to roll
    back to."""
    from core.db.audit import audit

    target = previous_version(task, slot=slot, weights_dir=weights_dir)
    current = active_version(task, slot=slot, weights_dir=weights_dir)
    if target is None:
        raise ModelNotFoundError(f"Nothing to roll back to: no earlier active {task} version "
                                 "is recorded.")
    activate(task, target, slot=slot, weights_dir=weights_dir, user=user, action="rollback",
             session=session, user_id=user_id)
    audit(session, user_id, "model_rollback", task=task, version=target, slot=slot,
          previous=current)
    return target, current


def active_slots(task: str, *, weights_dir: Path | str | None = None) -> dict[str, str]:
    """Every slot's active version: ``{"default" | slot: version}`` (as :func:`active_version`
    says: the database's rows, the writable registry's pointers, the shipped ones)."""
    slots: list[str | None] = []
    for root, _ in roots(weights_dir):
        folder = root / task
        for p in sorted(folder.glob("ACTIVE*")) if folder.is_dir() else []:
            slots.append(None if p.name == "ACTIVE" else p.name[len("ACTIVE."):])
    if _shared_pointers is not None:
        try:
            slots += [s for (t, s) in _shared_pointers() if t == task]
        except Exception:  # noqa: BLE001 - the files still decide
            pass
    out: dict[str, str] = {}
    for slot in dict.fromkeys(slots):
        try:
            version = active_version(task, slot=slot, weights_dir=weights_dir)
        except ModelCardError:   # a stray ACTIVE.<odd name> file
            continue
        if version:
            out.setdefault("default" if slot is None else slot, version)
    return out


def version_status(task: str, version: str, *, weights_dir: Path | str | None = None) -> str:
    """``active`` (in any slot), else ``shipped`` (read-only root) or ``candidate``."""
    if version in active_slots(task, weights_dir=weights_dir).values():
        return "active"
    found = location(task, version, weights_dir=weights_dir)
    return "shipped" if found is not None and not found[1] else "candidate"


def version_rows(task: str, *, weights_dir: Path | str | None = None) -> list[dict]:
    """``{"version", "status", "where", "created_at", "architecture"}`` per version, newest
    first (``python -m core models list`` and the Model versions page)."""
    rows = []
    for card in list_versions(task, weights_dir=weights_dir):
        found = location(task, card["version"], weights_dir=weights_dir)
        rows.append({"version": card["version"],
                     "status": version_status(task, card["version"], weights_dir=weights_dir),
                     "where": ("shipped (read-only)" if found and not found[1] else
                               "app registry" if len(roots(weights_dir)) > 1 else "registry"),
                     "created_at": card.get("created_at", ""),
                     "architecture": card.get("architecture")})
    return rows


def delete_version(task: str, version: str, *, weights_dir: Path | str | None = None) -> None:
    if version in active_slots(task, weights_dir=weights_dir).values():
        raise ModelCardError(f"{task}/{version} is active; activate another version first.")
    found = location(task, version, weights_dir=weights_dir)
    if found is None:
        raise ModelNotFoundError(f"No version {task}/{version}.")
    if not found[1]:
        raise ModelCardError(f"{task}/{version} is a shipped version (read-only).")
    users = ensembles_using(task, version, weights_dir=weights_dir)
    if users:
        raise ModelCardError(
            f"{task}/{version} is a member of the ensemble{'s' if len(users) > 1 else ''} "
            f"{', '.join(users)}: delete {'them' if len(users) > 1 else 'it'} first.")
    shutil.rmtree(found[0])


def ensembles_using(task: str, version: str, *, weights_dir: Path | str | None = None
                    ) -> list[str]:
    """The ensemble versions of ``task`` (any root) that list ``version`` as a member."""
    return sorted(c["version"] for c in list_versions(task, weights_dir=weights_dir)
                  if is_ensemble(c) and version in [m["version"] for m in c["members"]])


def weights_sha256(task: str, version: str, *, weights_dir: Path | str | None = None) -> str:
    """``"sha256:<hex>"`` of a version's weights file (an ensemble's member entries)."""
    import hashlib

    path = version_dir(task, version, weights_dir=weights_dir) / WEIGHTS_FILE
    if not path.is_file():
        raise ModelCardError(f"{task}/{version} has no weights file {WEIGHTS_FILE}.")
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return "sha256:" + h.hexdigest()


def _without_tta(preprocessing: Any, input_size: Any) -> Any:
    if not isinstance(preprocessing, dict):
        return preprocessing
    out = {k: v for k, v in preprocessing.items() if k != "tta"}
    out.setdefault("size", [input_size] * 2)
    out["size"] = list(out["size"])
    return out


def ensemble_member_cards(task: str, card: dict, *, weights_dir: Path | str | None = None
                          ) -> list[dict]:
    """The member cards of the ensemble ``card``, in its order, after checking in words that
    every member is in this registry, is no ensemble itself, has the weights the ensemble was
    made with (SHA-256) and the ensemble's classes, input size and preprocessing (``tta``
    apart: the ensemble sets it for all of its members). ``ModelCardError`` otherwise."""
    name = card.get("version", "?")
    out = []
    for entry in card["members"]:
        member = entry["version"]
        try:
            mcard = load_card(task, member, weights_dir=weights_dir)
        except ModelNotFoundError:
            raise ModelCardError(
                f"Ensemble {name}: its member {member} is not in the registry (deleted, or in "
                "another weights folder); recreate the ensemble from versions that exist.") from None
        except ModelCardError as err:
            raise ModelCardError(f"Ensemble {name}: its member {member} is unusable: {err}") from None
        if is_ensemble(mcard):
            raise ModelCardError(f"Ensemble {name}: its member {member} is itself an ensemble; "
                                 "list that ensemble's members instead.")
        if weights_sha256(task, member, weights_dir=weights_dir) != entry["weights_sha256"]:
            raise ModelCardError(
                f"Ensemble {name}: the weights of its member {member} have changed since the "
                "ensemble was made (SHA-256 differs); its temperature and statistics no longer "
                "apply: make the ensemble again.")
        for key, label in (("classes", "classes"), ("input_size", "input size")):
            if mcard.get(key) != card.get(key):
                raise ModelCardError(f"Ensemble {name}: member {member} has {label} "
                                     f"{mcard.get(key)!r}, the ensemble {card.get(key)!r}.")
        mine = _without_tta(mcard.get("preprocessing"), mcard.get("input_size"))
        theirs = _without_tta(card.get("preprocessing"), card.get("input_size"))
        if mine != theirs:
            diff = sorted(k for k in set(mine) | set(theirs) if mine.get(k) != theirs.get(k)) \
                if isinstance(mine, dict) and isinstance(theirs, dict) else ["preprocessing"]
            raise ModelCardError(f"Ensemble {name}: member {member}'s preprocessing differs from "
                                 f"the ensemble's ({', '.join(diff)}).")
        out.append(mcard)
    return out


# ------------------------------------------------------------------ evaluation-set figures


def _fp_key(fingerprint: str) -> str:
    return re.sub(r"[^A-Za-z0-9]", "", fingerprint.split(":")[-1])[:16] or "unknown"


def record_evaluation(task: str, version: str, report: dict, *,
                      weights_dir: Path | str | None = None) -> Path:
    """Keep ``report`` (needs ``data_fingerprint`` and ``n``; ``data`` recommended) as the
    figures of ``version`` on that evaluation set, in the writable registry (so shipped
    versions can be evaluated too). Replaces an earlier report on the same set."""
    load_card(task, version, weights_dir=weights_dir)
    if not report.get("data_fingerprint") or not isinstance(report.get("n"), int):
        raise ModelCardError("An evaluation report needs 'data_fingerprint' and 'n'.")
    entry = dict(report, version=version, recorded_at=_dt.datetime.now(
        _dt.timezone.utc).isoformat(timespec="microseconds"))
    folder = _write_root(weights_dir) / task / _EVAL_DIR / version
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{_fp_key(report['data_fingerprint'])}.json"
    fd, tmp = tempfile.mkstemp(prefix=".eval-", dir=folder)
    with os.fdopen(fd, "w") as fh:
        fh.write(json.dumps(entry, indent=1) + "\n")
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)
    return path


def evaluations(task: str, version: str | None = None, *,
                weights_dir: Path | str | None = None) -> list[dict]:
    """Recorded evaluation-set reports (of ``version``, or all), newest first."""
    folder = _write_root(weights_dir) / task / _EVAL_DIR
    out = []
    for path in sorted(folder.glob(f"{version or '*'}/*.json")) if folder.is_dir() else []:
        try:
            out.append(json.loads(path.read_text()))
        except (OSError, json.JSONDecodeError):
            continue
    return sorted(out, key=lambda r: r.get("recorded_at", ""), reverse=True)


def compare_on_eval_set(task: str, candidate: str, reference: str | None, *,
                        weights_dir: Path | str | None = None) -> dict:
    """What activating ``candidate`` instead of ``reference`` changes, on the newest evaluation
    set both were evaluated on. Returns ``{"candidate", "reference", "set": {data,
    fingerprint, n} | None, "rows": [{metric, reference, candidate, delta, better}],
    "warnings": [...], "worse": bool}``; warnings say when there is no common set, when it has
    fewer than :data:`MIN_EVAL_IMAGES` images and which metrics got worse."""
    mine = evaluations(task, candidate, weights_dir=weights_dir)
    theirs = {r["data_fingerprint"]: r for r in evaluations(task, reference, weights_dir=weights_dir)
              } if reference else {}
    out = {"candidate": candidate, "reference": reference, "set": None, "rows": [],
           "warnings": [], "worse": False}
    if reference is None or reference == candidate:
        return out
    common = next((r for r in mine if r["data_fingerprint"] in theirs), None)
    if common is None:
        out["warnings"].append(
            f"{candidate} and {reference} have not been evaluated on the same evaluation set: "
            "there is nothing to compare. Evaluate both first (python -m core models evaluate).")
        out["worse"] = True
        own = (load_card(task, candidate, weights_dir=weights_dir).get("metrics") or {})
        n = max((m.get("n") for m in own.values() if isinstance(m, dict)
                 and isinstance(m.get("n"), int)), default=None)
        if n is not None and n < MIN_EVAL_IMAGES:
            out["warnings"].append(f"{candidate}'s own figures come from only {n} images "
                                   f"(fewer than {MIN_EVAL_IMAGES}).")
        return out
    ref = theirs[common["data_fingerprint"]]
    out["set"] = {"data": common.get("data"), "fingerprint": common["data_fingerprint"],
                  "n": common["n"]}
    for metric in _COMPARE:
        a, b = ref.get(metric), common.get(metric)
        if not isinstance(a, (int, float)) or not isinstance(b, (int, float)):
            continue
        delta = b - a
        better = delta > 0 if metric in _HIGHER_BETTER else delta < 0
        out["rows"].append({"metric": metric, "reference": a, "candidate": b, "delta": delta,
                            "better": bool(better) if abs(delta) > 1e-12 else None})
    worse = [r["metric"] for r in out["rows"]
             if r["metric"] in _HIGHER_BETTER and r["better"] is False]
    if worse:
        out["worse"] = True
        out["warnings"].append(f"{candidate} is WORSE than {reference} on "
                               f"{', '.join(METRIC_LABELS.get(m, m).split(' (')[0] for m in worse)}"
                               f" (same {common['n']} images).")
    if common["n"] < MIN_EVAL_IMAGES:
        out["worse"] = True
        out["warnings"].append(f"Evaluated on only {common['n']} images (fewer than "
                               f"{MIN_EVAL_IMAGES}): the difference may be noise.")
    return out


def load_model(task: str, version: str | None = None, *, slot: str | None = None,
               weights_dir: Path | str | None = None):
    """Rebuild the model from its card and load its weights. Returns ``(model, card)``. An
    ensemble card has no model of its own: ``ModelCardError`` (load it with
    ``core.classifier.inference.Classifier.load``, which joins its members)."""
    from core.models import build_model

    card = load_card(task, version, slot=slot, weights_dir=weights_dir)
    if is_ensemble(card):
        raise ModelCardError(f"{task}/{card['version']} is an ensemble of "
                             f"{', '.join(m['version'] for m in card['members'])}: it has no "
                             "single model (Classifier.load joins its members).")
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
