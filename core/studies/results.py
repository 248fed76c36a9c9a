"""Results of a reader study: which condition (method) scored better, and how sure we are.

Input is long rows ``(case, condition, reader, question, score)``: one reader's score of one case
shown under one condition (e.g. ``original``, ``bicubic``, ``esrgan``) for one question
(``image_quality`` or ``diagnostic_usefulness``, 1–5). A ``None`` score is a missing rating.

Per question, :func:`study_results` reports

* per condition: number of cases and ratings, mean and median score, each with a 95% percentile
  bootstrap CI that resamples *cases* (all of a case's ratings travel together; seeded, so the
  same data give the same interval);
* each condition against the reference condition (default ``original`` when present, else the
  first condition in sorted order): per case the mean over readers, then the Wilcoxon
  signed-rank test over the cases rated under both (``scipy.stats.wilcoxon``, zero differences
  dropped as Wilcoxon did), Holm-corrected p-values across the comparisons of that question
  (Holm 1979), and the matched-pairs rank-biserial correlation (Kerby 2014; +1 = every case
  scored higher under the condition, −1 = lower);
* the Friedman test across all conditions on the cases rated under every condition
  (``scipy.stats.friedmanchisquare``; needs at least 3 conditions);
* inter-reader agreement with :func:`core.studies.agreement.agreement_report`, an item being one
  (case, condition).

Plus, per reader: number of items rated and mean score per question. A figure that cannot be
computed (too few cases, no differences, ...) is ``None`` with a ``reason``; the output never
holds NaN and small or degenerate data never raise.
"""
from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence

import numpy as np

from core.errors import MedScanError
from core.studies.agreement import AgreementInputError, agreement_report

__all__ = ["QUESTIONS", "DEFAULT_REFERENCE", "ResultsInputError", "study_results",
           "scores_by_condition", "holm_adjust", "bootstrap_ci", "paired_wilcoxon",
           "rank_biserial", "friedman", "reader_details", "diagnosis_accuracy"]

QUESTIONS = ("image_quality", "diagnostic_usefulness")
DEFAULT_REFERENCE = "original"
N_BOOTSTRAP = 2000

Row = tuple[object, object, object, str, float | None]


class ResultsInputError(MedScanError):
    """The ratings or the arguments cannot be analysed as given (e.g. an unknown reference)."""


def _num(x: float | None) -> float | None:
    """A JSON-safe float: ``None`` for None/NaN/inf."""
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def holm_adjust(p_values: Sequence[float | None]) -> list[float | None]:
    """Holm's step-down adjusted p-values (Holm 1979), in the input order; ``None`` entries are
    left out of the family and stay ``None``.

    With the m valid p-values sorted ascending, ``p_(i)`` becomes
    ``max_{j<=i} min(1, (m - j + 1) * p_(j))`` (1-based ``j``).
    """
    valid = [(p, i) for i, p in enumerate(p_values) if p is not None]
    m = len(valid)
    out: list[float | None] = [None] * len(p_values)
    running = 0.0
    for rank, (p, i) in enumerate(sorted(valid)):
        running = max(running, min(1.0, (m - rank) * float(p)))
        out[i] = running
    return out


def bootstrap_ci(groups: Sequence[Sequence[float]], statistic: str = "mean", *,
                 n_boot: int = N_BOOTSTRAP, seed: int = 0,
                 level: float = 0.95) -> tuple[list[float] | None, str | None]:
    """Percentile bootstrap CI of the mean or median of all scores, resampling the groups
    (cases) with replacement. Returns ``(ci, reason)``; ``ci`` is ``None`` with fewer than
    2 groups."""
    groups = [np.asarray(g, dtype=float) for g in groups if len(g)]
    if len(groups) < 2:
        return None, f"needs at least 2 cases, got {len(groups)}"
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(groups), size=(n_boot, len(groups)))
    if statistic == "mean":
        sums = np.array([g.sum() for g in groups])
        counts = np.array([g.size for g in groups])
        stats = sums[picks].sum(axis=1) / counts[picks].sum(axis=1)
    elif statistic == "median":
        stats = np.array([np.median(np.concatenate([groups[i] for i in row])) for row in picks])
    else:
        raise ValueError(f"unknown statistic {statistic!r}")
    tail = (1.0 - level) / 2 * 100
    lo, hi = np.percentile(stats, [tail, 100 - tail])
    return [float(lo), float(hi)], None


