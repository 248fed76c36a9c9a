"""Screenshots of the viewer (issue 18) with the repository's real models, at 1400 px wide,
into screenshots/viewer-real-*.png (not a test; tests/test_viewer_browser.py takes the
screenshots of the tested interactions with tiny models).

Analyze: a glioma slice with its Grad-CAM and the segmentation model's tumour outline, zoomed
on the tumour; Super-resolution: a 256² slice, every method side by side and zoomed, then the
original against RRDB in the split view; then the static views under it
(screenshots/static-sr-*.png: the α slider with its curve, Side by side, Slider comparison,
Difference map).

    .venv/bin/python scripts/viewer_screenshots.py [--weights weights] [--out screenshots]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from browser.harness import (UPLOADER, app_server, browser_page, login, open_page,  # noqa: E402
                             wait_idle)

GLIOMA = REPO / "tests/data/brain-mri-seg/images/glioma/fs2767.png"
HR = REPO / "tests/data/brain-mri-hr/Tr-gl_0197.png"
IFRAME = 'iframe[title*="medscan_viewer"]'


def _viewer(page):
    frame = page.frame_locator(IFRAME).first
    frame.locator('#root[data-ready="1"]').wait_for(timeout=300_000)
    page.wait_for_timeout(1500)
    return frame


def _zoom(page, locator, notches: int, dx: float = 0.0, dy: float = 0.0) -> None:
    box = locator.bounding_box()
    page.mouse.move(box["x"] + box["width"] * (0.5 + dx), box["y"] + box["height"] * (0.5 + dy))
    for _ in range(notches):
        page.mouse.wheel(0, -120)
        page.wait_for_timeout(80)
    page.wait_for_timeout(600)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=Path, default=REPO / "weights")
    parser.add_argument("--out", type=Path, default=REPO / "screenshots")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    from app_env import PASSWORDS

    with app_server(args.weights, startup_timeout=180) as (url, _env), browser_page() as page:
        page.set_default_timeout(300_000)
        page.set_viewport_size({"width": 1400, "height": 1000})
        login(page, url, "reader", PASSWORDS["reader"])
        page.set_input_files(UPLOADER, str(GLIOMA))
        wait_idle(page, 600_000)
        page.get_by_text("Grad-CAM of the predicted class").first.wait_for()
        frame = _viewer(page)
        frame.locator("#root").scroll_into_view_if_needed()
        page.screenshot(path=str(args.out / "viewer-real-analyze.png"))
        _zoom(page, frame.locator(".vp").first, 14, dx=0.05, dy=-0.05)
        page.screenshot(path=str(args.out / "viewer-real-analyze-zoom.png"))

        open_page(page, "Super-resolution")
        page.set_input_files(UPLOADER, str(HR))
        wait_idle(page, 600_000)
        page.get_by_role("heading", name="PSNR / SSIM").wait_for()
        frame = _viewer(page)
        frame.locator("#root").scroll_into_view_if_needed()
        _zoom(page, frame.locator(".vp").nth(1), 16)
        page.screenshot(path=str(args.out / "viewer-real-sr-grid.png"))
        frame.locator('.segmented[data-name="mode"] button[data-value="split"]').click()
        frame.locator('#root[data-mode="split"]').wait_for()
        frame.locator("select.compare-right").select_option(label="RRDB (PSNR)")
        page.wait_for_timeout(1500)
        divider = frame.locator(".divider").bounding_box()
        area = frame.locator(".area").bounding_box()
        page.mouse.move(divider["x"] + 1, divider["y"] + divider["height"] / 2)
        page.mouse.down()
        page.mouse.move(area["x"] + 0.4 * area["width"], divider["y"] + divider["height"] / 2,
                        steps=6)
        page.mouse.up()
        page.wait_for_timeout(800)
        page.screenshot(path=str(args.out / "viewer-real-sr-split.png"))

        # The static views under the viewer (display resolution, cached, fragments).
        page.get_by_text("Starts at α").first.scroll_into_view_if_needed()
        page.wait_for_timeout(500)
        page.screenshot(path=str(args.out / "static-sr-alpha.png"))
        for tab, name in (("Side by side", "side"), ("Slider comparison", "split"),
                          ("Difference map", "diff")):
            page.get_by_role("tab", name=tab).click()
            page.wait_for_timeout(1200)
            page.get_by_role("tab", name=tab).scroll_into_view_if_needed()
            page.mouse.wheel(0, 60)
            page.wait_for_timeout(800)
            page.screenshot(path=str(args.out / f"static-sr-{name}.png"))
    print("wrote", *sorted(p.name for p in args.out.glob("viewer-real-*.png")),
          *sorted(p.name for p in args.out.glob("static-sr-*.png")))


if __name__ == "__main__":
    main()
