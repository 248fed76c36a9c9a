"""Inter-reader agreement (core.studies.agreement) and ``python -m core ratings agreement``,
checked against published worked examples."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats

from core.cli import main
from core.studies.agreement import (AgreementInputError, agreement_report, icc,
                                    krippendorff_alpha, quadratic_kappa, rating_table, read_alpha,
                                    read_icc, read_kappa)

# Shrout & Fleiss (1979), Table 2: 6 targets (rows) x 4 judges (columns).
SHROUT_FLEISS = np.array([[9, 2, 5, 8],
                          [6, 1, 3, 2],
                          [8, 4, 6, 8],
                          [7, 1, 2, 6],
                          [10, 5, 6, 9],
                          [6, 2, 4, 7]], dtype=float)

# Krippendorff (2011), "Computing Krippendorff's alpha-reliability", section C: 4 observers
# (rows) x 12 units (columns), NaN = missing.
_ = math.nan
KRIPPENDORFF_2011 = np.array([[1, 2, 3, 3, 2, 1, 4, 1, 2, _, _, _],
                              [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, _, 3],
                              [_, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, _],
                              [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, _]], dtype=float)


def _long(matrix: np.ndarray, items=None, readers=None):
    """items x readers matrix -> (item, reader, score) rows, NaN as None."""
    rows = []
    for i, row in enumerate(matrix):
        for j, value in enumerate(row):
            rows.append((items[i] if items else f"t{i + 1}", readers[j] if readers else f"J{j + 1}",
                         None if math.isnan(value) else float(value)))
    return rows


def _write_csv(path, rows, header="item,reader,score"):
    lines = [header] + [f"{i},{r},{'' if s is None else s}" for i, r, s in rows]
    path.write_text("\n".join(lines) + "\n")
    return str(path)


# --- ICC -----------------------------------------------------------------------------------

def test_icc_shrout_fleiss_table_2():
    result = icc(SHROUT_FLEISS)
    assert (result.n_used, result.n_dropped) == (6, 0)
    # The published single-rater values (Shrout & Fleiss 1979, Table 4).
    assert round(result.estimates["ICC1"].value, 3) == 0.166
    assert round(result.estimates["ICC2"].value, 3) == 0.290
    assert round(result.estimates["ICC3"].value, 3) == 0.715


def test_icc_confidence_intervals_shrout_fleiss():
    ci = {k: e.ci95 for k, e in icc(SHROUT_FLEISS).estimates.items()}
    # 95% CIs to 2 decimals, checked below against the F-distribution formulas worked from Shrout
    # & Fleiss's printed mean squares (R's psych::ICC example on this table prints the same
    # figures as far as we recall; it was not re-run here: no R on these machines).
    assert np.round(ci["ICC1"], 2).tolist() == [-0.13, 0.72]
    assert np.round(ci["ICC2"], 2).tolist() == [0.02, 0.76]
    assert np.round(ci["ICC3"], 2).tolist() == [0.34, 0.95]
    # Hand-derived from the ANOVA table of Shrout & Fleiss (BMS = 11.24, EMS = 1.02, WMS = 6.26,
    # n = 6, k = 4) and the F-distribution formulas (their equations 6-7).
    n, k, bms, ems, wms = 6, 4, 11.24, 1.02, 6.26
    for key, den, df2 in (("ICC1", wms, n * (k - 1)), ("ICC3", ems, (n - 1) * (k - 1))):
        f0 = bms / den
        fl = f0 / stats.f.ppf(0.975, n - 1, df2)
        fu = f0 * stats.f.ppf(0.975, df2, n - 1)
        expected = [(fl - 1) / (fl + k - 1), (fu - 1) / (fu + k - 1)]
        assert ci[key] == pytest.approx(expected, abs=0.005)


def test_icc_uses_complete_cases_and_counts_the_dropped():
    with_gaps = np.vstack([SHROUT_FLEISS, [3, _, 4, 5], [_, _, _, 1]])
    result = icc(with_gaps)
    assert (result.n_used, result.n_dropped) == (6, 2)
    assert round(result.estimates["ICC3"].value, 3) == 0.715


def test_icc_not_computable_says_why():
    one_item = icc(np.array([[1, 2], [3, _]]))
    assert one_item.estimates["ICC2"].value is None and "fewer than 2 items" in one_item.reason
    flat = icc(np.full((3, 3), 4.0))
    assert flat.estimates["ICC1"].value is None and "no variance" in flat.reason


def test_icc_perfect_agreement_is_one():
    x = np.array([[1, 1, 1], [3, 3, 3], [5, 5, 5]], dtype=float)
    for e in icc(x).estimates.values():
        assert e.value == pytest.approx(1.0)


# --- Krippendorff's alpha ------------------------------------------------------------------

@pytest.mark.parametrize("level, published", [("nominal", 0.743), ("ordinal", 0.815),
                                              ("interval", 0.849)])
def test_alpha_krippendorff_2011_example(level, published):
    units_by_observer = KRIPPENDORFF_2011.T   # our layout: items x readers
    assert round(krippendorff_alpha(units_by_observer, level), 3) == published


def test_alpha_undefined_with_one_value():
    assert krippendorff_alpha(np.array([[2, 2], [2, 2.0]]), "interval") is None


# --- weighted kappa ------------------------------------------------------------------------

def test_quadratic_kappa_hand_computed():
    # A = 1,2,3; B = 1,2,2. Observed mean (a-b)^2 = (0+0+1)/3 = 1/3. Expected over the
    # marginals (A uniform on 1,2,3; B: 1 w.p. 1/3, 2 w.p. 2/3):
    # 1/3 * [(2/3)*1] + 1/3 * [(1/3)*1] + 1/3 * [(1/3)*4 + (2/3)*1] = 1. kappa = 1 - 1/3 = 2/3.
    assert quadratic_kappa([1, 2, 3], [1, 2, 2]) == pytest.approx(2 / 3)
    assert quadratic_kappa([1, 2, 3, 4], [1, 2, 3, 4]) == pytest.approx(1.0)
    assert quadratic_kappa([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert quadratic_kappa([3], [3]) is None          # one shared item
    assert quadratic_kappa([4, 4], [4, 4]) is None    # no expected disagreement


# --- readings ------------------------------------------------------------------------------

@pytest.mark.parametrize("value, word", [(0.3, "poor"), (0.6, "moderate"), (0.8, "good"),
                                         (0.95, "excellent")])
def test_icc_reading_koo_li(value, word):
    assert read_icc(value).startswith(word)


def test_readings_alpha_kappa_and_ci_span():
    assert read_icc(0.715, (0.342, 0.946)).endswith("spans poor to excellent")
    assert read_alpha(0.85).startswith("reliable")
    assert read_alpha(0.7).startswith("tentative")
    assert read_alpha(0.5).startswith("not reliable")
    assert read_kappa(0.7).startswith("substantial")
    assert read_kappa(0.9).startswith("almost perfect")
    assert read_kappa(-0.1).startswith("poor")
    assert read_kappa(None) == read_alpha(None) == read_icc(None) == "not computable"


# --- the report over a long table ----------------------------------------------------------

def test_report_with_missing_ratings_and_a_one_item_reader():
    rows = _long(SHROUT_FLEISS)
    rows += [("t1", "late", 7.0)]            # a reader who rated one item only
    report = agreement_report(rows)
    assert (report["n_items"], report["n_readers"], report["n_ratings"]) == (6, 5, 25)
    # Complete cases: only t1 was rated by all five readers, so ICC is not computable.
    assert report["icc_items_used"] == 1 and report["icc_items_dropped"] == 5
    assert report["icc"]["ICC2"]["value"] is None
    assert "not computable" in report["icc_note"]
    # Pairs with the one-item reader have 1 shared item: kappa undefined, not an error.
    assert report["kappa_quadratic"]["J1|late"] is None
    assert report["kappa_items"]["J1|late"] == 1
    assert report["readings"]["kappa_quadratic"]["J1|late"] == "not computable"
    assert report["kappa_quadratic"]["J1|J2"] is not None
    # Alpha uses every pairable rating, so it still counts the extra one.
    assert report["alpha_interval"] is not None


def test_report_drops_incomplete_items_for_icc_only():
    rows = _long(KRIPPENDORFF_2011.T, readers=["A", "B", "C", "D"])
    report = agreement_report(rows)
    assert report["n_items"] == 12 and report["n_readers"] == 4
    assert report["icc_items_used"] == 8 and report["icc_items_dropped"] == 4
    assert round(report["alpha_ordinal"], 3) == 0.815
    assert round(report["alpha_interval"], 3) == 0.849
    assert report["kappa_items"]["A|B"] == 9      # items both rated


@pytest.mark.parametrize("rows, match", [
    ([("a", "r1", 1), ("b", "r1", 2)], "at least 2 readers"),
    ([("a", "r1", 1), ("a", "r2", 2)], "at least 2 items"),
    ([("a", "r1", 1), ("a", "r1", 2)], "two scores"),
    ([("a", "r1", "x")], "not a number"),
])
def test_report_input_errors(rows, match):
    with pytest.raises(AgreementInputError, match=match):
        agreement_report(rows)


def test_rating_table_keeps_first_seen_order():
    t = rating_table([("b", "y", 1), ("a", "x", 2), ("a", "y", None)])
    assert t.items == ("b", "a") and t.readers == ("y", "x")
    assert np.isnan(t.scores[1, 0]) and t.scores[1, 1] == 2


# --- CLI -----------------------------------------------------------------------------------

def test_cli_json_shape(tmp_path, capsys):
    rows = _long(SHROUT_FLEISS) + [("t7", "J1", 3.0), ("t7", "J2", None)]
    path = _write_csv(tmp_path / "r.csv", rows)
    assert main(["ratings", "agreement", "--csv", path, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {"n_items", "n_readers", "icc", "alpha_ordinal", "alpha_interval",
            "kappa_quadratic", "readings"} <= set(out)
    assert (out["n_items"], out["n_readers"]) == (7, 4)
    assert set(out["icc"]) == {"ICC1", "ICC2", "ICC3"}
    for key, published in (("ICC1", 0.166), ("ICC2", 0.290), ("ICC3", 0.715)):
        entry = out["icc"][key]
        assert round(entry["value"], 3) == published
        assert len(entry["ci95"]) == 2 and entry["ci95"][0] < entry["value"] < entry["ci95"][1]
        assert "Koo & Li" in entry["reading"]
    assert out["icc_items_dropped"] == 1
    assert set(out["kappa_quadratic"]) == {"J1|J2", "J1|J3", "J1|J4", "J2|J3", "J2|J4", "J3|J4"}
    assert all(isinstance(v, float) for v in out["kappa_quadratic"].values())
    assert isinstance(out["alpha_ordinal"], float) and isinstance(out["alpha_interval"], float)


def test_cli_text_table(tmp_path, capsys):
    path = _write_csv(tmp_path / "r.csv", _long(SHROUT_FLEISS))
    assert main(["ratings", "agreement", "--csv", path]) == 0
    out = capsys.readouterr().out
    assert "ICC(2,1)" in out and "0.290" in out and "Krippendorff α ordinal" in out
    assert "J1 vs J2 (n=6)" in out


@pytest.mark.parametrize("content, match", [
    ("item,reader,rating\na,r1,1\n", "missing column(s) score"),
    ("item,reader,score\na,r1,1\na,r2,good\n", "line 3: score 'good' is not a number"),
    ("item,reader,score\na,r1,1\nb,r1,2\n", "at least 2 readers"),
    ("item,reader,score\na,r1,1\na,r2,2\n", "at least 2 items"),
])
def test_cli_errors_exit_2_with_one_line(tmp_path, capsys, content, match):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    assert main(["ratings", "agreement", "--csv", str(path), "--json"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    err = captured.err.strip()
    assert match in err and err.startswith("error:") and "\n" not in err


def test_cli_missing_file_exits_2(tmp_path, capsys):
    assert main(["ratings", "agreement", "--csv", str(tmp_path / "nope.csv")]) == 2
    assert "cannot read" in capsys.readouterr().err