def rank_biserial(differences: Sequence[float]) -> float | None:
    """Matched-pairs rank-biserial correlation (Kerby 2014): ``(R+ - R-) / (R+ + R-)`` with
    the ranks of ``|d|`` over the non-zero differences; ``None`` if all are zero."""
    from scipy.stats import rankdata

    d = np.asarray(differences, dtype=float)
    d = d[d != 0]
    if d.size == 0:
        return None
    ranks = rankdata(np.abs(d))
    total = ranks.sum()
    return float((ranks[d > 0].sum() - ranks[d < 0].sum()) / total)


def paired_wilcoxon(condition: Sequence[float], reference: Sequence[float]) -> dict:
    """Wilcoxon signed-rank test of paired per-case scores (condition − reference), two-sided,
    zero differences dropped (``zero_method="wilcox"``). Keys: ``n_pairs``, ``n_nonzero``,
    ``mean_difference``, ``median_difference``, ``statistic``, ``p_value``, ``rank_biserial``,
    ``reason`` (``None`` when the test ran)."""
    from scipy.stats import wilcoxon

    a = np.asarray(condition, dtype=float)
    b = np.asarray(reference, dtype=float)
    d = a - b
    out = {"n_pairs": int(d.size), "n_nonzero": int((d != 0).sum()),
           "mean_difference": _num(d.mean()) if d.size else None,
           "median_difference": _num(np.median(d)) if d.size else None,
           "statistic": None, "p_value": None, "rank_biserial": rank_biserial(d),
           "reason": None}
    if d.size == 0:
        out["reason"] = "no case was rated under both conditions"
        return out
    if out["n_nonzero"] == 0:
        out["reason"] = "every paired difference is zero"
        return out
    return _run_test(out, lambda: wilcoxon(a, b, zero_method="wilcox", alternative="two-sided"))


def _run_test(out: dict, test) -> dict:
    """Run a SciPy test and put its ``statistic`` and ``p_value`` into ``out``; SciPy's own
    refusal of degenerate input, or an undefined (non-finite) result, becomes ``reason``."""
    try:
        res = test()
    except ValueError as err:
        out["reason"] = f"not computable: {err}"
        return out
    out["statistic"], out["p_value"] = _num(res.statistic), _num(res.pvalue)
    if out["p_value"] is None:
        out["statistic"] = None
        out["reason"] = "not computable (undefined statistic)"
    return out


def friedman(table: dict[str, dict[object, float]], conditions: Sequence[str]) -> dict:
    """Friedman test across ``conditions`` on the cases with a score under every one
    (``table[condition][case]`` = per-case mean). Keys: ``statistic``, ``p_value``,
    ``n_cases``, ``n_conditions``, ``reason``."""
    from scipy.stats import friedmanchisquare

    cases = set.intersection(*(set(table.get(c, {})) for c in conditions)) if conditions \
        else set()
    cases = sorted(cases, key=str)
    out = {"statistic": None, "p_value": None, "n_cases": len(cases),
           "n_conditions": len(conditions), "reason": None}
    if len(conditions) < 3:
        out["reason"] = f"needs at least 3 conditions, got {len(conditions)}"
    elif len(cases) < 2:
        out["reason"] = f"needs at least 2 cases rated under every condition, got {len(cases)}"
    else:
        samples = [[table[c][k] for k in cases] for c in conditions]
        if all(len(set(row)) == 1 for row in zip(*samples)):
            out["reason"] = "every case scored the same under all conditions"
            return out
        return _run_test(out, lambda: friedmanchisquare(*samples))
    return out


