"""The hostile-file corpus (``tests/data/hostile/``, made by ``scripts/make_hostile_corpus.py``)
through the loader, ``python -m core predict`` and the Analyze page: every file is refused with
its expected ``ScanError`` code or loads, and nothing raises anything else (issue #15)."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from app_env import logged_in, app_env, tiny_weights  # noqa: F401
from core.errors import ScanError
from core.imaging import load_scan, load_uploads

ROOT = Path(__file__).resolve().parent.parent
HOSTILE = Path(__file__).parent / "data" / "hostile"
MANIFEST = json.loads((HOSTILE / "manifest.json").read_text())
FILES: dict[str, dict] = MANIFEST["files"]


def _is_zip(name: str) -> bool:
    return FILES[name]["expect"] == "members" or name.startswith("zip_")


def _expected(name: str) -> list[str] | str:
    """Per-upload results of load_uploads (a list), or the code it raises for the whole file."""
    entry = FILES[name]
    if entry["expect"] == "members":
        return entry["members"]
    return entry["expect"] if _is_zip(name) else [entry["expect"]]


def _check_scan(scan) -> None:
    px = scan.pixels
    assert px.dtype == np.float32 and (px.ndim == 2 or (px.ndim == 3 and px.shape[2] == 3))
    assert np.isfinite(px).all() and 0.0 <= px.min() <= px.max() <= 1.0
    if scan.window is not None:
        assert np.isfinite(scan.window).all() and scan.window[1] > 0


def test_corpus_is_large_small_and_reproducible(tmp_path):
    assert MANIFEST["kinds"] == len(FILES) >= 50
    on_disk = {p.name for p in HOSTILE.iterdir()} - {"manifest.json"}
    assert on_disk == set(FILES)
    assert sum(p.stat().st_size for p in HOSTILE.iterdir()) < 2 * 1024 ** 2
    spec = importlib.util.spec_from_file_location("make_hostile_corpus",
                                                  ROOT / "scripts" / "make_hostile_corpus.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.build(tmp_path)
    changed = [n for n in FILES if (tmp_path / n).read_bytes() != (HOSTILE / n).read_bytes()]
    assert not changed, f"regenerate the corpus: {changed}"
    assert json.loads((tmp_path / "manifest.json").read_text()) == MANIFEST


@pytest.mark.parametrize("name", sorted(FILES))
def test_loader(name):
    data = (HOSTILE / name).read_bytes()
    want = _expected(name)
    try:
        uploads = load_uploads(name, data)
    except ScanError as err:
        assert want == err.code, str(err)
        message = str(err)
    else:
        got = [u.error.code if u.error else "loads" for u in uploads]
        assert got == want, [str(u.error) for u in uploads if u.error]
        for u in uploads:
            if u.scan is not None:
                _check_scan(u.scan)
        message = " ".join(str(u.error) for u in uploads if u.error)
    assert "Traceback" not in message and "178,956,970" not in message
    if not _is_zip(name):          # the same through load_scan, from bytes and from a path
        for source in (data, HOSTILE / name):
            try:
                _check_scan(load_scan(source))
                assert want == ["loads"]
            except ScanError as err:
                assert want == [err.code], str(err)


def test_predict_over_the_whole_corpus(tiny_weights, monkeypatch, capsys):
    from core.cli import main

    monkeypatch.setenv("MEDSCAN_WEIGHTS_DIR", str(tiny_weights))
    names = sorted(FILES)
    status = main(["predict", *[str(HOSTILE / n) for n in names], "--json"])
    out, err = capsys.readouterr()
    rows = json.loads(out)
    assert [Path(r["file"]).name for r in rows] == names
    for name, row in zip(names, rows):
        if _is_zip(name):            # predict takes scans, not archives
            assert row["code"] == "unknown_format", row
        elif _expected(name) == ["loads"]:
            assert "label" in row and 0.0 <= row["confidence"] <= 1.0, row
        else:
            assert [row.get("code")] == _expected(name), row
    assert status == 1 and "Traceback" not in out + err


def _batches(size: int = 10) -> list[list[str]]:
    names = sorted(FILES)
    return [names[i:i + size] for i in range(0, len(names), size)]


def _expected_errors(name: str) -> int:
    want = _expected(name)
    return 1 if isinstance(want, str) else sum(w != "loads" for w in want)


@pytest.mark.parametrize("batch", _batches(), ids=lambda b: f"{b[0]}..")
def test_analyze_page_with_hostile_uploads(app_env, batch):
    import streamlit as st

    st.cache_data.clear()
    at = logged_in("radiologist", app_env["ids"]).run()
    at.file_uploader(key="scan").set_value(
        [(n, (HOSTILE / n).read_bytes(), "application/octet-stream") for n in batch]).run()
    assert not at.exception, [e.value for e in at.exception]
    errors = [e.value for e in at.error]
    assert len(errors) >= sum(_expected_errors(n) for n in batch), errors
    assert not any("Traceback" in e for e in errors)
    if any(_expected(n) == ["loads"] for n in batch):
        assert at.metric and at.metric[0].label == "Predicted class"


def test_analyze_page_shows_the_loaders_warning(app_env):
    at = logged_in("radiologist", app_env["ids"]).run()
    name = "tiff_float_some_nan.tif"
    at.file_uploader(key="scan").upload(name, (HOSTILE / name).read_bytes()).run()
    assert not at.exception
    assert any("had no finite value" in w.value for w in at.warning), [w.value for w in at.warning]
