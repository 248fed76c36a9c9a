"""Hostile inputs (issue #15): over-long pixel data, constant and non-finite images, the Scan
invariant, zip bombs and unsupported zip methods, decompression-bomb messages, memory."""
from __future__ import annotations

import io
import struct
import tracemalloc
import warnings
import zipfile
import zlib

import numpy as np
import pytest
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from core.errors import ScanError
from core.imaging import load_scan, load_uploads

MR = "1.2.840.10008.5.1.4.1.1.4"


def dicom(rows: int = 10, cols: int = 10, bits: int = 16, data: bytes | None = None,
          keyword: str = "PixelData", **attrs) -> bytes:
    """A minimal MR DICOM; ``data`` replaces the pixel data (any length), ``attrs`` are set."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = MR
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.SOPClassUID = MR
    ds.Modality = "MR"
    ds.Rows, ds.Columns = rows, cols
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = bits
    if keyword == "PixelData":
        ds.BitsStored, ds.HighBit, ds.PixelRepresentation = bits, bits - 1, 0
    if data is None:
        dtype = {8: np.uint8, 16: np.uint16, 32: np.float32}[bits]
        data = (np.arange(rows * cols) % 200).astype(dtype).tobytes()
    setattr(ds, keyword, data)
    with warnings.catch_warnings():          # invalid values (NaN, inf) are the point here
        warnings.simplefilter("ignore")
        for key, value in attrs.items():
            setattr(ds, key, value)
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def tiff(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="TIFF")
    return buf.getvalue()


def assert_invariant(scan) -> None:
    px = scan.pixels
    assert px.dtype == np.float32
    assert px.ndim == 2 or (px.ndim == 3 and px.shape[2] == 3), px.shape
    assert np.isfinite(px).all() and px.min() >= 0.0 and px.max() <= 1.0
    if scan.window is not None:
        assert all(np.isfinite(scan.window)) and scan.window[1] > 0


# ---- 1. pixel data longer than Rows × Columns × frames -------------------------------------

@pytest.mark.parametrize("data, bits", [
    (bytes(8192), 16),                      # 10×10 header, 8 KiB of data: "40 frames"
    (bytes(range(256)) * 32, 8),            # the same with 8-bit pixels
    (bytes(200), 8),                        # BitsAllocated 8, data holds 16-bit pixels
    (bytes(100), 1),                        # BitsAllocated 1 (13 bytes), data 8-bit
    (bytes(8192), 1),                       # BitsAllocated 1, far too long
], ids=["16bit-8k", "8bit-8k", "bits8-data16", "bits1-data8", "bits1-8k"])
def test_overlong_pixel_data_is_refused(data, bits):
    with pytest.raises(ScanError) as info:
        load_scan(dicom(bits=bits, data=data))
    assert info.value.code in ("excess_pixel_data", "corrupt_pixels"), info.value.code
    assert "pixel data" in str(info.value)


def test_one_trailing_pad_byte_is_legal():
    # 5 × 5 8-bit pixels = 25 bytes; DICOM pads odd lengths to even with one byte (PS3.5 8.1.1)
    scan = load_scan(dicom(5, 5, 8, data=bytes(range(25)) + b"\x00"))
    assert scan.pixels.shape == (5, 5) and scan.n_frames == 1
    assert_invariant(scan)


def test_constant_image_from_rescale_slope_zero_gets_a_sane_window():
    scan = load_scan(dicom(RescaleSlope=0, RescaleIntercept=5))
    assert_invariant(scan)
    assert scan.window is not None and scan.window[1] >= 1.0, scan.window
    from core.imaging import apply_window
    assert_invariant(apply_window(scan, "min-max"))


def test_non_finite_header_window_is_ignored():
    scan = load_scan(dicom(WindowCenter="NaN", WindowWidth="100"))
    assert_invariant(scan)


# ---- 2. non-finite pixels ----------------------------------------------------------------

@pytest.mark.parametrize("data", [
    dicom(RescaleSlope="NaN", RescaleIntercept=0),
    dicom(RescaleSlope="1", RescaleIntercept="inf"),
    dicom(bits=32, keyword="FloatPixelData", data=np.full(100, np.inf, np.float32).tobytes()),
    dicom(bits=32, keyword="FloatPixelData", data=np.full(100, np.nan, np.float32).tobytes()),
    tiff(np.full((8, 8), np.nan, np.float32)),
    tiff(np.full((8, 8), -np.inf, np.float32)),
], ids=["slope-nan", "intercept-inf", "float-inf", "float-nan", "tiff-nan", "tiff-neg-inf"])
def test_all_non_finite_images_are_refused(data):
    with pytest.raises(ScanError) as info:
        load_scan(data)
    assert info.value.code == "non_finite"
    assert "finite" in str(info.value)


@pytest.mark.parametrize("make", ["tiff", "dicom"])
def test_partly_non_finite_images_load_with_a_warning(make):
    values = np.linspace(0, 100, 64, dtype=np.float32).reshape(8, 8)
    values[0, 0], values[1, 1], values[2, 2] = np.nan, np.inf, -np.inf
    data = tiff(values) if make == "tiff" else dicom(
        8, 8, 32, keyword="FloatPixelData", data=values.tobytes())
    scan = load_scan(data)
    assert_invariant(scan)
    assert scan.warnings and "3 pixels" in scan.warnings[0], scan.warnings
    assert np.isfinite(scan.original_range).all()
    # the finite pixels keep their order: the brightest finite value is still the brightest
    assert scan.pixels[7, 7] == scan.pixels.max()


def test_scan_construction_enforces_the_invariant():
    from dataclasses import replace

    scan = load_scan(tiff(np.arange(64, dtype=np.uint8).reshape(8, 8)))
    assert scan.warnings == ()
    for bad in (np.zeros((2, 8, 8), np.float32), np.zeros((8, 8, 4), np.float32),
                np.full((8, 8), np.nan, np.float32), np.full((8, 8), 2.0, np.float32),
                np.zeros((8, 8), np.float64)):
        with pytest.raises(ScanError):
            replace(scan, pixels=bad)


# ---- 9, 10. zips and bombs ---------------------------------------------------------------

def _zip(members: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED, level: int = 6) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method, compresslevel=level) as z:
        for name, body in members.items():
            z.writestr(name, body)
    return buf.getvalue()


def _patch_sizes(data: bytes, file_size: int) -> bytes:
    """Rewrite every member's declared uncompressed size (local header and central directory)."""
    out = bytearray(data)
    for sig, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        pos = out.find(sig)
        while pos >= 0:
            out[pos + offset:pos + offset + 4] = struct.pack("<I", file_size)
            pos = out.find(sig, pos + 4)
    return bytes(out)