def _check(rows: Iterable[Row]) -> list[tuple[str, str, str, str, float]]:
    clean, seen = [], set()
    for row in rows:
        try:
            case, condition, reader, question, score = row
        except (TypeError, ValueError):
            raise ResultsInputError(
                "each rating row must be (case, condition, reader, question, score)") from None
        if score is None:
            continue
        try:
            value = float(score)
        except (TypeError, ValueError):
            value = math.nan
        if not math.isfinite(value):
            raise ResultsInputError(f"score {score!r} is not a number")
        key = (str(case), str(condition), str(reader), str(question))
        if key in seen:
            raise ResultsInputError(f"two scores for case {key[0]}, condition {key[1]}, "
                                    f"reader {key[2]}, question {key[3]}")
        seen.add(key)
        clean.append((*key, value))
    return clean


def _question(rows: list[tuple[str, str, str, str, float]], conditions: list[str],
              reference: str | None, n_boot: int, seed: int) -> dict:
    scores: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for case, cond, _reader, _q, value in rows:
        scores[cond][case].append(value)
    means = {c: {k: float(np.mean(v)) for k, v in scores[c].items()} for c in conditions}

    by_condition = {}
    for i, cond in enumerate(conditions):
        groups = [scores[cond][k] for k in sorted(scores[cond])]
        flat = [x for g in groups for x in g]
        entry = {"n_cases": len(groups), "n_ratings": len(flat),
                 "mean": _num(np.mean(flat)) if flat else None,
                 "median": _num(np.median(flat)) if flat else None,
                 "mean_ci95": None, "median_ci95": None, "ci_reason": None}
        if flat:
            entry["mean_ci95"], entry["ci_reason"] = bootstrap_ci(
                groups, "mean", n_boot=n_boot, seed=seed + i)
            entry["median_ci95"], _ = bootstrap_ci(groups, "median", n_boot=n_boot,
                                                   seed=seed + i)
        else:
            entry["ci_reason"] = "no ratings"
        by_condition[cond] = entry

    comparisons = []
    if reference is not None:
        ref = means[reference]
        for cond in conditions:
            if cond == reference:
                continue
            shared = sorted(set(means[cond]) & set(ref))
            test = paired_wilcoxon([means[cond][k] for k in shared], [ref[k] for k in shared])
            comparisons.append({"condition": cond, "reference": reference, **test})
        for c, p in zip(comparisons, holm_adjust([c["p_value"] for c in comparisons])):
            c["p_holm"] = p

    agreement, agreement_reason = None, None
    try:
        agreement = agreement_report((f"{case}|{cond}", reader, value)
                                     for case, cond, reader, _q, value in rows)
    except AgreementInputError as err:
        agreement_reason = str(err)
    return {"n_ratings": len(rows), "by_condition": by_condition, "comparisons": comparisons,
            "friedman": friedman(means, conditions), "agreement": agreement,
            "agreement_reason": agreement_reason}


def study_results(rows: Iterable[Row], *, reference: str | None = None,
                  questions: Sequence[str] = QUESTIONS, n_boot: int = N_BOOTSTRAP,
                  seed: int = 0) -> dict:
    """Every result of a study's ratings, JSON-ready (see the module docstring).

    Keys: ``n_ratings``, ``n_cases``, ``n_readers``, ``conditions`` (reference first, then
    sorted), ``reference``, ``reference_reason``, ``seed``, ``n_bootstrap``, ``questions``
    (question -> ``by_condition``, ``comparisons``, ``friedman``, ``agreement``,
    ``agreement_reason``, ``n_ratings``) and ``readers`` (list of ``reader``, ``n_rated``,
    ``mean`` per question). Raises :class:`ResultsInputError` for malformed rows, an unknown
    question or a ``reference`` that is not one of the conditions.
    """
    data = _check(rows)
    unknown = sorted({q for *_, q, _v in data} - set(questions))
    if unknown:
        raise ResultsInputError(f"unknown question(s) {', '.join(unknown)} "
                                f"(expected {', '.join(questions)})")
    conditions = sorted({c for _k, c, *_ in data})
    reference_reason = None
    if reference is not None:
        if reference not in conditions:
            raise ResultsInputError(f"reference condition {reference!r} is not in this study "
                                    f"(conditions: {', '.join(conditions) or 'none'})")
    elif DEFAULT_REFERENCE in conditions:
        reference = DEFAULT_REFERENCE
    elif conditions:
        reference = conditions[0]
    else:
        reference_reason = "no ratings"
    if reference is not None:
        conditions = [reference] + [c for c in conditions if c != reference]
        if len(conditions) < 2:
            reference_reason = "only one condition: nothing to compare"

    per_question = {q: _question([r for r in data if r[3] == q], conditions, reference,
                                 n_boot, seed) for q in questions}

    items: dict[str, set] = defaultdict(set)
    sums: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for case, cond, reader, q, value in data:
        items[reader].add((case, cond))
        sums[reader][q].append(value)
    readers = [{"reader": r, "n_rated": len(items[r]),
                "mean": {q: _num(np.mean(sums[r][q])) if sums[r][q] else None
                         for q in questions}}
               for r in sorted(items)]
    return {"n_ratings": len(data), "n_cases": len({r[0] for r in data}),
            "n_readers": len(readers), "conditions": conditions, "reference": reference,
            "reference_reason": reference_reason, "seed": seed, "n_bootstrap": n_boot,
            "questions": per_question, "readers": readers}


