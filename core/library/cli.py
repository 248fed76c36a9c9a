"""``python -m core library import|list|show|remove|label|embed``: the case library from the
command line (:mod:`core.library`, :mod:`core.retrieval.search`). Every command first upgrades
the database schema."""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from core.errors import MedScanError
from core.jobs import add_progress_args, progress_from_args
from core.progress import Progress

__all__ = ["register", "bar_progress"]


def register(cmds) -> None:
    lib = cmds.sub.add_parser("library", help="case library: import, list, show, remove, "
                                              "label, embed")
    sub = lib.add_subparsers(dest="library_cmd", metavar="ACTION", required=True)

    imp = sub.add_parser("import", help="import a folder of scans (resumable)")
    imp.add_argument("folder", metavar="DIR")
    imp.add_argument("--label-from-folder", action="store_true",
                     help="the first folder under DIR is each file's label (image-folder tree)")
    imp.add_argument("--labels", metavar="FILE",
                     help="CSV 'path,label' (path relative to DIR); wins over the folder")
    imp.add_argument("--name", help="the import's source name (default: DIR's name)")
    imp.add_argument("--modality", help="modality of files without a header (e.g. MR)")
    imp.add_argument("--body-part", help="body part of files without a header (e.g. brain)")
    imp.add_argument("--no-embed", action="store_true",
                     help="do not compute the active classifier's embeddings afterwards")
    imp.add_argument("--json", action="store_true", help="print the summary as JSON")
    imp.set_defaults(func=_import)

    ls = sub.add_parser("list", help="cases, oldest first, and counts per label")
    ls.add_argument("--label", help="only this label")
    ls.add_argument("--source", help="only this import (or 'upload')")
    ls.add_argument("--limit", type=int, default=50, help="at most this many rows (default 50)")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=_list)

    show = sub.add_parser("show", help="one case; --out writes its image")
    show.add_argument("case_id", type=int, metavar="ID")
    show.add_argument("--out", metavar="PNG", help="write the stored image here")
    show.add_argument("--json", action="store_true")
    show.set_defaults(func=_show)

    rm = sub.add_parser("remove", help="delete a case (row, embeddings and image)")
    rm.add_argument("case_id", type=int, metavar="ID")
    rm.set_defaults(func=_remove)

    lab = sub.add_parser("label", help="set (or with --clear remove) a case's confirmed label")
    lab.add_argument("case_id", type=int, metavar="ID")
    lab.add_argument("label", nargs="?")
    lab.add_argument("--clear", action="store_true")
    lab.set_defaults(func=_label)

    emb = sub.add_parser("embed", help="compute missing retrieval embeddings for a classifier "
                                       "version (default: the active one)")
    emb.add_argument("--model", metavar="VERSION", help="classifier version (default: active)")
    emb.add_argument("--run-dir", help=argparse.SUPPRESS)   # set by the job runner; unused
    add_progress_args(emb)
    emb.set_defaults(func=_embed)


def bar_progress(label: str):
    """A one-line progress bar on stderr (a line per 10 % when stderr is not a terminal)."""
    tty = sys.stderr.isatty()
    state = {"last": -1.0}

    def report(p: Progress) -> None:
        if not p.steps:
            return
        frac = p.step / p.steps
        if not tty and frac - state["last"] < 0.1 and p.step != p.steps:
            return
        state["last"] = frac
        eta = f" · {p.eta_s / 60:.1f} min left" if p.eta_s else ""
        filled = int(frac * 30)
        line = (f"{label} [{'#' * filled}{'.' * (30 - filled)}] {p.step}/{p.steps}"
                f"{eta} {p.message}")
        print(("\r" + line) if tty else line, end="" if tty else "\n", file=sys.stderr,
              flush=True)
        if tty and p.step == p.steps:
            print(file=sys.stderr)
    return report


def _case_dict(c) -> dict:
    return {"id": c.id, "label": c.label, "label_source": c.label_source, "source": c.source,
            "source_path": c.source_path, "width": c.width, "height": c.height,
            "bit_depth": c.bit_depth, "modality": c.modality, "body_part": c.body_part,
            "added_by": c.added_by, "created_at": c.created_at.isoformat(),
            "sha256": c.sha256}


