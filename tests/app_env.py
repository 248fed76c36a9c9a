"""Shared set-up for the app tests (AppTest and browser): a temporary database with users and a
temporary weights registry holding tiny models built with the real builders and saved with the
real registry, so every page runs the real core code in seconds on the CPU."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

CLASSES = ["glioma", "meningioma", "notumor", "pituitary"]
PASSWORDS = {"admin": "admin-pass-1234", "reader": "reader-pass-1234"}


def build_tiny_weights(root: Path, *, ood: bool = False) -> Path:
    """A classifier (VGG16 layout at 1/16 width, 32² input) and SRCNN / RRDB / ESRGAN ×4 with
    1 block of 8 features, all active. With ``ood`` the classifier's out-of-distribution section
    is fitted on the fixture slices in tests/data/brain-mri (without it: "not checked").
    Returns ``root``."""
    import keras

    from core import registry
    from core.classifier.preprocess import preprocessing_config
    from core.models.rrdbnet import build_rrdbnet
    from core.models.srcnn import build_srcnn
    from core.models.vgg16 import build_classifier

    root.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(0)
    clf_net = {"num_classes": 4, "input_shape": [32, 32, 3], "width": 0.0625}
    registry.save_version("classifier", build_classifier(**clf_net), {
        "architecture": "vgg16", "network": clf_net, "classes": CLASSES, "input_size": 32,
        "preprocessing": preprocessing_config("vgg16", 3, 32),
        "calibration": {"temperature": 1.5}, "pretrained": False,
        "data": {"modality": "MR", "body_part": "brain", "description": "test fixture"},
        "metrics": {"validation": {"accuracy": 0.5, "macro_f1": 0.4, "n": 8},
                    "test": {"accuracy": 0.625, "macro_f1": 0.6, "ece": 0.2,
                             "ece_ci95": [0.1, 0.35], "n": 8, "classes": CLASSES,
                             "confusion_matrix": [[2, 0, 0, 0], [1, 1, 0, 0], [0, 0, 1, 1],
                                                  [1, 0, 0, 1]],
                             "reliability": [
                                 {"lo": 0.4, "hi": 0.4667, "count": 4, "confidence": 0.45,
                                  "accuracy": 0.5},
                                 {"lo": 0.9333, "hi": 1.0, "count": 4, "confidence": 0.95,
                                  "accuracy": 0.75}]}},
        "caveats": ["Tiny test model: its predictions mean nothing."],
        "credits": ["Test fixture built in tests/app_env.py"],
    }, version="clf-test", activate=True, weights_dir=root)
    if ood:
        from core.classifier.evaluate import fit_ood

        fit_ood(Path(__file__).resolve().parent / "data" / "brain-mri", "clf-test",
                weights_dir=root, command="tests/app_env.py build_tiny_weights(ood=True)")
    rrdb = {"scale": 4, "num_feat": 8, "num_block": 1, "num_grow_ch": 4, "global_residual": True}
    srcnn = {"scale": 4, "n1": 8, "n2": 4, "global_residual": True}
    registry.save_version("sr", build_srcnn(**srcnn), {
        "architecture": "srcnn", "network": srcnn, "scale": 4, "method": "srcnn"},
        version="srcnn-test", activate=True, slot="srcnn_x4", weights_dir=root)
    registry.save_version("sr", build_rrdbnet(**rrdb), {
        "architecture": "rrdbnet", "network": rrdb, "scale": 4, "method": "rrdb_psnr"},
        version="rrdb-test", activate=True, slot="rrdb_psnr_x4", weights_dir=root)
    registry.save_version("sr", build_rrdbnet(**rrdb), {
        "architecture": "rrdbnet", "network": rrdb, "scale": 4, "method": "esrgan",
        "init_version": "rrdb-test"},
        version="esrgan-test", activate=True, slot="esrgan_x4", weights_dir=root)
    return root


def make_db(url: str) -> dict[str, int]:
    """Migrate a fresh database and add an admin and a radiologist; returns their ids."""
    from core.db import init_db, session_scope
    from core.db.auth import create_user

    engine = init_db(url)
    with session_scope(engine) as s:
        admin = create_user(s, "admin", PASSWORDS["admin"], "admin")
        reader = create_user(s, "reader", PASSWORDS["reader"], "radiologist")
    return {"admin": admin.id, "reader": reader.id}


def set_env(tmp: Path, weights: Path) -> dict[str, str]:
    env = {"MEDSCAN_WEIGHTS_DIR": str(weights), "MEDSCAN_DATA_DIR": str(tmp / "data"),
           "MEDSCAN_DATABASE_URL": f"sqlite:///{tmp / 'data' / 'medscan.db'}",
           "MEDSCAN_FORCE_CPU": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}
    (tmp / "data").mkdir(parents=True, exist_ok=True)
    os.environ.update(env)
    return env


def mr_dicom_bytes() -> bytes:
    """pydicom's bundled MR_small.dcm (64×64 MR, ships with pydicom, no network)."""
    from pydicom.data import get_testdata_file

    return Path(get_testdata_file("MR_small.dcm")).read_bytes()


def brain_png_bytes(size: int = 128) -> bytes:
    """A synthetic grey 'head' (bright ellipse on black) as PNG bytes."""
    import cv2

    img = np.zeros((size, size), np.uint8)
    cv2.ellipse(img, (size // 2, size // 2), (size * 3 // 8, size * 7 // 16), 0, 0, 360, 150, -1)
    cv2.circle(img, (size // 2 + size // 8, size // 2), size // 10, 230, -1)
    ok, buf = cv2.imencode(".png", img)
    assert ok
    return buf.tobytes()


# ---- pytest fixtures (imported by tests/test_app_*.py) ---------------------------------------
import pytest  # noqa: E402

APP = str(Path(__file__).resolve().parent.parent / "app.py")
TIMEOUT = 120


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory) -> Path:
    return build_tiny_weights(tmp_path_factory.mktemp("weights"))


@pytest.fixture()
def app_env(tmp_path, tiny_weights, monkeypatch) -> dict:
    """Fresh database with users ``admin`` and ``reader``; tiny active models."""
    env = {"MEDSCAN_WEIGHTS_DIR": str(tiny_weights), "MEDSCAN_DATA_DIR": str(tmp_path),
           "MEDSCAN_DATABASE_URL": f"sqlite:///{tmp_path / 'medscan.db'}"}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    ids = make_db(env["MEDSCAN_DATABASE_URL"])
    return {**env, "ids": ids}


def logged_in(role: str, ids: dict):
    """An AppTest of app.py with ``admin`` or ``reader`` already logged in (session state set
    exactly as the login form sets it)."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    name = "admin" if role == "admin" else "reader"
    at.session_state["user"] = {"id": ids[name], "name": name, "role": role}
    return at
