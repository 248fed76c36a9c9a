"""Exports of a reader study (admin): the raw ratings as CSV, the results as JSON, and a
printable HTML report with the score-distribution plots (inline SVG: no script, no network,
prints as it shows). ``python -m core studies export ID --out DIR`` writes all three.

CSV: one row per reader × showing × question (:data:`CSV_COLUMNS`): condition, case (the
scan's SHA-256), the case's label, question, score, seconds spent on the showing, repeat flag,
diagnosis and comment. Cells that a spreadsheet would run as a formula are prefixed with ``'``.
"""
from __future__ import annotations

import csv
import html
import io
import json
from pathlib import Path

from sqlalchemy.orm import Session

__all__ = ["CSV_COLUMNS", "study_dict", "build_report", "ratings_csv", "results_json",
           "report_html", "export_study"]

CSV_COLUMNS = ("study_id", "reader", "item_id", "case", "case_label", "condition", "repeat",
               "question", "score", "seconds", "diagnosis", "comment", "updated_at")
QUESTION_TITLES = {"image_quality": "Image quality",
                   "diagnostic_usefulness": "Diagnostic usefulness"}
SCALE_WORDS = {1: "extremely bad", 2: "poor", 3: "acceptable", 4: "good", 5: "excellent"}
# Fill of each score in the distribution bars (1 → 5: red → green; readable in grey print).
_SCORE_FILL = {1: "#b2182b", 2: "#ef8a62", 3: "#e0e0e0", 4: "#67a9cf", 5: "#2166ac"}


def study_dict(v) -> dict:
    """A study (:class:`core.db.studies.StudyInfo`) as JSON-ready data."""
    iso = (lambda t: None if t is None else t.isoformat())
    return {"id": v.id, "name": v.name, "state": v.state, "active": v.active,
            "blinded": v.blinded, "seed": v.seed, "n_items": v.n_items, "n_cases": v.n_cases,
            "n_ready": v.n_ready, "presentation": v.presentation, "reference": v.reference,
            "repeat_fraction": v.repeat_fraction, "scale": v.scale, "alpha": v.alpha,
            "ask_comment": v.ask_comment,
            "diagnosis_choices": list(v.diagnosis_choices) if v.diagnosis_choices else None,
            "open_to_all": v.open_to_all, "readers": list(v.readers),
            "created_by": v.created_by, "created_at": iso(v.created_at),
            "opened_at": iso(v.opened_at), "closed_at": iso(v.closed_at), "job_id": v.job_id}


def build_report(session: Session, study_id: int, *, reference: str | None = None,
                 seed: int = 0) -> dict:
    """Everything the results page shows, JSON-ready: the study, :func:`study_results` of the
    first showings, per-reader time and intra-reader consistency, diagnosis accuracy per
    condition and the scores per condition (for the plots)."""
    from core.db.studies import get_study, study_rating_rows, study_response_rows
    from core.studies.results import (diagnosis_accuracy, reader_details, scores_by_condition,
                                      study_results)

    study = get_study(session, study_id)
    rows = study_rating_rows(session, study_id)
    responses = study_response_rows(session, study_id)
    return {"study": study_dict(study), **study_results(rows, reference=reference, seed=seed),
            "reader_details": reader_details(responses),
            "diagnosis": diagnosis_accuracy(responses), "scores": scores_by_condition(rows)}


def _cell(value):
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return "" if value is None else value


