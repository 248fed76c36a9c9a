"""AppTest: Similar cases and "Add to case library" on Analyze, the Case library page, and the
embeddings job queued when another classifier version is activated (issue 9)."""
from __future__ import annotations

from pathlib import Path

import pytest
import streamlit as st

from app_env import logged_in, mr_dicom_bytes, app_env, tiny_weights  # noqa: F401

DATA = Path(__file__).parent / "data" / "brain-mri"


@pytest.fixture()
def library(app_env, tiny_weights):
    """The fixture slices imported with their folder labels and embedded by the tiny model."""
    from core.classifier.inference import Classifier
    from core.db import init_db, session_scope
    from core.library.importer import import_tree
    from core.retrieval.search import build_embeddings, clear_cache

    clear_cache()
    st.cache_data.clear()
    engine = init_db(app_env["MEDSCAN_DATABASE_URL"])
    with session_scope(engine) as s:
        summary = import_tree(s, DATA, name="fixture", label_from_folder=True)
        build_embeddings(s, Classifier.load(weights_dir=tiny_weights))
    return summary


def _markdown(at) -> str:
    return "\n".join(m.value for m in at.markdown)


def test_similar_cases_show_the_uploaded_case_first_and_compare(app_env, library, monkeypatch):
    import core.retrieval.search as search

    calls = []
    original = search.search_library
    monkeypatch.setattr(search, "search_library",
                        lambda *a, **k: calls.append(1) or original(*a, **k))
    query = sorted((DATA / "meningioma").iterdir())[0]
    at = logged_in("radiologist", app_env["ids"]).run()
    at.file_uploader(key="scan").upload(query.name, query.read_bytes(), "image/jpeg").run()
    assert not at.exception, at.exception
    assert "Similar cases" in [h.value for h in at.subheader]
    text = _markdown(at)
    assert " of 6 similar cases " in text
    assert "**meningioma**  \n:grey[1.000 · case" in text          # the case itself, first
    compare = [b for b in at.button if (b.key or "").startswith("similar_cmp_")]
    assert len(compare) == 6
    assert len(calls) == 1
    at.run()                                                       # a rerun: no new search
    assert len(calls) == 1 and not at.exception
    compare[0].click().run()
    assert "next to **case" in _markdown(at) and not at.exception
    at.button(key="similar_close").click().run()
    assert "next to **case" not in _markdown(at)
    # a radiologist has no "Add to case library"
    assert not [b for b in at.button if b.key == "library_add"]


def test_empty_library_says_how_to_fill_it(app_env):
    st.cache_data.clear()
    at = logged_in("radiologist", app_env["ids"]).run()
    at.file_uploader(key="scan").upload("MR_small", mr_dicom_bytes(),
                                        "application/octet-stream").run()
    assert not at.exception
    assert any("case library is empty" in c.value for c in at.caption)


def test_admin_adds_the_upload_once(app_env):
    from core.db import init_db, session_scope
    from core.library.cases import list_cases

    at = logged_in("admin", app_env["ids"]).run()
    at.file_uploader(key="scan").upload("Doe_Jane.dcm", mr_dicom_bytes(),
                                        "application/octet-stream").run()
    assert at.button(key="library_add").disabled          # no label chosen yet
    at.selectbox(key="library_label").set_value("glioma").run()
    at.button(key="library_add").click().run()
    assert not at.exception
    assert any("Added as case" in s.value for s in at.success)
    at.button(key="library_add").click().run()
    assert any("already in the library" in i.value for i in at.info)
    with session_scope(init_db(app_env["MEDSCAN_DATABASE_URL"])) as s:
        rows = list_cases(s)
    assert len(rows) == 1 and rows[0].label == "glioma" and rows[0].source == "upload"
    assert rows[0].source_path is None and rows[0].added_by == app_env["ids"]["admin"]
    assert rows[0].label_source == "admin" and rows[0].modality == "MR"


def test_case_library_page_filter_open_relabel_remove(app_env, library):
    from core.db import init_db, session_scope
    from core.library.cases import count_cases

    at = logged_in("admin", app_env["ids"]).run()
    at.switch_page("app_pages/admin_library.py").run()
    assert not at.exception, at.exception
    assert at.title[0].value == "Case library"
    assert at.metric[0].value == str(library.added)
    assert at.get("plotly_chart")
    at.selectbox(key="library_filter_label").set_value("pituitary").run()
    n_pit = len(list((DATA / "pituitary").iterdir()))
    assert any(f"{n_pit} case(s) match" in c.value for c in at.caption)
    opens = [b for b in at.button if (b.key or "").startswith("library_open_")]
    assert len(opens) == n_pit
    case_id = int(opens[0].key.rsplit("_", 1)[1])
    opens[0].click().run()
    assert f"Case {case_id}" in [h.value for h in at.subheader]
    at.text_input[0].set_value("pituitary adenoma")
    at.button[[b.proto.label for b in at.button].index("Save label")].click().run()
    assert not at.exception
    at.selectbox(key="library_filter_label").set_value("(all)").run()
    assert any("pituitary adenoma" in m.value for m in at.markdown)
    assert at.button(key=f"library_remove_{case_id}").disabled
    at.checkbox(key=f"library_rm_ok_{case_id}").check().run()
    at.button(key=f"library_remove_{case_id}").click().run()
    assert not at.exception
    with session_scope(init_db(app_env["MEDSCAN_DATABASE_URL"])) as s:
        assert count_cases(s) == library.added - 1


