"""Reader-study results (core/studies/results.py) and ``python -m core studies ...``: hand-computed
small cases, SciPy as the reference for the tests themselves, degenerate data, and one seeded
study in the database."""
from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
from scipy.stats import friedmanchisquare, wilcoxon

from core.cli import main
from core.studies.results import (ResultsInputError, bootstrap_ci, holm_adjust,
                                  paired_wilcoxon, rank_biserial, study_results)


# --- Holm ------------------------------------------------------------------------------------

@pytest.mark.parametrize("p, expected", [
    # sorted 0.01, 0.03, 0.04 -> 3*0.01=0.03, 2*0.03=0.06, max(0.06, 1*0.04)=0.06
    ([0.01, 0.04, 0.03], [0.03, 0.06, 0.06]),
    # capped at 1, and kept monotone: 2*0.5=1.0, then max(1.0, 0.6)
    ([0.6, 0.5], [1.0, 1.0]),
    # None stays None and is not counted in the family (m = 2)
    ([0.02, None, 0.04], [0.04, None, 0.04]),
    ([], []),
    ([None], [None]),
])
def test_holm_adjust(p, expected):
    assert holm_adjust(p) == pytest.approx(expected)


# --- Wilcoxon and rank-biserial ---------------------------------------------------------------

def test_wilcoxon_on_a_hand_worked_example():
    # differences 1, 2, -3, 4, 5: ranks 1..5, R+ = 12, R- = 3, W = min = 3.
    # Exact two-sided p: subsets of {1..5} with rank sum <= 3 are {}, {1}, {2}, {3}, {1,2}:
    # p = 2 * 5 / 2**5 = 0.3125. Rank-biserial (12 - 3) / 15 = 0.6.
    cond = [4, 5, 1, 6, 8]
    ref = [3, 3, 4, 2, 3]
    out = paired_wilcoxon(cond, ref)
    assert out["reason"] is None and out["n_pairs"] == 5 and out["n_nonzero"] == 5
    assert out["statistic"] == 3.0
    assert out["p_value"] == pytest.approx(0.3125)
    assert out["rank_biserial"] == pytest.approx(0.6)
    assert out["mean_difference"] == pytest.approx(1.8) and out["median_difference"] == 2.0
    ref_scipy = wilcoxon(cond, ref)
    assert out["statistic"] == ref_scipy.statistic
    assert out["p_value"] == pytest.approx(ref_scipy.pvalue)


def test_wilcoxon_drops_zero_differences_and_matches_scipy_with_ties():
    cond = [3, 4, 4, 5, 2, 3, 5, 4]
    ref = [3, 3, 2, 3, 3, 1, 3, 3]
    out = paired_wilcoxon(cond, ref)
    expected = wilcoxon(cond, ref, zero_method="wilcox")
    assert out["n_nonzero"] == 7
    assert out["statistic"] == pytest.approx(expected.statistic)
    assert out["p_value"] == pytest.approx(expected.pvalue)


def test_rank_biserial():
    assert rank_biserial([1, 2, 3]) == 1.0
    assert rank_biserial([-1, -2]) == -1.0
    assert rank_biserial([0, 0]) is None
    # |d| = 1, 1, 2 -> ranks 1.5, 1.5, 3; R+ = 1.5 + 3, R- = 1.5 -> 3 / 6
    assert rank_biserial([1, -1, 2, 0]) == pytest.approx(0.5)


@pytest.mark.parametrize("cond, ref, reason", [
    ([], [], "no case"),
    ([3, 4], [3, 4], "zero"),
])
def test_wilcoxon_degenerate(cond, ref, reason):
    out = paired_wilcoxon(cond, ref)
    assert out["statistic"] is None and out["p_value"] is None and reason in out["reason"]


# --- bootstrap ------------------------------------------------------------------------------

