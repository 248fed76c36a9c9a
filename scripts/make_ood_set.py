"""Build the out-of-distribution (OOD) evaluation set from files that ship with installed packages.

    python scripts/make_ood_set.py --out data/ood-set [--patches-from DIR] [--fixtures tests/data/ood]

Writes one subfolder per kind plus ``manifest.csv`` (kind, file, source). Every input is
something the brain-MRI classifier was not trained on:

- ``ct``, ``radiograph`` (chest / extremity CR), ``nuclear_medicine``, ``mr_body`` (abdomen and
  other non-brain MR), ``ultrasound``, ``dicom_other`` (secondary captures, a face photo,
  a segmentation mask, LUT test images): one copy of each distinct image in pydicom's bundled
  test files and the ``pydicom-data`` package (pixel-identical re-encodings are skipped), copied
  byte for byte so the scan loader reads them as the app does;
- ``mr_tiny``: pydicom's 64×64 ``MR_small.dcm`` and ``emri_small.dcm`` (tiny MR, the case the
  issue reports);
- ``photo_colour`` / ``photo_grey``: scikit-image's bundled sample images (astronaut, coffee,
  chelsea, ... / camera, coins, moon, text, a Shepp-Logan head phantom, ...), as PNG;
- ``tiny_patch``: 64×64 crops inside the head of brain MRI slices (``--patches-from``, default
  ``../shared/datasets/brain-mri-hr/val``: native 512² slices that are not classifier test
  images), resized to 256² first like the classifier's data, so a patch shows a quarter of the
  field of view. Skipped with a note when the folder is absent.

``--fixtures DIR`` also writes three small files for the tests (a patch, a colour photo and a
grey photo, each a few KB).
"""
from __future__ import annotations

import argparse
import csv
import shutil
import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# (kind, file name in pydicom's test data / pydicom-data): one encoding of each distinct image.
DICOM_FILES: tuple[tuple[str, str], ...] = (
    ("ct", "CT_small.dcm"), ("ct", "693_UNCR.dcm"), ("ct", "J2K_pixelrep_mismatch.dcm"),
    ("ct", "bad_sequence.dcm"), ("ct", "explicit_VR-UN.dcm"), ("ct", "eCT_Supplemental.dcm"),
    ("radiograph", "RG1_UNCR.dcm"), ("radiograph", "RG3_UNCR.dcm"),
    ("nuclear_medicine", "JPEG2000_UNC.dcm"),
    ("mr_body", "MR2_UNCR.dcm"), ("mr_body", "MR-SIEMENS-DICOM-WithOverlays.dcm"),
    ("mr_body", "examples_overlay.dcm"),
    ("mr_tiny", "MR_small.dcm"), ("mr_tiny", "emri_small.dcm"),
    ("ultrasound", "US1_UNCR.dcm"), ("ultrasound", "OBXXXX1A.dcm"),
    ("ultrasound", "JPGLosslessP14SV1_1s_1f_8b.dcm"), ("ultrasound", "color-px.dcm"),
    ("ultrasound", "examples_rgb_color.dcm"), ("ultrasound", "gdcm-US-ALOKA-16.dcm"),
    ("ultrasound", "examples_palette.dcm"),
    ("dicom_other", "OT-PAL-8-face.dcm"), ("dicom_other", "SC_rgb.dcm"),
    ("dicom_other", "GDCMJ2K_TextGBR.dcm"), ("dicom_other", "liver_1frame.dcm"),
    ("dicom_other", "mlut_18.dcm"), ("dicom_other", "vlut_04.dcm"),
    ("dicom_other", "SC_jpeg_no_color_transform.dcm"),
)
SKIMAGE_COLOUR = ("astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field",
                  "immunohistochemistry", "retina", "colorwheel", "logo")
SKIMAGE_GREY = ("camera", "coins", "moon", "page", "text", "horse", "brick", "grass", "gravel",
                "clock", "checkerboard", "microaneurysms", "cell", "shepp_logan_phantom")
PATCH = 64          # patch side in pixels (like MR_small)
PATCH_BASE = 256    # slices are resized to this first, like the classifier's data set
MAX_PATCHES = 24


def _dicom_path(name: str) -> Path | None:
    from pydicom.data import get_testdata_file

    try:
        found = get_testdata_file(name)
    except Exception:  # pydicom-data missing or a download refused
        return None
    return Path(found) if found else None


def _skimage(name: str) -> np.ndarray:
    import skimage.data

    img = getattr(skimage.data, name)()
    if name == "stereo_motorcycle":
        img = img[0]
    img = np.asarray(img)
    if img.dtype == bool:
        img = img.astype(np.uint8) * 255
    elif img.dtype != np.uint8:
        img = (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)
    return img


