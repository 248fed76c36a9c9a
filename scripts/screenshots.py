"""Screenshots of every page at 1280×900 into screenshots/NN_*.png (not a test).

Starts the real app (``streamlit run serve.py``, via tests/browser/harness.py) on a free port
with a temporary database (users admin / reader) and a copy of either the repository's model
registry (``--weights weights``) or tiny untrained test models, then drives chromium with
Playwright through every page: Analyze (a brain MRI; pydicom's CT_small and MR_small, out of
distribution, with their windows), the model card, Super-resolution, My ratings, a reader
study, a tiny training run that ends as a candidate, Model versions (compare, confirm,
activate, roll back), Users, Audit log, Export ratings, and the login page with single sign-on.

    .venv/bin/python scripts/screenshots.py [--weights DIR] [--out screenshots]

Takes several minutes on two CPU cores (most of it the training run). ``NN_*.png`` files in
``--out`` that this script no longer writes are removed (other PNGs there are left alone).
"""
from __future__ import annotations

import argparse
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from browser.harness import (UPLOADER, app_server, browser_page, choose_radio,  # noqa: E402
                             login, open_page, upload, wait_idle)

MRI = REPO / "tests/data/brain-mri/glioma/Tr-gl_0835.jpg"
HR = REPO / "tests/data/brain-mri-hr/Tr-gl_0197.png"
CLASSIFIER_DATA = REPO / "tests/data/brain-mri"     # 32 images, 4 classes: a tiny run
CT_PRESET = "CT brain (C 40 / W 80)"                # core.imaging.windowing: f"CT {name} (C / W)"
TRAIN_TIMEOUT_S = 15 * 60

_written: list[Path] = []


def _log(*args) -> None:
    print(time.strftime("%H:%M:%S"), *args, flush=True)


def _shot(page, out: Path, name: str) -> None:
    wait_idle(page)
    page.mouse.move(1275, 895)  # no hover toolbars (dataframe, chart) in the picture
    page.wait_for_timeout(800)  # plotly finishes drawing
    path = out / f"{name}.png"
    page.screenshot(path=str(path))
    _written.append(path)
    _log("wrote", path)


def _to_top(locator, offset: int = 70) -> None:
    """Scroll the app's main area so ``locator`` sits just below Streamlit's top bar."""
    locator.scroll_into_view_if_needed()
    locator.evaluate("""(e, off) => {
        e.scrollIntoView({block: 'start'});
        let p = e.parentElement;
        while (p && !(p.scrollHeight > p.clientHeight &&
                      ['auto', 'scroll'].includes(getComputedStyle(p).overflowY))) {
            p = p.parentElement;
        }
        (p || document.scrollingElement).scrollBy(0, -off);
    }""", offset)
    locator.page.wait_for_timeout(500)


def _combobox(page, label: str):
    """A selectbox's input (Streamlit 1.67: a combobox named by its label)."""
    return page.get_by_role("combobox", name=label, exact=True)


def _open_select(page, label: str):
    box = page.locator('[data-testid="stSelectbox"]').filter(has=_combobox(page, label))
    box.scroll_into_view_if_needed()
    box.get_by_role("button", name="Open").click()
    items = page.get_by_role("option")
    items.first.wait_for()
    return items


def _choose(page, label: str, option: str) -> None:
    _open_select(page, label).filter(has_text=option).first.click()
    wait_idle(page)


def _picker(page):
    """The scan picker ("Scan (N uploaded, newest last)"), else the "Scan: …" header."""
    box = page.locator('[data-testid="stSelectbox"]').filter(
        has=page.get_by_role("combobox", name="Scan ("))
    return box.first if box.count() else page.locator(".st-key-scan_header").first


def _scan_label(page) -> str:
    """The scan picker's label ("Scan (N uploaded, newest last)")."""
    return page.get_by_role("combobox", name="Scan (").first.get_attribute("aria-label")


def _shown(page, name: str) -> None:
    """Wait until the scan image and the "Scan: …" header name ``name``."""
    page.locator(".st-key-scan_header").filter(has_text=name).first.wait_for()
    page.locator('[data-testid="stImage"]').first.filter(has_text=name).wait_for()
    wait_idle(page)


def _rate(page, form_text: str, quality: str, usefulness: str) -> None:
    form = page.locator('[data-testid="stForm"]').filter(has_text=form_text).first
    form.scroll_into_view_if_needed()
    choose_radio(form, "Image quality", quality)
    choose_radio(form, "Diagnostic usefulness", usefulness)
    form.get_by_role("button", name="Save rating").click()
    page.get_by_text("Rating saved.").wait_for()
    wait_idle(page)


