"""A vector index over unit-length embeddings (FAISS): exact inner product by default, HNSW
above a configurable size.

Exact search (``IndexFlatIP``) is a matrix product over every stored vector, which FAISS does
with BLAS in a few milliseconds up to about 10^5 vectors of this dimension; above
:func:`approx_threshold` vectors (``MEDSCAN_RETRIEVAL_APPROX_ABOVE``, default 200,000) an HNSW
graph (``IndexHNSWFlat``, inner-product metric) answers in sub-linear time at a recall the
benchmark (``benchmarks/bench_retrieval.py``) reports against exact search. Vectors live in
FAISS's own contiguous storage; a query never walks a Python list.
"""
from __future__ import annotations

import os

import numpy as np

__all__ = ["VectorIndex", "approx_threshold", "HNSW_M", "HNSW_EF_CONSTRUCTION",
           "HNSW_EF_SEARCH"]

#: HNSW graph degree: 32 neighbours per node is FAISS's recommended middle ground between
#: memory (about 2 × M × 4 bytes per vector of links) and recall.
HNSW_M = 32
#: Candidate list sizes while building and searching; larger is slower and more exact.
HNSW_EF_CONSTRUCTION = 80
HNSW_EF_SEARCH = 128


_threads_set = False


def _set_threads() -> None:
    """FAISS searches with ``MEDSCAN_FAISS_THREADS`` OpenMP threads (default 1). An app server
    answers one query per request, and requests of several users already run in parallel;
    an OpenMP team per single query measured 16 ms instead of 0.45 ms (p50, 10^4 vectors, 2
    busy cores; ``benchmarks/bench_retrieval.py``)."""
    global _threads_set
    if _threads_set:
        return
    import faiss

    try:
        n = int(os.environ.get("MEDSCAN_FAISS_THREADS", 1))
    except ValueError:
        n = 1
    faiss.omp_set_num_threads(max(1, n))
    _threads_set = True


def approx_threshold() -> int:
    """Library size above which the approximate (HNSW) index is used."""
    try:
        return int(os.environ.get("MEDSCAN_RETRIEVAL_APPROX_ABOVE", 200_000))
    except ValueError:
        return 200_000


class VectorIndex:
    """Search unit-length vectors by inner product (= cosine similarity).

    ``ids`` are the caller's identifiers (case ids), one per row of ``vectors``. ``kind`` is
    ``"exact"``, ``"hnsw"`` or ``"auto"`` (HNSW above :func:`approx_threshold`)."""

    def __init__(self, ids: np.ndarray, vectors: np.ndarray, *, kind: str = "auto",
                 ef_search: int = HNSW_EF_SEARCH) -> None:
        import faiss

        _set_threads()
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        ids = np.asarray(ids, np.int64)
        if vectors.ndim != 2 or len(ids) != len(vectors):
            raise ValueError(f"Need one id per vector, got {len(ids)} ids and vectors of shape "
                             f"{vectors.shape}.")
        if kind == "auto":
            kind = "hnsw" if len(vectors) > approx_threshold() else "exact"
        if kind not in ("exact", "hnsw"):
            raise ValueError(f"Unknown index kind {kind!r}; expected exact, hnsw or auto.")
        self.kind, self.dim, self.ids = kind, int(vectors.shape[1]) if vectors.size else 0, ids
        if kind == "exact":
            self._index = faiss.IndexFlatIP(max(self.dim, 1))
        else:
            self._index = faiss.IndexHNSWFlat(max(self.dim, 1), HNSW_M,
                                              faiss.METRIC_INNER_PRODUCT)
            self._index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
            self._index.hnsw.efSearch = int(ef_search)
        if len(vectors):
            self._index.add(vectors)

    def __len__(self) -> int:
        return int(self._index.ntotal)

    @property
    def nbytes(self) -> int:
        """Approximate memory of the index (vectors, graph links, id map)."""
        n = len(self)
        links = 2 * HNSW_M * 4 * n if self.kind == "hnsw" else 0
        return n * self.dim * 4 + links + self.ids.nbytes

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(similarities (Q, k'), ids (Q, k')) best first, k' = min(k, len(self))."""
        q = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        k = min(int(k), len(self))
        if k <= 0:
            return np.zeros((len(q), 0), np.float32), np.zeros((len(q), 0), np.int64)
        if q.shape[1] != self.dim:
            raise ValueError(f"Query vectors have dimension {q.shape[1]}, the index "
                             f"{self.dim}: they come from different models.")
        sims, pos = self._index.search(q, k)
        ids = np.where(pos >= 0, self.ids[np.clip(pos, 0, None)], -1)
        return sims, ids
