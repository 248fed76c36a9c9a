"""Similar-case search: query latency p50 / p95, build time and memory of the exact (FAISS
``IndexFlatIP``) and approximate (HNSW) indexes at library sizes 10^3 … 10^6, and the
approximate index's recall@10 against exact search.

    python benchmarks/bench_retrieval.py [--sizes 1000,10000,100000,1000000] [--dim 256]
        [--queries 200] [--from-library] [--json]

Vectors: unit-length embeddings of the real dimension (256 for the shipped classifier's pooled
features). With ``--from-library`` the case library's stored embeddings of the active
classifier (``MEDSCAN_DATA_DIR``) are the seeds: each synthetic vector is a seed plus Gaussian
noise, renormalised, so the data has the real embeddings' cluster structure; without it, seeds
are 256 random directions. Queries are fresh draws from the same distribution. Latency is one
query at a time (the app's case), on this machine's threads; memory is the index's own size
(vectors + graph links) and the growth of the process's resident set while building it.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.retrieval.embed import l2_normalise  # noqa: E402
from core.retrieval.index import VectorIndex  # noqa: E402


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _seeds(dim: int, from_library: bool, rng) -> tuple[np.ndarray, str]:
    if from_library:
        from core import registry
        from core.db import init_db, session_scope
        from core.db.cases import embedding_matrix

        version = registry.active_version("classifier")
        with session_scope(init_db()) as s:
            _, vecs = embedding_matrix(s, version)
        if len(vecs):
            return vecs, f"{len(vecs)} library embeddings of {version}"
        print("no library embeddings found; using random seeds", file=sys.stderr)
    return l2_normalise(rng.normal(size=(256, dim))), "256 random directions"


def _draw(seeds: np.ndarray, n: int, rng, noise: float) -> np.ndarray:
    out = np.empty((n, seeds.shape[1]), np.float32)
    for start in range(0, n, 100_000):
        m = min(100_000, n - start)
        base = seeds[rng.integers(0, len(seeds), m)]
        out[start:start + m] = l2_normalise(
            base + rng.normal(scale=noise / np.sqrt(seeds.shape[1]), size=base.shape))
    return out


def _latency(index: VectorIndex, queries: np.ndarray, k: int) -> tuple[float, float, np.ndarray]:
    times, ids = [], []
    for q in queries:
        t = time.perf_counter()
        _, found = index.search(q[None], k)
        times.append(time.perf_counter() - t)
        ids.append(found[0])
    ms = np.array(times) * 1000
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 95)), np.array(ids)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="1000,10000,100000,1000000")
    ap.add_argument("--dim", type=int, default=256)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--noise", type=float, default=0.35,
                    help="noise norm relative to a seed (default 0.35)")
    ap.add_argument("--from-library", action="store_true")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    seeds, where = _seeds(args.dim, args.from_library, rng)
    rows = []
    if not args.json:
        print(f"seeds: {where}; dim {seeds.shape[1]}; {args.queries} single queries, k={args.k}")
        print(f"{'size':>9} {'index':>6} {'build s':>8} {'p50 ms':>8} {'p95 ms':>8} "
              f"{'index MB':>9} {'RSS +MB':>8} {'recall@10':>9}")
    for n in (int(x) for x in args.sizes.split(",")):
        data = _draw(seeds, n, rng, args.noise)
        queries = _draw(seeds, args.queries, rng, args.noise)
        exact_ids = None
        for kind in ("exact", "hnsw"):
            before = _rss_mb()
            t = time.perf_counter()
            index = VectorIndex(np.arange(n), data, kind=kind)
            build = time.perf_counter() - t
            grown = _rss_mb() - before
            p50, p95, ids = _latency(index, queries, args.k)
            if kind == "exact":
                exact_ids, recall = ids, 1.0
            else:
                recall = float(np.mean([len(set(a) & set(b)) / args.k
                                        for a, b in zip(ids, exact_ids)]))
            row = {"size": n, "index": kind, "build_s": round(build, 3),
                   "p50_ms": round(p50, 3), "p95_ms": round(p95, 3),
                   "index_mb": round(index.nbytes / 2**20, 1), "rss_growth_mb": round(grown, 1),
                   "recall_at_10": round(recall, 4)}
            rows.append(row)
            if not args.json:
                print(f"{n:>9} {kind:>6} {build:>8.2f} {p50:>8.3f} {p95:>8.3f} "
                      f"{row['index_mb']:>9.1f} {grown:>8.1f} {recall:>9.4f}", flush=True)
            del index
        del data
    if args.json:
        print(json.dumps({"seeds": where, "dim": int(seeds.shape[1]), "rows": rows}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
