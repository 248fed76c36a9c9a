"""Screenshots of every page at 1280×900 into screenshots/*.png (not a test).

Starts the real app on a free port with a temporary database (users admin / reader) and either
the repository's model registry (``--weights weights``, when it has an active classifier) or
tiny untrained test models, then drives chromium with Playwright:

    .venv/bin/python scripts/screenshots.py [--weights DIR] [--out screenshots]
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from browser.harness import (app_server, browser_page, choose_radio, login,  # noqa: E402
                             open_page, upload, wait_idle)

MRI = REPO / "tests/data/brain-mri/glioma/Tr-gl_0835.jpg"
HR = REPO / "tests/data/brain-mri-hr/Tr-gl_0197.png"
CLASSIFIER_DATA = REPO / "tests/data/brain-mri"


def _shot(page, out: Path, name: str, *, full: bool = False) -> None:
    wait_idle(page)
    page.wait_for_timeout(800)  # plotly finishes drawing
    page.screenshot(path=str(out / f"{name}.png"), full_page=full)
    print("wrote", out / f"{name}.png", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=Path, default=None,
                        help="model registry to use (default: tiny untrained test models)")
    parser.add_argument("--out", type=Path, default=REPO / "screenshots")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    from app_env import PASSWORDS
    from pydicom.data import get_testdata_file

    tmp = Path(tempfile.mkdtemp())
    dicom = tmp / "MR_small"
    shutil.copy(get_testdata_file("MR_small.dcm"), dicom)
    with app_server(args.weights) as (url, env), browser_page() as page:
        page.goto(url)
        page.get_by_label("User name").wait_for()
        _shot(page, args.out, "01_login")

        login(page, url, "admin", PASSWORDS["admin"])
        upload(page, MRI)
        page.locator('[data-testid="stMetric"]').first.wait_for()
        page.get_by_text("Grad-CAM for").first.wait_for()
        _shot(page, args.out, "02_analyze")
        page.get_by_role("button", name="About this model").click()
        page.get_by_text("Caveats").first.wait_for()
        _shot(page, args.out, "02b_analyze_model_card")
        page.get_by_text("How far to trust").first.hover()   # scroll inside the popover
        page.mouse.wheel(0, 600)
        page.wait_for_timeout(800)
        _shot(page, args.out, "02c_analyze_model_card_calibration")
        page.keyboard.press("Escape")
        choose_radio(page, "Image quality", "4 · good")
        choose_radio(page, "Diagnostic usefulness", "4 · good")
        page.get_by_role("button", name="Save rating").click()
        page.get_by_text("Rating saved.").wait_for()

        upload(page, dicom)
        page.get_by_text("Grad-CAM for").first.wait_for()
        _shot(page, args.out, "03_analyze_dicom")

        open_page(page, "Super-resolution")
        upload(page, HR)
        page.get_by_text(f"{HR.name}").first.wait_for()
        scan_pick = page.locator('[data-testid="stSelectbox"]').filter(has_text="Scan (").first
        if scan_pick.count():
            scan_pick.click()
            page.get_by_role("option").filter(has_text=HR.name).first.click()
            wait_idle(page)
        page.get_by_role("heading", name="PSNR / SSIM").wait_for()
        _shot(page, args.out, "04_super_resolution")
        page.get_by_role("tab", name="Slider comparison").click()
        _shot(page, args.out, "05_super_resolution_slider")
        page.get_by_role("tab", name="Difference map").click()
        _shot(page, args.out, "06_super_resolution_difference")
        page.mouse.wheel(0, 900)
        _shot(page, args.out, "07_super_resolution_metrics")
        choose_radio(page, "Image quality", "3 · acceptable")
        choose_radio(page, "Diagnostic usefulness", "2 · poor")
        page.get_by_role("button", name="Save rating").click()
        page.get_by_text("Rating saved.").wait_for()

        open_page(page, "My ratings")
        _shot(page, args.out, "08_my_ratings")

        # A fresh session, so the study holds just the two brain MRIs.
        page.get_by_role("button", name="Log out").click()
        login(page, url, "admin", PASSWORDS["admin"])
        open_page(page, "Reader studies")
        page.set_input_files('[data-testid="stFileUploader"] input[type="file"]',
                             [str(MRI), str(HR)])
        wait_idle(page)
        page.get_by_label("Study name").fill("Pilot: super-resolution vs bicubic")
        page.get_by_label("Study name").press("Enter")
        wait_idle(page)
        page.get_by_role("button", name="Create study").click()
        page.get_by_text("Created “Pilot").wait_for()
        open_page(page, "Reader study")
        _shot(page, args.out, "09_reader_study")

        open_page(page, "Training")
        page.get_by_label("Data folder (one sub-folder per class)").fill(str(CLASSIFIER_DATA))
        arch = page.locator('[data-testid="stSelectbox"]').filter(has_text="Architecture")
        arch.click()
        page.get_by_role("option", name="cnn").click()
        size = page.get_by_label("Input size (px)")
        size.fill("32")
        page.get_by_label("Epochs").fill("4")
        page.get_by_role("button", name="Start training").click()
        page.get_by_text("Started training job").wait_for()
        for _ in range(60):       # wait for the first reported epochs (polled every 5 s)
            page.wait_for_timeout(5000)
            if page.locator('[data-testid="stPlotlyChart"]').count():
                break
        page.wait_for_timeout(6000)
        page.get_by_role("heading", name="Training runs").scroll_into_view_if_needed()
        page.mouse.wheel(0, 520)
        _shot(page, args.out, "10_admin_training")

        open_page(page, "Model versions")
        _shot(page, args.out, "11_admin_models")
        page.get_by_text("Confusion matrix").first.scroll_into_view_if_needed()
        page.mouse.wheel(0, 300)
        page.wait_for_timeout(800)
        _shot(page, args.out, "11b_admin_models_calibration")
        open_page(page, "Users")
        _shot(page, args.out, "12_admin_users")
        open_page(page, "Export ratings")
        _shot(page, args.out, "13_admin_export")
    # The login page of a server with single sign-on configured (the provider is not contacted
    # until the button is pressed).
    sso = ('[auth]\nredirect_uri = "{url}/oauth2callback"\ncookie_secret = "screenshot-only"\n'
           'client_id = "medscan"\nclient_secret = "x"\nserver_metadata_url = '
           '"https://login.hospital.example/.well-known/openid-configuration"\n')
    with app_server(args.weights, secrets=lambda url: sso.format(url=url)) as (url, env), \
            browser_page() as page:
        page.goto(url)
        page.get_by_role("button", name="Sign in with single sign-on").wait_for()
        _shot(page, args.out, "01b_login_sso")
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
