"""Issue 11: a study designed from stored cases (library or a server folder), its condition
images made by the ``study_images`` job (in-process, through the CLI, and as a real background
job), opening only when every image is ready, and the exports."""
from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest

from core.db import auth, init_db, session_scope
from core.db import tables as m
from core.db.errors import StudyError
from core.db.studies import (get_study, open_study, rate_study_item, study_image_bytes,
                             study_queue, study_reference_bytes)
from core.studies.design import StudyDesign, design_study, folder_sources, library_sources
from core.studies.generate import generate_study_images

PW = "a long password 1"


def _png(img: np.ndarray) -> bytes:
    import cv2

    ok, buf = cv2.imencode(".png", img)
    assert ok
    return buf.tobytes()


def _head(size: int, value: int) -> np.ndarray:
    yy, xx = np.mgrid[:size, :size]
    img = ((xx - size / 2) ** 2 + (yy - size / 2) ** 2 < (size / 3) ** 2) * value
    return (img + (xx % 7) * 3).astype(np.uint8)


@pytest.fixture()
def folder(tmp_path):
    root = tmp_path / "study_images"
    for i, label in enumerate(["glioma", "glioma", "no_tumor"]):
        (root / label).mkdir(parents=True, exist_ok=True)
        (root / label / f"patient_{i}_secret.png").write_bytes(_png(_head(48, 120 + 40 * i)))
    (root / "glioma" / "copy.png").write_bytes((root / "glioma" / "patient_0_secret.png")
                                               .read_bytes())   # a duplicate file: one case
    (root / "notes.txt").write_text("not an image")
    return root


@pytest.fixture()
def env(db_url):
    engine = init_db(db_url)
    with session_scope(engine) as s:
        ids = {n: auth.create_user(s, n, PW, "admin" if n == "boss" else "radiologist").id
               for n in ("boss", "r1", "r2")}
    return engine, ids


def test_folder_sources_labels_and_duplicates(folder):
    sources = folder_sources(folder)
    assert [s.label for s in sources] == ["glioma", "glioma", "no_tumor"]
    assert all(s.path.endswith(".png") and s.case_id is None for s in sources)
    with pytest.raises(StudyError, match="not a folder"):
        folder_sources(folder / "nope")


def test_design_generate_open_side_by_side_from_a_folder(env, folder):
    engine, ids = env
    design = StudyDesign(name="Folder study", conditions=("original", "bicubic"), scale=2,
                         presentation="side_by_side", reference="lr", repeat_fraction=0.5,
                         diagnosis_choices=("glioma", "no_tumor"), readers=(ids["r1"],),
                         seed=3)
    with session_scope(engine) as s:
        study = design_study(s, design, folder_sources(folder), ids["boss"], folder=folder)
        assert (study.state, study.n_cases, study.n_items, study.n_ready) == ("draft", 3, 6, 0)
        with pytest.raises(StudyError, match="not ready"):
            open_study(s, study.id, ids["boss"])
    progress = []
    done = generate_study_images(engine, study.id, progress=progress.append)
    assert done == {"cases": 3, "made": 9, "skipped": 0}      # 6 items + 3 references
    assert [p.step for p in progress if p.phase == "generate"] == [1, 2, 3]
    assert progress[-1].phase == "done"
    assert generate_study_images(engine, study.id)["skipped"] == 3   # resumable: nothing to do
    with session_scope(engine) as s:
        opened = open_study(s, study.id, ids["boss"])
        assert opened.state == "open" and opened.ready
        assert s.query(m.StudyImage).count() == 9                   # each image stored once
        queue = study_queue(s, study.id, ids["r1"])
        assert len(queue) == 9 and sum(v.is_repeat for v in queue) == 3
        sizes = set()
        for v in queue:
            assert v.has_reference and v.method is None and v.scan_sha256 is None
            for png in (study_image_bytes(s, v.item_id), study_reference_bytes(s, v.item_id)):
                import cv2

                sizes.add(cv2.imdecode(np.frombuffer(png, np.uint8), 0).shape)
        assert sizes == {(48, 48)}          # conditions and reference: one size
        with pytest.raises(StudyError, match="not a reader"):
            study_queue(s, study.id, ids["r2"])
        rate_study_item(s, reader_id=ids["r1"], item_id=queue[0].item_id, image_quality=4,
                        diagnostic_usefulness=4, diagnosis="glioma", seconds=3.0)
    with pytest.raises(StudyError, match="fixed"):
        generate_study_images(engine, study.id)