def test_bootstrap_ci_is_seeded_and_contains_the_mean():
    groups = [[1, 2], [3], [4, 5, 5], [2, 2], [5, 4], [3, 3]]
    mean = np.mean([x for g in groups for x in g])
    ci, reason = bootstrap_ci(groups, "mean", seed=7)
    again, _ = bootstrap_ci(groups, "mean", seed=7)
    assert reason is None and ci == again and ci[0] <= mean <= ci[1] and ci[0] < ci[1]
    assert 1 <= ci[0] and ci[1] <= 5
    med, _ = bootstrap_ci(groups, "median", seed=7, n_boot=300)
    assert med[0] <= np.median([x for g in groups for x in g]) <= med[1]


def test_bootstrap_ci_degenerate():
    assert bootstrap_ci([[3, 4]], "mean") == (None, "needs at least 2 cases, got 1")
    assert bootstrap_ci([[3], [3]], "mean")[0] == [3.0, 3.0]


# --- study_results --------------------------------------------------------------------------

def _rows(table: dict[tuple[str, str], dict[str, int]], question: str = "image_quality"):
    return [(case, cond, reader, question, score)
            for (case, cond), by_reader in table.items() for reader, score in by_reader.items()]


def test_study_results_hand_computed():
    # 3 cases x 2 conditions x 2 readers (image quality only).
    table = {
        ("c1", "original"): {"a": 3, "b": 3}, ("c1", "esrgan"): {"a": 4, "b": 5},
        ("c2", "original"): {"a": 2, "b": 4}, ("c2", "esrgan"): {"a": 4, "b": 4},
        ("c3", "original"): {"a": 4, "b": 4}, ("c3", "esrgan"): {"a": 3, "b": 4},
    }
    r = study_results(_rows(table), seed=1, n_boot=500)
    json.dumps(r, allow_nan=False)
    assert r["conditions"] == ["original", "esrgan"] and r["reference"] == "original"
    assert (r["n_ratings"], r["n_cases"], r["n_readers"]) == (12, 3, 2)
    q = r["questions"]["image_quality"]
    orig, esr = q["by_condition"]["original"], q["by_condition"]["esrgan"]
    assert orig["mean"] == pytest.approx(20 / 6) and orig["median"] == 3.5
    assert esr["mean"] == pytest.approx(24 / 6) and esr["median"] == 4.0
    assert orig["mean_ci95"][0] <= orig["mean"] <= orig["mean_ci95"][1]
    # per case mean over readers: original 3, 3, 4; esrgan 4.5, 4, 3.5 -> d = 1.5, 1, -0.5
    (c,) = q["comparisons"]
    assert c["condition"] == "esrgan" and c["n_pairs"] == 3
    assert c["mean_difference"] == pytest.approx(2 / 3) and c["median_difference"] == 1.0
    assert c["rank_biserial"] == pytest.approx((3 + 2 - 1) / 6)
    expected = wilcoxon([4.5, 4, 3.5], [3, 3, 4])
    assert c["statistic"] == expected.statistic == 1.0
    assert c["p_value"] == pytest.approx(expected.pvalue) and c["p_holm"] == c["p_value"]
    assert q["friedman"]["statistic"] is None and "3 conditions" in q["friedman"]["reason"]
    agr = q["agreement"]
    assert agr["n_items"] == 6 and agr["n_readers"] == 2
    # no diagnostic-usefulness scores at all: None with reasons, not errors
    d = r["questions"]["diagnostic_usefulness"]
    assert d["by_condition"]["original"]["mean"] is None
    assert d["comparisons"][0]["reason"] and d["agreement"] is None
    readers = {x["reader"]: x for x in r["readers"]}
    assert readers["a"]["n_rated"] == 6 and readers["a"]["mean"]["image_quality"] == 20 / 6
    assert readers["b"]["mean"]["image_quality"] == 24 / 6
    assert readers["a"]["mean"]["diagnostic_usefulness"] is None


