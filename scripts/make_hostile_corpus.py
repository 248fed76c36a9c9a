"""Generate the hostile-file corpus: ``tests/data/hostile/`` plus ``manifest.json``.

Every file is small (the whole folder stays well under 2 MB) and built deterministically, so
running this again gives the same bytes. Each entry says what MedScan must do with it:

* ``"expect": "loads"``  — it loads (perhaps with a warning);
* ``"expect": CODE``     — it is refused with ``ScanError(code=CODE)`` (for a zip: the whole
  upload is refused by :func:`core.imaging.load_uploads`);
* ``"members": [...]``   — a zip whose members each load or fail with the listed codes.

``tests/test_imaging_hostile_corpus.py`` runs every file through the loader, ``predict`` and the
Analyze page. To grow the corpus, add a builder to :data:`CASES` and run::

    python scripts/make_hostile_corpus.py            # writes tests/data/hostile/
"""
from __future__ import annotations

import argparse
import io
import json
import struct
import sys
import warnings
import zipfile
import zlib
from pathlib import Path

import numpy as np
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import (UID, ExplicitVRBigEndian, ExplicitVRLittleEndian,
                         ImplicitVRLittleEndian, JPEG2000Lossless, JPEGBaseline8Bit, RLELossless)

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "data" / "hostile"
MR = "1.2.840.10008.5.1.4.1.1.4"
SR = "1.2.840.10008.5.1.4.1.1.88.11"
UID_ROOT = "1.2.826.0.1.3680043.8.498.15"   # fixed UIDs: the same bytes on every run


# ---- builders ----------------------------------------------------------------------------

