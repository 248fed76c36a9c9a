"""Designing a reader study from stored cases: which cases, which conditions, which questions,
which readers, how images are presented. The result is a *draft* study whose condition images
:mod:`core.studies.generate` then makes (a background job of kind ``study_images``); the study
opens to readers only when every image is ready (:func:`core.db.studies.open_study`).

Cases come from the case library (``cases`` table; pixels through ``core.library``) picked by
label, by import (source), by id or all, or from an image folder on the server. Each case is
recorded as a ``scans`` row (its identity for ratings: the library's pixel hash, or the file's
SHA-256 for a folder) without a display name, so nothing a reader could see names it.

Conditions (:data:`CONDITIONS`): ``original`` and the SR methods of :mod:`core.sr.methods`, all
produced with the simulate path at the study's scale (the original, cropped to a multiple of
the scale, is the reference: every condition has its size). The GAN methods (``esrgan``,
``srgan``) use the study's α.
The model version of each learned method is fixed when the study is designed (the active one),
so generation reproduces exactly what was chosen.
"""
from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.orm import Session

from core.db.errors import StudyError
from core.db.tables import STUDY_PRESENTATIONS, STUDY_REFERENCES
from core.sr.methods import METHOD_LABELS, SR_METHODS, uses_alpha

__all__ = ["CONDITIONS", "CONDITION_LABELS", "REFERENCE_LABELS", "IMAGE_SUFFIXES",
           "MAX_FOLDER_FILES", "CaseSource", "StudyDesign", "library_sources", "folder_sources",
           "library_summary", "classifier_classes", "design_study"]

#: What a study can compare: the original and every SR method (one table, never retyped).
CONDITIONS = ("original", *SR_METHODS)
CONDITION_LABELS = {"original": "Original", **METHOD_LABELS}
#: What a side-by-side reference can be; readers only ever read "reference".
REFERENCE_LABELS = {"lr": "the low-resolution input", "original": "the original"}
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".dcm", ".dicom")
MAX_FOLDER_FILES = 2000        # a study folder larger than this is refused (page and CLI)


@dataclass(frozen=True)
class CaseSource:
    """One case to put into a study: its identity (``sha256``), where its pixels come from
    (a library ``case_id`` or a ``path`` relative to the folder) and its label (ground truth,
    never shown to readers)."""
    sha256: str
    case_id: int | None = None
    path: str | None = None
    label: str | None = None
    modality: str | None = None
    shape: tuple[int, ...] = ()


@dataclass(frozen=True)
class StudyDesign:
    """Everything an admin chooses for a study (see :func:`design_study`)."""
    name: str
    conditions: tuple[str, ...] = ("original", "bicubic")
    scale: int = 4
    alpha: float = 0.8
    presentation: str = "single"
    reference: str | None = None
    repeat_fraction: float = 0.0
    blinded: bool = True
    ask_comment: bool = True
    diagnosis_choices: tuple[str, ...] | None = None
    readers: tuple[int, ...] = ()
    seed: int | None = None
    versions: dict[str, str | None] = field(default_factory=dict)  # filled by design_study


def library_sources(session: Session, *, label: str | None = None, source: str | None = None,
                    case_ids: Sequence[int] | None = None,
                    limit: int | None = None) -> list[CaseSource]:
    """Cases of the library by label, by import (source), by id, or all (oldest first)."""
    from core.db.studies import library_cases

    rows = library_cases(session, label=label, source=source, case_ids=case_ids)
    if limit is not None:
        rows = rows[: int(limit)]
    return [CaseSource(sha256=c.sha256, case_id=c.id, label=c.label, modality=c.modality,
                       shape=(c.height, c.width)) for c in rows]


def library_summary(session: Session) -> dict:
    """``{"total": n, "labels": {label: n}, "sources": {import: n}}`` of the case library
    (``None`` label: unlabelled), for picking cases."""
    from collections import Counter

    from core.db.studies import library_cases

    rows = library_cases(session)
    return {"total": len(rows), "labels": dict(Counter(c.label for c in rows).most_common()),
            "sources": dict(Counter(c.source for c in rows).most_common())}


def classifier_classes(weights_dir: Path | str | None = None) -> list[str]:
    """The active classifier's classes (the optional diagnosis question's choices), or ``[]``
    when no classifier is active."""
    from core import registry

    try:
        card = registry.load_card("classifier", weights_dir=weights_dir)
    except Exception:      # no active classifier, or a broken card: no suggestion
        return []
    return [str(c) for c in card.get("classes") or []]