def test_friedman_and_holm_across_three_conditions():
    rng = np.random.default_rng(3)
    rows = []
    for case in range(8):
        for cond, offset in (("original", 0), ("bicubic", -1), ("srcnn", 1)):
            for reader in ("a", "b"):
                score = int(np.clip(3 + offset + rng.integers(-1, 2), 1, 5))
                rows.append((f"k{case}", cond, reader, "image_quality", score))
    # a case rated under two conditions only is left out of the Friedman test
    rows.append(("extra", "original", "a", "image_quality", 3))
    rows.append(("extra", "bicubic", "a", "image_quality", 2))
    r = study_results(rows, n_boot=200)
    q = r["questions"]["image_quality"]
    assert r["conditions"] == ["original", "bicubic", "srcnn"]
    means: dict[str, dict[str, list[int]]] = {}
    for case, cond, _reader, _q, score in rows:
        means.setdefault(cond, {}).setdefault(case, []).append(score)
    cases = [f"k{i}" for i in range(8)]
    expected = friedmanchisquare(*[[np.mean(means[c][k]) for k in cases]
                                   for c in r["conditions"]])
    f = q["friedman"]
    assert f["n_cases"] == 8 and f["n_conditions"] == 3 and f["reason"] is None
    assert f["statistic"] == pytest.approx(expected.statistic)
    assert f["p_value"] == pytest.approx(expected.pvalue)
    ps = [c["p_value"] for c in q["comparisons"]]
    assert [c["p_holm"] for c in q["comparisons"]] == pytest.approx(holm_adjust(ps))
    assert [c["n_pairs"] for c in q["comparisons"]] == [9, 8]


def test_reference_choice():
    rows = [("c1", "rrdb", "a", "image_quality", 3), ("c1", "bicubic", "a", "image_quality", 2)]
    assert study_results(rows, n_boot=50)["reference"] == "bicubic"  # first in sorted order
    r = study_results(rows, reference="rrdb", n_boot=50)
    assert r["conditions"] == ["rrdb", "bicubic"]
    with pytest.raises(ResultsInputError, match="esrgan"):
        study_results(rows, reference="esrgan")


@pytest.mark.parametrize("rows", [
    [],
    [("c1", "original", "a", "image_quality", 4)],
    [("c1", "original", "a", "image_quality", 4), ("c1", "esrgan", "a", "image_quality", 4)],
    # one reader rated one item only, another rated all; a missing score is skipped
    [("c1", "original", "a", "image_quality", 4), ("c1", "original", "b", "image_quality", 3),
     ("c1", "esrgan", "b", "image_quality", 5), ("c2", "original", "b", "image_quality", None)],
    # every score the same: agreement undefined, Friedman with no differences
    [(f"c{i}", c, r, "image_quality", 3) for i in range(3) for c in ("original", "x", "y")
     for r in ("a", "b")],
])
def test_degenerate_data_never_raise_nor_give_nan(rows):
    r = study_results(rows, n_boot=50)
    json.dumps(r, allow_nan=False)
    q = r["questions"]["image_quality"]
    for c in q["comparisons"]:
        assert (c["p_value"] is None) == (c["reason"] is not None)
    assert (q["friedman"]["p_value"] is None) == (q["friedman"]["reason"] is not None)
    assert (q["agreement"] is None) == (q["agreement_reason"] is not None)


def test_single_reader_one_item():
    r = study_results([("c1", "original", "a", "image_quality", 4)], n_boot=50)
    q = r["questions"]["image_quality"]
    assert q["by_condition"]["original"]["mean_ci95"] is None
    assert "2 cases" in q["by_condition"]["original"]["ci_reason"]
    assert "2 readers" in q["agreement_reason"]
    assert r["reference_reason"] == "only one condition: nothing to compare"
    assert r["readers"] == [{"reader": "a", "n_rated": 1,
                             "mean": {"image_quality": 4.0, "diagnostic_usefulness": None}}]


@pytest.mark.parametrize("rows, match", [
    ([("c1", "original", "a", "image_quality", "good")], "not a number"),
    ([("c1", "original", "a", "image_quality", 3), ("c1", "original", "a", "image_quality", 4)],
     "two scores"),
    ([("c1", "original", "a", "sharpness", 3)], "unknown question"),
    ([("c1", "original", "a")], "must be"),
])
def test_malformed_rows_raise_input_error(rows, match):
    with pytest.raises(ResultsInputError, match=match):
        study_results(rows)


# --- the database and the CLI ---------------------------------------------------------------

