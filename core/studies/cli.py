"""``python -m core ratings agreement --csv FILE [--json]``: inter-reader agreement of one
question's ratings (columns ``item,reader,score``; a blank score is a missing rating).

``python -m core studies list|show ID|results ID [--json]``: the reader studies in the database
and their results (:mod:`core.studies.results`); ``studies export ID --out DIR``: ratings CSV,
results JSON and HTML report (:mod:`core.studies.export`); ``studies design NAME --cases
all|label=X|source=Y|ids=1,2 | --folder DIR ...``: a draft study from stored cases
(:mod:`core.studies.design`); ``studies generate ID``: its condition images (the
``study_images`` background job, :mod:`core.studies.generate`); ``studies open|close ID``.
Every database command first upgrades the schema."""
from __future__ import annotations

import argparse
import csv
import json
import math

from core.studies.agreement import ICC_FORMS, AgreementInputError

__all__ = ["register", "read_ratings_csv"]

REQUIRED_COLUMNS = ("item", "reader", "score")


def register(cmds) -> None:
    ratings = cmds.ratings
    if ratings is None:  # the database commands are not installed: own the group here
        ratings = cmds.sub.add_parser("ratings", help="reader ratings").add_subparsers(
            dest="ratings_cmd", metavar="ACTION", required=True)
        cmds.ratings = ratings
    agr = ratings.add_parser(
        "agreement", help="inter-reader agreement (ICC, Krippendorff's alpha, weighted kappa) "
                          "of a CSV with columns item,reader,score")
    agr.add_argument("--csv", required=True, metavar="FILE",
                     help="columns item,reader,score (one question; blank score = missing)")
    agr.add_argument("--json", action="store_true", help="print JSON instead of a table")
    agr.set_defaults(func=_agreement)

    studies = cmds.sub.add_parser("studies", help="reader studies: list, show, results")
    ss = studies.add_subparsers(dest="studies_cmd", metavar="ACTION", required=True)
    ls = ss.add_parser("list", help="all reader studies, newest first")
    ls.add_argument("--json", action="store_true", help="print JSON instead of a table")
    ls.set_defaults(func=_studies_list)
    show = ss.add_parser("show", help="one study: conditions, readers and their progress")
    show.add_argument("study_id", type=int, metavar="ID")
    show.add_argument("--json", action="store_true", help="print JSON instead of text")
    show.set_defaults(func=_studies_show)
    res = ss.add_parser("results", help="per-condition scores with bootstrap CIs, Wilcoxon vs "
                                        "the reference (Holm), Friedman, per reader, agreement")
    res.add_argument("study_id", type=int, metavar="ID")
    res.add_argument("--reference", metavar="CONDITION",
                     help="condition to compare against (default: original, else the first)")
    res.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    res.add_argument("--json", action="store_true", help="print JSON instead of a table")
    res.set_defaults(func=_studies_results)

    exp = ss.add_parser("export", help="ratings CSV, results JSON and a printable HTML report")
    exp.add_argument("study_id", type=int, metavar="ID")
    exp.add_argument("--out", required=True, metavar="DIR", help="folder to write into")
    exp.add_argument("--reference", metavar="CONDITION", help="as for results")
    exp.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    exp.set_defaults(func=_studies_export)

    from core.studies.design import CONDITIONS

    des = ss.add_parser("design", help="a draft study from the case library or a folder")
    des.add_argument("name", help="the study's name (unique)")
    src = des.add_mutually_exclusive_group(required=True)
    src.add_argument("--cases", metavar="PICK",
                     help="library cases: all | label=LABEL | source=IMPORT | ids=1,2,3")
    src.add_argument("--folder", metavar="DIR", help="an image folder on this server "
                                                     "(labels from first-level subfolders)")
    des.add_argument("--limit", type=int, help="at most this many cases")
    des.add_argument("--conditions", default="original,bicubic",
                     help=f"comma-separated, from {','.join(CONDITIONS)} (default "
                          "original,bicubic)")
    des.add_argument("--scale", type=int, choices=(2, 4), default=4)
    des.add_argument("--alpha", type=float, default=0.8, help="GAN (SRGAN, ESRGAN) interpolation α")
    des.add_argument("--side-by-side", choices=("lr", "original"), metavar="REFERENCE",
                     help="show each image next to a reference: lr | original")
    des.add_argument("--repeat-fraction", type=float, default=0.0,
                     help="fraction of items each reader sees twice (default 0)")
    des.add_argument("--readers", help="comma-separated user names (default: anyone)")
    des.add_argument("--diagnosis", help="comma-separated diagnosis choices (default: none)")
    des.add_argument("--no-comment", action="store_true", help="do not ask for a comment")
    des.add_argument("--unblinded", action="store_true", help="readers see the method")
    des.add_argument("--seed", type=int, help="order seed (default random, recorded)")
    des.add_argument("--json", action="store_true", help="print JSON instead of text")
    des.set_defaults(func=_studies_design)

    gen = ss.add_parser("generate", help="make a draft study's condition images (background "
                                         "job kind study_images)")
    gen.add_argument("study_id", type=int, metavar="ID")
    gen.add_argument("--run-dir", help=argparse.SUPPRESS)   # given to every job; unused
    gen.add_argument("--open", action="store_true", help="open the study when done")
    from core.jobs import add_progress_args

    add_progress_args(gen)
    gen.set_defaults(func=_studies_generate)
    for action, help_ in (("open", "open a study to its readers (draft: every image ready; "
                                   "closed: reopen, audited)"),
                          ("close", "close a study: no more ratings")):
        p = ss.add_parser(action, help=help_)
        p.add_argument("study_id", type=int, metavar="ID")
        p.set_defaults(func=_studies_state, action=action)