def test_library_page_starts_the_embeddings_job_and_radiologists_cannot_open_it(
        app_env, library, monkeypatch):
    import ui.retrieval
    from core.db import init_db, session_scope
    from core.db.tables import CaseEmbedding

    with session_scope(init_db(app_env["MEDSCAN_DATABASE_URL"])) as s:
        s.query(CaseEmbedding).delete()
    started = []
    monkeypatch.setattr(ui.retrieval, "start_embeddings_job",
                        lambda version, user: started.append(version))
    at = logged_in("admin", app_env["ids"]).run()
    at.switch_page("app_pages/admin_library.py").run()
    assert at.button(key="library_embed").proto.label == "Build embeddings for clf-test"
    at.button(key="library_embed").click().run()
    assert started == ["clf-test"]
    reader = logged_in("radiologist", app_env["ids"]).run()
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        reader.switch_page("app_pages/admin_library.py")     # not in a radiologist's menu
    from streamlit.testing.v1 import AppTest

    page = AppTest.from_file("../app_pages/admin_library.py", default_timeout=60)
    page.session_state["user"] = {"id": app_env["ids"]["reader"], "name": "reader",
                                  "role": "radiologist"}
    page.run()                                               # opened by URL: refused
    assert not page.exception and "for admin accounts" in page.error[0].value


def test_activating_a_classifier_queues_its_embeddings(app_env, library, tiny_weights,
                                                       monkeypatch):
    import ui.retrieval
    from core import registry
    from core.models.vgg16 import build_classifier

    card = registry.load_card("classifier", "clf-test", weights_dir=tiny_weights)
    registry.save_version("classifier", build_classifier(**card["network"]), dict(card),
                          version="clf-test-3", weights_dir=tiny_weights)
    started = []
    monkeypatch.setattr(ui.retrieval, "start_embeddings_job",
                        lambda version, user: started.append(version) or type(
                            "J", (), {"id": 99})())
    at = logged_in("admin", app_env["ids"]).run()
    try:
        at.switch_page("app_pages/admin_models.py").run()
        at.selectbox(key="clf_pick").set_value("clf-test-3").run()
        at.checkbox(key="clf_confirm").check().run()
        at.button(key="clf_activate").click().run()
        assert not at.exception
        assert started == ["clf-test-3"]
        assert any("job 99" in i.value for i in at.info)
    finally:
        registry.activate("classifier", "clf-test", weights_dir=tiny_weights)
        registry.delete_version("classifier", "clf-test-3", weights_dir=tiny_weights)


def test_model_versions_page_lists_and_activates_segmentation(app_env, tiny_weights):
    """Segmentation versions get their own tab: held-out Dice / IoU, and audited activation."""
    from core import registry
    from core.models.unet import build_unet
    from core.segmentation.data import preprocessing_config

    net = {"input_size": 32, "base_filters": 4, "depth": 2}
    for v in ("seg-a", "seg-b"):
        if v not in [c["version"] for c in registry.list_versions("segmentation",
                                                                  weights_dir=tiny_weights)]:
            registry.save_version("segmentation", build_unet(**net), {
                "architecture": "unet", "network": net, "input_size": 32,
                "preprocessing": preprocessing_config(32),
                "metrics": {"test": {"dice": 0.81, "iou": 0.72, "dice_ci95": [0.77, 0.84],
                                     "per_class": {"glioma": {"dice": 0.67}}, "n": 180}}},
                version=v, activate=v == "seg-a", weights_dir=tiny_weights)
    at = logged_in("admin", app_env["ids"]).run()
    try:
        at.switch_page("app_pages/admin_models.py").run()
        assert not at.exception, at.exception
        table = next(d for d in at.dataframe if "test Dice" in d.value.columns).value
        assert set(table["version"]) >= {"seg-a", "seg-b"}
        assert table["test Dice"].iloc[0] == "0.810 [0.770, 0.840]"
        at.selectbox(key="seg_pick").set_value("seg-b").run()
        at.checkbox(key="seg_confirm").check().run()
        at.button(key="seg_activate").click().run()
        assert not at.exception
        assert registry.active_version("segmentation", weights_dir=tiny_weights) == "seg-b"
    finally:   # the session's shared registry keeps no segmentation model for other tests
        (tiny_weights / "segmentation" / "ACTIVE").unlink(missing_ok=True)
        for v in ("seg-a", "seg-b"):
            registry.delete_version("segmentation", v, weights_dir=tiny_weights)
