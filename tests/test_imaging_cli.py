"""``python -m core inspect`` / ``convert`` and ``load_uploads`` (zip of a DICOM series)."""
from __future__ import annotations

import io
import json
import subprocess
import sys
import zipfile

import numpy as np
import pytest
from PIL import Image
from pydicom.data import get_testdata_file

from core.cli import main
from core.errors import ScanError
from core.imaging import Scan, load_scan, load_uploads


def path(name: str) -> str:
    return str(get_testdata_file(name))


def test_inspect_json(capsys):
    assert main(["inspect", path("CT_small.dcm"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["format"] == "dicom"
    assert out["metadata"]["Modality"] == "CT"
    assert out["metadata"]["Patient name"] == "Co^C***"   # CompressedSamples^CT1, masked
    assert "CompressedSamples" not in json.dumps(out)
    px = out["pixels"]
    assert px["shape"] == [128, 128] and px["frames"] == 1
    assert px["original_range"] == [128.0, 2191.0] and px["original_dtype"] == "int16"
    assert 0.0 <= px["min"] <= px["mean"] <= px["max"] <= 1.0 and px["std"] > 0


def test_inspect_text_with_window(capsys):
    assert main(["inspect", path("CT_small.dcm"), "--window", "lung"]) == 0
    out = capsys.readouterr().out
    assert "C -600 / W 1500 (preset lung)" in out and "Displayed" in out


def test_convert_writes_the_displayed_pixels(tmp_path, capsys):
    out = tmp_path / "frame.png"
    assert main(["convert", path("emri_small.dcm"), "--out", str(out), "--frame", "2",
                 "--window=100,200"]) == 0
    written = np.asarray(Image.open(out))
    expected = load_scan(path("emri_small.dcm"), frame=2, window=(100, 200)).to_uint8()
    assert written.dtype == np.uint8 and written.shape == (64, 64)
    np.testing.assert_array_equal(written, expected)


def test_convert_colour(tmp_path):
    out = tmp_path / "rgb.png"
    assert main(["convert", path("SC_rgb.dcm"), "--out", str(out)]) == 0
    im = Image.open(out)
    assert im.mode == "RGB" and im.getpixel((50, 5)) == (255, 0, 0)


def test_errors_are_one_line_and_exit_2(tmp_path, capsys):
    assert main(["inspect", path("rtstruct.dcm")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: This DICOM file has no image") and err.count("\n") == 1
    assert main(["convert", path("emri_small.dcm"), "--out", str(tmp_path / "x.png"),
                 "--frame", "99"]) == 2
    assert "Frame 99 does not exist" in capsys.readouterr().err


def test_module_entry_point_error_exit(tmp_path):
    bad = tmp_path / "notes"
    bad.write_text("not a scan")
    proc = subprocess.run([sys.executable, "-m", "core", "convert", str(bad), "--out",
                           str(tmp_path / "o.png")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("error: This file is a text file")
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def test_load_uploads_zip_of_series():
    series = [path(f"dicomdirtests/98892001/CT5N/{n}") for n in ("2062", "2392", "2693")]
    members = {f"series/IM{i + 1}": open(p, "rb").read() for i, p in enumerate(series)}
    members["series/IM10"] = b"garbage bytes that are not a scan"
    members["DICOMDIR"] = open(path("DICOMDIR"), "rb").read()
    members["README.TXT"] = b"exported by PACS"
    members["__MACOSX/._IM1"] = b"junk"
    uploads = load_uploads("study.zip", _zip(members))
    assert [u.name for u in uploads] == ["series/IM1", "series/IM2", "series/IM3",
                                         "series/IM10"]   # natural order, junk skipped
    assert all(u.ok and isinstance(u.scan, Scan) for u in uploads[:3])
    assert uploads[0].scan.modality == "CT" and uploads[0].scan.filename == "series/IM1"
    assert not uploads[3].ok and uploads[3].error.code == "unknown_format"
    name, result = uploads[3]                                # plain (name, result) tuple
    assert isinstance(result, ScanError)


def test_load_uploads_single_file():
    data = open(path("MR_small.dcm"), "rb").read()
    [upload] = load_uploads("MR_small.dcm", data)
    assert upload.ok and upload.scan.modality == "MR"
    [bad] = load_uploads("empty.dcm", b"")
    assert bad.error is not None and bad.error.code == "empty"


def test_load_uploads_passes_window():
    data = _zip({"a.dcm": open(path("CT_small.dcm"), "rb").read()})
    [upload] = load_uploads("a.zip", data, window="bone")
    assert upload.scan.window_source == "preset bone"


def test_inspect_zip(tmp_path, capsys):
    target = tmp_path / "series.zip"
    target.write_bytes(_zip({"a": open(path("CT_small.dcm"), "rb").read(), "b": b"junk"}))
    assert main(["inspect", str(target), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["format"] == "zip" and [m["ok"] for m in out["members"]] == [True, False]
    assert out["members"][1]["code"] == "unknown_format"
    assert main(["convert", str(target), "--out", str(tmp_path / "x.png")]) == 2
    assert "zip archive" in capsys.readouterr().err
