"""Inter-reader agreement over a long table of ratings ``(item, reader, score)``.

Pure functions, no I/O. A missing rating is ``None`` (or NaN) or simply an absent row.

- ICC(1,1), ICC(2,1), ICC(3,1): Shrout & Fleiss (1979), "Intraclass correlations: uses in
  assessing rater reliability", Psychol. Bull. 86(2):420-428, single-rater forms, from the
  two-way ANOVA mean squares; 95% CIs from the F distribution (McGraw & Wong 1996, Psychol.
  Methods 1(1):30-46; the same formulas as pingouin's ``intraclass_corr`` and R psych's ``ICC``).
  ANOVA needs a full table, so ICC uses the complete-case items only; how many were dropped is
  reported.
- Krippendorff's alpha, ordinal and interval (Krippendorff 2011, "Computing Krippendorff's
  alpha-reliability"): the maintained ``krippendorff`` package; uses every pairable rating.
- Quadratic-weighted Cohen's kappa (Cohen 1968) for each reader pair on the items both rated,
  with weights ``(a - b)**2`` on the scores themselves.
- Plain-language readings: Koo & Li (2016) for ICC, Krippendorff (2004) for alpha, Landis &
  Koch (1977) for kappa.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import combinations

import numpy as np
from scipy import stats

from core.errors import MedScanError

__all__ = ["AgreementInputError", "RatingTable", "IccEstimate", "IccResult", "rating_table",
           "icc", "krippendorff_alpha", "quadratic_kappa", "pairwise_kappa", "read_icc",
           "read_alpha", "read_kappa", "agreement_report", "ICC_FORMS"]

#: JSON key -> Shrout & Fleiss name and what the form assumes.
ICC_FORMS = {
    "ICC1": ("ICC(1,1)", "one-way random: each item rated by its own random readers"),
    "ICC2": ("ICC(2,1)", "two-way random, absolute agreement: readers are a sample"),
    "ICC3": ("ICC(3,1)", "two-way mixed, consistency: these readers only"),
}


class AgreementInputError(MedScanError):
    """The ratings cannot be analysed (too few readers or items, duplicates, bad scores)."""


@dataclass(frozen=True)
class RatingTable:
    """Ratings as an items x readers matrix, NaN where a reader did not rate an item."""
    items: tuple[str, ...]
    readers: tuple[str, ...]
    scores: np.ndarray  # float64, shape (len(items), len(readers))


def rating_table(rows: Iterable[tuple[object, object, float | None]]) -> RatingTable:
    """Build the items x readers matrix from ``(item, reader, score)`` rows.

    Items and readers keep their first-seen order. A ``None``/NaN score is missing (the item and
    reader still count). Two scores for the same item and reader raise
    :class:`AgreementInputError`, as does a score that is not a finite number.
    """
    items: dict[str, int] = {}
    readers: dict[str, int] = {}
    cells: dict[tuple[int, int], float] = {}
    for item, reader, score in rows:
        i = items.setdefault(str(item), len(items))
        j = readers.setdefault(str(reader), len(readers))
        if score is None or (isinstance(score, float) and math.isnan(score)):
            continue
        try:
            value = float(score)
        except (TypeError, ValueError):
            raise AgreementInputError(
                f"score {score!r} of item {item!r}, reader {reader!r} is not a number") from None
        if not math.isfinite(value):
            raise AgreementInputError(
                f"score {score!r} of item {item!r}, reader {reader!r} is not a finite number")
        if (i, j) in cells:
            raise AgreementInputError(
                f"item {item!r} has two scores from reader {reader!r} (one question per table)")
        cells[(i, j)] = value
    scores = np.full((len(items), len(readers)), np.nan)
    for (i, j), value in cells.items():
        scores[i, j] = value
    return RatingTable(tuple(items), tuple(readers), scores)


@dataclass(frozen=True)
class IccEstimate:
    value: float | None
    ci95: tuple[float, float] | None


@dataclass(frozen=True)
class IccResult:
    """ICC1/ICC2/ICC3 estimates on ``n_used`` complete items (``n_dropped`` had a gap)."""
    estimates: dict[str, IccEstimate]
    n_used: int
    n_dropped: int
    reason: str | None = None  # why the estimates are None


def icc(scores: np.ndarray, alpha: float = 0.05) -> IccResult:
    """Single-rater ICC(1,1), ICC(2,1), ICC(3,1) with ``1 - alpha`` confidence intervals.

    ``scores`` is items x readers; rows with any NaN are dropped first (complete cases).
    Needs at least 2 complete items and 2 readers, otherwise every estimate is ``None`` and
    ``reason`` says why. A table with no variance at all gives ``None`` too (0/0).
    """
    with np.errstate(all="ignore"):  # degenerate tables give NaN/inf, reported as None
        return _icc(np.asarray(scores, dtype=float), alpha)


def _icc(scores: np.ndarray, alpha: float) -> IccResult:
    complete = ~np.isnan(scores).any(axis=1)
    x = scores[complete]
    n, k = x.shape
    n_dropped = int((~complete).sum())
    empty = {key: IccEstimate(None, None) for key in ICC_FORMS}
    if k < 2:
        return IccResult(empty, n, n_dropped, "fewer than 2 readers")
    if n < 2:
        return IccResult(empty, n, n_dropped,
                         f"fewer than 2 items rated by every reader ({n_dropped} dropped)")

    grand = x.mean()
    ss_rows = k * ((x.mean(axis=1) - grand) ** 2).sum()   # between items (targets)
    ss_cols = n * ((x.mean(axis=0) - grand) ** 2).sum()   # between readers (judges)
    ss_total = ((x - grand) ** 2).sum()
    ss_err = ss_total - ss_rows - ss_cols
    msr = ss_rows / (n - 1)
    msc = ss_cols / (k - 1)
    mse = ss_err / ((n - 1) * (k - 1))
    msw = (ss_cols + ss_err) / (n * (k - 1))               # within items (one-way)
    if ss_total <= 0:
        return IccResult(empty, n, n_dropped, "every score is the same (no variance)")

    q = 1 - alpha / 2
    est: dict[str, IccEstimate] = {}

    # ICC(1,1): one-way random effects.
    icc1 = (msr - msw) / (msr + (k - 1) * msw)
    est["ICC1"] = IccEstimate(icc1, _f_ci(msr, msw, n - 1, n * (k - 1), k, q))

    # ICC(3,1): two-way mixed, consistency.
    icc3 = (msr - mse) / (msr + (k - 1) * mse) if msr + (k - 1) * mse > 0 else math.nan
    est["ICC3"] = IccEstimate(icc3, _f_ci(msr, mse, n - 1, (n - 1) * (k - 1), k, q))

    # ICC(2,1): two-way random, absolute agreement; CI with Satterthwaite's df for the
    # denominator (McGraw & Wong 1996, Table 7, case 2A).
    denom = msr + (k - 1) * mse + k * (msc - mse) / n
    icc2 = (msr - mse) / denom if denom > 0 else math.nan
    ci2 = None
    if mse > 0 and math.isfinite(icc2) and icc2 < 1:
        fj = msc / mse
        a = k * icc2 / (n * (1 - icc2))
        b = 1 + k * icc2 * (n - 1) / (n * (1 - icc2))
        v = (a * fj + b) ** 2 / ((a * fj) ** 2 / (k - 1) + b ** 2 / ((n - 1) * (k - 1)))
        fc = stats.f.ppf(q, n - 1, v)
        fd = stats.f.ppf(q, v, n - 1)
        spread = k * msc + (k * n - k - n) * mse
        lo = n * (msr - fc * mse) / (fc * spread + n * msr)
        hi = n * (fd * msr - mse) / (spread + n * fd * msr)
        ci2 = (float(lo), float(hi))
    est["ICC2"] = IccEstimate(icc2, ci2)

    est = {key: IccEstimate(
        None if e.value is None or not math.isfinite(e.value) else float(e.value),
        e.ci95 if e.ci95 is not None and all(map(math.isfinite, e.ci95)) else None)
        for key, e in est.items()}
    return IccResult({key: est[key] for key in ICC_FORMS}, n, n_dropped)


def _f_ci(ms_num: float, ms_den: float, df1: int, df2: int, k: int,
          q: float) -> tuple[float, float] | None:
    """CI of ``(F - 1) / (F + k - 1)`` with ``F = ms_num / ms_den`` (Shrout & Fleiss eq. 6-7)."""
    if ms_den <= 0:
        return None
    f_obs = ms_num / ms_den
    f_lo = f_obs / stats.f.ppf(q, df1, df2)
    f_hi = f_obs * stats.f.ppf(q, df2, df1)
    return (float((f_lo - 1) / (f_lo + k - 1)), float((f_hi - 1) / (f_hi + k - 1)))


def krippendorff_alpha(scores: np.ndarray, level: str) -> float | None:
    """Krippendorff's alpha at ``level`` ('nominal', 'ordinal', 'interval', 'ratio') over an
    items x readers matrix with NaN for missing. ``None`` when undefined (fewer than 2 distinct
    values, or no item rated by 2 readers)."""
    import krippendorff

    scores = np.asarray(scores, dtype=float)
    pairable = (~np.isnan(scores)).sum(axis=1) >= 2
    values = np.unique(scores[pairable][~np.isnan(scores[pairable])])
    if values.size < 2:
        return None
    value = krippendorff.alpha(reliability_data=scores.T, level_of_measurement=level)
    return float(value) if math.isfinite(value) else None


def quadratic_kappa(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Cohen's kappa with quadratic weights ``(x - y)**2`` for two readers' scores on the same
    items: ``1 - sum(w * observed) / sum(w * expected)``, expected from the two readers'
    marginal distributions. Weights use the score values, so an unused category in the middle of
    the scale still counts as a step. ``None`` when undefined (fewer than 2 items, or no expected
    disagreement, e.g. both readers gave one and the same score throughout)."""
    x = np.asarray(a, dtype=float)
    y = np.asarray(b, dtype=float)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError("two equally long 1-D score sequences expected")
    if x.size < 2:
        return None
    observed = ((x - y) ** 2).mean()
    expected = ((x[:, None] - y[None, :]) ** 2).mean()   # every pairing of the marginals
    if expected <= 0:
        return None
    return float(1 - observed / expected)


