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
