"""``python -m core retrieve FILE [--k 6] --json``: the most similar library cases;
``python -m core evaluate retrieval --index-from DIR --queries DIR [--k 10] --json``:
precision@k, mAP@k and k-NN accuracy with a throw-away index."""
from __future__ import annotations

import argparse
import json

from core.errors import MedScanError
from core.jobs import add_progress_args, progress_from_args

__all__ = ["register"]


def register(cmds) -> None:
    r = cmds.sub.add_parser("retrieve", help="the most similar cases of the case library")
    r.add_argument("file", metavar="FILE")
    r.add_argument("--k", type=int, default=6, help="how many cases (default 6)")
    r.add_argument("--json", action="store_true", help="print a JSON list")
    r.set_defaults(func=_retrieve)

    e = cmds.evaluate.add_parser("retrieval", help="precision@k, mAP@k, k-NN accuracy of the "
                                                   "classifier's embeddings on two folders")
    e.add_argument("--index-from", required=True, metavar="DIR",
                   help="image-folder tree (class subfolders) to build the index from")
    e.add_argument("--queries", required=True, metavar="DIR",
                   help="image-folder tree of queries (class subfolders)")
    e.add_argument("--k", type=int, default=10, help="largest k (default 10)")
    e.add_argument("--model", metavar="VERSION", help="classifier version (default: active)")
    e.add_argument("--index", choices=("exact", "hnsw"), default="exact",
                   help="index kind (default exact)")
    e.add_argument("--json", action="store_true", help="print one JSON object")
    add_progress_args(e)
    e.set_defaults(func=_evaluate)


def _retrieve(args: argparse.Namespace) -> int:
    from core.classifier.inference import Classifier
    from core.db import init_db, session_scope
    from core.imaging import load_scan
    from core.registry import active_version
    from core.retrieval.search import search_library, summary_text

    if args.k < 1:
        raise MedScanError("--k must be at least 1.")
    scan = load_scan(args.file)
    loaded: dict[str, Classifier] = {}

    def load(version: str) -> Classifier:
        if version not in loaded:
            loaded[version] = Classifier.load(version)
        return loaded[version]

    with session_scope(init_db()) as s:
        result = search_library(s, scan.pixels, k=args.k,
                                active_version=active_version("classifier"),
                                load_classifier=load)
    if args.json:
        print(json.dumps([m.to_dict() for m in result.matches]))
        return 0
    if result.notice:
        print(f"note: {result.notice}")
    print(f"{summary_text(result)} (classifier {result.version}, {result.n_index} cases "
          f"searched, {result.index_kind} index)")
    for m in result.matches:
        print(f"  case {m.case_id:>7}  {m.label or '-':<14} similarity {m.similarity:.3f}  "
              f"{m.source}")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from core.classifier.inference import Classifier
    from core.retrieval.evaluate import evaluate_retrieval

    if args.k < 1:
        raise MedScanError("--k must be at least 1.")
    clf = Classifier.load(args.model)
    try:
        report = evaluate_retrieval(clf, args.index_from, args.queries, k=args.k,
                                    kind=args.index,
                                    progress=progress_from_args(args) if not args.json
                                    or args.job_id is not None else (lambda p: None))
    except (FileNotFoundError, ValueError) as err:
        raise MedScanError(str(err)) from err
    if args.json:
        print(json.dumps(report))
        return 0
    p = report["precision_at_k"]
    print(f"Retrieval with classifier {report['model']}: {report['n_queries']} queries against "
          f"{report['n_index']} indexed images ({report['index_kind']})")
    print("  " + "  ".join(f"P@{k} {v:.3f}" for k, v in p.items())
          + f"  mAP@{report['k']} {report['map_at_k']:.3f}  kNN acc {report['knn_accuracy']:.3f}")
    for c, r in report["per_class"].items():
        print(f"  {c:<14} n={r['n']:<5} P@{report['k']} {r['precision_at_k'][str(report['k'])]:.3f}"
              f"  mAP {r['map_at_k']:.3f}  kNN {r['knn_accuracy']:.3f}")
    return 0
