"""Malformed inputs: each gives exactly one ScanError with the expected code, nothing else."""
from __future__ import annotations

import io
import struct
import zipfile
import zlib

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.data import get_testdata_file
from pydicom.encaps import encapsulate
from pydicom.pixels import get_decoder
from pydicom.uid import JPEGLSLossless

from core.errors import ScanError
from core.imaging import load_scan, load_uploads


def path(name: str) -> str:
    return str(get_testdata_file(name))


def read(name: str) -> bytes:
    with open(path(name), "rb") as fh:
        return fh.read()


def dicom(name: str, **changes) -> bytes:
    ds = pydicom.dcmread(path(name))
    for key, value in changes.items():
        if value is None:
            delattr(ds, key)
        else:
            setattr(ds, key, value)
    buf = io.BytesIO()
    ds.save_as(buf)
    return buf.getvalue()


def png_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def jpeg_bytes() -> bytes:
    buf = io.BytesIO()
    Image.fromarray((np.arange(64 * 64) % 251).astype(np.uint8).reshape(64, 64)).save(
        buf, format="JPEG", quality=90)
    return buf.getvalue()


def png_with_size(width: int, height: int) -> bytes:
    """A PNG whose IHDR declares a huge image (a decompression bomb): valid CRCs, tiny IDAT."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(
            ">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
            + chunk(b"IEND", b""))


def jpeg_with_size(width: int, height: int) -> bytes:
    data = bytearray(jpeg_bytes())
    sof = data.index(b"\xff\xc0")
    data[sof + 5:sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def corrupt_j2k() -> bytes:
    ds = pydicom.dcmread(path("MR_small_jp2klossless.dcm"))
    ds.PixelData = encapsulate([b"\xff\x4f\xff\x51" + bytes(range(256)) * 8])
    buf = io.BytesIO()
    ds.save_as(buf)
    return buf.getvalue()


def unknown_transfer_syntax() -> bytes:
    ds = pydicom.dcmread(path("MR_small_jp2klossless.dcm"))
    ds.file_meta.TransferSyntaxUID = "1.2.3.4.5.6"
    buf = io.BytesIO()
    ds.save_as(buf)
    return buf.getvalue()


TIFF = io.BytesIO()
Image.fromarray(np.zeros((64, 64), np.uint8)).save(TIFF, format="TIFF")

# (id, bytes-or-callable, load_scan kwargs, expected code, word the message must contain)
CASES = [
    ("empty", lambda: b"", {}, "empty", "empty"),
    ("three random bytes", lambda: b"\x13\x9a\x07", {}, "unknown_format", "not a recognised"),
    ("text file", lambda: b"patient notes\nline two\n", {}, "unknown_format", "text"),
    ("pdf", lambda: b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n", {}, "unknown_format", "PDF"),
    ("gif (unsupported)", lambda: b"GIF89a\x01\x00\x01\x00\x80\x00\x00", {}, "unknown_format",
     "GIF"),
    ("truncated png", lambda: png_bytes(np.full((64, 64), 7, np.uint8))[:60], {}, "truncated",
     "truncated"),
    ("png magic only", lambda: b"\x89PNG", {}, "truncated", "truncated"),
    ("truncated jpeg", lambda: jpeg_bytes()[: len(jpeg_bytes()) // 2], {}, "truncated",
     "truncated"),
    ("truncated tiff", lambda: TIFF.getvalue()[:200], {}, "truncated", "truncated"),
    ("png bomb header 100000²", lambda: png_with_size(100_000, 100_000), {}, "too_large",
     "too large"),
    ("png 12000² over the 100 M cap", lambda: png_with_size(12_000, 12_000), {}, "too_large",
     "12000 × 12000"),
    ("jpeg bomb header", lambda: jpeg_with_size(60_000, 60_000), {}, "too_large", "too large"),
    ("dicom structured report", lambda: read("test-SR.dcm"), {}, "no_pixel_data", "SR"),
    ("dicom rt structure set", lambda: read("rtstruct.dcm"), {}, "no_pixel_data",
     "RT Structure Set"),
    ("dicom ecg waveform", lambda: read("waveform_ecg.dcm"), {}, "no_pixel_data", "ECG"),
    ("dicomdir", lambda: read("DICOMDIR"), {}, "no_pixel_data", "DICOMDIR"),
    ("dicom truncated pixel data", lambda: read("MR_truncated.dcm"), {}, "truncated",
     "8,130 of 8,192"),
    ("dicom cut inside the header", lambda: read("CT_small.dcm")[:1000], {}, "truncated",
     "truncated"),
    ("dicom file meta only", lambda: read("CT_small.dcm")[:300], {}, "truncated", "truncated"),
    ("dicom rows × columns over cap", lambda: dicom("MR_small.dcm", Rows=20000, Columns=20000),
     {}, "too_large", "20000 × 20000"),
    ("dicom unknown transfer syntax", unknown_transfer_syntax, {}, "decoder_missing",
     "1.2.3.4.5.6"),
    ("dicom corrupt jpeg 2000 stream", corrupt_j2k, {}, "corrupt_pixels", "damaged"),
    ("dicom bits allocated 16 for 8-bit data",
     lambda: dicom("SC_rgb.dcm", BitsAllocated=16, BitsStored=16, HighBit=15), {},
     "corrupt_pixels", "Bits Allocated"),
    ("dicom bits allocated 12", lambda: dicom("SC_rgb.dcm", BitsAllocated=12, BitsStored=12,
                                              HighBit=11), {}, "corrupt_pixels", "(12)"),
    ("dicom bits stored > allocated", lambda: dicom("MR_small.dcm", BitsStored=20), {},
     "corrupt_pixels", "Bits Stored"),
    ("dicom without rows", lambda: dicom("MR_small.dcm", Rows=None), {}, "corrupt_header",
     "Rows"),
    ("dicom preamble then garbage",
     lambda: b"\0" * 128 + b"DICM" + np.random.default_rng(0).bytes(500), {},
     "corrupt_header", "damaged"),
    ("multi-frame frame out of range", lambda: read("emri_small.dcm"), {"frame": 10},
     "bad_frame", "0 to 9"),
    ("negative frame", lambda: read("emri_small.dcm"), {"frame": -1}, "bad_frame", "Frame -1"),
    ("frame on a single-frame png", lambda: png_bytes(np.zeros((4, 4), np.uint8)), {"frame": 1},
     "bad_frame", "1 frame"),
    ("unknown window preset", lambda: read("CT_small.dcm"), {"window": "brian"}, "bad_window",
     "brian"),
    ("zero window width", lambda: read("CT_small.dcm"), {"window": (40, 0)}, "bad_window",
     "width"),
]


@pytest.mark.parametrize("make, kwargs, code, word", [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_malformed_input_gives_one_typed_error(make, kwargs, code, word):
    with pytest.raises(ScanError) as err:
        load_scan(make(), "upload", **kwargs)
    assert err.value.code == code, str(err.value)
    message = str(err.value)
    assert word.lower() in message.lower()
    assert "\n" not in message and "Traceback" not in message


def test_missing_decoder_plugin_names_the_package(monkeypatch):
    decoder = get_decoder(JPEGLSLossless)
    monkeypatch.setattr(decoder, "_available", {})
    monkeypatch.setattr(decoder, "_unavailable", {"pyjpegls": ("pyjpegls>=1.2",)})
    with pytest.raises(ScanError) as err:
        load_scan(read("MR_small_jpeg_ls_lossless.dcm"))
    assert err.value.code == "decoder_missing"
    assert "pip install pyjpegls" in str(err.value) and "JPEG-LS" in str(err.value)


def test_paths(tmp_path):
    with pytest.raises(ScanError) as err:
        load_scan(tmp_path / "missing.dcm")
    assert err.value.code == "not_found"
    with pytest.raises(ScanError) as err:
        load_scan(tmp_path)
    assert err.value.code == "not_a_file"
    with pytest.raises(ScanError) as err:
        load_scan(12345)  # type: ignore[arg-type]
    assert err.value.code == "invalid"


def test_unexpected_library_failure_is_still_a_scan_error(monkeypatch):
    import core.imaging.raster as raster

    def boom(*_a, **_k):
        raise ZeroDivisionError("library bug")

    monkeypatch.setattr(raster, "_to_array", boom)
    with pytest.raises(ScanError) as err:
        load_scan(png_bytes(np.zeros((4, 4), np.uint8)))
    assert err.value.code == "corrupt_pixels"


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


@pytest.mark.parametrize("data", [
    b"PK\x03\x04" + b"\0" * 40,                                # corrupt zip
    _zip({"DICOMDIR": read("DICOMDIR"), "README.TXT": b"x", ".DS_Store": b"x"}),  # no scans
    _zip({}),                                                  # empty zip
], ids=["corrupt zip", "zip with nothing readable", "empty zip"])
def test_bad_zips(data):
    with pytest.raises(ScanError) as err:
        load_uploads("series.zip", data)
    assert err.value.code == "zip_error"


def test_zip_bomb_limits(monkeypatch):
    import core.imaging.zipped as zipped

    monkeypatch.setattr(zipped, "ZIP_MAX_TOTAL_BYTES", 10_000)
    with pytest.raises(ScanError) as err:
        load_uploads("bomb.zip", _zip({"a.dcm": b"\0" * 1_000_000}))
    assert err.value.code == "zip_error" and "10,000" in str(err.value)
    monkeypatch.setattr(zipped, "ZIP_MAX_MEMBERS", 2)
    with pytest.raises(ScanError) as err:
        load_uploads("many.zip", _zip({f"{i}.dcm": b"x" for i in range(3)}))
    assert err.value.code == "zip_error"


@pytest.mark.parametrize("name", ["CT_small.dcm", "MR_small_RLE.dcm", "SC_rgb_jpeg_gdcm.dcm",
                                  "png", "jpeg", "tiff"])
def test_seeded_fuzz_only_scan_errors_escape(name):
    """Cuts and byte flips (seeded): the loader either succeeds or raises ScanError."""
    if name == "png":
        data = png_bytes((np.arange(48 * 40) % 256).astype(np.uint8).reshape(48, 40))
    elif name == "jpeg":
        data = jpeg_bytes()
    elif name == "tiff":
        data = TIFF.getvalue()
    else:
        data = read(name)
    rng = np.random.default_rng(20261122)
    variants = [data[:cut] for cut in rng.integers(1, len(data), 25)]
    for _ in range(25):
        flipped = bytearray(data)
        for pos in rng.integers(0, len(data), 5):
            flipped[pos] = int(rng.integers(0, 256))
        variants.append(bytes(flipped))
    codes = set()
    for variant in variants:
        try:
            load_scan(variant)
        except ScanError as err:
            codes.add(err.code)
    assert codes and codes <= {"truncated", "corrupt_header", "corrupt_pixels", "unknown_format",
                               "decoder_missing", "no_pixel_data", "too_large"}


def test_uncompressed_dicom_cut_anywhere_is_truncated():
    data = read("CT_small.dcm")
    for cut in range(400, len(data) - 200, 1500):
        with pytest.raises(ScanError) as err:
            load_scan(data[:cut])
        assert err.value.code == "truncated", (cut, str(err.value))
