"""Case library (issue 9): folder and DICOM + CSV import, dedupe, resume, bad files reported,
remove, and no PHI in the database or the pixel store."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import inspect as sa_inspect
from sqlalchemy import select, text

from core.db import init_db, session_scope
from core.db.tables import Case
from core.imaging import load_scan
from core.library import cases
from core.library.importer import LibraryImportError, import_tree, read_labels_csv
from core.library.store import LocalDirStore, StoreError, key_for
from tests.test_imaging_phi import PLANTED, phi_dicom, planted_in

DATA = Path(__file__).parent / "data" / "brain-mri"


@pytest.fixture()
def tree(tmp_path) -> Path:
    """Two classes of the fixture slices, one exact copy under another name, one file that is
    not an image and one truncated PNG."""
    root = tmp_path / "cases"
    for cls in ("glioma", "pituitary"):
        shutil.copytree(DATA / cls, root / cls)
    first = sorted((root / "glioma").iterdir())[0]
    shutil.copy(first, root / "glioma" / "copy_of_first.jpg")
    (root / "pituitary" / "notes.png").write_text("not an image")
    png = (DATA.parent / "brain-mri-hr").rglob("*.png").__next__().read_bytes()
    (root / "pituitary" / "cut.png").write_bytes(png[: len(png) // 3])
    return root


@pytest.fixture()
def store(tmp_path) -> LocalDirStore:
    return LocalDirStore(tmp_path / "store")


def _count(root: Path, cls: str) -> int:
    return len([p for p in (root / cls).iterdir() if p.suffix == ".jpg"])


def test_folder_import_labels_dedupes_reports_bad_files_and_resumes(db_url, tree, store):
    engine = init_db(db_url)
    n_gl, n_pit = _count(DATA, "glioma"), _count(DATA, "pituitary")
    with session_scope(engine) as s:
        summary = import_tree(s, tree, name="fixture", label_from_folder=True, store=store)
    assert summary.added == n_gl + n_pit
    assert summary.duplicates == 1                       # copy_of_first.jpg: same pixels
    reasons = dict(summary.skipped)
    assert set(reasons) == {"pituitary/notes.png", "pituitary/cut.png"}
    assert all(r and "Traceback" not in r for r in reasons.values())
    assert "pituitary/cut.png" in summary.text() and "2 skipped" in summary.text()
    with session_scope(engine) as s:
        assert cases.label_counts(s) == {"glioma": n_gl, "pituitary": n_pit} or \
            cases.label_counts(s) == {"pituitary": n_pit, "glioma": n_gl}
        assert cases.source_counts(s) == {"fixture": n_gl + n_pit}
        rows = cases.list_cases(s, label="glioma")
        assert {r.source_path.split("/")[0] for r in rows} == {"glioma"}
        # stored pixels round-trip exactly: 8-bit JPEG slices stay 8-bit
        c = rows[0]
        img = load_scan(tree / c.source_path).pixels
        assert c.bit_depth == 8 and np.array_equal(cases.case_pixels(s, c.id, store), img)
        assert c.thumbnail and c.thumbnail[:4] == b"\x89PNG"
    # a second run skips what is in and adds nothing
    with session_scope(engine) as s:
        again = import_tree(s, tree, name="fixture", label_from_folder=True, store=store)
    assert again.added == 0 and again.already == n_gl + n_pit and again.duplicates == 1
    assert len(again.skipped) == 2
    files = [p for p in store.root.rglob("*.png")]
    assert len(files) == n_gl + n_pit


def test_an_interrupted_import_keeps_its_committed_batches_and_resumes(sqlite_url, tree, store,
                                                                      monkeypatch):
    import core.library.importer as importer

    monkeypatch.setattr(importer, "BATCH", 3)
    engine = init_db(sqlite_url)

    class Crash(Exception):
        pass

    def crash_at_file_5(p):
        if p.step == 5:
            raise Crash

    with pytest.raises(Crash):
        with session_scope(engine) as s:
            import_tree(s, tree, name="fixture", label_from_folder=True, store=store,
                        progress=crash_at_file_5)
    with session_scope(engine) as s:
        assert cases.count_cases(s) == 3          # the first batch was committed
    with session_scope(engine) as s:
        rest = import_tree(s, tree, name="fixture", label_from_folder=True, store=store)
    total = _count(DATA, "glioma") + _count(DATA, "pituitary")
    assert rest.already == 3 and rest.added == total - 3
    with session_scope(engine) as s:
        assert cases.count_cases(s) == total


def test_dicom_tree_with_labels_csv_keeps_no_phi(db_url, tmp_path, store):
    root = tmp_path / "dicom"
    (root / "Doe^Jane").mkdir(parents=True)
    (root / "Doe^Jane" / "Doe_Jane_MRN-778812.dcm").write_bytes(phi_dicom())
    (root / "Doe^Jane" / "IM0002.dcm").write_bytes(phi_dicom(SeriesDescription="AX T1",
                                                             InstanceNumber="2"))
    labels = tmp_path / "labels.csv"
    labels.write_text("path,label\nDoe^Jane/Doe_Jane_MRN-778812.dcm,meningioma\n"
                      "./Doe^Jane/IM0002.dcm,meningioma\n")
    engine = init_db(db_url)
    with session_scope(engine) as s:
        summary = import_tree(s, root, name="pacs export", labels=read_labels_csv(labels),
                              store=store)
        # the admin's "Add to case library" path: an upload with its (unmasked) name
        scan = load_scan(phi_dicom(StudyDescription="x"), "Doe_Jane_MRN-778812.dcm")
        up = cases.add_scan(s, scan, label="glioma", added_by=None, store=store)
    # both files (and the upload) render to the same pixels: stored once
    assert summary.added == 1 and summary.duplicates == 1 and not summary.skipped
    assert not up.created and up.case.label == "meningioma"
    with session_scope(engine) as s:
        rows = cases.list_cases(s)
        assert len(rows) == 1 and rows[0].label == "meningioma"
        assert rows[0].source_path and "redacted" in rows[0].source_path
        assert rows[0].modality == "MR" and rows[0].bit_depth == 16
        dump = _dump_database(s)
    assert not planted_in(dump), planted_in(dump)
    for f in store.root.rglob("*"):
        if f.is_file():
            data = f.read_bytes()
            assert data[:4] == b"\x89PNG"
            assert not planted_in(data.decode("latin-1")), f
    assert "Doe" not in summary.text() and "778812" not in json.dumps(summary.to_dict())


def _dump_database(session) -> str:
    """Every row of every table, as text."""
    out = []
    for table in sa_inspect(session.get_bind()).get_table_names():
        for row in session.execute(text(f'SELECT * FROM "{table}"')):
            out.append(repr({k: (bytes(v).decode("latin-1") if isinstance(v, (bytes, memoryview))
                                 else v) for k, v in row._mapping.items()}))
    return "\n".join(out)


def test_remove_deletes_row_embeddings_and_image(db_url, tree, store):
    from core.db.cases import embedding_counts, store_embeddings

    engine = init_db(db_url)
    with session_scope(engine) as s:
        import_tree(s, tree / "glioma", name="g", store=store)
        c = cases.list_cases(s)[0]
        store_embeddings(s, "v1", [(c.id, np.ones(4, np.float32) / 2)])
    assert store.exists(c.storage_key)
    with session_scope(engine) as s:
        cases.remove_case(s, c.id, user_id=None, store=store)
    with session_scope(engine) as s:
        assert s.get(Case, c.id) is None and embedding_counts(s) == {}
        actions = [r[0] for r in s.execute(text("SELECT action FROM audit_log"))]
    assert not store.exists(c.storage_key)
    assert "case_remove" in actions and "case_add" in actions


def test_set_label_is_audited_and_validated(sqlite_url, tree, store):
    engine = init_db(sqlite_url)
    with session_scope(engine) as s:
        import_tree(s, tree / "glioma", name="g", store=store)
        cid = cases.list_cases(s)[0].id
        assert cases.list_cases(s)[0].label is None     # no --label-from-folder: unlabelled
        v = cases.set_case_label(s, cid, "  glioma ", user_id=None)
        assert v.label == "glioma" and v.label_source == "admin"
        with pytest.raises(ValueError, match="at most"):
            cases.set_case_label(s, cid, "x" * 65, user_id=None)


def test_sixteen_bit_pixels_round_trip_and_hash_includes_dtype(sqlite_url, store):
    engine = init_db(sqlite_url)
    img16 = (np.arange(64 * 48, dtype=np.uint16).reshape(48, 64) * 21).astype(np.uint16)
    img8 = (img16 // 256).astype(np.uint8)
    assert cases.pixel_sha256(img16) != cases.pixel_sha256(img8)
    with session_scope(engine) as s:
        a = cases.add_pixels(s, img16, source="t", store=store)
        b = cases.add_pixels(s, img16.copy(), source="other", store=store)
        assert a.created and not b.created and b.case.id == a.case.id
        back = cases.case_pixels(s, a.case.id, store)
    assert back.dtype == np.float32 and np.allclose(back * 65535, img16)


def test_store_refuses_keys_outside_it_and_reports_missing_files(tmp_path):
    store = LocalDirStore(tmp_path)
    with pytest.raises(StoreError):
        store.get("../../etc/passwd")
    key = key_for("a" * 64)
    with pytest.raises(StoreError, match="missing"):
        store.get(key)
    store.put(key, b"x")
    assert store.get(key) == b"x" and store.exists(key)


def test_import_errors_are_words(tmp_path):
    with pytest.raises(LibraryImportError, match="not a folder"):
        import_tree(None, tmp_path / "nope")
    bad = tmp_path / "l.csv"
    bad.write_text("only-one-column\n")
    with pytest.raises(LibraryImportError, match="path,label"):
        read_labels_csv(bad)


def test_cli_import_list_show_remove(tmp_path, tree, monkeypatch, capsys):
    from core.cli import main
    from core.db import dispose_engines

    monkeypatch.setenv("MEDSCAN_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("MEDSCAN_DATABASE_URL", f"sqlite:///{tmp_path / 'm.db'}")
    monkeypatch.setenv("MEDSCAN_WEIGHTS_DIR", str(tmp_path / "no-weights"))
    try:
        assert main(["library", "import", str(tree), "--label-from-folder", "--name", "fx",
                     "--modality", "MR", "--body-part", "brain", "--json"]) == 0
        out = json.loads(capsys.readouterr().out)
        assert out["added"] == _count(DATA, "glioma") + _count(DATA, "pituitary")
        assert out["embedded"]["computed"] == 0 and "no embeddings" in out["embedded"]["note"]
        assert {d["path"] for d in out["skipped"]} == {"pituitary/notes.png",
                                                       "pituitary/cut.png"}
        assert main(["library", "list", "--label", "glioma", "--json"]) == 0
        listed = json.loads(capsys.readouterr().out)
        assert listed["total"] == _count(DATA, "glioma")
        assert {(c["modality"], c["body_part"]) for c in listed["cases"]} == {("MR", "brain")}
        cid = listed["cases"][0]["id"]
        png = tmp_path / "case.png"
        assert main(["library", "show", str(cid), "--out", str(png)]) == 0
        assert png.read_bytes()[:4] == b"\x89PNG"
        assert main(["library", "remove", str(cid)]) == 0
        assert main(["library", "show", str(cid)]) == 2
        assert "No case with id" in capsys.readouterr().err
    finally:
        dispose_engines()
