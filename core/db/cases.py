"""Case library rows (``cases``, ``case_embeddings``): tables' queries only.

The pixels live in a pixel store (``core.library.store``); ``core.library`` puts them there and
calls these functions for the rows. Nothing here reads a file or a DICOM header: a row holds
only what :class:`core.db.tables.Case` lists (no patient identifiers by construction).
"""
from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from core.db.audit import audit
from core.db.errors import NotFound
from core.db.tables import Case, CaseEmbedding
from core.db.rows import CaseView

__all__ = ["case_view", "case_by_sha", "insert_case", "get_case", "list_cases", "count_cases",
           "label_counts", "source_counts", "cases_by_ids", "set_case_label", "delete_case",
           "source_paths",
           "store_embeddings", "case_ids_without_embedding", "embedding_matrix",
           "embedding_counts", "embedding_state", "MAX_LABEL", "LABEL_SOURCES"]

MAX_LABEL = 64
LABEL_SOURCES = ("import", "admin")


def case_view(c: Case) -> CaseView:
    return CaseView(id=c.id, sha256=c.sha256, storage_key=c.storage_key, width=c.width,
                    height=c.height, bit_depth=c.bit_depth, label=c.label,
                    label_source=c.label_source, modality=c.modality, body_part=c.body_part,
                    source=c.source, source_path=c.source_path, added_by=c.added_by,
                    created_at=c.created_at, thumbnail=c.thumbnail)


def _clean_label(label: str | None) -> str | None:
    if label is None:
        return None
    text = " ".join(str(label).split())
    if not text:
        return None
    if len(text) > MAX_LABEL:
        raise ValueError(f"A label is at most {MAX_LABEL} characters, got {len(text)}.")
    return text


def case_by_sha(session: Session, sha256: str) -> CaseView | None:
    row = session.scalar(select(Case).where(Case.sha256 == sha256))
    return case_view(row) if row is not None else None


def insert_case(session: Session, *, sha256: str, storage_key: str, width: int, height: int,
                bit_depth: int, source: str, label: str | None = None,
                label_source: str | None = None, modality: str | None = None,
                body_part: str | None = None, source_path: str | None = None,
                added_by: int | None = None, thumbnail: bytes | None = None) -> CaseView:
    """Add one case row (flushed, not committed) and audit it. The caller has checked
    :func:`case_by_sha` first; a concurrent duplicate fails on the unique ``sha256``."""
    label = _clean_label(label)
    if label_source is not None and label_source not in LABEL_SOURCES:
        raise ValueError(f"label_source must be one of {LABEL_SOURCES}, got {label_source!r}")
    row = Case(sha256=sha256, storage_key=storage_key, width=int(width), height=int(height),
               bit_depth=int(bit_depth), label=label,
               label_source=(label_source or "import") if label else None,
               modality=(modality or None), body_part=(body_part or None),
               source=str(source)[:120], source_path=(source_path or None) and source_path[:255],
               added_by=added_by, thumbnail=thumbnail)
    session.add(row)
    session.flush()
    audit(session, added_by, "case_add", case_id=row.id, label=label, source=row.source)
    return case_view(row)


def _case(session: Session, case_id: int) -> Case:
    row = session.get(Case, int(case_id))
    if row is None:
        raise NotFound(f"No case with id {case_id} in the case library.")
    return row


def get_case(session: Session, case_id: int) -> CaseView:
    return case_view(_case(session, case_id))


def cases_by_ids(session: Session, ids: Iterable[int]) -> dict[int, CaseView]:
    wanted = [int(i) for i in ids]
    if not wanted:
        return {}
    return {c.id: case_view(c) for c in session.scalars(select(Case).where(Case.id.in_(wanted)))}


def _filtered(q, label: str | None, source: str | None, unlabelled: bool):
    if unlabelled:
        q = q.where(Case.label.is_(None))
    elif label is not None:
        q = q.where(Case.label == label)
    if source is not None:
        q = q.where(Case.source == source)
    return q


def list_cases(session: Session, *, label: str | None = None, source: str | None = None,
               limit: int | None = None, offset: int = 0, unlabelled: bool = False
               ) -> list[CaseView]:
    """Cases oldest first, optionally only one label (or only unlabelled ones) / one source."""
    q = _filtered(select(Case), label, source, unlabelled).order_by(Case.id).offset(offset)
    if limit is not None:
        q = q.limit(limit)
    return [case_view(c) for c in session.scalars(q)]


def count_cases(session: Session, *, label: str | None = None, source: str | None = None,
                unlabelled: bool = False) -> int:
    q = _filtered(select(func.count(Case.id)), label, source, unlabelled)
    return int(session.scalar(q) or 0)


