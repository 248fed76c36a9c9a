"""Window presets and parsing, re-windowing, and PHI masking helpers."""
from __future__ import annotations

import numpy as np
import pytest
from pydicom.data import get_testdata_file

from core.errors import ScanError
from core.imaging import WINDOW_PRESETS, apply_window, load_scan, parse_window
from core.imaging.phi import mask_date, mask_id, mask_name, mask_text
from core.imaging.windowing import window_values


def test_presets_are_standard_ct_windows():
    assert WINDOW_PRESETS["brain"] == (40, 80)
    assert WINDOW_PRESETS["subdural"] == (75, 215)
    assert WINDOW_PRESETS["stroke"] == (40, 40)
    assert WINDOW_PRESETS["bone"] == (600, 2800)
    assert WINDOW_PRESETS["lung"] == (-600, 1500)
    assert WINDOW_PRESETS["soft tissue"] == (50, 400)
    assert WINDOW_PRESETS["min-max"] is None


@pytest.mark.parametrize("text, kind, cw", [
    ("brain", "preset", (40, 80)), ("Soft_Tissue", "preset", (50, 400)),
    ("soft-tissue", "preset", (50, 400)), ("40,400", "manual", (40, 400)),
    ("-600,1500", "manual", (-600, 1500)), ((10, 20), "manual", (10, 20)),
    ("min-max", "min-max", (None, None)), (None, "file", (None, None)),
])
def test_parse_window(text, kind, cw):
    spec = parse_window(text)
    assert spec.kind == kind and (spec.center, spec.width) == cw


@pytest.mark.parametrize("bad", ["brian", "40", "a,b", (1, -5), (1, float("nan")), (1, 2, 3)])
def test_parse_window_rejects(bad):
    with pytest.raises(ScanError) as err:
        parse_window(bad)
    assert err.value.code == "bad_window"


def test_window_values_linear_formula():
    # DICOM LINEAR (PS3.3 C.11.2.1.2.1): c=40, w=80 → x ≤ 0 → 0, x > 79 → 1,
    # else (x - 39.5) / 79 + 0.5.
    out = window_values(np.array([-100, 0, 1, 39.5, 79, 79.5, 500], np.float32), 40, 80)
    np.testing.assert_allclose(out, [0, 0, 1 / 79, 0.5, 1.0, 1.0, 1.0], atol=1e-5)
    narrow = window_values(np.array([0.0, 0.25, 0.5], np.float32), 0.25, 0.5)  # width < 1
    np.testing.assert_allclose(narrow, [0, 0.5, 1.0], atol=1e-5)


def test_apply_window_matches_loading_with_that_window_and_keeps_volume():
    p = str(get_testdata_file("emri_small.dcm"))
    base = load_scan(p)
    re = apply_window(base, (200, 300))
    direct = load_scan(p, window="200,300")
    np.testing.assert_array_equal(re.pixels, direct.pixels)
    np.testing.assert_array_equal(re.volume, direct.volume)
    assert re.metadata["Window"] == "C 200 / W 300 (manual)"
    assert base.window_source == "min-max" and re is not base


def test_monochrome1_override_still_inverts():
    scan = load_scan(str(get_testdata_file("RG1_UNCR.dcm")), window=(3745, 1000))
    assert scan.pixels[1000, 1000] == pytest.approx(1 - (3745 - 3744.5) / 999 - 0.5, abs=1e-5)


def test_masks():
    assert mask_name("Doe^John") == "Do^J***"
    assert mask_name("Li") == "L***" and mask_name("") == ""
    assert mask_id("12341234") == "****1234" and mask_id("12345") == "****"
    assert mask_date("19700101") == "1970-**-**" and mask_date("") == ""
    assert mask_text("1 Main Street") == "***"


# --- windows per modality (issue 14 item 5) ------------------------------------------------

import io  # noqa: E402

import pydicom  # noqa: E402
from pydicom.pixels import apply_modality_lut  # noqa: E402

from core.imaging.windowing import (MIN_WIDTH, percentile_window,  # noqa: E402
                                    window_options)


def _modality_values(name: str) -> np.ndarray:
    ds = pydicom.dcmread(get_testdata_file(name))
    return apply_modality_lut(ds.pixel_array, ds).astype(np.float64)


def _labels(scan) -> list[str]:
    return [o.label for o in window_options(scan)]


def test_ct_offers_ct_presets_and_computed_windows():
    scan = load_scan(get_testdata_file("CT_small.dcm"))
    options = window_options(scan)
    first = options[0]
    # CT_small has no window of its own: the loader's min-max comes first, with its values.
    assert first.default and first.label == "Min–max" and sum(o.default for o in options) == 1
    values = _modality_values("CT_small.dcm")              # HU: raw × 1 − 1024
    lo, hi = values.min(), values.max()
    assert (first.center, first.width) == scan.window == ((lo + hi) / 2, hi - lo)
    presets = {o.label: (o.center, o.width) for o in options if o.spec.kind == "preset"}
    assert presets == {f"CT {n} (C {v[0]:g} / W {v[1]:g})": v
                       for n, v in WINDOW_PRESETS.items() if v is not None}
    assert presets["CT brain (C 40 / W 80)"] == (40, 80)
    p1, p99 = np.percentile(values, [1, 99])
    pct = next(o for o in options if o.label == "Percentile 1–99 %")
    assert pct.center == pytest.approx((p1 + p99) / 2, rel=1e-5)
    assert pct.width == pytest.approx(p99 - p1, rel=1e-5)
    shown = apply_window(scan, pct.spec)
    assert shown.window == (pct.center, pct.width)
    assert shown.window_source == "percentile 1–99 %"
    # LINEAR_EXACT: the 1st percentile → 0, the 99th → 1.
    hu = values.astype(np.float32)
    np.testing.assert_allclose(shown.pixels, np.clip((hu - p1) / (p99 - p1), 0, 1), atol=2e-5)


