"""``python -m core predict`` over a batch with broken files (issue #15 item 3), and a stderr
that holds only MedScan's own messages (no TensorFlow start-up lines)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from app_env import brain_png_bytes, tiny_weights  # noqa: F401
from test_imaging_hostile import dicom

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture()
def batch(tmp_path) -> list[str]:
    files = {
        "good.png": brain_png_bytes(64),
        "overlong.dcm": dicom(data=bytes(8192)),             # used to raise a ValueError
        "text.dcm": b"not a scan at all\n",
        "good.dcm": dicom(),
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    return [str(tmp_path / n) for n in files] + [str(tmp_path / "missing.png")]


def test_one_broken_file_does_not_abort_the_batch(batch, tiny_weights, monkeypatch, capsys):
    from core.cli import main

    monkeypatch.setenv("MEDSCAN_WEIGHTS_DIR", str(tiny_weights))
    status = main(["predict", *batch, "--json"])
    out, err = capsys.readouterr()
    rows = json.loads(out)
    assert [r["file"] for r in rows] == batch                     # one entry per file, in order
    ok = {Path(r["file"]).name: r for r in rows if "label" in r}
    bad = {Path(r["file"]).name: r for r in rows if "error" in r}
    assert set(ok) == {"good.png", "good.dcm"}
    assert {n: r["code"] for n, r in bad.items()} == {
        "overlong.dcm": "excess_pixel_data", "text.dcm": "unknown_format",
        "missing.png": "not_found"}
    assert status == 1                                            # some failed
    assert err.strip() == "error: 3 of 5 file(s) could not be classified"
    assert "Traceback" not in out + err

    # text mode: one line per file; all good → 0
    assert main(["predict", batch[0], batch[3]]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(batch[0] + ": ") and lines[1].startswith(batch[3] + ": ")
    assert main(["predict", batch[2]]) == 1
    assert capsys.readouterr().out.startswith(batch[2] + ": error: This file is a text file")


def test_predict_stderr_has_no_tensorflow_lines(batch, tiny_weights):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TF_", "ABSL"))}
    env.update(MEDSCAN_WEIGHTS_DIR=str(tiny_weights), PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-m", "core", "predict", batch[0], batch[2]],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, proc.stderr
    assert proc.stdout.count("\n") >= 2
    # Only MedScan's own message; TensorFlow's start-up lines look like
    # "I0000 00:00:... port.cc:153] oneDNN custom operations are on" / "WARNING: All log ...".
    assert proc.stderr.splitlines() == ["error: 1 of 2 file(s) could not be classified"], \
        proc.stderr
