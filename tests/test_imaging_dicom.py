"""Real DICOM files from pydicom's test data and pydicom-data, with known-value assertions.

Expected windowed values are computed by hand from the DICOM LINEAR window formula
(PS3.3 C.11.2.1.2.1), not from our code: y = ((x - (c - 0.5)) / (w - 1) + 0.5), clipped.
"""
from __future__ import annotations

import io

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.pixels import apply_modality_lut, apply_voi_lut

from core.errors import ScanError
from core.imaging import WINDOW_PRESETS, apply_window, load_scan


def path(name: str) -> str:
    found = get_testdata_file(name)
    if found is None:  # pragma: no cover - pydicom-data is a pinned dependency
        pytest.skip(f"{name} not available")
    return str(found)


def linear(x: float, c: float, w: float) -> float:
    if x <= c - 0.5 - (w - 1) / 2:
        return 0.0
    if x > c - 0.5 + (w - 1) / 2:
        return 1.0
    return (x - (c - 0.5)) / (w - 1) + 0.5


def test_ct_rescale_then_min_max_and_presets():
    scan = load_scan(path("CT_small.dcm"))
    # (0028,1053) slope 1, (0028,1052) intercept -1024: stored 175 → -849 HU, 1928 → 904 HU.
    assert scan._display.values[0, 0] == pytest.approx(175 - 1024)
    assert scan._display.values[64, 64] == pytest.approx(1928 - 1024)
    assert scan.modality == "CT" and scan.source_format == "dicom"
    assert scan.original_dtype == "int16" and scan.original_range == (128.0, 2191.0)
    assert scan.pixel_spacing == pytest.approx((0.661468, 0.661468))
    assert scan.window_source == "min-max"  # CT_small has no (0028,1050) Window Center
    assert scan.pixels.dtype == np.float32 and scan.pixels.shape == (128, 128)
    assert scan.pixels.min() == 0.0 and scan.pixels.max() == 1.0
    bone = load_scan(path("CT_small.dcm"), window="bone")
    assert bone.window == WINDOW_PRESETS["bone"] and bone.window_source == "preset bone"
    assert bone.pixels[64, 64] == pytest.approx(linear(904, 600, 2800), abs=1e-5)
    brain = apply_window(scan, "brain")
    assert brain.pixels[64, 64] == 1.0 and brain.pixels[0, 0] == 0.0
    assert scan.window_source == "min-max"  # apply_window returned a new Scan


def test_ct_file_window_matches_pydicom():
    scan = load_scan(path("693_UNCR.dcm"))
    assert scan.window == (40.0, 100.0) and scan.window_source == "file window"
    assert scan.pixels[256, 256] == pytest.approx(linear(1048 - 1024, 40, 100), abs=1e-5)
    # Same result as pydicom applied to the real dataset, scaled by its output range.
    ds = pydicom.dcmread(path("693_UNCR.dcm"))
    ref = apply_voi_lut(apply_modality_lut(ds.pixel_array, ds), ds)
    lo = -(2 ** (ds.BitsStored - 1)) + ds.RescaleIntercept
    hi = 2 ** (ds.BitsStored - 1) - 1 + ds.RescaleIntercept
    np.testing.assert_allclose(scan.pixels, (ref - lo) / (hi - lo), atol=1e-4)


def test_mr_file_window():
    scan = load_scan(path("MR_small.dcm"))
    assert scan.modality == "MR" and scan.window == (600.0, 1600.0)
    assert scan.pixels[0, 0] == pytest.approx(linear(905, 600, 1600), abs=1e-5)
    assert scan.pixel_spacing == pytest.approx((0.3125, 0.3125))


