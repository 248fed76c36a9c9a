"""``python -m core ratings agreement --csv FILE [--json]``: inter-reader agreement of one
question's ratings (columns ``item,reader,score``; a blank score is a missing rating)."""
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

