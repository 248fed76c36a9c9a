"""The viewer component's Python side (ui/viewer): the committed bundle is the build of the
committed sources, and what the page sends is exact, compact and free of identifiers."""
from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import zlib
from pathlib import Path

import numpy as np
import pytest

from ui import viewer

FRONTEND = viewer.BUILD_DIR.parent / "frontend"
INFO = viewer.BUILD_DIR / "build-info.json"


def _source_hash(files: list[str]) -> str:
    """The recipe of frontend/build.mjs: sha256 over "path\\0sha256(content)\\n" per input."""
    h = hashlib.sha256()
    for f in files:
        h.update(f"{f}\0{hashlib.sha256((FRONTEND / f).read_bytes()).hexdigest()}\n".encode())
    return h.hexdigest()


def _inputs() -> list[str]:
    found = [p.relative_to(FRONTEND).as_posix() for d in ("src", "stubs")
             for p in (FRONTEND / d).rglob("*") if p.is_file()]
    return sorted([*found, "index.html", "build.mjs", "package.json", "package-lock.json",
                   "tsconfig.json"])


def test_committed_bundle_was_built_from_these_sources():
    info = json.loads(INFO.read_text())
    assert info["sources"] == _inputs(), "a source was added or removed: run make viewer"
    assert info["source_sha256"] == _source_hash(info["sources"]), (
        "ui/viewer/frontend changed since the bundle was built: run make viewer")
    for name, entry in info["files"].items():
        data = (viewer.BUILD_DIR / name).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"], f"{name} edited by hand"
    assert {"index.html", "viewer.js", "viewer.css"} <= set(info["files"])
    assert viewer.available()
    # Exact pins: package.json names exact versions and the lock agrees.
    package = json.loads((FRONTEND / "package.json").read_text())
    lock = json.loads((FRONTEND / "package-lock.json").read_text())
    for section in ("dependencies", "devDependencies"):
        for name, version in package[section].items():
            assert version[0].isdigit(), f"{name} {version} is not an exact pin"
            assert lock["packages"][f"node_modules/{name}"]["version"] == version
    assert info["versions"]["@cornerstonejs/core"] == package["dependencies"]["@cornerstonejs/core"]


