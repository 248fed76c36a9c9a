"""PNG / JPEG / TIFF: fixtures generated in-test with Pillow (nothing committed)."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from core.imaging import apply_window, load_scan


def encode(arr_or_im, fmt: str, **kwargs) -> bytes:
    im = arr_or_im if isinstance(arr_or_im, Image.Image) else Image.fromarray(arr_or_im)
    buf = io.BytesIO()
    im.save(buf, format=fmt, **kwargs)
    return buf.getvalue()


def gradient(h: int = 16, w: int = 24) -> np.ndarray:
    return (np.arange(h * w).reshape(h, w) % 256).astype(np.uint8)


def test_png_8bit_grayscale_round_trips():
    arr = gradient()
    scan = load_scan(encode(arr, "PNG"), "x.png")
    assert scan.source_format == "png" and not scan.is_color and scan.pixels.shape == (16, 24)
    assert scan.original_dtype == "uint8" and scan.window_source == "8-bit range"
    np.testing.assert_allclose(scan.pixels, arr / 255.0, atol=1e-6)
    np.testing.assert_array_equal(scan.to_uint8(), arr)
    assert scan.pixel_spacing is None and scan.modality is None


def test_png_16bit_full_range_scaled_by_dtype():
    arr = np.linspace(0, 65535, 16 * 24).reshape(16, 24).astype(np.uint16)
    scan = load_scan(encode(arr, "PNG"))
    assert scan.original_dtype == "uint16" and scan.window_source == "16-bit range"
    assert scan.original_range == (0.0, 65535.0)
    np.testing.assert_allclose(scan.pixels, arr / 65535.0, atol=1e-6)


def test_png_16bit_holding_12bit_data_uses_12bit_range():
    arr = np.full((8, 8), 1000, np.uint16)
    arr[0, 0] = 4095
    scan = load_scan(encode(arr, "PNG"))
    assert scan.window_source == "12-bit range"
    assert scan.pixels[0, 0] == pytest.approx(1.0) and scan.pixels[1, 1] == pytest.approx(1000 / 4095)


def test_png_rgb_rgba_palette():
    rgb = np.zeros((10, 12, 3), np.uint8)
    rgb[..., 0] = 200
    rgb[5:, :, 2] = 100
    scan = load_scan(encode(rgb, "PNG"))
    assert scan.is_color and scan.pixels.shape == (10, 12, 3)
    np.testing.assert_array_equal(scan.to_uint8(), rgb)

    rgba = np.dstack([rgb, np.full((10, 12), 255, np.uint8)])
    rgba[0, 0, 3] = 0  # transparent → composited onto black
    scan = load_scan(encode(rgba, "PNG"))
    assert scan.is_color and tuple(scan.to_uint8()[0, 0]) == (0, 0, 0)
    assert tuple(scan.to_uint8()[9, 9]) == (200, 0, 100)

    pal = Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE, colors=4)
    scan = load_scan(encode(pal, "PNG"))
    assert scan.is_color and tuple(scan.to_uint8()[9, 9]) == (200, 0, 100)


def test_grey_palette_and_grey_rgb_become_grayscale():
    arr = gradient()
    scan = load_scan(encode(Image.fromarray(arr).convert("RGB"), "PNG"))
    assert not scan.is_color and scan.pixels.shape == arr.shape
    scan = load_scan(encode(Image.fromarray(arr).convert("P"), "PNG"))
    assert not scan.is_color
    scan = load_scan(encode(Image.fromarray(arr > 128), "PNG"))  # mode "1"
    assert not scan.is_color and set(np.unique(scan.to_uint8())) <= {0, 255}


def test_jpeg_grayscale_and_rgb():
    arr = np.full((16, 16), 128, np.uint8)
    scan = load_scan(encode(arr, "JPEG", quality=95))
    assert scan.source_format == "jpeg" and not scan.is_color
    assert abs(int(scan.to_uint8()[8, 8]) - 128) <= 2
    rgb = np.zeros((16, 16, 3), np.uint8)
    rgb[..., 1] = 220
    scan = load_scan(encode(rgb, "JPEG", quality=95))
    assert scan.is_color and abs(int(scan.to_uint8()[8, 8, 1]) - 220) <= 3


def test_exif_orientation_is_applied():
    arr = np.zeros((10, 20), np.uint8)   # 10 rows × 20 columns
    arr[0, :5] = 255                     # bright mark at the top-left
    exif = Image.Exif()
    exif[0x0112] = 6                     # "rotate 90° clockwise to display"
    scan = load_scan(encode(Image.fromarray(arr), "JPEG", quality=100, exif=exif))
    assert scan.pixels.shape == (20, 10)
    assert scan.to_uint8()[:5, -1].min() > 200   # top-left mark is now at the top-right
    plain = load_scan(encode(Image.fromarray(arr), "JPEG", quality=100))
    assert plain.pixels.shape == (10, 20)


def test_tiff_16bit_and_float():
    arr = (np.arange(64).reshape(8, 8) * 1000).astype(np.uint16)
    scan = load_scan(encode(arr, "TIFF"))
    assert scan.source_format == "tiff" and scan.original_dtype == "uint16"
    assert scan.window_source == "16-bit range"
    np.testing.assert_allclose(scan.pixels, arr / 65535.0, atol=1e-6)
    flt = np.linspace(-5, 5, 64, dtype=np.float32).reshape(8, 8)
    scan = load_scan(encode(Image.fromarray(flt, mode="F"), "TIFF"))
    assert scan.window_source == "min-max"
    assert scan.pixels[0, 0] == 0.0 and scan.pixels[-1, -1] == 1.0


def test_multipage_tiff_frames_and_volume():
    pages = [Image.fromarray(np.full((6, 7), v, np.uint8)) for v in (10, 20, 30)]
    buf = io.BytesIO()
    pages[0].save(buf, format="TIFF", save_all=True, append_images=pages[1:])
    scan = load_scan(buf.getvalue())
    assert scan.n_frames == 3 and scan.frame_index == 1
    assert scan.volume is not None and scan.volume.shape == (3, 6, 7)
    assert scan.to_uint8()[0, 0] == 20
    assert load_scan(buf.getvalue(), frame=2).to_uint8()[0, 0] == 30


def test_window_override_on_raster():
    arr = gradient()
    scan = load_scan(encode(arr, "PNG"), window=(100, 50))
    assert scan.window == (100.0, 50.0) and scan.window_source == "manual"
    back = apply_window(scan, None)
    np.testing.assert_allclose(back.pixels, arr / 255.0, atol=1e-6)


def test_header_checked_against_pixel_cap_before_decoding(monkeypatch):
    monkeypatch.setenv("MEDSCAN_MAX_PIXELS", "100")
    from core.errors import ScanError

    with pytest.raises(ScanError) as err:
        load_scan(encode(gradient(), "PNG"))
    assert err.value.code == "too_large" and "16 × 24" in str(err.value)
