"""Similar-case retrieval (issue 9): the FAISS index against brute force, the metrics on known
labels, search over a tiny library returns the known nearest case, the serving version while a
new one is built, the embeddings job, and the CLI JSON."""
from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from core.db import init_db, session_scope
from core.db.cases import embedding_counts, store_embeddings
from core.library import cases
from core.library.importer import import_tree
from core.library.store import LocalDirStore
from core.retrieval.embed import l2_normalise
from core.retrieval.evaluate import retrieval_metrics
from core.retrieval.index import VectorIndex
from core.retrieval.search import (RetrievalError, build_embeddings, clear_cache,
                                   search_library, serving_version, summary_text)
from tests.app_env import build_tiny_weights

DATA = Path(__file__).parent / "data" / "brain-mri"


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory) -> Path:
    return build_tiny_weights(tmp_path_factory.mktemp("weights"))


@pytest.fixture()
def clf(tiny_weights):
    from core.classifier.inference import Classifier

    return Classifier.load(weights_dir=tiny_weights)


def test_exact_index_matches_brute_force_and_hnsw_recall_is_high():
    rng = np.random.default_rng(0)
    vecs = l2_normalise(rng.normal(size=(2000, 32)))
    queries = l2_normalise(rng.normal(size=(50, 32)))
    ids = np.arange(1000, 3000)
    exact = VectorIndex(ids, vecs, kind="exact")
    sims, got = exact.search(queries, 10)
    brute = np.argsort(-(queries @ vecs.T), axis=1)[:, :10]
    assert np.array_equal(got, ids[brute])
    assert np.allclose(sims, np.take_along_axis(queries @ vecs.T, brute, 1), atol=1e-5)
    hnsw = VectorIndex(ids, vecs, kind="hnsw")
    _, approx = hnsw.search(queries, 10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(approx, got)])
    assert hnsw.kind == "hnsw" and recall > 0.9
    assert VectorIndex(ids[:3], vecs[:3]).search(queries[:1], 10)[1].shape == (1, 3)
    with pytest.raises(ValueError, match="different models"):
        exact.search(np.ones((1, 8)), 3)


def test_auto_index_switches_to_hnsw_above_the_threshold(monkeypatch):
    monkeypatch.setenv("MEDSCAN_RETRIEVAL_APPROX_ABOVE", "100")
    vecs = l2_normalise(np.random.default_rng(1).normal(size=(101, 8)))
    assert VectorIndex(np.arange(101), vecs).kind == "hnsw"
    assert VectorIndex(np.arange(100), vecs[:100]).kind == "exact"


def test_metrics_on_known_neighbour_labels():
    # query 0 (label 0): neighbours 0,1,0 ; query 1 (label 1): 1,1,1
    nl = np.array([[0, 1, 0], [1, 1, 1]])
    m = retrieval_metrics(nl, np.array([0, 1]), ["a", "b"], ks=(1, 3))
    assert m["precision_at_k"] == {"1": 1.0, "3": pytest.approx((2 / 3 + 1) / 2)}
    # AP query 0: relevant at ranks 1 and 3 -> (1/1 + 2/3) / 2
    assert m["map_at_k"] == pytest.approx(((1 + 2 / 3) / 2 + 1) / 2)
    assert m["knn_accuracy"] == 1.0
    assert m["per_class"]["a"]["n"] == 1 and m["per_class"]["b"]["map_at_k"] == 1.0
    # a tie (1 vs 1 of 2) goes to the nearer neighbour's label
    tie = retrieval_metrics(np.array([[1, 0]]), np.array([0]), ["a", "b"], ks=(2,))
    assert tie["knn_accuracy"] == 0.0


def _library(engine, tmp_path) -> LocalDirStore:
    store = LocalDirStore(tmp_path / "store")
    with session_scope(engine) as s:
        import_tree(s, DATA, name="fixture", label_from_folder=True, store=store)
    return store


def test_search_returns_the_query_itself_first_and_a_summary(db_url, tmp_path, clf):
    clear_cache()
    engine = init_db(db_url)
    store = _library(engine, tmp_path)
    with session_scope(engine) as s:
        assert build_embeddings(s, clf, store=store) == cases.count_cases(s)
        assert build_embeddings(s, clf, store=store) == 0          # nothing left to do
        target = cases.list_cases(s, label="meningioma")[2]
        query = cases.case_pixels(s, target.id, store)
        res = search_library(s, query, k=6, active_version=clf.version,
                             load_classifier=lambda v: clf)
    assert res.matches[0].case_id == target.id
    assert res.matches[0].similarity == pytest.approx(1.0, abs=1e-4)
    assert res.matches[0].label == "meningioma" and res.matches[0].source == "fixture"
    assert len(res.matches) == 6 and res.version == clf.version and res.notice is None
    sims = [m.similarity for m in res.matches]
    assert sims == sorted(sims, reverse=True)
    text = summary_text(res)
    top, n = next(iter(res.label_votes.items()))
    assert text.startswith(f"{n} of 6 similar cases are {top}")
    with session_scope(engine) as s:   # excluding the case itself (evaluation use)
        res2 = search_library(s, query, k=3, active_version=clf.version,
                              load_classifier=lambda v: clf, exclude_case=target.id)
    assert target.id not in [m.case_id for m in res2.matches] and len(res2.matches) == 3