def pairwise_kappa(table: RatingTable) -> dict[tuple[str, str], tuple[float | None, int]]:
    """Quadratic-weighted kappa and the number of shared items for each reader pair."""
    out: dict[tuple[str, str], tuple[float | None, int]] = {}
    for (i, ra), (j, rb) in combinations(enumerate(table.readers), 2):
        both = ~np.isnan(table.scores[:, i]) & ~np.isnan(table.scores[:, j])
        out[(ra, rb)] = (quadratic_kappa(table.scores[both, i], table.scores[both, j]),
                         int(both.sum()))
    return out


# --- plain-language readings -------------------------------------------------------------

def _icc_band(value: float) -> str:
    # Koo & Li (2016), J Chiropr Med 15(2):155-163.
    if value < 0.5:
        return "poor"
    if value < 0.75:
        return "moderate"
    if value <= 0.9:
        return "good"
    return "excellent"


def read_icc(value: float | None, ci95: tuple[float, float] | None = None) -> str:
    """Koo & Li (2016) band: <0.5 poor, 0.5-0.75 moderate, 0.75-0.9 good, >0.9 excellent; they
    advise reading the band of the whole 95% CI, so its span is named too."""
    if value is None:
        return "not computable"
    text = f"{_icc_band(value)} reliability (Koo & Li 2016)"
    if ci95 is not None:
        lo, hi = _icc_band(ci95[0]), _icc_band(ci95[1])
        text += (f"; the 95% CI lies within {lo}" if lo == hi
                 else f"; the 95% CI spans {lo} to {hi}")
    return text