@pytest.mark.parametrize("name", ["MR_small.dcm", "emri_small.dcm"])
def test_mr_offers_no_ct_presets(name):
    scan = load_scan(get_testdata_file(name))
    labels = _labels(scan)
    assert not any(label.startswith("CT ") or "brain" in label.lower() for label in labels)
    assert not any(o.spec.kind == "preset" for o in window_options(scan))
    assert {"Min–max", "Percentile 1–99 %", "Percentile 0.5–99.5 %"} <= set(labels)


def test_mr_small_file_window_first_and_values_in_force():
    scan = load_scan(get_testdata_file("MR_small.dcm"))
    options = window_options(scan)
    assert [o.label for o in options][0] == "File window"
    assert options[0].default and (options[0].center, options[0].width) == (600, 1600)
    values = _modality_values("MR_small.dcm")
    mm = next(o for o in options if o.label == "Min–max")
    assert (mm.center, mm.width) == ((values.min() + values.max()) / 2,
                                      values.max() - values.min())
    for option in options:
        shown = apply_window(scan, option.spec)
        assert shown.window == pytest.approx((option.center, option.width)), option.label
        assert 0.0 < shown.pixels.mean() < 1.0, option.label      # never blank


def test_emri_percentiles_cover_every_frame_and_labels_do_not_change_with_the_frame():
    path = get_testdata_file("emri_small.dcm")
    scan = load_scan(path)
    values = _modality_values("emri_small.dcm")             # 10 frames
    assert values.ndim == 3
    p = next(o for o in window_options(scan) if o.label == "Percentile 0.5–99.5 %")
    lo, hi = np.percentile(values, [0.5, 99.5])
    assert p.center == pytest.approx((lo + hi) / 2, rel=1e-5)
    assert _labels(load_scan(path, frame=0)) == _labels(scan)


def test_all_file_windows_with_their_explanations():
    scan = load_scan(get_testdata_file("MR-SIEMENS-DICOM-WithOverlays.dcm"))
    options = window_options(scan)
    files = [o for o in options if o.label.startswith("File window")]
    assert [(o.label, o.center, o.width, o.default) for o in files] == [
        ("File window 1 of 2: WINDOW1", 450, 790, True),
        ("File window 2 of 2: WINDOW2", 200, 443, False)]
    second = apply_window(scan, files[1].spec)
    assert second.window == (200, 443)
    assert second.window_source == "file window 2 (WINDOW2)"
    assert second.metadata["Window"] == "C 200 / W 443 (file window 2 (WINDOW2))"


def test_window_explanation_with_a_name_is_not_shown():
    ds = pydicom.dcmread(get_testdata_file("MR-SIEMENS-DICOM-WithOverlays.dcm"))
    ds.PatientName = "Doe^Jane"
    ds.WindowCenterWidthExplanation = ["Doe", "for Jane 778812"]
    buf = io.BytesIO()
    ds.save_as(buf)
    scan = load_scan(buf.getvalue())
    labels = _labels(scan)
    assert labels[:2] == ["File window 1 of 2", "File window 2 of 2"]
    assert not any("Doe" in text or "Jane" in text or "778812" in text
                   for o in window_options(scan) for text in (o.label, o.explanation))


def test_voi_lut_and_colour_options():
    voi = load_scan(get_testdata_file("vlut_04.dcm"))
    first = window_options(voi)[0]
    assert first.label == "File VOI LUT" and first.center is None and first.default
    rgb = load_scan(get_testdata_file("SC_rgb.dcm"))
    assert [(o.label, o.center, o.width) for o in window_options(rgb)] == [
        ("File default", 127.5, 255.0)]


def test_percentile_window_known_values_and_constant_image():
    assert percentile_window(np.arange(101, dtype=np.float32), 1, 99) == (50.0, 98.0)
    assert percentile_window(np.array([np.nan, 1.0, 3.0]), 0, 100) == (2.0, 2.0)
    assert percentile_window(np.full((4, 4), 7.0), 1, 99) == (7.0, MIN_WIDTH)


def test_constant_image_windows_are_valid():
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    ds.RescaleSlope = 0                                    # every pixel is the intercept
    buf = io.BytesIO()
    ds.save_as(buf)
    scan = load_scan(buf.getvalue())
    for option in window_options(scan):
        assert option.width is None or option.width >= MIN_WIDTH
        shown = apply_window(scan, option.spec)
        assert np.isfinite(shown.pixels).all(), option.label