@pytest.mark.slow
def test_rebuild_gives_the_committed_bundle(tmp_path):
    """Where Node and the npm packages are present, building again gives the same bytes."""
    if shutil.which("node") is None or not (FRONTEND / "node_modules" / "esbuild").is_dir():
        pytest.skip("needs node and ui/viewer/frontend/node_modules (npm ci)")
    run = subprocess.run(["node", "build.mjs", "--outdir", str(tmp_path)], cwd=FRONTEND,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    for name in ("index.html", "viewer.js", "viewer.css", "build-info.json"):
        assert (tmp_path / name).read_bytes() == (viewer.BUILD_DIR / name).read_bytes(), name


def _unpack(args: dict, data: bytes, ref: dict) -> np.ndarray:
    raw = data[ref["offset"]:ref["offset"] + ref["length"]]
    if ref["encoding"] == "zlib":
        raw = zlib.decompress(raw)
    return np.frombuffer(raw, dtype=ref["dtype"]).reshape(ref["shape"])


@pytest.mark.parametrize("pixels, dtype", [
    (np.arange(12, dtype=np.uint8).reshape(3, 4), "uint8"),
    (np.array([[0, 255], [3, 4]], dtype=np.int64), "uint8"),
    (np.array([[-1024.0, 3071.0], [0, 40]], dtype=np.float32), "int16"),      # CT in HU
    (np.array([[0, 40000], [5, 6]], dtype=np.int32), "uint16"),
    (np.array([[0.25, 0.5], [0.75, 1.0]], dtype=np.float32), "float32"),
    (np.array([[0, 70000], [-5, 6]], dtype=np.int64), "float32"),
    (np.array([[True, False]]), "uint8"),
])
def test_pixels_travel_exactly_in_the_smallest_type(pixels, dtype):
    args, data = viewer.encode([{"label": "a", "pixels": pixels}])
    ref = args["panels"][0]["array"]
    assert ref["dtype"] == dtype and ref["shape"] == [1, *pixels.shape]
    np.testing.assert_array_equal(_unpack(args, data, ref)[0], pixels.astype(np.float64))


def test_frames_spacing_window_and_overlays():
    frames = np.arange(3 * 8 * 10, dtype=np.int16).reshape(3, 8, 10) - 100
    heat = np.linspace(0, 1, 20, dtype=np.float32).reshape(4, 5)
    mask = np.zeros((8, 10), bool)
    mask[2:5, 3:7] = True
    args, data = viewer.encode([{
        "label": "Scan", "pixels": frames, "spacing": (0.5, 0.25), "window": (40, 400),
        "unit": "HU", "frame": 1,
        "overlays": [viewer.heat_overlay(heat, frame=1), viewer.outline_overlay(mask),
                     viewer.box_overlay((3, 2, 7, 5), label="box")]}], height=500)
    [p] = args["panels"]
    assert p["spacing"] == [0.5, 0.25] and p["window"] == [40.0, 400.0] and p["frame"] == 1
    assert p["unit"] == "HU" and args["height"] == 500 and args["mode"] == "grid"
    np.testing.assert_array_equal(_unpack(args, data, p["array"]), frames)
    h, outline, box = p["overlays"]
    assert h["kind"] == "heat" and h["frame"] == 1 and h["opacity"] == pytest.approx(0.4)
    assert _unpack(args, data, h["array"])[0, 0] == 0 and _unpack(args, data, h["array"])[-1, -1] == 255
    assert len(h["colormap"]) == 768 and h["colormap"][:3] == [0, 0, 128]    # JET starts navy
    [path] = outline["paths"]
    assert {tuple(v) for v in path} == {(3, 2), (3, 4), (6, 4), (6, 2)}   # pixel centres
    assert box["paths"] == [[[2.5, 1.5], [6.5, 1.5], [6.5, 4.5], [2.5, 4.5]]]  # pixel edges


def test_same_pixels_keep_their_id_when_only_the_window_changes():
    img = np.arange(64, dtype=np.uint8).reshape(8, 8)
    a, _ = viewer.encode([{"label": "x", "pixels": img, "window": (10, 20)}])
    b, _ = viewer.encode([{"label": "x", "pixels": img, "window": (30, 20)}])
    c, _ = viewer.encode([{"label": "x", "pixels": img + 1}])
    assert a["data_id"] == b["data_id"] != c["data_id"]
    assert viewer.default_window(img) == (128.0, 256.0)
    assert viewer.default_window(np.array([-1000, 1000], np.int16)) == (0.5, 2001.0)


def test_compare_and_errors():
    img = np.zeros((4, 4), np.uint8)
    args, _ = viewer.encode([{"label": "a", "pixels": img}, {"label": "b", "pixels": img}],
                            compare=(1, 0))
    assert args["compare"] == [1, 0] and args["mode"] == "split" and args["columns"] == 2
    with pytest.raises(ValueError, match="two different panels"):
        viewer.encode([{"label": "a", "pixels": img}], compare=(0, 0))
    with pytest.raises(ValueError, match="not"):
        viewer.encode([{"label": "a", "pixels": np.zeros((2, 3, 4, 5))}])
    with pytest.raises(ValueError, match="at least one panel"):
        viewer.encode([])


def test_too_many_voxels_send_the_current_frame(monkeypatch):
    monkeypatch.setattr(viewer, "MAX_VOXELS", 100)
    frames = np.arange(4 * 8 * 8, dtype=np.uint8).reshape(4, 8, 8)
    args, data = viewer.encode([{"label": "s", "pixels": frames, "frame": 2,
                                 "overlays": [viewer.heat_overlay(np.ones((2, 2)), frame=2)]}])
    [p] = args["panels"]
    assert p["array"]["shape"] == [1, 8, 8] and p["frame"] == 0 and p["overlays"][0]["frame"] is None
    np.testing.assert_array_equal(_unpack(args, data, p["array"])[0], frames[2])


def test_a_dicom_scan_panel_has_its_values_and_no_identifiers():
    from pydicom import dcmread
    from pydicom.data import get_testdata_file

    from core.imaging import load_scan
    from ui.viewing import scan_panel

    path = get_testdata_file("CT_small.dcm")
    ds = dcmread(path)
    scan = load_scan(Path(path).read_bytes(), filename="CT_small.dcm")
    panel = scan_panel(scan)
    assert panel["unit"] == "HU" and panel["window"] == tuple(scan.window)
    assert panel["spacing"] == scan.pixel_spacing
    raw = ds.pixel_array.astype(float) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    np.testing.assert_array_equal(panel["pixels"], raw)
    args, data = viewer.encode([panel])
    assert args["panels"][0]["array"]["dtype"] == "int16"
    text = json.dumps(args)
    for identifier in (str(ds.PatientName), str(ds.PatientID), "CT_small"):
        assert identifier not in text
        assert identifier.encode() not in zlib.decompress(data)


def test_a_png_panel_is_its_displayed_pixels():
    from app_env import brain_png_bytes

    from core.imaging import load_scan
    from ui.viewing import scan_panel

    scan = load_scan(brain_png_bytes(64))
    panel = scan_panel(scan)
    assert panel["spacing"] is None and panel["unit"] is None
    np.testing.assert_array_equal(panel["pixels"], scan.to_uint8())


# ---- the pages (AppTest does not run components, but it sees what the page sends) -------------

from app_env import app_env, logged_in, mr_dicom_bytes, tiny_weights  # noqa: E402,F401
from test_app_library import library  # noqa: E402,F401


def _viewer_args(at) -> list[dict]:
    return [json.loads(c.proto.json_args) for c in at.get("component_instance")
            if c.proto.component_name.endswith("medscan_viewer")]


def test_analyze_sends_the_scan_with_its_overlays_in_an_open_expander(app_env):
    at = logged_in("radiologist", app_env["ids"]).run()
    at.file_uploader(key="scan").upload("MR_small", mr_dicom_bytes()).run()
    assert not at.exception
    [args] = _viewer_args(at)
    [panel] = args["panels"]
    assert panel["label"] == "Scan" and panel["window"] == [600.0, 1600.0]
    assert panel["spacing"] == [0.3125, 0.3125] and panel["array"]["shape"] == [1, 64, 64]
    assert [o["label"] for o in panel["overlays"]][0].startswith("Grad-CAM (")
    assert "MR_small" not in json.dumps(args)
    assert [o["label"] for o in panel["overlays"]][0].endswith(", predicted)")
    assert any(c.value.startswith("Grad-CAM of the predicted class") for c in at.caption)
    # The viewer sits in an expander, open at first: closing and opening it runs in the
    # browser (no rerun), where a switch cost one; there is no switch any more.
    (box,) = [e for e in at.expander if e.label == "Interactive viewer"]
    assert box.proto.expanded
    assert [c for c in box.get("component_instance")
            if c.proto.component_name.endswith("medscan_viewer")]
    assert not [t for t in at.toggle if t.key == "analyze_viewer"] and at.image


def test_super_resolution_sends_every_method_and_the_original(app_env):
    from app_env import brain_png_bytes

    at = logged_in("radiologist", app_env["ids"]).run()
    at.switch_page("app_pages/super_resolution.py").run()
    at.file_uploader(key="scan").upload("head.png", brain_png_bytes(128), "image/png").run()
    assert not at.exception
    [args] = _viewer_args(at)
    labels = [p["label"] for p in args["panels"]]
    assert labels == ["Low-res input (32×32)", "Original (reference)", "Bicubic", "RRDB (PSNR)",
                      "ESRGAN"]
    assert args["compare"] == [1, 4] and args["sync"] is True and args["mode"] == "grid"
    lr, *rest = args["panels"]
    assert lr["array"]["shape"] == [1, 32, 32] and lr["pixel_size"] == 4.0 and not lr["smooth"]
    assert all(p["array"]["shape"] == [1, 128, 128] for p in rest)
    at.toggle(key="sr_viewer").set_value(False).run()
    assert not at.exception and not _viewer_args(at)
    assert len(at.get("plotly_chart")) >= 4


def test_reader_study_viewer_stays_blinded(app_env, tmp_path):
    from test_app_studies import FORBIDDEN, _png, _study

    folder = tmp_path / "cases"
    for i, label in enumerate(["glioma", "glioma", "notumor"]):
        (folder / label).mkdir(parents=True, exist_ok=True)
        (folder / label / f"patient_{i}_secret.png").write_bytes(_png(90 + 50 * i))
    _study(app_env, folder)
    at = logged_in("reader", app_env["ids"]).run()
    at.switch_page("app_pages/reader_study.py").run()
    assert not at.exception, at.exception
    [args] = _viewer_args(at)
    assert [p["label"] for p in args["panels"]] == ["Reference", "Image to rate"]
    assert args["panels"][1]["array"]["shape"] == [1, 40, 40]
    text = json.dumps(args).lower()
    assert not [w for w in FORBIDDEN if w in text]
    assert not at.get("image")
    at.toggle(key="study_viewer").set_value(False).run()
    assert not _viewer_args(at) and [i.caption for img in at.get("image")
                                     for i in img.proto.imgs] == ["Reference", "Image to rate"]


def test_case_library_opens_a_case_in_the_viewer_with_its_stored_values(app_env, library):
    at = logged_in("admin", app_env["ids"]).run()
    at.switch_page("app_pages/admin_library.py").run()
    assert not _viewer_args(at)                        # nothing opened yet
    [b for b in at.button if (b.key or "").startswith("library_open_")][0].click().run()
    assert not at.exception
    [args] = _viewer_args(at)
    [panel] = args["panels"]
    assert panel["label"].startswith("Case ") and panel["array"]["dtype"] == "uint8"
    assert any("8-bit, as stored" in c.value for c in at.caption)
    at.toggle(key="library_viewer").set_value(False).run()
    assert not _viewer_args(at) and at.image


def test_index_names_the_bundle_by_its_content_hash():
    """index.html asks for viewer.js / viewer.css with ``?v=`` = the first 16 hex digits of their
    sha256, so a browser may keep them for good (ui/asset_cache.py) and a rebuild gets new
    addresses."""
    import hashlib

    html = (viewer.BUILD_DIR / "index.html").read_text()
    for name in ("viewer.js", "viewer.css"):
        digest = hashlib.sha256((viewer.BUILD_DIR / name).read_bytes()).hexdigest()[:16]
        assert f'"./{name}?v={digest}"' in html, name


def test_versioned_component_files_are_cached_for_good():
    """serve.py's middleware: a component file asked for with ``?v=`` is immutable for a year;
    without it, or for anything else, the headers stay as the app set them."""
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.responses import Response
    from starlette.routing import Route
    from starlette.testclient import TestClient

    from ui.asset_cache import VersionedAssetCache

    def asset(request):
        return Response("x", headers={"Cache-Control": "public"})

    app = Starlette(routes=[Route("/component/{path:path}", asset), Route("/other", asset)],
                    middleware=[Middleware(VersionedAssetCache)])
    client = TestClient(app)
    got = client.get("/component/ui.viewer.medscan_viewer/viewer.js?v=d6a0bed0d053b602")
    assert got.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert client.get("/component/ui.viewer.medscan_viewer/viewer.js").headers[
        "cache-control"] == "public"
    assert client.get("/component/x/index.html?v=").headers["cache-control"] == "public"
    assert client.get("/other?v=1").headers["cache-control"] == "public"