def _analyze(page, out: Path, tmp: Path) -> None:
    from pydicom.data import get_testdata_file

    upload(page, MRI)
    _shown(page, MRI.name)
    page.get_by_text("Grad-CAM of the predicted class").first.wait_for()
    page.locator('[data-testid="stMetric"]').first.wait_for()
    _shot(page, out, "03_analyze_brain_mri")

    page.get_by_role("button", name="About this model").click()
    page.get_by_text("Caveats").first.wait_for()
    _shot(page, out, "04_analyze_model_card")
    _to_top(page.get_by_text("How far to trust the percentage").first, 20)  # in the popover
    _shot(page, out, "05_analyze_model_card_ood")
    page.keyboard.press("Escape")
    page.wait_for_timeout(300)
    _rate(page, "Rate this scan", "4 · good", "4 · good")

    # CT_small: out of distribution (features and a DICOM header naming CT), CT presets offered.
    ct = tmp / "CT_small.dcm"
    shutil.copy(get_testdata_file("CT_small.dcm"), ct)
    upload(page, ct)
    _shown(page, "CT_small")
    page.get_by_text("Out of distribution.").first.wait_for()
    _choose(page, "Window", CT_PRESET)
    page.locator('[data-testid="stImage"]').first.filter(has_text="preset brain").wait_for()
    _to_top(_picker(page))
    _shot(page, out, "06_analyze_ct_small_ood_ct_brain_window")

    # MR_small (no extension, as a PACS export might name it): out of distribution, and the MR
    # windows (file window, min-max, percentiles, manual; no CT presets) listed open.
    mr = tmp / "MR_small"
    shutil.copy(get_testdata_file("MR_small.dcm"), mr)
    upload(page, mr)
    _shown(page, "MR_small")
    page.get_by_text("Out of distribution.").first.wait_for()
    _to_top(_picker(page))
    _shot(page, out, "07_analyze_mr_small_ood")
    _open_select(page, "Window")
    page.wait_for_timeout(500)
    _shot(page, out, "08_analyze_mr_small_window_options")
    page.keyboard.press("Escape")
    page.wait_for_timeout(300)


def _super_resolution(page, out: Path) -> None:
    open_page(page, "Super-resolution")
    upload(page, HR)
    if page.locator(".st-key-scan_header").filter(has_text=HR.name).count() == 0 \
            and page.get_by_role("combobox", name="Scan (").count():
        _choose(page, _scan_label(page), HR.name)
    page.locator(".st-key-scan_header").filter(has_text=HR.name).first.wait_for()
    page.get_by_role("heading", name="PSNR / SSIM").wait_for()
    wait_idle(page)
    _to_top(_picker(page))
    _shot(page, out, "09_super_resolution")
    page.get_by_role("tab", name="Slider comparison").click()
    page.get_by_role("combobox", name="Compare the low-res input with").wait_for()
    _shot(page, out, "10_super_resolution_slider")
    page.get_by_role("tab", name="Difference map").click()
    page.get_by_role("combobox", name="Difference of").wait_for()
    _shot(page, out, "11_super_resolution_difference")
    _to_top(page.get_by_role("heading", name="PSNR / SSIM"))
    _shot(page, out, "12_super_resolution_metrics")
    form = page.locator('[data-testid="stForm"]').filter(has_text="Rate this super-resolved")
    form.first.wait_for()
    _to_top(page.get_by_role("combobox", name="Download", exact=True))
    _shot(page, out, "13_super_resolution_rating_form")
    _rate(page, "Rate this super-resolved", "3 · acceptable", "2 · poor")


def _reader_study(page, out: Path, url: str, password: str) -> None:
    # A fresh session, so the study holds just the two brain images.
    page.get_by_role("button", name="Log out").click()
    page.get_by_label("User name").wait_for()
    login(page, url, "admin", password)
    open_page(page, "Reader studies")
    page.set_input_files(UPLOADER, [str(MRI), str(HR)])
    wait_idle(page)
    page.get_by_label("Study name").wait_for()
    page.get_by_label("Study name").fill("Pilot: super-resolution vs bicubic")
    page.get_by_label("Study name").press("Enter")
    wait_idle(page)
    page.get_by_role("button", name="Create study").click()
    page.get_by_text("Created “Pilot").wait_for(timeout=300_000)
    open_page(page, "Reader study")
    page.get_by_role("heading", name="Image 1 of").first.wait_for(timeout=300_000)
    wait_idle(page)
    _shot(page, out, "15_reader_study")
    # Rate every item with the page's keys (1-5 answer the highlighted question, Enter saves
    # and moves on; scores vary by position), then the study's Results tab.
    total = int(page.get_by_text(" rated").first.inner_text().split(" of ")[1].split()[0])
    scale = "2345343"
    for i in range(total):
        page.get_by_role("heading", name=f"Image {i + 1} of {total}").wait_for()
        page.locator("h1").first.click()               # the page has the keyboard, not a field
        for key in (scale[i % 6], scale[(i + 1) % 6]):
            page.keyboard.press(key)
            wait_idle(page)
        page.keyboard.press("Enter")
        wait_idle(page)
        page.get_by_text(f"{i + 1} of {total} rated").first.wait_for()
    open_page(page, "Reader studies")
    page.get_by_role("tab", name="Results").click()
    page.locator('[data-testid="stPlotlyChart"]').first.wait_for()
    wait_idle(page)
    _shot(page, out, "15b_reader_study_results")