def _import(args: argparse.Namespace) -> int:
    from core.db import init_db, session_scope
    from core.library.importer import import_tree, read_labels_csv

    labels = read_labels_csv(Path(args.labels)) if args.labels else None
    with session_scope(init_db()) as s:
        summary = import_tree(s, args.folder, name=args.name,
                              label_from_folder=args.label_from_folder, labels=labels,
                              progress=bar_progress("import"), modality=args.modality,
                              body_part=args.body_part)
    out = summary.to_dict()
    if not args.no_embed and summary.added:
        out["embedded"] = _embed_active(quiet=args.json)
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        print(summary.text())
    return 0


def _embed_active(*, quiet: bool, version: str | None = None, progress=None) -> dict:
    from core.classifier.inference import Classifier
    from core.db import init_db, session_scope
    from core.retrieval.search import build_embeddings

    try:
        clf = Classifier.load(version)
    except MedScanError as err:
        if version is not None:
            raise
        msg = f"no embeddings computed: {err}"
        print(msg, file=sys.stderr)
        return {"model": None, "computed": 0, "note": msg}
    t0 = time.monotonic()
    with session_scope(init_db()) as s:
        n = build_embeddings(s, clf, progress=progress or bar_progress(f"embed {clf.version}"))
    if not quiet:
        print(f"Embedded {n} cases with classifier {clf.version} in "
              f"{time.monotonic() - t0:.0f} s.")
    return {"model": clf.version, "computed": n}


def _embed(args: argparse.Namespace) -> int:
    progress = (progress_from_args(args) if args.job_id is not None or args.quiet
                else bar_progress("embed"))
    _embed_active(quiet=args.quiet, version=args.model, progress=progress)
    return 0


def _list(args: argparse.Namespace) -> int:
    from core.db import init_db, session_scope
    from core.library import cases

    with session_scope(init_db()) as s:
        rows = cases.list_cases(s, label=args.label, source=args.source, limit=args.limit)
        total = cases.count_cases(s, label=args.label, source=args.source)
        per_label = cases.label_counts(s)
    if args.json:
        print(json.dumps({"total": total, "per_label": {str(k): v for k, v in per_label.items()},
                          "cases": [_case_dict(c) for c in rows]}, indent=2))
        return 0
    print("Per label: " + (", ".join(f"{k or 'no label'} {v}" for k, v in per_label.items())
                           or "(library empty)"))
    for c in rows:
        print(f"{c.id:>7}  {c.label or '-':<14} {c.width}×{c.height} {c.bit_depth:>2}-bit  "
              f"{c.modality or '-':<4} {c.source}: {c.source_path or ''}")
    if total > len(rows):
        print(f"… {total - len(rows)} more (use --limit)")
    return 0


def _show(args: argparse.Namespace) -> int:
    from core.db import init_db, session_scope
    from core.library import cases

    with session_scope(init_db()) as s:
        c = cases.get_case(s, args.case_id)
        data = cases.case_png(s, args.case_id) if args.out else None
    if data is not None:
        Path(args.out).write_bytes(data)
    out = _case_dict(c)
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        for k, v in out.items():
            print(f"{k:>13}: {v}")
        if data is not None:
            print(f"Wrote the image to {args.out}.")
    return 0


def _remove(args: argparse.Namespace) -> int:
    from core.db import init_db, session_scope
    from core.library import cases

    with session_scope(init_db()) as s:
        c = cases.remove_case(s, args.case_id, user_id=None)
    print(f"Removed case {c.id} ({c.label or 'no label'}, {c.source}).")
    return 0


def _label(args: argparse.Namespace) -> int:
    from core.db import init_db, session_scope
    from core.library import cases

    if not args.clear and not args.label:
        raise MedScanError("Give a label, or --clear to remove it.")
    with session_scope(init_db()) as s:
        c = cases.set_case_label(s, args.case_id, None if args.clear else args.label,
                                 user_id=None)
    print(f"Case {c.id}: label {c.label or '(none)'}.")
    return 0