def ratings_csv(study_id: int, responses: list[dict]) -> str:
    """The raw ratings (``core.db.studies.study_response_rows``) as CSV text."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    for r in responses:
        for q in QUESTION_TITLES:
            w.writerow([_cell(v) for v in (
                study_id, r["reader"], r["item_id"], r["case"], r["case_label"],
                r["condition"], int(bool(r["repeat"])), q, r[q], r["seconds"], r["diagnosis"],
                r["comment"], r["updated_at"])])
    return buf.getvalue()


def results_json(report: dict) -> str:
    return json.dumps(report, indent=2, allow_nan=False)


def _fmt(x, digits: int = 2) -> str:
    return "—" if x is None else f"{x:.{digits}f}"


def _ci(ci) -> str:
    return "—" if ci is None else f"{ci[0]:.2f} – {ci[1]:.2f}"


def _label(condition: str) -> str:
    from core.studies.design import CONDITION_LABELS

    method, _, version = str(condition).partition("@")
    return CONDITION_LABELS.get(method, method) + (f" ({version})" if version else "")


def _bars_svg(scores: dict[str, list[float]], conditions: list[str]) -> str:
    """Horizontal 100% stacked bars: the share of each score 1–5 per condition."""
    row_h, label_w, bar_w = 26, 170, 560
    height = row_h * len(conditions) + 34
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{label_w + bar_w + 10}" '
             f'height="{height}" role="img" font-family="sans-serif" font-size="12">']
    for i, cond in enumerate(conditions):
        values = [round(v) for v in scores.get(cond, [])]
        y = i * row_h
        parts.append(f'<text x="0" y="{y + 17}">{html.escape(_label(cond))} '
                     f'(n={len(values)})</text>')
        x = float(label_w)
        for score in range(1, 6):
            share = values.count(score) / len(values) if values else 0.0
            w = share * bar_w
            if w > 0:
                parts.append(f'<rect x="{x:.1f}" y="{y + 4}" width="{w:.1f}" height="{row_h - 8}"'
                             f' fill="{_SCORE_FILL[score]}" stroke="#555" stroke-width="0.5">'
                             f'<title>{score}: {share:.0%}</title></rect>')
                if w > 22:
                    parts.append(f'<text x="{x + w / 2:.1f}" y="{y + 17}" text-anchor="middle">'
                                 f'{score}</text>')
            x += w
    y = row_h * len(conditions) + 12
    for score in range(1, 6):
        x = label_w + (score - 1) * 112
        parts.append(f'<rect x="{x}" y="{y}" width="12" height="12" '
                     f'fill="{_SCORE_FILL[score]}" stroke="#555" stroke-width="0.5"/>'
                     f'<text x="{x + 16}" y="{y + 11}">{score} {SCALE_WORDS[score]}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _table(header: list[str], rows: list[list]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>"
                   for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def report_html(report: dict) -> str:
    """A self-contained, printable HTML report of :func:`build_report`'s result."""
    st = report["study"]
    e = html.escape
    out = [f"<!doctype html><html><head><meta charset='utf-8'><title>Reader study "
           f"{e(st['name'])}</title><style>body{{font-family:sans-serif;margin:2em;"
           "max-width:60em}table{border-collapse:collapse;margin:.5em 0 1em}"
           "td,th{border:1px solid #999;padding:3px 8px;text-align:left}"
           "h2{page-break-before:auto}@media print{body{margin:0}}</style></head><body>",
           f"<h1>Reader study: {e(st['name'])}</h1>",
           f"<p>State {e(st['state'])} · {st['n_cases']} cases · {st['n_items']} images · "
           f"{'blinded' if st['blinded'] else 'not blinded'} · presentation "
           f"{e(st['presentation'].replace('_', ' '))}"
           + (f" (reference: {e(st['reference'])})" if st["reference"] else "")
           + f" · scale ×{st['scale'] or '—'}"
           + (f" · GAN α {st['alpha']:.2f}" if st["alpha"] is not None else "")
           + f" · repeated items {st['repeat_fraction']:.0%} · seed {st['seed']}</p>",
           f"<p>{report['n_ratings']} scores · {report['n_cases']} cases · "
           f"{report['n_readers']} reader(s) · reference condition: "
           f"{e(_label(report['reference'])) if report['reference'] else '—'}. 95% CIs: "
           f"percentile bootstrap over cases ({report['n_bootstrap']} resamples, seed "
           f"{report['seed']}); p-values: Wilcoxon signed-rank over cases, Holm-corrected; "
           "r: matched-pairs rank-biserial; agreement readings per Koo &amp; Li (2016) "
           "and Landis &amp; Koch (1977).</p>"]
    for q, res in report["questions"].items():
        out.append(f"<h2>{e(QUESTION_TITLES.get(q, q))}</h2>")
        out.append(_bars_svg(report["scores"].get(q, {}), report["conditions"]))
        out.append(_table(["condition", "cases", "ratings", "mean", "mean 95% CI", "median",
                           "median 95% CI"],
                          [[_label(c), x["n_cases"], x["n_ratings"], _fmt(x["mean"]),
                            _ci(x["mean_ci95"]), _fmt(x["median"]), _ci(x["median_ci95"])]
                           for c, x in res["by_condition"].items()]))
        if res["comparisons"]:
            out.append(_table(["condition", "vs", "cases", "mean difference", "W", "p",
                               "p (Holm)", "r", "note"],
                              [[_label(c["condition"]), _label(c["reference"]), c["n_pairs"],
                                _fmt(c["mean_difference"]), _fmt(c["statistic"], 1),
                                _fmt(c["p_value"], 4), _fmt(c["p_holm"], 4),
                                _fmt(c["rank_biserial"]), c["reason"] or ""]
                               for c in res["comparisons"]]))
        f = res["friedman"]
        out.append("<p>Friedman test across conditions: " + (
            f"χ² = {f['statistic']:.2f}, p = {f['p_value']:.4f} ({f['n_cases']} cases)"
            if f["reason"] is None else e(f["reason"])) + "</p>")
        a = res["agreement"]
        if a is None:
            out.append(f"<p>Inter-reader agreement: {e(res['agreement_reason'] or '—')}</p>")
        else:
            rows = [[name, _fmt(a["icc"][key]["value"]), _ci(a["icc"][key]["ci95"]),
                     a["icc"][key]["reading"]]
                    for key, name in (("ICC2", "ICC(2,1)"), ("ICC3", "ICC(3,1)"))]
            rows += [[name, _fmt(a[key]), "", a["readings"][key]]
                     for key, name in (("alpha_ordinal", "Krippendorff's α (ordinal)"),
                                       ("alpha_interval", "Krippendorff's α (interval)"))]
            rows += [[f"weighted κ {pair.replace('|', ' vs ')}", _fmt(v), "",
                      a["readings"]["kappa_quadratic"][pair]]
                     for pair, v in a["kappa_quadratic"].items()]
            out.append("<h3>Inter-reader agreement</h3>"
                       + _table(["figure", "value", "95% CI", "reading"], rows))
    out.append("<h2>Readers</h2>")
    details = {d["reader"]: d for d in report.get("reader_details", [])}
    rows = []
    for r in report["readers"]:
        d = details.get(r["reader"], {})
        cons = d.get("consistency", {})
        rows.append([r["reader"], r["n_rated"],
                     *[_fmt(r["mean"].get(q)) for q in QUESTION_TITLES],
                     _fmt(d.get("seconds_median"), 1),
                     *[f"{_fmt(cons.get(q, {}).get('exact'))} "
                       f"(n={cons.get(q, {}).get('n_pairs', 0)})" for q in QUESTION_TITLES]])
    out.append(_table(["reader", "rated", *[f"mean {QUESTION_TITLES[q].lower()}"
                                            for q in QUESTION_TITLES],
                       "median s / item",
                       *[f"repeat agreement {QUESTION_TITLES[q].lower()}"
                         for q in QUESTION_TITLES]], rows))
    if report.get("diagnosis"):
        out.append("<h2>Diagnosis</h2>" + _table(
            ["condition", "answers", "correct", "accuracy"],
            [[_label(c), d["n"], d["correct"], _fmt(d["accuracy"])]
             for c, d in report["diagnosis"].items()]))
    out.append("</body></html>")
    return "\n".join(out)


def export_study(session: Session, study_id: int, out_dir: str | Path, *,
                 reference: str | None = None, seed: int = 0) -> dict[str, Path]:
    """Write ``study-<ID>-ratings.csv``, ``study-<ID>-results.json`` and
    ``study-<ID>-report.html`` into ``out_dir`` (created); returns their paths."""
    from core.db.studies import study_response_rows

    out = Path(out_dir).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    report = build_report(session, study_id, reference=reference, seed=seed)
    paths = {"csv": out / f"study-{study_id}-ratings.csv",
             "json": out / f"study-{study_id}-results.json",
             "html": out / f"study-{study_id}-report.html"}
    paths["csv"].write_text(ratings_csv(study_id, study_response_rows(session, study_id)),
                            encoding="utf-8")
    paths["json"].write_text(results_json(report), encoding="utf-8")
    paths["html"].write_text(report_html(report), encoding="utf-8")
    return paths