def test_index_is_cached_and_rebuilt_when_the_library_changes(sqlite_url, tmp_path, clf):
    from core.retrieval import search

    clear_cache()
    engine = init_db(sqlite_url)
    store = _library(engine, tmp_path)
    with session_scope(engine) as s:
        build_embeddings(s, clf, store=store)
        a = search.library_index(s, clf.version)
        assert search.library_index(s, clf.version) is a
        victim = cases.list_cases(s)[0]
        cases.remove_case(s, victim.id, user_id=None, store=store)
    with session_scope(engine) as s:
        b = search.library_index(s, clf.version)
        assert b is not a and len(b) == len(a) - 1 and victim.id not in b.ids


def test_old_version_serves_until_the_new_one_is_complete(sqlite_url, tmp_path, clf):
    engine = init_db(sqlite_url)
    store = _library(engine, tmp_path)
    with session_scope(engine) as s:
        build_embeddings(s, clf, store=store)
        ids = [c.id for c in cases.list_cases(s)]
        assert serving_version(s, clf.version) == (clf.version, None)
        # a new version "v2" is active, its embeddings half built: the old one serves
        store_embeddings(s, "v2", [(i, np.ones(3, np.float32)) for i in ids[:5]])
        version, notice = serving_version(s, "v2")
        assert version == clf.version and "v2" in notice and f"5 of {len(ids)}" in notice
        store_embeddings(s, "v2", [(i, np.ones(3, np.float32)) for i in ids[5:]])
        assert serving_version(s, "v2") == ("v2", None)


def test_errors_in_words_for_an_empty_library_or_no_embeddings(sqlite_url, tmp_path, clf):
    engine = init_db(sqlite_url)
    img = np.zeros((32, 32), np.float32)
    with session_scope(engine) as s:
        with pytest.raises(RetrievalError, match="library is empty"):
            search_library(s, img, active_version="x", load_classifier=lambda v: clf)
    _library(engine, tmp_path)
    with session_scope(engine) as s:
        with pytest.raises(RetrievalError, match="library embed"):
            search_library(s, img, active_version="x", load_classifier=lambda v: clf)


def test_embeddings_job_builds_the_active_versions_embeddings(db_url, tmp_path, tiny_weights,
                                                              monkeypatch):
    from core.jobs.service import get_job, start_training_job

    monkeypatch.setenv("MEDSCAN_WEIGHTS_DIR", str(tiny_weights))
    monkeypatch.setenv("MEDSCAN_LIBRARY_DIR", str(tmp_path / "store"))
    engine = init_db(db_url)
    _library(engine, tmp_path)
    with session_scope(engine) as s:
        job = start_training_job(s, "embeddings", [], user_id=None)
    deadline = time.monotonic() + 240
    while True:
        with session_scope(engine) as s:
            view = get_job(s, job.id)
        if view.status not in ("queued", "running") or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert view.status == "succeeded", view
    with session_scope(engine) as s:
        assert embedding_counts(s) == {"clf-test": cases.count_cases(s)}


def test_cli_retrieve_and_evaluate_json(tmp_path, tiny_weights, monkeypatch, capsys):
    from core.cli import main
    from core.db import dispose_engines

    clear_cache()
    monkeypatch.setenv("MEDSCAN_WEIGHTS_DIR", str(tiny_weights))
    monkeypatch.setenv("MEDSCAN_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("MEDSCAN_DATABASE_URL", f"sqlite:///{tmp_path / 'm.db'}")
    try:
        assert main(["library", "import", str(DATA), "--label-from-folder", "--json"]) == 0
        imported = json.loads(capsys.readouterr().out)
        assert imported["embedded"] == {"model": "clf-test", "computed": imported["added"]}
        query = sorted((DATA / "pituitary").iterdir())[1]
        assert main(["retrieve", str(query), "--k", "4", "--json"]) == 0
        got = json.loads(capsys.readouterr().out)
        assert len(got) == 4 and set(got[0]) == {"case_id", "label", "similarity", "source"}
        assert got[0]["label"] == "pituitary" and got[0]["similarity"] == pytest.approx(1, 1e-4)
        # evaluation: a throw-away index, nothing written to the library
        half_a, half_b = tmp_path / "a", tmp_path / "b"
        for cls in ("glioma", "pituitary"):
            files = sorted((DATA / cls).iterdir())
            for i, f in enumerate(files):
                dest = (half_a if i % 2 else half_b) / cls
                dest.mkdir(parents=True, exist_ok=True)
                shutil.copy(f, dest / f.name)
        assert main(["evaluate", "retrieval", "--index-from", str(half_a), "--queries",
                     str(half_b), "--k", "3", "--json"]) == 0
        rep = json.loads(capsys.readouterr().out)
        assert {"precision_at_k", "map_at_k", "knn_accuracy", "per_class", "n_index",
                "n_queries"} <= set(rep)
        assert set(rep["precision_at_k"]) == {"1", "3"} and rep["n_queries"] == rep["n_index"]
        assert all(0 <= v <= 1 for v in rep["precision_at_k"].values())
        with session_scope(init_db()) as s:
            assert cases.count_cases(s) == imported["added"]
        assert main(["evaluate", "retrieval", "--index-from", str(tmp_path / "none"),
                     "--queries", str(half_b), "--json"]) == 2
        assert "does not exist" in capsys.readouterr().err
    finally:
        dispose_engines()