def test_cr_monochrome1_15_bit_is_inverted_after_windowing():
    scan = load_scan(path("RG1_UNCR.dcm"))
    ds = pydicom.dcmread(path("RG1_UNCR.dcm"), stop_before_pixels=True)
    assert ds.PhotometricInterpretation == "MONOCHROME1" and ds.BitsStored == 15
    assert scan.original_dtype == "uint16" and scan._display.values[1000, 1000] == 3745
    windowed = linear(3745, 15000, 30000)
    assert scan.pixels[1000, 1000] == pytest.approx(1.0 - windowed, abs=1e-5)
    assert scan.to_uint8()[1000, 1000] == round((1.0 - windowed) * 255)
    assert scan.modality == "CR" and scan.body_part == "CHEST"


@pytest.mark.parametrize("photometric, shape, inverted", [
    ("MONOCHROME2", "INVERSE", True),     # C.11.6: output after inversion is in P-values
    ("MONOCHROME2", "IDENTITY", False),
    ("MONOCHROME2", None, False),
    ("MONOCHROME1", "INVERSE", True),     # DX pairs INVERSE with MONOCHROME1: one inversion
    ("MONOCHROME1", None, True),
])
def test_presentation_lut_shape(photometric, shape, inverted):
    ds = pydicom.dcmread(path("MR_small.dcm"))
    ds.PhotometricInterpretation = photometric
    if shape:
        ds.PresentationLUTShape = shape
    buf = io.BytesIO()
    ds.save_as(buf)
    scan = load_scan(buf.getvalue())
    windowed = linear(905, 600, 1600)            # the raw value at [0, 0], the file's window
    assert scan.pixels[0, 0] == pytest.approx(1 - windowed if inverted else windowed, abs=1e-5)
    # a manual window keeps the polarity
    again = apply_window(scan, (900.0, 400.0))
    manual = linear(905, 900, 400)
    assert again.pixels[0, 0] == pytest.approx(1 - manual if inverted else manual, abs=1e-5)


@pytest.mark.parametrize("compressed, reference", [
    ("RG1_J2KR.dcm", "RG1_UNCR.dcm"),                         # JPEG 2000 lossless, CR 15-bit
    ("MR_small_jp2klossless.dcm", "MR_small.dcm"),            # JPEG 2000 lossless
    ("693_J2KR.dcm", "693_UNCR.dcm"),                         # JPEG 2000 lossless CT
    ("MR_small_jpeg_ls_lossless.dcm", "MR_small.dcm"),        # JPEG-LS lossless
    ("emri_small_jpeg_ls_lossless.dcm", "emri_small.dcm"),    # JPEG-LS, multi-frame
    ("MR_small_RLE.dcm", "MR_small.dcm"),                     # RLE lossless
    ("emri_small_RLE.dcm", "emri_small.dcm"),                 # RLE, multi-frame
    ("emri_small_jpeg_2k_lossless.dcm", "emri_small.dcm"),
    ("SC_rgb_jpeg_gdcm.dcm", "SC_rgb.dcm"),                   # JPEG lossless SV1, RGB
    ("SC_rgb_rle.dcm", "SC_rgb.dcm"),
    ("MR_small_bigendian.dcm", "MR_small.dcm"),               # explicit VR big endian
])
def test_lossless_transfer_syntaxes_decode_identically(compressed, reference):
    a, b = load_scan(path(compressed)), load_scan(path(reference))
    assert a.metadata["Transfer syntax"] != b.metadata["Transfer syntax"] or "big" in compressed
    np.testing.assert_array_equal(a.pixels, b.pixels)
    assert a.window == b.window and a.original_range == b.original_range


def test_jpeg_lossless_process14_known_values():
    scan = load_scan(path("JPGLosslessP14SV1_1s_1f_8b.dcm"))
    assert scan.metadata["Transfer syntax"] == "JPEG Lossless, Non-Hierarchical, First-Order " \
        "Prediction (Process 14 [Selection Value 1])"
    assert scan._display.values[400, 500] == 32 and scan.original_dtype == "uint8"
    assert scan.pixels[400, 500] == pytest.approx(linear(32, 127, 254), abs=1e-5)