class _FakeSR:
    """Stands in for a learned model: bicubic plus one grey level, with a version."""
    version = "fake-1"

    def __init__(self, scale: int) -> None:
        from core.sr.upscalers import BicubicSR

        self._b = BicubicSR(scale)

    def upscale(self, image, **kw):
        return np.clip(self._b.upscale(image) + 1 / 255, 0, 1)


def test_library_cases_by_label_with_a_learned_condition(env, monkeypatch, tmp_weights):
    import core.sr
    from core.studies import generate

    engine, ids = env
    pixels = {}
    with session_scope(engine) as s:
        for i, label in enumerate(["glioma", "meningioma", "glioma"]):
            sha = f"{i:064x}"
            s.add(m.Case(sha256=sha, storage_key=f"x/{i}.png", width=32, height=32,
                         bit_depth=8, label=label, source="import-a"))
            pixels[sha] = _head(32, 100 + 50 * i) / 255.0
    with session_scope(engine) as s:
        assert [c.label for c in library_sources(s, label="glioma")] == ["glioma", "glioma"]
        assert len(library_sources(s, source="import-a", limit=2)) == 2
        with pytest.raises(StudyError, match="No active"):
            design_study(s, StudyDesign(name="x", conditions=("original", "srcnn")),
                         library_sources(s), ids["boss"])
    monkeypatch.setattr(core.sr, "available_methods",
                        lambda scale, weights_dir=None: {"bicubic": None, "srcnn": "fake-1"})
    monkeypatch.setattr(generate, "case_pixels",
                        lambda session, case, source: pixels[case["scan_sha256"]])
    with session_scope(engine) as s:
        study = design_study(s, StudyDesign(name="Library study", scale=4,
                                            conditions=("original", "srcnn")),
                             library_sources(s, label="glioma"), ids["boss"])
    generate_study_images(engine, study.id, models={"srcnn": _FakeSR(4)})
    with session_scope(engine) as s:
        assert get_study(s, study.id).ready
        cases = s.query(m.StudyCase).all()
        assert sorted(c.label for c in cases) == ["glioma", "glioma"]
        assert {c.case_id for c in cases} == {1, 3}
        assert {i.model_version for i in s.query(m.StudyItem)} == {"", "fake-1"}
        assert open_study(s, study.id, ids["boss"]).open_to_all


