"""``evaluate retrieval``: precision@k, mAP@k and k-NN accuracy of the classifier's embeddings
on two image-folder trees (index and queries), with a throw-away index (nothing is written to
the case library)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from core.classifier.data import FolderData, list_image_folder
from core.imaging import load_scan
from core.progress import Progress, ProgressCallback, null_progress
from core.retrieval.embed import embed_images
from core.retrieval.index import VectorIndex

__all__ = ["evaluate_retrieval", "retrieval_metrics", "embed_folder", "DEFAULT_KS"]

DEFAULT_KS = (1, 5, 10)


def embed_folder(clf, folder: FolderData, *, what: str, batch_size: int = 64,
                 progress: ProgressCallback = null_progress) -> np.ndarray:
    """Embeddings (N, D) of every file of ``folder``, loaded as the app loads an upload."""
    out = []
    n = len(folder.files)
    for start in range(0, n, batch_size):
        chunk = folder.files[start:start + batch_size]
        out.append(embed_images(clf, [load_scan(f).pixels for f in chunk]))
        progress(Progress(task="retrieval", phase=f"embed {what}", epoch=1, epochs=1,
                          step=min(start + batch_size, n), steps=n))
    return np.concatenate(out) if out else np.zeros((0, 0), np.float32)


def retrieval_metrics(neighbour_labels: np.ndarray, query_labels: np.ndarray,
                      classes: list[str], ks=DEFAULT_KS) -> dict:
    """Metrics from the labels of each query's neighbours (Q, K) best first.

    ``precision_at_k[k]``: mean over queries of the fraction of the top k sharing the query's
    label. ``map_at_k``: mean average precision at K = the largest k (average of precision@i at
    each relevant rank i ≤ K, divided by the number of relevant results in the top K; 0 when
    none). ``knn_accuracy``: the majority label of the top K equals the query's (ties go to the
    label of the nearer neighbour). ``per_class``: the same three per query class.
    """
    nl = np.asarray(neighbour_labels)
    ql = np.asarray(query_labels)
    big_k = max(ks)
    if nl.shape[1] < big_k:
        raise ValueError(f"Need {big_k} neighbours per query, got {nl.shape[1]} (index too "
                         "small).")
    rel = nl[:, :big_k] == ql[:, None]
    prec = {str(k): rel[:, :k].mean(axis=1) for k in ks}
    cum = np.cumsum(rel, axis=1)
    ranks = np.arange(1, big_k + 1)
    ap = np.where(rel.sum(1) > 0, (rel * cum / ranks).sum(1) / np.maximum(rel.sum(1), 1), 0.0)
    knn = np.array([_majority(row[:big_k]) for row in nl]) == ql
    per_class = {}
    for i, c in enumerate(classes):
        m = ql == i
        if m.any():
            per_class[c] = {"n": int(m.sum()),
                            "precision_at_k": {k: float(v[m].mean()) for k, v in prec.items()},
                            "map_at_k": float(ap[m].mean()), "knn_accuracy": float(knn[m].mean())}
    return {"precision_at_k": {k: float(v.mean()) for k, v in prec.items()},
            "map_at_k": float(ap.mean()), "k": big_k, "knn_accuracy": float(knn.mean()),
            "per_class": per_class}


def _majority(labels: np.ndarray) -> int:
    values, first, counts = np.unique(labels, return_index=True, return_counts=True)
    best = counts.max()
    return int(min((f, v) for v, f, c in zip(values, first, counts) if c == best)[1])


def evaluate_retrieval(clf, index_from: str | Path, queries: str | Path, *, k: int = 10,
                       kind: str = "exact", progress: ProgressCallback = null_progress) -> dict:
    """Build an index from ``index_from`` (class subfolders), search it with every image of
    ``queries`` and report :func:`retrieval_metrics` plus ``n_index``, ``n_queries``,
    ``model`` and ``index_kind``. Query classes must be among the index's classes."""
    index_data = list_image_folder(index_from)
    query_data = list_image_folder(queries)
    unknown = sorted(set(query_data.classes) - set(index_data.classes))
    if unknown:
        raise ValueError(f"Query classes {unknown} have no folder in the index set "
                         f"{index_data.classes}.")
    ks = tuple(sorted({*(x for x in DEFAULT_KS if x <= k), k}))
    vi = embed_folder(clf, index_data, what="index", progress=progress)
    vq = embed_folder(clf, query_data, what="queries", progress=progress)
    index = VectorIndex(np.arange(len(vi)), vi, kind=kind)
    _, pos = index.search(vq, k)
    q_labels = np.array([index_data.classes.index(query_data.classes[y])
                         for y in query_data.labels])
    report = retrieval_metrics(index_data.labels[pos], q_labels, index_data.classes, ks)
    report.update(n_index=len(vi), n_queries=len(vq), model=clf.version, index_kind=index.kind,
                  classes=index_data.classes)
    return report