def test_jpeg_2000_lossy_and_jpeg_extended_decode():
    for name in ("RG1_J2KI.dcm", "JPEG2000.dcm", "JPGExtended.dcm", "US1_J2KI.dcm"):
        scan = load_scan(path(name))
        assert 0.0 <= scan.pixels.min() < scan.pixels.max() <= 1.0, name


def test_multiframe_default_middle_frame_and_volume():
    scan = load_scan(path("emri_small.dcm"))
    assert scan.n_frames == 10 and scan.frame_index == 5
    assert scan.volume is not None and scan.volume.shape == (10, 64, 64)
    np.testing.assert_array_equal(scan.pixels, scan.volume[5])
    ds = pydicom.dcmread(path("emri_small.dcm"))
    assert ds.pixel_array[0, 32, 32] == 110 and scan._display.values[0, 32, 32] == 110
    first = load_scan(path("emri_small.dcm"), frame=0)
    assert first.frame_index == 0
    np.testing.assert_array_equal(first.pixels, scan.volume[0])  # same min-max over the volume
    assert first.metadata["Frames"] == "10 (showing 0)"


def test_multiframe_over_volume_limit_decodes_one_frame(monkeypatch):
    import core.imaging.dicom as dicom_mod

    monkeypatch.setattr(dicom_mod, "VOLUME_MAX_VOXELS", 1000)
    scan = load_scan(path("emri_small.dcm"), frame=9)
    assert scan.volume is None and scan.pixels.shape == (64, 64) and scan.n_frames == 10
    ds = pydicom.dcmread(path("emri_small.dcm"))
    assert scan._display.values[63, 63] == ds.pixel_array[9, 63, 63] == 147


def test_enhanced_ct_takes_rescale_and_window_from_functional_groups():
    scan = load_scan(path("eCT_Supplemental.dcm"))
    assert scan.n_frames == 2 and scan.window == (49.0, 102.0)
    ds = pydicom.dcmread(path("eCT_Supplemental.dcm"))
    assert ds.pixel_array[1, 256, 256] == 1022
    assert scan._display.values[1, 256, 256] == -2.0  # intercept -1024 from the groups


def test_voi_lut_sequence():
    scan = load_scan(path("vlut_04.dcm"))
    assert scan.window is None and scan.window_source == "file VOI LUT"
    # Stored 122 → (0028,3006) LUT Data entry 31354 of a 16-bit LUT whose maximum is 65535.
    assert scan.pixels[256, 256] == pytest.approx(31354 / 65535, abs=1e-6)
    restored = apply_window(apply_window(scan, "min-max"), None)
    np.testing.assert_array_equal(restored.pixels, scan.pixels)


@pytest.mark.parametrize("name, photometric", [
    ("SC_rgb.dcm", "RGB"),
    ("SC_ybr_full_uncompressed.dcm", "YBR_FULL"),
    ("SC_ybr_full_422_uncompressed.dcm", "YBR_FULL_422"),
    ("SC_rgb_dcmtk_+eb+cy+np.dcm", "YBR_FULL_422"),   # JPEG baseline
    ("SC_rgb_dcmtk_+eb+cr.dcm", "RGB"),               # JPEG baseline, no colour transform
    ("SC_rgb_16bit.dcm", "RGB"),
])
def test_colour_converted_to_rgb(name, photometric):
    scan = load_scan(path(name))
    assert scan.is_color and scan.pixels.shape == (100, 100, 3)
    assert scan.metadata["Photometric interpretation"] == photometric
    u8 = scan.to_uint8()
    # SC_rgb rows: red band at row 5, green at 25, blue at 45, white at 95 (pydicom's tests).
    tol = 0 if photometric == "RGB" else 6
    for row, rgb in ((5, (255, 0, 0)), (25, (0, 255, 0)), (45, (0, 0, 255)),
                     (75, (64, 64, 64)), (95, (255, 255, 255))):
        np.testing.assert_allclose(u8[row, 50], rgb, atol=tol)