def scores_by_condition(rows: Iterable[Row]) -> dict[str, dict[str, list[float]]]:
    """``question -> condition -> every score`` (for a plot of the score distributions)."""
    out: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for _case, condition, _reader, question, score in _check(rows):
        out[question][condition].append(score)
    return {q: dict(by) for q, by in out.items()}


def reader_details(responses: Iterable[dict], questions: Sequence[str] = QUESTIONS) -> list[dict]:
    """Per reader, from every answer (``core.db.studies.study_response_rows``: dicts with
    ``reader``, ``item_id``, ``repeat``, ``seconds`` and one key per question): items rated
    (first showings), showings answered, time per showing (mean, median, total; answers with
    an unknown time left out) and intra-reader consistency on repeated items: per question the
    number of (first, repeat) pairs, exact agreement, agreement within one point, mean
    absolute difference and quadratic-weighted κ (``None`` where undefined, e.g. one pair)."""
    from core.studies.agreement import quadratic_kappa

    by_reader: dict[str, list[dict]] = defaultdict(list)
    for r in responses:
        by_reader[str(r["reader"])].append(r)
    out = []
    for reader in sorted(by_reader):
        rows = by_reader[reader]
        times = [float(r["seconds"]) for r in rows if r.get("seconds") is not None]
        first = {r["item_id"]: r for r in rows if not r["repeat"]}
        again = {r["item_id"]: r for r in rows if r["repeat"]}
        pairs = [(first[i], again[i]) for i in sorted(set(first) & set(again))]
        consistency = {}
        for q in questions:
            a = [float(x[q]) for x, _ in pairs]
            b = [float(y[q]) for _, y in pairs]
            diffs = [abs(x - y) for x, y in zip(a, b)]
            consistency[q] = {
                "n_pairs": len(pairs),
                "exact": _num(np.mean([d == 0 for d in diffs])) if diffs else None,
                "within_one": _num(np.mean([d <= 1 for d in diffs])) if diffs else None,
                "mean_abs_diff": _num(np.mean(diffs)) if diffs else None,
                "kappa_quadratic": _num(quadratic_kappa(a, b)) if len(pairs) > 1 else None}
        out.append({"reader": reader, "n_items": len(first), "n_showings": len(rows),
                    "seconds_mean": _num(np.mean(times)) if times else None,
                    "seconds_median": _num(np.median(times)) if times else None,
                    "seconds_total": _num(np.sum(times)) if times else None,
                    "consistency": consistency})
    return out


def diagnosis_accuracy(responses: Iterable[dict]) -> dict[str, dict]:
    """Per condition: first-showing answers with both a diagnosis and a known case label,
    how many matched the label, and the fraction (``None`` without any)."""
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for r in responses:
        if r["repeat"] or not r.get("diagnosis") or not r.get("case_label"):
            continue
        c = counts[str(r["condition"])]
        c[0] += 1
        c[1] += int(str(r["diagnosis"]).strip().lower() == str(r["case_label"]).strip().lower())
    return {cond: {"n": n, "correct": k, "accuracy": k / n if n else None}
            for cond, (n, k) in sorted(counts.items())}