def read_alpha(value: float | None) -> str:
    """Krippendorff (2004): rely on alpha >= 0.800; 0.667-0.800 for tentative conclusions."""
    if value is None:
        return "not computable"
    if value >= 0.8:
        return "reliable (alpha >= 0.800, Krippendorff)"
    if value >= 0.667:
        return "tentative conclusions only (0.667 <= alpha < 0.800, Krippendorff)"
    return "not reliable enough to draw conclusions (alpha < 0.667, Krippendorff)"


def read_kappa(value: float | None) -> str:
    """Landis & Koch (1977) bands."""
    if value is None:
        return "not computable"
    if value < 0:
        band = "poor (worse than chance)"
    elif value <= 0.2:
        band = "slight"
    elif value <= 0.4:
        band = "fair"
    elif value <= 0.6:
        band = "moderate"
    elif value <= 0.8:
        band = "substantial"
    else:
        band = "almost perfect"
    return f"{band} agreement (Landis & Koch 1977)"


def agreement_report(rows: Iterable[tuple[object, object, float | None]]) -> dict:
    """Every figure for one question's ratings, JSON-ready (``None`` where undefined).

    Keys: ``n_items``, ``n_readers``, ``n_ratings``, ``icc`` (``ICC1``/``ICC2``/``ICC3``, each
    ``value``, ``ci95``, ``form``, ``reading``), ``icc_items_used``, ``icc_items_dropped``,
    ``icc_note``, ``alpha_ordinal``, ``alpha_interval``, ``kappa_quadratic`` (``"a|b"`` ->
    value), ``kappa_items`` (``"a|b"`` -> shared items) and ``readings`` (alpha and kappa in
    words). Raises :class:`AgreementInputError` for fewer than 2 readers or 2 items.
    """
    table = rating_table(rows)
    if len(table.readers) < 2:
        raise AgreementInputError(f"need at least 2 readers, got {len(table.readers)}")
    if len(table.items) < 2:
        raise AgreementInputError(f"need at least 2 items, got {len(table.items)}")
    result = icc(table.scores)
    a_ord = krippendorff_alpha(table.scores, "ordinal")
    a_int = krippendorff_alpha(table.scores, "interval")
    kappas = pairwise_kappa(table)
    note = (f"complete cases: {result.n_used} items used, {result.n_dropped} dropped "
            "for a missing rating")
    if result.reason:
        note += f"; not computable: {result.reason}"
    return {
        "n_items": len(table.items),
        "n_readers": len(table.readers),
        "n_ratings": int((~np.isnan(table.scores)).sum()),
        "icc": {key: {"value": e.value, "ci95": list(e.ci95) if e.ci95 else None,
                      "form": ICC_FORMS[key][0], "reading": read_icc(e.value, e.ci95)}
                for key, e in result.estimates.items()},
        "icc_items_used": result.n_used,
        "icc_items_dropped": result.n_dropped,
        "icc_note": note,
        "alpha_ordinal": a_ord,
        "alpha_interval": a_int,
        "kappa_quadratic": {f"{a}|{b}": v for (a, b), (v, _) in kappas.items()},
        "kappa_items": {f"{a}|{b}": m for (a, b), (_, m) in kappas.items()},
        "readings": {
            "alpha_ordinal": read_alpha(a_ord),
            "alpha_interval": read_alpha(a_int),
            "kappa_quadratic": {f"{a}|{b}": read_kappa(v) for (a, b), (v, _) in kappas.items()},
        },
    }