def _write_png(path: Path, img: np.ndarray) -> None:
    if img.ndim == 3:
        img = cv2.cvtColor(img[..., :3], cv2.COLOR_RGB2BGR)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), img):
        raise OSError(f"could not write {path}")


def _patches(src: Path, n: int, seed: int = 0) -> list[tuple[str, np.ndarray]]:
    from core.classifier.preprocess import head_bbox

    rng = np.random.default_rng(seed)
    files = sorted(f for f in src.iterdir() if f.suffix.lower() in (".png", ".jpg", ".jpeg"))
    out = []
    for f in files[:: max(1, len(files) // n)][:n]:
        gray = cv2.imread(str(f), cv2.IMREAD_GRAYSCALE)
        gray = cv2.resize(gray, (PATCH_BASE, PATCH_BASE), interpolation=cv2.INTER_LANCZOS4)
        box = head_bbox(gray)
        y = int(rng.integers(box.y0, max(box.y0 + 1, box.y1 - PATCH)))
        x = int(rng.integers(box.x0, max(box.x0 + 1, box.x1 - PATCH)))
        y, x = min(y, PATCH_BASE - PATCH), min(x, PATCH_BASE - PATCH)
        out.append((f.name, gray[y:y + PATCH, x:x + PATCH]))
    return out


def build(out: Path, patches_from: Path | None) -> list[dict]:
    rows = []
    for kind, name in DICOM_FILES:
        path = _dicom_path(name)
        if path is None:
            print(f"skip {name}: not installed (pip install pydicom-data)", file=sys.stderr)
            continue
        (out / kind).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, out / kind / name)
        rows.append({"kind": kind, "file": f"{kind}/{name}",
                     "source": f"pydicom test data: {name}"})
    for kind, names in (("photo_colour", SKIMAGE_COLOUR), ("photo_grey", SKIMAGE_GREY)):
        for name in names:
            try:
                img = _skimage(name)
            except Exception as err:  # data file needing a download
                print(f"skip skimage.data.{name}: {err}", file=sys.stderr)
                continue
            _write_png(out / kind / f"{name}.png", img)
            rows.append({"kind": kind, "file": f"{kind}/{name}.png",
                         "source": f"skimage.data.{name}()"})
    if patches_from and patches_from.is_dir():
        for src_name, patch in _patches(patches_from, MAX_PATCHES):
            fname = f"patch_{Path(src_name).stem}.png"
            _write_png(out / "tiny_patch" / fname, patch)
            rows.append({"kind": "tiny_patch", "file": f"tiny_patch/{fname}",
                         "source": f"{PATCH}x{PATCH} crop of {patches_from.parent.name}/"
                                   f"{patches_from.name}/{src_name} at {PATCH_BASE}px"})
    else:
        print(f"no tiny patches: {patches_from} is not a folder", file=sys.stderr)
    with open(out / "manifest.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["kind", "file", "source"])
        w.writeheader()
        w.writerows(rows)
    return rows


def write_fixtures(dest: Path, patches_from: Path | None) -> None:
    """Three small test files: a 64×64 brain patch, a colour photo and a grey photo."""
    dest.mkdir(parents=True, exist_ok=True)
    chelsea = _skimage("chelsea")
    _write_png(dest / "chelsea_small.png", cv2.resize(chelsea, (150, 100),
                                                      interpolation=cv2.INTER_AREA))
    _write_png(dest / "camera_small.png", cv2.resize(_skimage("camera"), (128, 128),
                                                     interpolation=cv2.INTER_AREA))
    if patches_from and patches_from.is_dir():
        _write_png(dest / "brain_patch_64.png", _patches(patches_from, 1, seed=1)[0][1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, type=Path, help="output folder (created)")
    ap.add_argument("--patches-from", type=Path,
                    default=ROOT.parent / "shared" / "datasets" / "brain-mri-hr" / "val",
                    help="brain MRI slices to cut 64x64 patches from")
    ap.add_argument("--fixtures", type=Path, default=None, help="also write small test fixtures")
    args = ap.parse_args(argv)
    rows = build(args.out, args.patches_from)
    kinds: dict[str, int] = {}
    for r in rows:
        kinds[r["kind"]] = kinds.get(r["kind"], 0) + 1
    print(f"{len(rows)} OOD files in {args.out}: " + ", ".join(f"{k} {n}" for k, n in kinds.items()))
    if args.fixtures:
        write_fixtures(args.fixtures, args.patches_from)
        print(f"fixtures in {args.fixtures}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