def dicom(rows: int = 16, cols: int = 16, bits: int = 16, data: bytes | None = None, *,
          keyword: str = "PixelData", ts: str = ExplicitVRLittleEndian, preamble: bool = True,
          drop: tuple[str, ...] = (), **attrs) -> bytes:
    """A small MR image (a gradient); ``data`` replaces the pixel data, ``attrs`` are set,
    ``drop`` removes elements."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = UID(ts)
    ds.file_meta.MediaStorageSOPClassUID = MR
    ds.file_meta.MediaStorageSOPInstanceUID = f"{UID_ROOT}.1"
    ds.SOPClassUID = MR
    ds.SOPInstanceUID = f"{UID_ROOT}.1"
    ds.Modality = "MR"
    ds.PatientName = "Hostile^Test"
    ds.Rows, ds.Columns = rows, cols
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = bits
    if keyword == "PixelData":
        ds.BitsStored, ds.HighBit, ds.PixelRepresentation = bits, max(bits - 1, 0), 0
    if data is None:
        dtype = {8: np.uint8, 16: np.uint16, 32: np.float32}[bits]
        data = (np.arange(rows * cols) % 200).astype(dtype).tobytes()
        if ts == ExplicitVRBigEndian:
            data = (np.arange(rows * cols) % 200).astype(">u2").tobytes()
    setattr(ds, keyword, data)
    with warnings.catch_warnings():          # invalid values (NaN, inf) are the point here
        warnings.simplefilter("ignore")
        for key, value in attrs.items():
            setattr(ds, key, value)
    for key in drop:
        delattr(ds, key)
    buf = io.BytesIO()
    implicit = ts == ImplicitVRLittleEndian
    little = ts != ExplicitVRBigEndian
    if preamble:
        ds.save_as(buf, enforce_file_format=True, implicit_vr=implicit, little_endian=little)
    else:
        ds.file_meta = FileMetaDataset()
        ds.save_as(buf, implicit_vr=True, little_endian=True)
    return buf.getvalue()


def encapsulated(ts: str, fragment: bytes, **attrs) -> bytes:
    return dicom(data=encapsulate([fragment]), ts=ts, **attrs)


def replace_once(data: bytes, old: bytes, new: bytes) -> bytes:
    assert data.count(old) >= 1, old
    return data.replace(old, new, 1)


def png(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(
        ">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def png_declaring(width: int, height: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr)
            + png_chunk(b"IDAT", zlib.compress(b"\0" * 64)) + png_chunk(b"IEND", b""))


def jpeg(arr: np.ndarray | None = None) -> bytes:
    arr = arr if arr is not None else (np.arange(32 * 32) % 251).astype(np.uint8).reshape(32, 32)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def jpeg_declaring(width: int, height: int) -> bytes:
    data = bytearray(jpeg())
    sof = data.index(b"\xff\xc0")
    data[sof + 5:sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def tiff(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="TIFF")
    return buf.getvalue()


def tiff_declaring(width: int, height: int) -> bytes:
    data = bytearray(tiff(np.zeros((4, 4), np.uint8)))
    # patch ImageWidth (256) and ImageLength (257) entries of the first IFD
    (ifd,) = struct.unpack("<I", data[4:8])
    (count,) = struct.unpack("<H", data[ifd:ifd + 2])
    for i in range(count):
        pos = ifd + 2 + 12 * i
        tag, typ = struct.unpack("<HH", data[pos:pos + 4])
        if tag in (256, 257):
            value = width if tag == 256 else height
            data[pos + 2:pos + 4] = struct.pack("<H", 4)          # LONG
            data[pos + 8:pos + 12] = struct.pack("<I", value)
    return bytes(data)


def zipped(members: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED,
           level: int = 6) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method, compresslevel=level) as z:
        for name, body in members.items():
            info = zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0))
            info.compress_type = method
            z.writestr(info, body, compresslevel=level)
    return buf.getvalue()


def patch_zip(data: bytes, *, file_size: int | None = None, method: int | None = None,
              encrypt: bool = False) -> bytes:
    """Rewrite declared sizes / method / the encryption flag in local and central headers."""
    out = bytearray(data)
    for sig, flag_at, method_at, size_at in ((b"PK\x03\x04", 6, 8, 22),
                                             (b"PK\x01\x02", 8, 10, 24)):
        pos = out.find(sig)
        while pos >= 0:
            if file_size is not None:
                out[pos + size_at:pos + size_at + 4] = struct.pack("<I", file_size)
            if method is not None:
                out[pos + method_at:pos + method_at + 2] = struct.pack("<H", method)
            if encrypt:
                out[pos + flag_at] |= 1
            pos = out.find(sig, pos + 4)
    return bytes(out)


def good_dicom() -> bytes:
    return dicom()


def float_values(nan_at: tuple[int, ...] = (), inf_at: tuple[int, ...] = (),
                 fill: float | None = None, n: int = 256) -> np.ndarray:
    v = np.linspace(0, 100, n, dtype=np.float32) if fill is None else np.full(n, fill, np.float32)
    v[list(nan_at)] = np.nan
    v[list(inf_at)] = np.inf
    return v


# ---- the corpus: name → (builder, expectation, what it is) --------------------------------

def _cases() -> dict[str, tuple]:
    good = good_dicom()
    g16 = (np.arange(256) % 200).astype(np.uint16).tobytes()
    return {
        # --- DICOM: pixel data length and bit depth (issue 15 item 1)
        "dcm_overlong_16bit.dcm": (lambda: dicom(10, 10, data=bytes(8192)), "excess_pixel_data",
                                   "10×10 header, 8,192 bytes of 16-bit data (40 'frames')"),
        "dcm_overlong_8bit.dcm": (lambda: dicom(10, 10, 8, data=bytes(range(256)) * 32),
                                  "excess_pixel_data", "10×10 8-bit header, 8 KiB of data"),
        "dcm_overlong_multiframe.dcm": (lambda: dicom(data=g16 * 5, NumberOfFrames=2),
                                        "excess_pixel_data", "2 frames declared, 5 present"),
        "dcm_bits1_wrong_length.dcm": (lambda: dicom(10, 10, 1, data=bytes(100)),
                                       "corrupt_pixels", "Bits Allocated 1, 8-bit data"),
        "dcm_bits1_overlong.dcm": (lambda: dicom(10, 10, 1, data=bytes(8192)),
                                   "excess_pixel_data", "Bits Allocated 1, 8 KiB of data"),
        "dcm_bits8_data16.dcm": (lambda: dicom(bits=8, data=g16), "corrupt_pixels",
                                 "Bits Allocated 8, 16-bit data"),
        "dcm_bits16_data8.dcm": (lambda: dicom(data=bytes(256)), "corrupt_pixels",
                                 "Bits Allocated 16, 8-bit data"),
        "dcm_bits_allocated_12.dcm": (lambda: dicom(BitsAllocated=12), "corrupt_pixels",
                                      "Bits Allocated 12 (not a multiple of 8)"),
        "dcm_bits_stored_over_allocated.dcm": (lambda: dicom(BitsStored=20), "corrupt_pixels",
                                               "Bits Stored 20 > Bits Allocated 16"),
        "dcm_truncated_pixels.dcm": (lambda: dicom(data=g16[:300]), "truncated",
                                     "pixel data cut to 300 of 512 bytes"),
        "dcm_one_pad_byte.dcm": (lambda: dicom(5, 5, 8, data=bytes(range(25)) + b"\0"), "loads",
                                 "odd-length 8-bit data plus its legal pad byte"),
        "dcm_subframe_padding.dcm": (lambda: dicom(data=g16 + bytes(10)), "loads",
                                     "10 trailing bytes (less than a frame): ignored, warned"),
        # --- DICOM: rescale and non-finite values (items 1, 2)
        "dcm_rescale_slope_zero.dcm": (lambda: dicom(RescaleSlope=0, RescaleIntercept=5),
                                       "loads", "constant image (Rescale Slope 0)"),
        "dcm_rescale_slope_nan.dcm": (lambda: dicom(RescaleSlope="NaN", RescaleIntercept=0),
                                      "non_finite", "Rescale Slope NaN"),
        "dcm_rescale_intercept_inf.dcm": (lambda: dicom(RescaleSlope=1, RescaleIntercept="inf"),
                                          "non_finite", "Rescale Intercept infinite"),
        "dcm_rescale_slope_text.dcm": (lambda: replace_once(dicom(RescaleSlope="9.87654", RescaleIntercept=0),
                                                    b"9.87654 ", b"abc     "),
                                       "corrupt_pixels", "Rescale Slope not a number"),
        "dcm_float_all_inf.dcm": (lambda: dicom(bits=32, keyword="FloatPixelData",
                                                data=float_values(fill=np.inf).tobytes()),
                                  "non_finite", "Float Pixel Data, every pixel infinite"),
        "dcm_float_all_nan.dcm": (lambda: dicom(bits=32, keyword="FloatPixelData",
                                                data=float_values(fill=np.nan).tobytes()),
                                  "non_finite", "Float Pixel Data, every pixel NaN"),
        "dcm_float_some_nan.dcm": (lambda: dicom(bits=32, keyword="FloatPixelData",
                                                 data=float_values((3, 4), (9,)).tobytes()),
                                   "loads", "Float Pixel Data, 3 non-finite pixels: warned"),
        "dcm_window_nan.dcm": (lambda: dicom(WindowCenter="NaN", WindowWidth="100"), "loads",
                               "Window Center NaN (ignored)"),
        "dcm_window_width_zero.dcm": (lambda: dicom(WindowCenter=100, WindowWidth=0), "loads",
                                      "Window Width 0 (ignored)"),
        "dcm_window_width_negative.dcm": (lambda: dicom(WindowCenter=100, WindowWidth=-5),
                                          "loads", "Window Width negative (ignored)"),
        "dcm_window_text.dcm": (lambda: replace_once(dicom(WindowCenter="9.87654", WindowWidth=100),
                                             b"9.87654 ", b"abc     "), "loads",
                                "Window values not numbers (ignored)"),
        # --- DICOM: header values
        "dcm_rows_zero.dcm": (lambda: dicom(Rows=0), "corrupt_header", "Rows 0"),
        "dcm_no_rows.dcm": (lambda: dicom(drop=("Rows",)), "corrupt_header", "no Rows"),
        "dcm_huge_dims.dcm": (lambda: dicom(Rows=65535, Columns=65535), "too_large",
                              "65535 × 65535 declared, 512 bytes present"),
        "dcm_huge_frames.dcm": (lambda: dicom(NumberOfFrames=1_000_000), "too_large",
                                "a million frames declared"),
        "dcm_frames_text.dcm": (lambda: replace_once(dicom(NumberOfFrames=987654), b"987654",
                                             b"abc   "), "corrupt_header",
                                "Number of Frames not a number"),
        "dcm_samples_per_pixel_4.dcm": (lambda: dicom(SamplesPerPixel=4), "corrupt_header",
                                        "Samples per Pixel 4"),
        "dcm_palette_without_lut.dcm": (lambda: dicom(bits=8, data=bytes(256),
                                                      PhotometricInterpretation="PALETTE COLOR"),
                                        "corrupt_pixels", "PALETTE COLOR with no palette"),
        "dcm_photometric_unknown.dcm": (lambda: dicom(PhotometricInterpretation="XYZ"),
                                        "corrupt_pixels",
                                        "an unknown Photometric Interpretation"),
        "dcm_no_pixel_data.dcm": (lambda: replace_once(good, b"\xe0\x7f\x10\x00", b"\xe0\x7f\x11\x00"),
                                  "truncated", "image header, pixel data element missing"),
        "dcm_structured_report.dcm": (lambda: dicom(SOPClassUID=SR, Modality="SR", drop=(
            "Rows", "Columns", "PixelData", "BitsAllocated", "BitsStored", "HighBit",
            "PixelRepresentation", "SamplesPerPixel", "PhotometricInterpretation")),
            "no_pixel_data", "a structured report (no image)"),
        # --- DICOM: transfer syntax and compressed data
        "dcm_unknown_transfer_syntax.dcm": (lambda: dicom(ts="1.2.3.4.5.6"), "decoder_missing",
                                            "an unknown transfer syntax UID"),
        "dcm_jpeg_ts_native_data.dcm": (lambda: replace_once(
            good, b"UI\x14\x001.2.840.10008.1.2.1\x00", b"UI\x16\x001.2.840.10008.1.2.4.50"),
            "corrupt_pixels",
                                        "JPEG transfer syntax, native pixel data"),
        "dcm_j2k_garbage.dcm": (lambda: encapsulated(JPEG2000Lossless,
                                                     b"\xff\x4f\xff\x51" + bytes(range(256))),
                                "corrupt_pixels", "JPEG 2000 fragment of garbage"),
        "dcm_jpeg_garbage.dcm": (lambda: encapsulated(JPEGBaseline8Bit, b"\xff\xd8\xff" + bytes(300),
                                                      BitsAllocated=8, BitsStored=8, HighBit=7),
                                 "corrupt_pixels", "JPEG fragment of garbage"),
        "dcm_rle_garbage.dcm": (lambda: encapsulated(RLELossless, bytes(64)), "corrupt_pixels",
                                "RLE fragment with an empty header"),
        "dcm_big_endian.dcm": (lambda: dicom(ts=ExplicitVRBigEndian), "loads",
                               "explicit VR big endian (retired, still valid)"),
        "dcm_implicit_no_preamble": (lambda: dicom(preamble=False), "loads",
                                     "implicit VR, no preamble, no file meta, no extension"),
        # --- DICOM: damaged files
        "dcm_truncated_header.dcm": (lambda: good[:200], "corrupt_header",
                                     "cut inside the file meta header"),
        "dcm_preamble_only.dcm": (lambda: bytes(128) + b"DICM", "corrupt_header",
                                  "the preamble and DICM, nothing else"),
        "dcm_bad_element_length.dcm": (
            lambda: replace_once(good, b"\x28\x00\x10\x00US\x02\x00",
                                 b"\x28\x00\x10\x00US\xff\x7f"),
            "truncated", "Rows element claims 32,767 bytes (swallows the rest)"),
        "dcm_wrong_vr_rows.dcm": (
            lambda: replace_once(good, b"\x28\x00\x10\x00US\x02\x00\x10\x00",
                                 b"\x28\x00\x10\x00DS\x02\x00ab"),
            "corrupt_header", "Rows with VR DS and the value 'ab'"),
        "dcm_garbage_after_meta.dcm": (lambda: good[:good.index(b"\x08\x00")] + bytes(range(256)) * 2,
                                       "truncated", "valid file meta, then garbage"),
        # --- PNG / JPEG / TIFF
        "png_ok.png": (lambda: png((np.arange(1024) % 256).astype(np.uint8).reshape(32, 32)),
                       "loads", "a good 8-bit PNG (control)"),
        "png_16bit.png": (lambda: png((np.arange(1024) * 4).astype(np.uint16).reshape(32, 32)),
                          "loads", "16-bit greyscale PNG"),
        "png_truncated.png": (lambda: png(np.random.default_rng(0).integers(
            0, 256, (64, 64), dtype=np.uint8))[:2000], "truncated",
                              "cut inside the image data"),
        "png_header_only.png": (lambda: b"\x89PNG\r\n\x1a", "truncated",
                                "7 bytes of the PNG signature"),
        "png_bad_crc.png": (lambda: png_declaring(16, 16)[:29] + b"\0\0\0\0"
                            + png_declaring(16, 16)[33:], "corrupt_header",
                            "IHDR checksum wrong"),
        "png_bomb_pillow.png": (lambda: png_declaring(60_000, 60_000), "too_large",
                                "declares 3.6 gigapixels (Pillow's own bomb check)"),
        "png_over_project_limit.png": (lambda: png_declaring(11_000, 10_000), "too_large",
                                       "declares 110 MP (over MEDSCAN_MAX_PIXELS)"),
        "png_zero_size.png": (lambda: png_declaring(0, 0), "corrupt_header", "declares 0 × 0"),
        "png_short_idat.png": (lambda: png_declaring(64, 64), "truncated",
                               "64 × 64 declared, 64 bytes of data"),
        "jpeg_ok.jpg": (lambda: jpeg(), "loads", "a good JPEG (control)"),
        "jpeg_bomb.jpg": (lambda: jpeg_declaring(65_000, 65_000), "too_large",
                          "SOF declares 65000 × 65000"),
        "jpeg_truncated.jpg": (lambda: jpeg()[:300], "truncated", "cut inside the scan data"),
        "jpeg_soi_then_garbage.jpg": (lambda: b"\xff\xd8\xff" + bytes(range(256)) * 4,
                                      "corrupt_header", "JPEG marker, then garbage"),
        "tiff_float_nan.tif": (lambda: tiff(np.full((8, 8), np.nan, np.float32)), "non_finite",
                               "float TIFF, every pixel NaN"),
        "tiff_float_inf.tif": (lambda: tiff(np.full((8, 8), -np.inf, np.float32)),
                               "non_finite", "float TIFF, every pixel -inf"),
        "tiff_float_some_nan.tif": (lambda: tiff(float_values((0, 5), (7,), n=64).reshape(8, 8)),
                                    "loads", "float TIFF with 3 non-finite pixels: warned"),
        "tiff_float_constant.tif": (lambda: tiff(np.full((8, 8), 1234.5, np.float32)), "loads",
                                    "float TIFF, constant value outside 0–1"),
        "tiff_huge_dims.tif": (lambda: tiff_declaring(60_000, 60_000), "too_large",
                               "IFD declares 60000 × 60000"),
        "tiff_bad_ifd_offset.tif": (lambda: b"II*\x00" + struct.pack("<I", 10 ** 6) + bytes(64),
                                    "corrupt_header", "first IFD offset beyond the end"),
        # --- not scans
        "empty.dcm": (lambda: b"", "empty", "0 bytes"),
        "text.dcm": (lambda: b"Patient notes, not an image.\n" * 4, "unknown_format",
                     "a text file named .dcm"),
        "random_bytes.bin": (lambda: bytes((i * 197 + 13) % 256 for i in range(1000)),
                             "unknown_format", "1,000 pseudo-random bytes"),
        "gif_image.gif": (lambda: b"GIF89a" + bytes(64), "unknown_format", "a GIF"),
        "pdf_document.pdf": (lambda: b"%PDF-1.4\n" + bytes(64), "unknown_format", "a PDF"),
        "zero_bytes_4k.dcm": (lambda: bytes(4096), "unknown_format", "4 KiB of zero bytes"),
        # --- zips (items 9, 10 and tricks)
        "zip_bomb_ratio.zip": (lambda: zipped({"a.dcm": bytes(17 * 1024 ** 2)}, level=9),
                               "zip_error", "17 MiB of zeros compressed ~1000 : 1"),
        "zip_declares_huge.zip": (lambda: patch_zip(zipped({"a.dcm": good}),
                                                    file_size=3 * 1024 ** 3 // 2),
                                  "zip_error", "a member declaring 1.5 GiB"),
        "zip_many_members.zip": (lambda: zipped({f"f{i:04d}.dcm": b"x" for i in range(1001)}),
                                 "zip_error", "1,001 members (limit 1,000)"),
        "zip_only_folders.zip": (lambda: zipped({"dir/": b"", "__MACOSX/._x": b"x"}),
                                 "zip_error", "no candidate files"),
        "zip_truncated.zip": (lambda: zipped({"a.dcm": good})[:300], "zip_error",
                              "cut before its central directory"),
        "zip_empty.zip": (lambda: b"PK\x05\x06" + bytes(18), "zip_error",
                          "an empty archive (end record only)"),
        "zip_deflate64.zip": (lambda: patch_zip(zipped({"a.dcm": good}), method=9),
                              ["zip_error"], "member compressed with Deflate64"),
        "zip_ppmd.zip": (lambda: patch_zip(zipped({"a.dcm": good}), method=98), ["zip_error"],
                         "member compressed with PPMd"),
        "zip_encrypted.zip": (lambda: patch_zip(zipped({"a.dcm": good}, zipfile.ZIP_STORED),
                                                encrypt=True), ["zip_error"],
                              "encrypted member"),
        "zip_bad_crc.zip": (lambda: replace_once(zipped({"a.dcm": good}, zipfile.ZIP_STORED),
                                                 b"Hostile^Test", b"Hostile^Tesx"),
                            ["zip_error"], "member data changed after its CRC"),
        "zip_declares_longer.zip": (lambda: patch_zip(zipped({"a.dcm": good}, zipfile.ZIP_STORED),
                                                      file_size=len(good) + 100),
                                    ["zip_error"], "member declares 100 bytes more than it has"),
        "zip_path_traversal.zip": (lambda: zipped({"../../etc/passwd.dcm": good,
                                                   "/abs/scan.dcm": good,
                                                   "a/../../b.dcm": good}),
                                   ["loads", "loads", "loads"],
                                   "members named ../../etc/passwd.dcm, /abs/..., a/../../b.dcm"),
        "zip_nested.zip": (lambda: zipped({"inner.zip": zipped({"a.dcm": good})}),
                           ["unknown_format"], "a zip inside a zip"),
        "zip_mixed.zip": (lambda: zipped({"1.dcm": good, "2.dcm": dicom(10, 10, data=bytes(8192)),
                                          "3.dcm": b"", "readme.txt": b"hello"}),
                          ["loads", "excess_pixel_data", "empty"],
                          "a good member, an over-long one, an empty one, a readme (skipped)"),
        "zip_unicode_names.zip": (lambda: zipped({"\u00e9\u00e8/\u4e2d\u6587.dcm": good,
                                                  "name with spaces .dcm": good}),
                                  ["loads", "loads"], "non-ASCII and space-padded names"),
    }


CASES = _cases()


def build(out: Path = OUT) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    for old in out.iterdir():
        if old.name != "manifest.json":
            old.unlink()
    files: dict[str, dict] = {}
    for name, (make, expect, what) in CASES.items():
        (out / name).write_bytes(make())
        entry = {"what": what}
        if isinstance(expect, list):
            entry["expect"] = "members"
            entry["members"] = expect
        else:
            entry["expect"] = expect
        files[name] = entry
    manifest = {"about": "Hostile inputs for MedScan's loader, predict and the Analyze page; "
                         "generated by scripts/make_hostile_corpus.py (do not edit by hand).",
                "kinds": len(files), "files": files}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n")
    return manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    manifest = build(args.out)
    total = sum(p.stat().st_size for p in args.out.iterdir())
    print(f"{manifest['kinds']} hostile files, {total:,} bytes in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