def folder_sources(folder: str | Path, *, labels_from_subfolders: bool = True,
                   limit: int | None = None) -> list[CaseSource]:
    """The image files under ``folder`` (PNG, JPEG, TIFF, DICOM by suffix), sorted; with
    ``labels_from_subfolders`` a file's first subfolder is its label (``glioma/x.png``)."""
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise StudyError(f"{folder} is not a folder on the server.")
    files = sorted(p for p in root.rglob("*")
                   if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if len(files) > MAX_FOLDER_FILES:
        raise StudyError(f"{folder} holds {len(files)} images; a study takes at most "
                         f"{MAX_FOLDER_FILES}. Pick a smaller folder.")
    if limit is not None:
        files = files[: int(limit)]
    out, seen = [], set()
    for p in files:
        sha = hashlib.sha256(p.read_bytes()).hexdigest()
        if sha in seen:          # the same file twice is one case
            continue
        seen.add(sha)
        rel = p.relative_to(root)
        label = rel.parts[0] if labels_from_subfolders and len(rel.parts) > 1 else None
        out.append(CaseSource(sha256=sha, path=rel.as_posix(), label=label))
    return out


def _check(design: StudyDesign) -> None:
    unknown = [c for c in design.conditions if c not in CONDITIONS]
    if unknown:
        raise StudyError(f"Unknown condition(s) {', '.join(unknown)}; choose from "
                         f"{', '.join(CONDITIONS)}.")
    if not design.conditions or len(set(design.conditions)) != len(design.conditions):
        raise StudyError("Pick at least one condition, each once.")
    if design.scale not in (2, 4):
        raise StudyError(f"The SR scale must be 2 or 4, got {design.scale!r}.")
    if not 0.0 <= float(design.alpha) <= 1.0:
        raise StudyError(f"The GAN α must be between 0 and 1, got {design.alpha!r}.")
    if design.presentation not in STUDY_PRESENTATIONS:
        raise StudyError(f"Presentation must be one of {', '.join(STUDY_PRESENTATIONS)}.")
    if design.presentation == "side_by_side" and design.reference not in STUDY_REFERENCES:
        raise StudyError("Side by side needs a reference: the low-resolution input ('lr') or "
                         "the original ('original').")


def design_study(session: Session, design: StudyDesign, sources: Sequence[CaseSource],
                 created_by: int | None, *, folder: str | Path | None = None,
                 weights_dir: Path | str | None = None):
    """Create the draft study: one item per case × condition (no images yet), the cases with
    their hidden labels, the readers (none: anyone signed in may read). ``folder``: the root
    the sources' paths are relative to. Learned methods must have an active model at the
    study's scale. Returns the study (:class:`core.db.studies.StudyInfo`)."""
    from core.db.scans import record_scan
    from core.db.studies import create_study
    from core.sr import available_methods

    _check(design)
    if not sources:
        raise StudyError("No cases were picked for the study.")
    if any(s.path is not None for s in sources) and folder is None:
        raise StudyError("Cases from a folder need the folder they are in.")
    available = available_methods(design.scale, weights_dir=weights_dir)
    missing = [c for c in design.conditions if c not in ("original", "bicubic")
               and not available.get(c)]
    if missing:
        raise StudyError(f"No active ×{design.scale} model for: "
                         f"{', '.join(CONDITION_LABELS[c] for c in missing)}.")
    versions = {c: available.get(c) for c in design.conditions if c != "original"}
    for src in sources:
        record_scan(session, src.sha256, {}, "library" if src.case_id is not None else "folder",
                    src.modality, src.shape, created_by)
    items = [(src.sha256, c, versions.get(c)) for src in sources for c in design.conditions]
    source = {"kind": "folder" if folder is not None else "library",
              "conditions": list(design.conditions), "versions": versions}
    if folder is not None:
        source["root"] = str(Path(folder).expanduser().resolve())
        source["files"] = {s.sha256: s.path for s in sources if s.path is not None}
    return create_study(
        session, design.name, created_by, items, blinded=design.blinded, seed=design.seed,
        state="draft", presentation=design.presentation,
        reference=design.reference if design.presentation == "side_by_side" else None,
        repeat_fraction=design.repeat_fraction, scale=design.scale,
        alpha=float(design.alpha) if any(uses_alpha(c) for c in design.conditions) else None,
        ask_comment=design.ask_comment, diagnosis_choices=design.diagnosis_choices,
        readers=design.readers,
        cases={s.sha256: {"case_id": s.case_id, "label": s.label} for s in sources},
        source=source)
