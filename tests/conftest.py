from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("MEDSCAN_FORCE_CPU", "1")

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """Small fixtures shipped inside the repo (never ../shared)."""
    return DATA


@pytest.fixture()
def tmp_weights(tmp_path, monkeypatch) -> Path:
    """An empty, isolated weights registry."""
    root = tmp_path / "weights"
    root.mkdir()
    monkeypatch.setenv("MEDSCAN_WEIGHTS_DIR", str(root))
    return root