def test_palette_colour():
    scan = load_scan(path("OBXXXX1A.dcm"))
    assert scan.is_color and scan.pixels.shape == (600, 800, 3)
    assert scan.window_source == "16-bit range"  # LUT entries are 16-bit


def test_colour_multiframe_jpeg_baseline_keeps_only_frame_when_large(monkeypatch):
    scan = load_scan(path("examples_ybr_color.dcm"), frame=3)
    assert scan.is_color and scan.n_frames == 30 and scan.frame_index == 3
    assert scan.volume is not None and scan.volume.shape == (30, 240, 320, 3)
    np.testing.assert_array_equal(scan.volume[3], scan.pixels)


def _mr_bytes(**changes) -> bytes:
    ds = pydicom.dcmread(path("MR_small.dcm"))
    for key, value in changes.items():
        setattr(ds, key, value)
    buf = io.BytesIO()
    ds.save_as(buf)
    return buf.getvalue()


def test_dicom_without_preamble_and_without_extension(tmp_path):
    ref = load_scan(path("MR_small.dcm"))
    ds = pydicom.dcmread(path("MR_small.dcm"))
    ds.preamble = None
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=False)
    data = buf.getvalue()
    assert data[128:132] != b"DICM" and data[:2] == b"\x02\x00"
    np.testing.assert_array_equal(load_scan(data).pixels, ref.pixels)
    # A raw dataset: no preamble, no file meta, implicit VR, saved as "IM0001" (no extension).
    del ds.file_meta
    buf = io.BytesIO()
    pydicom.dcmwrite(buf, ds, implicit_vr=True, little_endian=True, enforce_file_format=False)
    target = tmp_path / "IM0001"
    target.write_bytes(buf.getvalue())
    scan = load_scan(target)
    np.testing.assert_array_equal(scan.pixels, ref.pixels)
    assert scan.filename == "IM0001"
    assert scan.metadata["Transfer syntax"] == "Implicit VR Little Endian"


def test_phi_masked_in_metadata_and_never_logged(caplog):
    data = _mr_bytes(PatientName="Doe^John", PatientID="12345678", PatientBirthDate="19700101",
                     AccessionNumber="ACC998877", PatientAddress="1 Main Street")
    with caplog.at_level("DEBUG"):
        scan = load_scan(data, "Doe_John.dcm")
        with pytest.raises(ScanError):
            load_scan(data[:-200], "Doe_John.dcm")
    meta = scan.metadata
    assert meta["Patient name"] == "Do^J***"
    assert meta["Patient ID"] == "****5678"
    assert meta["Birth date"] == "1970-**-**"
    assert meta["Accession number"] == "****8877"
    assert meta["Patient address"] == "***"
    text = repr(scan) + str(meta) + caplog.text
    for secret in ("John", "12345678", "19700101", "ACC998877", "Main Street"):
        assert secret not in text
    assert "Doe_John" not in caplog.text
    for key in ("Modality", "Size", "Pixel spacing", "Window", "Transfer syntax",
                "Manufacturer"):
        assert meta[key]


def test_sha256_and_bytes_equal_path():
    p = path("MR_small.dcm")
    with open(p, "rb") as fh:
        data = fh.read()
    import hashlib

    a, b = load_scan(p), load_scan(data, "x")
    assert a.sha256 == b.sha256 == hashlib.sha256(data).hexdigest()
    assert not a.pixels.flags.writeable


def test_file_objects_and_pickling():
    import pickle

    p = path("MR_small.dcm")
    with open(p, "rb") as fh:
        data = fh.read()
    upload = io.BytesIO(data)
    upload.name = "MR_small.dcm"  # like streamlit's UploadedFile
    scan = load_scan(upload)
    assert scan.filename == "MR_small.dcm"
    clone = pickle.loads(pickle.dumps(scan))  # st.cache_data pickles return values
    np.testing.assert_array_equal(clone.pixels, scan.pixels)
    np.testing.assert_array_equal(apply_window(clone, "brain").pixels,
                                  apply_window(scan, "brain").pixels)