def label_counts(session: Session) -> dict[str | None, int]:
    """``{label: number of cases}`` (``None``: no confirmed label), largest first."""
    rows = session.execute(select(Case.label, func.count(Case.id)).group_by(Case.label))
    return dict(sorted(((lbl, int(n)) for lbl, n in rows), key=lambda kv: (-kv[1], kv[0] or "")))


def source_counts(session: Session) -> dict[str, int]:
    rows = session.execute(select(Case.source, func.count(Case.id)).group_by(Case.source))
    return dict(sorted(((src, int(n)) for src, n in rows), key=lambda kv: (-kv[1], kv[0])))


def set_case_label(session: Session, case_id: int, label: str | None, *,
                   user_id: int | None) -> CaseView:
    """An admin confirms (or clears) a case's label; audited."""
    row = _case(session, case_id)
    old = row.label
    row.label = _clean_label(label)
    row.label_source = "admin" if row.label else None
    session.flush()
    audit(session, user_id, "case_label", case_id=row.id, old=old, new=row.label)
    return case_view(row)


def delete_case(session: Session, case_id: int, *, user_id: int | None) -> CaseView:
    """Delete the row (its embeddings go with it); the caller removes the pixels."""
    row = _case(session, case_id)
    view = case_view(row)
    session.execute(delete(CaseEmbedding).where(CaseEmbedding.case_id == row.id))
    session.delete(row)
    session.flush()
    audit(session, user_id, "case_remove", case_id=view.id, label=view.label, source=view.source)
    return view


def source_paths(session: Session, source: str) -> set[str]:
    """The (masked) file paths already imported under ``source``: what a resumed import skips
    without reading the file again."""
    return {p for p in session.scalars(select(Case.source_path).where(Case.source == source))
            if p}


# ------------------------------------------------------------------------------ embeddings

def store_embeddings(session: Session, model_version: str,
                     items: Iterable[tuple[int, np.ndarray]]) -> int:
    """Store ``(case_id, vector)`` pairs (float32 bytes) for ``model_version``, replacing any
    earlier vector of the same case and version. Returns how many were written."""
    n = 0
    for case_id, vec in items:
        v = np.ascontiguousarray(vec, dtype=np.float32).ravel()
        session.execute(delete(CaseEmbedding).where(CaseEmbedding.case_id == int(case_id),
                                                    CaseEmbedding.model_version == model_version))
        session.add(CaseEmbedding(case_id=int(case_id), model_version=model_version,
                                  dim=int(v.size), vector=v.tobytes()))
        n += 1
    session.flush()
    return n


def case_ids_without_embedding(session: Session, model_version: str) -> list[int]:
    have = select(CaseEmbedding.case_id).where(CaseEmbedding.model_version == model_version)
    return list(session.scalars(select(Case.id).where(Case.id.not_in(have)).order_by(Case.id)))


def embedding_matrix(session: Session, model_version: str
                     ) -> tuple[np.ndarray, np.ndarray]:
    """(case ids (N,) int64, vectors (N, D) float32) of ``model_version``, in case id order,
    read straight into one preallocated array."""
    rows = session.execute(select(CaseEmbedding.case_id, CaseEmbedding.dim, CaseEmbedding.vector)
                           .where(CaseEmbedding.model_version == model_version)
                           .order_by(CaseEmbedding.case_id))
    ids: list[int] = []
    chunks: list[bytes] = []
    dim = None
    for case_id, d, blob in rows:
        if dim is None:
            dim = int(d)
        if int(d) != dim or len(blob) != 4 * dim:
            raise ValueError(f"Embedding of case {case_id} ({model_version}) has dimension "
                             f"{d}, expected {dim}.")
        ids.append(int(case_id))
        chunks.append(blob)
    if not ids:
        return np.zeros(0, np.int64), np.zeros((0, 0), np.float32)
    vecs = np.frombuffer(b"".join(chunks), dtype=np.float32).reshape(len(ids), dim)
    return np.asarray(ids, np.int64), vecs


def embedding_counts(session: Session) -> dict[str, int]:
    """``{model_version: number of embedded cases}``."""
    rows = session.execute(select(CaseEmbedding.model_version, func.count(CaseEmbedding.id))
                           .group_by(CaseEmbedding.model_version))
    return {v: int(n) for v, n in rows}


def embedding_state(session: Session, model_version: str) -> tuple[int, int, int]:
    """(number of cases, embedded cases of ``model_version``, largest embedding row id): a cheap
    fingerprint that changes whenever the index for that version would."""
    n_cases = int(session.scalar(select(func.count(Case.id))) or 0)
    n_emb, last = session.execute(
        select(func.count(CaseEmbedding.id), func.max(CaseEmbedding.id))
        .where(CaseEmbedding.model_version == model_version)).one()
    return n_cases, int(n_emb or 0), int(last or 0)