def _patch_method(data: bytes, method: int) -> bytes:
    out = bytearray(data)
    for sig, offset in ((b"PK\x03\x04", 8), (b"PK\x01\x02", 10)):
        pos = out.find(sig)
        while pos >= 0:
            out[pos + offset:pos + offset + 2] = struct.pack("<H", method)
            pos = out.find(sig, pos + 4)
    return bytes(out)


def test_zip_bomb_is_refused_from_its_declared_sizes_without_inflating():
    bomb = _zip({"a.dcm": bytes(64 * 1024 ** 2)}, level=9)   # 64 MiB of zeros → ~64 KB
    assert len(bomb) < 200_000
    tracemalloc.start()
    try:
        with pytest.raises(ScanError) as info:
            load_uploads("bomb.zip", bomb)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert info.value.code == "zip_error"
    assert "compress" in str(info.value) and "1 GiB" not in str(info.value)
    assert peak < 8 * 1024 ** 2, f"{peak:,} bytes allocated before refusing"


def test_zip_declaring_more_than_the_limit_is_refused_up_front():
    data = _patch_sizes(_zip({"a.dcm": dicom()}), 3 * 1024 ** 3 // 2)
    with pytest.raises(ScanError) as info:
        load_uploads("big.zip", data)
    assert info.value.code == "zip_error" and "1,073,741,824" in str(info.value)


def test_zip_with_unsupported_compression_method_says_so():
    data = _patch_method(_zip({"a.dcm": dicom()}), 9)        # Deflate64
    [upload] = load_uploads("d64.zip", data)
    message = str(upload.error)
    assert "compression method" in message and "Deflate64" in message
    assert "damaged or encrypted" not in message


def test_encrypted_zip_member_says_encrypted():
    data = bytearray(_zip({"a.dcm": dicom()}, method=zipfile.ZIP_STORED))
    for sig, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        pos = data.find(sig)
        data[pos + offset] |= 1
    [upload] = load_uploads("enc.zip", bytes(data))
    assert "encrypted" in str(upload.error) and "damaged" not in str(upload.error)


def png_with_size(width: int, height: int) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(
            ">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
            + chunk(b"IEND", b""))


@pytest.mark.parametrize("side", [11_000, 20_000, 60_000])  # our check, then Pillow's
def test_decompression_bomb_message_names_the_project_limit(side):
    with pytest.raises(ScanError) as info:
        load_scan(png_with_size(side, side))
    message = str(info.value)
    assert info.value.code == "too_large"
    assert "100,000,000" in message and "MEDSCAN_MAX_PIXELS" in message
    assert "178,956,970" not in message and "178956970" not in message


def test_large_png_decodes_within_a_memory_bound():
    side = 3000                                             # 9 MP; the bound is per pixel
    buf = io.BytesIO()
    Image.fromarray(np.zeros((side, side), np.uint8)).save(buf, format="PNG")
    data = buf.getvalue()
    tracemalloc.start()
    try:
        scan = load_scan(data)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert scan.pixels.shape == (side, side)
    per_pixel = peak / side ** 2
    assert per_pixel < 10, f"{per_pixel:.1f} bytes per pixel traced"


def test_large_dicom_with_rescale_decodes_within_a_memory_bound():
    side = 3000                                             # 9 MP, 16-bit, rescaled
    pixels = (np.arange(side * side, dtype=np.uint32) % 4096).astype(np.uint16).tobytes()
    data = dicom(side, side, data=pixels, RescaleSlope=1.5, RescaleIntercept=-100)
    tracemalloc.start()
    try:
        scan = load_scan(data)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert scan.pixels.shape == (side, side)
    per_pixel = peak / side ** 2          # before chunking: float64 LUT + windowing temporaries
    assert per_pixel < 12, f"{per_pixel:.1f} bytes per pixel traced"


def test_zip_keeps_at_most_max_pixels_decoded_and_names_the_rest(monkeypatch):
    """One upload keeps at most MEDSCAN_MAX_PIXELS decoded pixels: a series past that loads its
    first slices and reports each remaining one with the limit, nothing silently dropped."""
    from core.imaging.zipped import decoded_pixels

    monkeypatch.setenv("MEDSCAN_MAX_PIXELS", str(32 * 32 * 3))     # room for three 32² slices
    members = {f"IM{i:04d}": dicom(32, 32) for i in range(1, 6)}
    uploads = load_uploads("series.zip", _zip(members))
    assert [u.name for u in uploads] == list(members)
    assert [u.ok for u in uploads] == [True, True, True, False, False]
    assert sum(decoded_pixels(u.scan) for u in uploads if u.ok) <= 32 * 32 * 3
    for u in uploads[3:]:
        assert u.error.code == "too_large"
        assert "3,072 decoded pixels" in str(u.error) and "MEDSCAN_MAX_PIXELS" in str(u.error)


def test_inspect_prints_the_scan_warnings(tmp_path, capsys):
    import json

    from core.cli import main

    values = np.linspace(0, 100, 64, dtype=np.float32).reshape(8, 8)
    values[0, 0] = np.nan
    path = tmp_path / "partly-nan.tif"
    path.write_bytes(tiff(values))
    assert main(["inspect", str(path), "--json"]) == 0
    assert "1 pixel" in " ".join(json.loads(capsys.readouterr().out)["warnings"])
    assert main(["inspect", str(path)]) == 0
    assert any(line.startswith("Warning") and "1 pixel" in line
               for line in capsys.readouterr().out.splitlines())
