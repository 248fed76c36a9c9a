"""Similar cases from the case library: embeddings per classifier version, a cached index,
and which version serves while a new one is built.

Embeddings are computed once per case per classifier version (:func:`build_embeddings`, run
by ``python -m core library embed`` or the ``embeddings`` background job) and stored in
``case_embeddings``. A search uses the **serving version** (:func:`serving_version`): the
active classifier when every case has its embedding, else the version with the most complete
embeddings (the old index keeps serving while the new one is built); the query is embedded
by that same version, so query and index always come from one model.

The FAISS index of a version is built once per process from one read of its vectors and
cached; a cheap count query (:func:`core.db.cases.embedding_state`) tells when the library
changed and the index must be rebuilt.
"""
from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from sqlalchemy.orm import Session

from core.db import cases as rows
from core.errors import MedScanError
from core.library.cases import case_pixels
from core.library.store import PixelStore
from core.progress import Progress, ProgressCallback, null_progress
from core.retrieval.embed import embed_images
from core.retrieval.index import VectorIndex

__all__ = ["Match", "SearchResult", "serving_version", "library_index", "search_library",
           "build_embeddings", "summary_text", "clear_cache", "RetrievalError"]


class RetrievalError(MedScanError):
    """Similar cases cannot be searched (empty library, no embeddings)."""


@dataclass(frozen=True)
class Match:
    case_id: int
    label: str | None
    similarity: float
    source: str

    def to_dict(self) -> dict:
        return {"case_id": self.case_id, "label": self.label,
                "similarity": round(float(self.similarity), 6), "source": self.source}


@dataclass(frozen=True)
class SearchResult:
    matches: list[Match]
    version: str                 # classifier version whose embeddings answered
    n_index: int                 # cases in the index
    n_cases: int                 # cases in the library
    notice: str | None = None    # e.g. "version B's index is being built; A serves"
    index_kind: str = "exact"
    label_votes: dict[str, int] = field(default_factory=dict)


def serving_version(session: Session, active: str | None) -> tuple[str | None, str | None]:
    """(version to search with, notice or None). See the module notes."""
    n_cases = rows.count_cases(session)
    counts = rows.embedding_counts(session)
    if active is not None and n_cases and counts.get(active, 0) >= n_cases:
        return active, None
    best = max(counts.items(), key=lambda kv: (kv[1], kv[0] == active), default=(None, 0))
    if best[0] is None or best[1] == 0:
        return None, None
    if active is None or best[0] == active:
        missing = n_cases - best[1]
        return best[0], (f"{missing} of {n_cases} library cases have no embedding for "
                         f"{best[0]} yet; they are not searched until `python -m core library "
                         f"embed` (or the embeddings job) has run." if missing > 0 else None)
    have = counts.get(active, 0)
    return best[0], (f"Similar cases come from classifier {best[0]}'s index while the active "
                     f"version {active}'s is being built ({have} of {n_cases} cases done).")


_lock = threading.Lock()
_cache: dict[tuple[str, str], tuple[tuple[int, int, int], VectorIndex]] = {}


def clear_cache() -> None:
    with _lock:
        _cache.clear()


def library_index(session: Session, version: str, *, kind: str = "auto") -> VectorIndex:
    """The FAISS index of ``version``'s embeddings, rebuilt only when the library changed."""
    url = str(session.get_bind().url)
    state = rows.embedding_state(session, version)
    with _lock:
        hit = _cache.get((url, version))
        if hit is not None and hit[0] == state and (kind == "auto" or hit[1].kind == kind):
            return hit[1]
    ids, vecs = rows.embedding_matrix(session, version)
    index = VectorIndex(ids, vecs, kind=kind)
    with _lock:
        _cache[(url, version)] = (state, index)
    return index


def search_library(session: Session, image: np.ndarray, *, k: int = 6,
                   active_version: str | None,
                   load_classifier: Callable[[str], object],
                   exclude_case: int | None = None) -> SearchResult:
    """The ``k`` most similar library cases to ``image`` (float [0, 1] scan pixels).

    ``load_classifier(version)`` returns a :class:`core.classifier.inference.Classifier` (the
    app passes its cached loader). Raises :class:`RetrievalError` when nothing can be searched.
    """
    n_cases = rows.count_cases(session)
    if n_cases == 0:
        raise RetrievalError("The case library is empty: an admin can import cases with "
                             "`python -m core library import DIR` or add uploads from Analyze.")
    version, notice = serving_version(session, active_version)
    if version is None:
        raise RetrievalError(f"No library case has an embedding yet ({n_cases} cases): run "
                             "`python -m core library embed` or start the embeddings job on "
                             "the Case library page.")
    index = library_index(session, version)
    clf = load_classifier(version)
    query = embed_images(clf, [image])
    extra = 1 if exclude_case is not None else 0
    sims, ids = index.search(query, k + extra)
    found = [(int(i), float(s)) for i, s in zip(ids[0], sims[0]) if i >= 0 and i != exclude_case]
    found = found[:k]
    meta = rows.cases_by_ids(session, [i for i, _ in found])
    matches = [Match(i, meta[i].label, s, meta[i].source) for i, s in found if i in meta]
    votes = Counter(m.label for m in matches if m.label)
    return SearchResult(matches, version, len(index), n_cases, notice, index.kind,
                        dict(votes.most_common()))


def summary_text(result: SearchResult) -> str:
    """"5 of 6 similar cases are meningioma" (or why there is no majority)."""
    n = len(result.matches)
    if not n:
        return "No similar cases found."
    if not result.label_votes:
        return f"None of the {n} similar cases has a confirmed label."
    label, top = next(iter(result.label_votes.items()))
    return f"{top} of {n} similar case{'s' if n != 1 else ''} {'are' if n != 1 else 'is'} {label}."


def build_embeddings(session: Session, clf, *, store: PixelStore | None = None,
                     batch_size: int = 32, progress: ProgressCallback = null_progress,
                     commit: Callable[[], None] | None = None) -> int:
    """Embed every case that has no embedding for ``clf.version`` yet; commits each batch (an
    interrupted run resumes where it stopped). Returns how many were computed. A case whose
    image cannot be read is reported through ``progress`` and left for the next run."""
    commit = commit or session.commit
    todo = rows.case_ids_without_embedding(session, clf.version)
    done, failed = 0, 0
    for start in range(0, len(todo), batch_size):
        chunk = todo[start:start + batch_size]
        images, ok = [], []
        for cid in chunk:
            try:
                images.append(case_pixels(session, cid, store))
                ok.append(cid)
            except MedScanError:
                failed += 1
        if ok:
            rows.store_embeddings(session, clf.version, zip(ok, embed_images(clf, images)))
            commit()
        done += len(ok)
        progress(Progress(task="embeddings", phase="embed", epoch=1, epochs=1,
                          step=start + len(chunk), steps=len(todo),
                          message=f"{done} embedded" + (f", {failed} unreadable" if failed
                                                        else "")))
    progress(Progress(task="embeddings", phase="done", epoch=1, epochs=1, step=len(todo),
                      steps=len(todo), message=f"{done} embedded with {clf.version}"))
    return done