def test_cli_design_generate_export(env, folder, tmp_path, capsys):
    from core.cli import main

    engine, ids = env
    assert main(["studies", "design", "CLI study", "--folder", str(folder), "--scale", "2",
                 "--conditions", "original,bicubic", "--repeat-fraction", "0.5",
                 "--readers", "r1,r2", "--diagnosis", "glioma,no_tumor", "--json"]) == 0
    study = json.loads(capsys.readouterr().out)
    assert study["state"] == "draft" and study["readers"] == ["r1", "r2"]
    assert main(["studies", "generate", str(study["id"]), "--open", "--quiet"]) == 0
    assert "is open" in capsys.readouterr().out
    with session_scope(engine) as s:
        for reader in ("r1", "r2"):
            for v in study_queue(s, study["id"], ids[reader]):
                rate_study_item(s, reader_id=ids[reader], item_id=v.item_id,
                                image_quality=2 + (v.index % 3), diagnostic_usefulness=3,
                                repeat=v.is_repeat, seconds=1.5, diagnosis="glioma",
                                comment="=cmd()" if v.index == 1 else None)
    out = tmp_path / "export"
    assert main(["studies", "export", str(study["id"]), "--out", str(out)]) == 0
    rows = list(csv.DictReader(io.StringIO(
        (out / f"study-{study['id']}-ratings.csv").read_text())))
    assert len(rows) == 2 * 9 * 2                    # readers × showings × questions
    assert {r["question"] for r in rows} == {"image_quality", "diagnostic_usefulness"}
    assert sum(r["repeat"] == "1" for r in rows) == 2 * 3 * 2
    assert {r["condition"] for r in rows} == {"original", "bicubic"}
    assert all(r["seconds"] == "1.5" for r in rows)
    assert any(r["comment"] == "'=cmd()" for r in rows)          # no formula injection
    report = json.loads((out / f"study-{study['id']}-results.json").read_text())
    assert report["study"]["name"] == "CLI study" and report["n_readers"] == 2
    details = {d["reader"]: d for d in report["reader_details"]}
    assert details["r1"]["consistency"]["image_quality"]["n_pairs"] == 3
    assert details["r1"]["seconds_median"] == 1.5
    assert report["diagnosis"]["original"]["n"] == 2 * 3
    page = (out / f"study-{study['id']}-report.html").read_text()
    assert page.startswith("<!doctype html>") and "<svg" in page and "Bicubic" in page
    assert "<script" not in page and "patient_" not in page       # no file names
    assert main(["studies", "close", str(study["id"])]) == 0
    assert main(["studies", "show", str(study["id"])]) == 0
    assert "closed" in capsys.readouterr().out


def test_generation_runs_as_a_background_job(env, folder):
    """The admin page's path: ``start_training_job(kind="study_images")`` spawns
    ``python -m core studies generate ID --job-id N``, which reports progress and succeeds."""
    from core.db import jobs
    from core.jobs import runner, service

    engine, ids = env
    with session_scope(engine) as s:
        study = design_study(s, StudyDesign(name="Job study", scale=2), folder_sources(folder),
                             ids["boss"], folder=folder)
    with session_scope(engine) as s:
        job = service.start_training_job(s, "study_images", [str(study.id)], ids["boss"])
    assert runner.children.pop(job.id).wait(timeout=240) == 0, jobs.job_log_tail(job)
    with session_scope(engine) as s:
        done = service.get_job(s, job.id)
        assert done.status == "succeeded", jobs.job_log_tail(done)
        assert done.fraction == 1.0 and get_study(s, study.id).ready
        steps = [p.step for p in jobs.job_history(s, job.id) if p.phase == "generate"]
        assert steps[0] == 1 and steps[-1] == 3        # throttled: not every step is written


def test_library_cases_end_to_end_with_the_case_library(env):
    """Cases stored by ``core.library`` (pixels in its store, 8- and 16-bit): a side-by-side
    study of the glioma cases is designed, its images made from the stored pixels, opened."""
    library = pytest.importorskip("core.library.cases")

    engine, ids = env
    with session_scope(engine) as s:
        library.add_pixels(s, _head(40, 150), source="import-b", label="glioma")
        library.add_pixels(s, (_head(40, 90).astype(np.uint16) * 257), source="import-b",
                           label="glioma")
        library.add_pixels(s, _head(40, 200), source="import-b", label="notumor")
        study = design_study(s, StudyDesign(name="Library e2e", scale=2,
                                            presentation="side_by_side", reference="original"),
                             library_sources(s, label="glioma"), ids["boss"])
    done = generate_study_images(engine, study.id)
    assert done["cases"] == 2 and done["made"] == 2 * 2 + 2
    with session_scope(engine) as s:
        opened = open_study(s, study.id, ids["boss"])
        assert opened.state == "open" and opened.n_cases == 2
        view = study_queue(s, study.id, ids["r1"])[0]
        assert study_image_bytes(s, view.item_id)[:4] == b"\x89PNG"
        assert study_reference_bytes(s, view.item_id)[:4] == b"\x89PNG"
