"""AppTest: the Results tab of the reader-studies admin page renders a seeded study's figures
(per-condition table, Wilcoxon comparison, per-reader table, the score plot)."""
from __future__ import annotations

import hashlib

from app_env import app_env, logged_in, tiny_weights  # noqa: F401

SHAS = [hashlib.sha256(f"app results scan {i}".encode()).hexdigest() for i in range(4)]


def _seed(env) -> tuple[int, int]:
    from core.db import auth, init_db, session_scope
    from core.db.scans import record_scan
    from core.db.studies import create_study, rate_study_item, study_queue

    ids = env["ids"]
    engine = init_db(env["MEDSCAN_DATABASE_URL"])
    with session_scope(engine) as s:
        second = auth.create_user(s, "reader2", "a long password 1", "radiologist").id
        for sha in SHAS:
            record_scan(s, sha, {}, "png", "XR", (8, 8), ids["admin"])
        study = create_study(s, "Results pilot", ids["admin"],
                             [(sha, m, None) for sha in SHAS for m in ("original", "bicubic")],
                             seed=3, blinded=False)
        empty = create_study(s, "No ratings yet", ids["admin"], [(SHAS[0], "original", None)],
                             seed=4)
        for reader, bump in ((ids["reader"], 0), (second, 1)):
            for view in study_queue(s, study.id, reader):
                base = 4 if view.method == "original" else 2
                case = SHAS.index(view.scan_sha256)
                rate_study_item(s, reader_id=reader, item_id=view.item_id,
                                image_quality=min(5, base + bump + case % 2),
                                diagnostic_usefulness=min(5, base + bump))
    return study.id, empty.id


def _tables(at, column: str) -> list:
    """The dataframes shown that have ``column`` (AppTest does not expose a dataframe's key),
    in page order."""
    return [d.value for d in at.dataframe if column in d.value.columns]


def test_results_tab_shows_a_seeded_study(app_env):
    study_id, empty_id = _seed(app_env)
    at = logged_in("admin", app_env["ids"]).run()
    at.switch_page("app_pages/admin_studies.py").run()
    assert not at.exception, at.exception
    at.selectbox(key="results_study").set_value(study_id).run()
    assert not at.exception, at.exception
    conditions = _tables(at, "median 95% CI")[0]   # image quality first
    assert list(conditions["condition"]) == ["Original scan", "Bicubic"]   # in words
    assert list(conditions["cases"]) == [4, 4]
    # original: readers 4/5 plus 0/1 by case -> mean 4.75 (one 6 capped at 5: 4,5,4,5,5,5,5,5)
    assert conditions["mean"][0] == "4.75"
    compare = _tables(at, "p (Holm)")[0]
    assert list(compare["condition"]) == ["Bicubic"] and compare["r"][0] == "-1.00"
    readers = _tables(at, "Image quality")[0]
    assert list(readers["reader"]) == ["reader", "reader2"] and list(readers["rated"]) == [8, 8]
    assert any(c.proto.id and f"results_plot_{study_id}" in c.proto.id
               for c in at.get("plotly_chart"))
    assert any("Friedman" in c.value for c in at.caption)

    at.selectbox(key="results_study").set_value(empty_id).run()
    assert not at.exception
    assert any("No ratings in this study yet" in i.value for i in at.info)