SHAS = [hashlib.sha256(f"results scan {i}".encode()).hexdigest() for i in range(3)]
# reader -> (scan index, method) -> (image quality, diagnostic usefulness)
SCORES = {
    "r1": {(0, "original"): (3, 3), (1, "original"): (2, 3), (2, "original"): (4, 4),
           (0, "esrgan"): (4, 4), (1, "esrgan"): (4, 3), (2, "esrgan"): (3, 5)},
    "r2": {(0, "original"): (3, 2), (1, "original"): (4, 3), (2, "original"): (4, 4),
           (0, "esrgan"): (5, 4), (1, "esrgan"): (4, 4)},   # r2 skipped one item
}


@pytest.fixture()
def seeded_study(db_url):
    from core.db import auth, init_db, session_scope
    from core.db.scans import record_scan
    from core.db.studies import create_study, study_queue

    engine = init_db(db_url)
    with session_scope(engine) as s:
        ids = {n: auth.create_user(s, n, "a long password 1",
                                   "admin" if n == "boss" else "radiologist").id
               for n in ("boss", "r1", "r2")}
        for sha in SHAS:
            record_scan(s, sha, {}, "png", "XR", (8, 8), ids["boss"])
        items = [(sha, m, v) for sha in SHAS for m, v in (("original", None), ("esrgan", "sr-7"))]
        study = create_study(s, "SR results study", ids["boss"], items, seed=5, blinded=False)
        empty = create_study(s, "Empty study", ids["boss"], [(SHAS[0], "bicubic", None)], seed=1)
    from core.db.studies import rate_study_item

    with session_scope(engine) as s:
        for reader, scores in SCORES.items():
            for view in study_queue(s, study.id, ids[reader]):
                key = (SHAS.index(view.scan_sha256), view.method)
                if key in scores:
                    iq, du = scores[key]
                    rate_study_item(s, reader_id=ids[reader], item_id=view.item_id,
                                    image_quality=iq, diagnostic_usefulness=du)
    return engine, study.id, empty.id


def test_study_rating_rows(seeded_study):
    from core.db import session_scope
    from core.db.studies import study_conditions, study_rating_rows, study_readers

    engine, study_id, _ = seeded_study
    with session_scope(engine) as s:
        rows = study_rating_rows(s, study_id)
        assert study_conditions(s, study_id) == {"esrgan": 3, "original": 3}
        assert study_readers(s, study_id) == [("r1", 6, 6), ("r2", 5, 6)]
    assert len(rows) == 2 * 11
    assert (SHAS[2], "esrgan", "r1", "diagnostic_usefulness", 5) in rows
    assert not any(r[0] == SHAS[2] and r[1] == "esrgan" and r[2] == "r2" for r in rows)


