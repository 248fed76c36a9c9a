"""Multi-worker training (issue 17): the classifier's usual command line plus ``TF_CONFIG``
trains one model on two CPU worker processes over loopback ports with
``tf.distribute.MultiWorkerMirroredStrategy``; both end with the same weights, and only the
chief publishes a version and writes the run folder (the other writes ``<run>/worker-1``)."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from core import device

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
# TINY of tests/test_classifier_model.py, as command-line options
TINY_ARGS = ["--arch", "vgg16_bn", "--input-size", "32", "--width", "0.0625",
             "--batch-size", "16", "--epochs", "2", "--val-fraction", "0.25",
             "--warmup-epochs", "0", "--workers", "1", "--threads", "1"]
# What a TensorFlow build without (working) collective ops says when the strategy starts.
NO_COLLECTIVES = ("No OpKernel was registered to support Op 'Collective",
                  "UNIMPLEMENTED", "has no attribute 'MultiWorkerMirroredStrategy'")


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _tf_config(ports: list[int], index: int) -> str:
    return json.dumps({"cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]},
                       "task": {"type": "worker", "index": index}})


def _arrays(path: Path) -> dict[str, np.ndarray]:
    import h5py

    out: dict[str, np.ndarray] = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, obj: out.__setitem__(name, obj[()])
                     if isinstance(obj, h5py.Dataset) else None)
    return out


@pytest.mark.parametrize("spec, chief", [
    ({"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 0}}, True),
    ({"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 1}}, False),
    ({"cluster": {"chief": ["a:1"], "worker": ["b:2"]}, "task": {"type": "worker", "index": 0}},
     False),
    ({"cluster": {"chief": ["a:1"], "worker": ["b:2"]}, "task": {"type": "chief", "index": 0}},
     True),
    ({"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 0}}, True),  # one task
    (None, True),
])
def test_chief_and_run_folders_from_tf_config(spec, chief, monkeypatch, tmp_path):
    if spec is None:
        monkeypatch.delenv("TF_CONFIG", raising=False)
    else:
        monkeypatch.setenv("TF_CONFIG", json.dumps(spec))
    assert device.is_chief() is chief
    multi = spec is not None and len(sum(spec["cluster"].values(), [])) > 1
    assert (device.cluster_spec() is not None) is multi
    expected = tmp_path if chief else tmp_path / f"{spec['task']['type']}-{spec['task']['index']}"
    assert device.worker_run_dir(tmp_path) == expected


def test_malformed_tf_config_is_named(monkeypatch):
    monkeypatch.setenv("TF_CONFIG", "{not json")
    with pytest.raises(ValueError, match="TF_CONFIG"):
        device.cluster_spec()
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": {"worker": ["a:1", "b:2"]},
                                                "task": {"type": "ps", "index": 0}}))
    with pytest.raises(ValueError, match="not one of the cluster's tasks"):
        device.cluster_spec()


def test_two_cpu_workers_train_one_model(data_dir, tmp_path):
    """``python -m core train classifier ...`` twice, with ``TF_CONFIG`` naming two workers on
    loopback ports: both finish, both report the same validation figures, their best weights
    (what each ended with, batch-norm statistics and optimizer state included) are identical,
    and the chief alone published them."""
    pytest.importorskip("tensorflow")
    ports = _free_ports(2)
    run = tmp_path / "run"
    weights = tmp_path / "weights"
    procs, logs = [], []
    for index in range(2):
        env = dict(os.environ, TF_CONFIG=_tf_config(ports, index), MEDSCAN_FORCE_CPU="1",
                   MEDSCAN_WEIGHTS_DIR=str(weights), MEDSCAN_DATA_DIR=str(tmp_path / "data"),
                   TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="-1")
        env.pop("MEDSCAN_JOB_ID", None)
        log = tmp_path / f"worker{index}.log"
        logs.append(log)
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "core", "train", "classifier",
             "--data", str(data_dir / "brain-mri"), *TINY_ARGS, "--run-dir", str(run),
             "--version", "mw-test", "--quiet"],
            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=open(log, "wb"), text=True))
    deadline = time.monotonic() + 240
    outputs = []
    try:
        for proc in procs:
            out, _ = proc.communicate(timeout=max(1, deadline - time.monotonic()))
            outputs.append(out)
    except subprocess.TimeoutExpired:
        pytest.fail("the two workers did not finish in 240 s:\n" +
                    "\n".join(p.read_text()[-2000:] for p in logs))
    finally:
        for proc in procs:   # one that failed leaves its peer waiting for it
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    errors = "\n".join(p.read_text(errors="replace")[-3000:] for p in logs)
    if any(p.returncode for p in procs):
        reason = next((m for m in NO_COLLECTIVES if m in errors), None)
        if reason:
            pytest.skip(f"this TensorFlow build cannot run collective ops ({reason})")
        pytest.fail(f"a worker failed (exit codes {[p.returncode for p in procs]}):\n{errors}")

    chief, other = (json.loads(out.strip().splitlines()[-1]) for out in outputs)
    assert chief["version"] == "mw-test" and other["version"] is None   # the chief publishes
    assert Path(chief["run_dir"]) == run and Path(other["run_dir"]) == run / "worker-1"
    assert chief["validation"] == other["validation"]                    # one model, evaluated
    assert chief["temperature"] == pytest.approx(other["temperature"])

    a, b = _arrays(run / "best.weights.h5"), _arrays(run / "worker-1" / "best.weights.h5")
    assert a.keys() == b.keys() and len(a) > 50
    moving = [k for k in a if k.startswith("layers/batch_normalization")]
    assert moving, "expected batch-norm layers in vgg16_bn"
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    published = _arrays(weights / "classifier" / "mw-test" / "model.weights.h5")
    for key, value in published.items():                # the chief published those weights
        np.testing.assert_array_equal(value, b[key], err_msg=key)
    assert not (weights / "classifier" / "ACTIVE").exists()
    assert sorted(p.name for p in run.iterdir() if p.is_dir()) == ["worker-1"]