def _example_base(data_dir: Path) -> None:
    """A pre-trained base as a Pre-training job leaves one (weights file + JSON sidecar), so
    that *Start from* shows it. Never loaded: the tiny run below starts from scratch."""
    import json

    folder = data_dir / "pretrained"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "simclr-20261204.weights.h5"
    path.write_bytes(b"")
    Path(str(path) + ".json").write_text(json.dumps({
        "architecture": "vgg16_bn", "config": {"arch": "vgg16_bn", "width": 0.5,
                                               "input_size": 64},
        "epochs_done": 20, "images": 3840,
        "loss": [{"epoch": 1, "loss": 4.05, "seconds": 126.0}]}))


def _training(page, out: Path, data_dir: Path) -> str:
    """The pre-training form, then a tiny run from the page (small CNN, 32 px, 3 epochs on
    tests/data/brain-mri, evaluated with the active version on the same folder); returns the
    candidate's version."""
    _example_base(data_dir)
    open_page(page, "Training")
    page.get_by_label("Data folder (one sub-folder per class)").wait_for()
    _shot(page, out, "16_training_form_defaults")      # the active version's recipe
    _open_select(page, "Start from").first.wait_for()
    _shot(page, out, "16b_training_start_from")          # scratch, active, the SSL base
    page.keyboard.press("Escape")
    whole = page.get_by_text("Run the whole recipe of")
    if whole.count():                                     # a staged active version (weights/)
        whole.click()
        page.get_by_text("Expected duration: about").wait_for()
        _shot(page, out, "16d_training_whole_recipe")
        whole.click()
        page.get_by_label("Input size (px)", exact=True).wait_for()
    _to_top(page.get_by_text("Augmentation", exact=True).first)
    page.get_by_text("Source oversampling").wait_for()
    _shot(page, out, "16e_training_options")         # penalty, source oversampling, extra data
    page.get_by_role("radio", name="Pre-training (self-supervised)").click()
    page.get_by_text("Name of the base").wait_for()
    page.get_by_text("Expected duration on this server").wait_for()
    page.get_by_text("Label smoothing").wait_for(state="detached")   # the classifier form's
    _shot(page, out, "16c_training_pretrain_form")
    page.get_by_role("radio", name="Classifier", exact=True).click()
    page.get_by_label("Data folder (one sub-folder per class)").wait_for()

    page.get_by_label("Data folder (one sub-folder per class)").fill(str(CLASSIFIER_DATA))
    _choose(page, "Architecture", "cnn")
    for label, value in (("Input size (px)", "32"), ("Epochs", "3"), ("Batch size", "8"),
                         ("Patience (epochs)", "3")):
        field = page.get_by_label(label, exact=True)
        field.fill(value)
        field.press("Tab")
    evals = page.get_by_role("textbox", name="Evaluation set (image folder, one sub-folder "
                                               "per class)", exact=True)
    evals.fill(str(CLASSIFIER_DATA))
    evals.press("Tab")
    page.get_by_role("button", name="Start training").click()
    page.get_by_text("Started training job").wait_for()
    published = page.get_by_text("as a candidate (not active)").first
    deadline = time.monotonic() + TRAIN_TIMEOUT_S
    while time.monotonic() < deadline:          # the jobs fragment reruns every 5 s
        if published.count():
            break
        failed = page.locator('[data-testid="stAlert"]').filter(has_text="Job ").filter(
            has_text="failed")
        if page.get_by_text("· failed").count() or failed.count():
            raise RuntimeError("the training job failed:\n" + page.locator(
                '[data-testid="stMain"]').inner_text()[-3000:])
        page.wait_for_timeout(5000)
    published.wait_for(timeout=10_000)
    text = published.inner_text()
    version = re.search(r"Published version (\S+) as a candidate", text).group(1)
    _log("candidate", version)
    page.wait_for_timeout(5500)                 # one more poll: the loss chart is complete
    _to_top(page.get_by_role("heading", name="Training runs"))
    _shot(page, out, "17_training_run_candidate")
    return version