def test_cli_studies_list_show_results(seeded_study, capsys):
    _, study_id, empty_id = seeded_study
    assert main(["studies", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [x["name"] for x in listed] == ["Empty study", "SR results study"]
    assert main(["studies", "show", str(study_id), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["conditions"] == {"esrgan": 3, "original": 3} and shown["n_items"] == 6
    assert shown["readers"] == [{"reader": "r1", "n_rated": 6, "of": 6},
                                {"reader": "r2", "n_rated": 5, "of": 6}]

    assert main(["studies", "results", str(study_id), "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["study"]["id"] == study_id and r["reference"] == "original"
    assert (r["n_ratings"], r["n_cases"], r["n_readers"]) == (22, 3, 2)
    iq = r["questions"]["image_quality"]
    # original: 3, 2, 4, 3, 4, 4 -> 20/6; esrgan: 4, 4, 3, 5, 4 -> 20/5
    assert iq["by_condition"]["original"]["mean"] == pytest.approx(20 / 6)
    assert iq["by_condition"]["esrgan"]["mean"] == pytest.approx(4.0)
    assert iq["by_condition"]["esrgan"]["n_ratings"] == 5
    # per-case means: original 3, 3, 4; esrgan 4.5, 4, 3
    (c,) = iq["comparisons"]
    expected = wilcoxon([4.5, 4, 3], [3, 3, 4])
    assert c["p_value"] == pytest.approx(expected.pvalue) and c["n_pairs"] == 3
    assert c["rank_biserial"] == pytest.approx((3 + 1.5 - 1.5) / 6)
    assert iq["agreement"]["n_items"] == 6 and iq["agreement"]["n_readers"] == 2
    readers = {x["reader"]: x for x in r["readers"]}
    assert readers["r2"]["n_rated"] == 5
    assert readers["r1"]["mean"]["diagnostic_usefulness"] == pytest.approx(22 / 6)

    assert main(["studies", "results", str(study_id)]) == 0
    assert "esrgan vs original" in capsys.readouterr().out
    assert main(["studies", "results", str(empty_id), "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["n_ratings"] == 0 and r["reference"] is None
    assert main(["studies", "results", str(empty_id)]) == 0
    assert main(["studies", "list"]) == 0 and main(["studies", "show", str(study_id)]) == 0
    out = capsys.readouterr().out
    assert "no ratings" in out and "SR results study" in out and "r2" in out
    assert main(["studies", "results", "9999", "--json"]) == 2
    assert "9999" in capsys.readouterr().err
    assert main(["studies", "results", str(study_id), "--reference", "srcnn"]) == 2
    assert "srcnn" in capsys.readouterr().err


def _resp(reader, item, repeat, iq, du, seconds=None, condition="original", dx=None,
          label=None):
    return {"reader": reader, "item_id": item, "repeat": repeat, "image_quality": iq,
            "diagnostic_usefulness": du, "seconds": seconds, "condition": condition,
            "diagnosis": dx, "case_label": label}


def test_reader_details_time_and_repeat_consistency_by_hand():
    from core.studies.results import reader_details

    rows = [_resp("ann", 1, False, 4, 3, 10.0), _resp("ann", 1, True, 4, 5, 6.0),
            _resp("ann", 2, False, 2, 2, 2.0), _resp("ann", 2, True, 3, 2, None),
            _resp("ann", 3, False, 5, 5, 4.0),
            _resp("bob", 1, False, 3, 3)]                      # no time, no repeats
    ann, bob = reader_details(rows)
    assert (ann["reader"], ann["n_items"], ann["n_showings"]) == ("ann", 3, 5)
    assert ann["seconds_median"] == 5.0 and ann["seconds_total"] == 22.0   # 10, 6, 2, 4
    iq, du = ann["consistency"]["image_quality"], ann["consistency"]["diagnostic_usefulness"]
    assert iq["n_pairs"] == 2 and iq["exact"] == 0.5 and iq["within_one"] == 1.0
    assert iq["mean_abs_diff"] == 0.5
    # pairs (4,4), (2,3): observed mean (x-y)^2 = 0.5; expected over all pairings
    # ((4-4)^2 + (4-3)^2 + (2-4)^2 + (2-3)^2) / 4 = 1.5 -> kappa = 1 - 0.5 / 1.5
    assert iq["kappa_quadratic"] == pytest.approx(1 - 0.5 / 1.5)
    assert du["exact"] == 0.5 and du["mean_abs_diff"] == 1.0
    assert bob["seconds_median"] is None and bob["consistency"]["image_quality"]["n_pairs"] == 0
    assert bob["consistency"]["image_quality"]["exact"] is None


def test_diagnosis_accuracy_per_condition_first_showings_only():
    from core.studies.results import diagnosis_accuracy

    rows = [_resp("a", 1, False, 3, 3, condition="bicubic", dx="Glioma", label="glioma"),
            _resp("a", 2, False, 3, 3, condition="bicubic", dx="notumor", label="glioma"),
            _resp("a", 2, True, 3, 3, condition="bicubic", dx="glioma", label="glioma"),
            _resp("a", 3, False, 3, 3, condition="esrgan", dx="glioma", label=None),
            _resp("a", 4, False, 3, 3, condition="esrgan", dx=None, label="glioma")]
    assert diagnosis_accuracy(rows) == {"bicubic": {"n": 2, "correct": 1, "accuracy": 0.5}}