def read_ratings_csv(path: str) -> list[tuple[str, str, float | None]]:
    """``(item, reader, score)`` rows of a CSV file; extra columns are ignored."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            columns = [c.strip().lower() for c in (reader.fieldnames or [])]
            missing = [c for c in REQUIRED_COLUMNS if c not in columns]
            if missing:
                raise AgreementInputError(
                    f"{path}: missing column(s) {', '.join(missing)} (need item,reader,score)")
            reader.fieldnames = columns
            rows = []
            for line_no, row in enumerate(reader, start=2):
                item = (row.get("item") or "").strip()
                who = (row.get("reader") or "").strip()
                text = (row.get("score") or "").strip()
                if not item or not who:
                    raise AgreementInputError(f"{path} line {line_no}: empty item or reader")
                score = None
                if text:
                    try:
                        score = float(text)
                    except ValueError:
                        score = math.nan
                    if not math.isfinite(score):
                        raise AgreementInputError(
                            f"{path} line {line_no}: score {text!r} is not a number")
                rows.append((item, who, score))
    except OSError as err:
        raise AgreementInputError(f"cannot read {path}: {err.strerror or err}") from None
    except (UnicodeDecodeError, csv.Error) as err:
        raise AgreementInputError(f"{path} is not a readable CSV file: {err}") from None
    return rows


def _agreement(args: argparse.Namespace) -> int:
    from core.studies.agreement import agreement_report

    report = agreement_report(read_ratings_csv(args.csv))
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(_as_text(report))
    return 0


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _as_text(r: dict) -> str:
    lines = [f"{r['n_items']} items, {r['n_readers']} readers, {r['n_ratings']} ratings",
             "", f"{'figure':<24}{'value':>8}  {'95% CI':<18}reading"]
    for key, e in r["icc"].items():
        ci = "" if e["ci95"] is None else f"[{e['ci95'][0]:.3f}, {e['ci95'][1]:.3f}]"
        lines.append(f"{ICC_FORMS[key][0]:<24}{_fmt(e['value']):>8}  {ci:<18}{e['reading']}")
    lines.append(f"{'':<24}{'':>8}  {'':<18}({r['icc_note']})")
    for key, label in (("alpha_ordinal", "Krippendorff α ordinal"),
                       ("alpha_interval", "Krippendorff α interval")):
        lines.append(f"{label:<24}{_fmt(r[key]):>8}  {'':<18}{r['readings'][key]}")
    if r["kappa_quadratic"]:
        lines += ["", "quadratic-weighted Cohen's κ per reader pair (items both rated):"]
        for pair, value in r["kappa_quadratic"].items():
            a, b = pair.split("|", 1)
            label = f"{a} vs {b} (n={r['kappa_items'][pair]})"
            lines.append(f"  {label:<30}{_fmt(value):>8}  "
                         f"{r['readings']['kappa_quadratic'][pair]}")
    return "\n".join(lines)


def _study_dict(v) -> dict:
    from core.studies.export import study_dict

    return study_dict(v)


def _studies_list(args: argparse.Namespace) -> int:
    from core.db import init_db, session_scope
    from core.db.studies import list_studies

    with session_scope(init_db()) as s:
        studies = [_study_dict(v) for v in list_studies(s)]
    if args.json:
        print(json.dumps(studies, indent=2))
        return 0
    for v in studies:
        state = v["state"]
        print(f"{v['id']:>5}  {v['name']:<40} {v['n_items']:>5} items  {state:<7}"
              f"{'blinded' if v['blinded'] else 'unblinded'}")
    if not studies:
        print("(no reader studies)")
    return 0


def _studies_show(args: argparse.Namespace) -> int:
    from core.db import init_db, session_scope
    from core.db.studies import get_study, study_conditions, study_readers

    with session_scope(init_db()) as s:
        out = _study_dict(get_study(s, args.study_id))
        out["conditions"] = study_conditions(s, args.study_id)
        out["readers"] = [{"reader": name, "n_rated": n, "of": total}
                          for name, n, total in study_readers(s, args.study_id)]
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    print(f"study {out['id']}: {out['name']} ({out['state']}, "
          f"{'blinded' if out['blinded'] else 'unblinded'}, {out['n_items']} items, "
          f"seed {out['seed']}, created by {out['created_by'] or '-'})")
    print("conditions: " + (", ".join(f"{c} ({n})" for c, n in out["conditions"].items())
                            or "none"))
    for r in out["readers"]:
        print(f"  {r['reader']:<32} {r['n_rated']:>5} / {r['of']} showings rated")
    if not out["readers"]:
        print("  (no ratings yet)")
    return 0


def _studies_results(args: argparse.Namespace) -> int:
    from core.db import init_db, session_scope
    from core.db.studies import get_study, study_rating_rows
    from core.studies.results import study_results

    with session_scope(init_db()) as s:
        study = _study_dict(get_study(s, args.study_id))
        rows = study_rating_rows(s, args.study_id)
    report = {"study": study, **study_results(rows, reference=args.reference, seed=args.seed)}
    if args.json:
        print(json.dumps(report, indent=2, allow_nan=False))
    else:
        print(_results_text(report))
    return 0


def _studies_export(args: argparse.Namespace) -> int:
    from core.db import init_db, session_scope
    from core.studies.export import export_study

    with session_scope(init_db()) as s:
        paths = export_study(s, args.study_id, args.out, reference=args.reference,
                             seed=args.seed)
    for kind, path in paths.items():
        print(f"{kind}: {path}")
    return 0


def _split(text: str | None) -> list[str]:
    return [x.strip() for x in (text or "").split(",") if x.strip()]


def _studies_design(args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from core.db import init_db, session_scope
    from core.db.errors import StudyError
    from core.db.tables import User
    from core.studies.design import StudyDesign, design_study, folder_sources, library_sources

    with session_scope(init_db()) as s:
        if args.folder:
            sources = folder_sources(args.folder, limit=args.limit)
        else:
            kind, _, value = args.cases.partition("=")
            if kind not in ("all", "label", "source", "ids") or (kind != "all" and not value):
                raise StudyError("--cases takes all, label=LABEL, source=IMPORT or ids=1,2,3.")
            try:
                ids = [int(x) for x in _split(value)] if kind == "ids" else None
            except ValueError:
                raise StudyError(f"--cases ids=...: {value!r} is not a list of numbers.") \
                    from None
            sources = library_sources(s, label=value if kind == "label" else None,
                                      source=value if kind == "source" else None,
                                      case_ids=ids, limit=args.limit)
        names = _split(args.readers)
        users = dict(s.execute(select(User.username, User.id)
                               .where(User.username.in_(names))).all())
        unknown = [n for n in names if n not in users]
        if unknown:
            raise StudyError(f"No such user(s): {', '.join(unknown)}.")
        design = StudyDesign(
            name=args.name, conditions=tuple(_split(args.conditions)), scale=args.scale,
            alpha=args.alpha, presentation="side_by_side" if args.side_by_side else "single",
            reference=args.side_by_side, repeat_fraction=args.repeat_fraction,
            blinded=not args.unblinded, ask_comment=not args.no_comment,
            diagnosis_choices=tuple(_split(args.diagnosis)) or None,
            readers=tuple(users[n] for n in names), seed=args.seed)
        study = _study_dict(design_study(s, design, sources, None, folder=args.folder))
    if args.json:
        print(json.dumps(study, indent=2))
    else:
        print(f"study {study['id']}: {study['name']} (draft, {study['n_cases']} cases, "
              f"{study['n_items']} images to generate). Next: python -m core studies "
              f"generate {study['id']} --open")
    return 0


def _studies_generate(args: argparse.Namespace) -> int:
    from core.db import init_db, session_scope
    from core.db.studies import open_study
    from core.jobs import progress_from_args
    from core.studies.generate import generate_study_images

    engine = init_db()
    done = generate_study_images(engine, args.study_id, progress=progress_from_args(args))
    print(f"study {args.study_id}: {done['cases']} cases, {done['made']} images made, "
          f"{done['skipped']} cases already done")
    if args.open:
        with session_scope(engine) as s:
            open_study(s, args.study_id, None)
        print(f"study {args.study_id} is open")
    return 0


def _studies_state(args: argparse.Namespace) -> int:
    from core.db import init_db, session_scope
    from core.db.studies import close_study, open_study

    with session_scope(init_db()) as s:
        v = (open_study if args.action == "open" else close_study)(s, args.study_id, None)
        print(f"study {v.id}: {v.state}")
    return 0


def _ci(ci) -> str:
    return "" if ci is None else f"[{ci[0]:.2f}, {ci[1]:.2f}]"


def _p(p) -> str:
    return "n/a" if p is None else f"{p:.4f}"


def _results_text(r: dict) -> str:
    lines = [f"study {r['study']['id']}: {r['study']['name']} — {r['n_ratings']} scores, "
             f"{r['n_cases']} cases, {r['n_readers']} readers; reference: "
             f"{r['reference'] or '-'}" + (f" ({r['reference_reason']})"
                                           if r["reference_reason"] else "")]
    for q, res in r["questions"].items():
        lines += ["", q, f"  {'condition':<20}{'cases':>6}{'mean':>7}  {'95% CI':<15}"
                     f"{'median':>7}  {'95% CI':<15}"]
        for c, e in res["by_condition"].items():
            lines.append(f"  {c:<20}{e['n_cases']:>6}{_fmt(e['mean']):>7}  "
                         f"{_ci(e['mean_ci95']):<15}{_fmt(e['median']):>7}  "
                         f"{_ci(e['median_ci95']):<15}")
        for c in res["comparisons"]:
            tail = (f"W={c['statistic']:.1f} p={_p(c['p_value'])} Holm p={_p(c['p_holm'])} "
                    f"r={_fmt(c['rank_biserial'])}" if c["reason"] is None else c["reason"])
            lines.append(f"  {c['condition']} vs {c['reference']} (n={c['n_pairs']}, "
                         f"mean diff {_fmt(c['mean_difference'])}): {tail}")
        f = res["friedman"]
        lines.append("  Friedman: " + (f"chi2={f['statistic']:.3f} p={_p(f['p_value'])} "
                                       f"({f['n_cases']} cases)" if f["reason"] is None
                                       else f["reason"]))
        a = res["agreement"]
        lines.append("  agreement: " + (
            res["agreement_reason"] if a is None else
            f"ICC(2,1) {_fmt(a['icc']['ICC2']['value'])}, ICC(3,1) "
            f"{_fmt(a['icc']['ICC3']['value'])}, alpha ordinal {_fmt(a['alpha_ordinal'])}"))
    lines += ["", "readers:"]
    for rd in r["readers"]:
        means = ", ".join(f"{q} {_fmt(m)}" for q, m in rd["mean"].items())
        lines.append(f"  {rd['reader']:<24}{rd['n_rated']:>5} rated  {means}")
    return "\n".join(lines)