def _model_versions(page, out: Path, candidate: str) -> None:
    open_page(page, "Model versions")
    page.locator('[data-testid="stDataFrame"]').first.wait_for()
    _shot(page, out, "18_models_versions")
    active = _combobox(page, "Version to activate").input_value()
    _choose(page, "Version to activate", candidate)
    page.get_by_text(f"Activating changes {active} → {candidate}").wait_for()
    wait_idle(page)
    _to_top(page.get_by_role("heading", name="Activate"))
    _shot(page, out, "19_models_compare_candidate")
    confirm = page.locator('[data-testid="stCheckbox"]').filter(
        has_text=f"make {candidate} the active")
    confirm.locator("label").first.click()
    wait_idle(page)
    button = page.get_by_role("button", name=f"Activate {candidate}")
    button.scroll_into_view_if_needed()
    if button.is_disabled():
        raise RuntimeError("the Activate button stayed disabled after the confirmation")
    _shot(page, out, "20_models_confirm")
    button.click()
    rollback = page.get_by_role("button", name=f"Roll back to {active}").first
    rollback.wait_for()
    wait_idle(page)
    _to_top(page.get_by_role("heading", name="Model versions"))
    _shot(page, out, "21_models_activated")
    _to_top(page.get_by_role("heading", name="Activate"))
    _shot(page, out, "22_models_roll_back_offered")
    # Roll back, so the registry ends as it began (the shipped version active).
    rollback.click()
    page.get_by_text(f"Rolled back: {active} is active again").wait_for()
    wait_idle(page)
    _to_top(page.get_by_role("heading", name="Model versions"))
    _shot(page, out, "23_models_rolled_back")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=Path, default=None,
                        help="model registry to use (default: tiny untrained test models)")
    parser.add_argument("--out", type=Path, default=REPO / "screenshots")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    from app_env import PASSWORDS

    tmp = Path(tempfile.mkdtemp(prefix="medscan-shots-"))
    try:
        with app_server(args.weights) as (url, env), browser_page() as page:
            try:
                page.goto(url)
                page.get_by_label("User name").wait_for()
                _shot(page, args.out, "01_login")

                login(page, url, "admin", PASSWORDS["admin"])
                _analyze(page, args.out, tmp)
                _super_resolution(page, args.out)

                open_page(page, "My ratings")
                page.locator('[data-testid="stImage"], [data-testid="stDataFrame"]').first \
                    .wait_for()
                _shot(page, args.out, "14_my_ratings")

                _reader_study(page, args.out, url, PASSWORDS["admin"])
                candidate = _training(page, args.out, Path(env["MEDSCAN_DATA_DIR"]))
                _model_versions(page, args.out, candidate)

                open_page(page, "Users")
                page.locator('[data-testid="stDataFrame"]').first.wait_for()
                _shot(page, args.out, "24_users")
                open_page(page, "Audit log")
                page.locator('[data-testid="stDataFrame"]').first.wait_for()
                _shot(page, args.out, "25_audit_log")
                open_page(page, "Export ratings")
                _shot(page, args.out, "26_export_ratings")
            except Exception:
                page.screenshot(path=str(tmp.parent / "medscan-shots-failure.png"))
                _log("failed; page as it was:", tmp.parent / "medscan-shots-failure.png")
                raise
        # The login page of a server with single sign-on configured (the provider is not
        # contacted until the button is pressed).
        sso = ('[auth]\nredirect_uri = "{url}/oauth2callback"\ncookie_secret = "screenshot-only"'
               '\nclient_id = "medscan"\nclient_secret = "x"\nserver_metadata_url = '
               '"https://login.hospital.example/.well-known/openid-configuration"\n')
        with app_server(args.weights, secrets=lambda url: sso.format(url=url)) as (url, env), \
                browser_page() as page:
            page.goto(url)
            page.get_by_role("button", name="Sign in with single sign-on").wait_for()
            _shot(page, args.out, "02_login_sso")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    # only this script's own NN_name.png files (viewer-*.png come from the viewer's tests and
    # scripts/viewer_screenshots.py)
    for stale in sorted(set(args.out.glob("[0-9][0-9]_*.png")) - set(_written)):
        stale.unlink()
        _log("removed", stale)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
