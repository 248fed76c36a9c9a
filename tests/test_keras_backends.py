"""Training runs on Keras's JAX backend on a machine WITHOUT TensorFlow (the GPU training machines
have JAX but no TensorFlow), and what it publishes loads in the TensorFlow app with the same
outputs.

The training runs in a subprocess with ``KERAS_BACKEND=jax`` and an import hook that makes
``import tensorflow`` fail there, as it would on such a machine (ours or Keras's imports alike). The same subprocess predicts with the JAX model; this (TensorFlow)
process then loads the published version from the registry and must agree.
"""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.skipif(importlib.util.find_spec("jax") is None,
                                reason="jax not installed (it is in requirements-test.txt)")

REPO = Path(__file__).resolve().parents[1]


def _run_jax(script: str, weights: Path, tmp_path: Path) -> dict:
    """Run ``script`` under the JAX backend with TensorFlow unimportable; it prints one JSON
    object as its last line."""
    prelude = textwrap.dedent("""
        import sys

        class NoTensorFlow:  # as on a machine without TensorFlow installed
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("tensorflow", "tensorboard"):
                    raise ModuleNotFoundError(f"No module named {name!r}", name=name)

        sys.meta_path.insert(0, NoTensorFlow())
        import json, keras
        assert keras.backend.backend() == "jax", keras.backend.backend()
        assert "tensorflow" not in sys.modules
    """)
    env = os.environ | {"KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu",
                        "MEDSCAN_WEIGHTS_DIR": str(weights), "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(script)], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_classifier_trained_on_jax_loads_in_tensorflow(data_dir, tmp_weights, tmp_path):
    scan = next((data_dir / "brain-mri" / "glioma").iterdir())
    out = _run_jax(f"""
        from core.cli import main
        rc = main(["train", "classifier", "--data", {str(data_dir / "brain-mri")!r},
                   "--arch", "vgg16_bn", "--width", "0.125", "--input-size", "32",
                   "--epochs", "1", "--batch-size", "8", "--threads", "1",
                   "--run-dir", "run", "--version", "jax-v1", "--quiet"])
        assert rc == 0
        from core.classifier.inference import Classifier
        from core.imaging import load_scan
        clf = Classifier.load("jax-v1")
        pred = clf.predict(load_scan({str(scan)!r}).pixels)
        assert "tensorflow" not in sys.modules
        print(json.dumps({{"probs": list(map(float, pred.probabilities.values()))}}))
    """, tmp_weights, tmp_path)

    from core import registry
    from core.classifier.inference import Classifier
    from core.imaging import load_scan

    card = registry.load_card("classifier", "jax-v1")
    assert card["training"]["device"] == "CPU via jax"
    clf = Classifier.load("jax-v1")
    pred = clf.predict(load_scan(scan).pixels)
    np.testing.assert_allclose(list(pred.probabilities.values()), out["probs"], atol=1e-5)
    _, heat = clf.explain(load_scan(scan).pixels)  # Grad-CAM (TensorFlow) on JAX weights
    assert heat.shape == load_scan(scan).pixels.shape[:2] and 0 <= heat.min() <= heat.max() <= 1


def test_sr_psnr_stage_trained_on_jax_loads_in_tensorflow(data_dir, tmp_weights, tmp_path):
    hr = data_dir / "brain-mri-hr"
    img = sorted(hr.iterdir())[0]
    out = _run_jax(f"""
        import numpy as np
        from core.cli import main
        rc = main(["train", "sr", "--data", {str(hr)!r}, "--scale", "2", "--num-feat", "8",
                   "--num-block", "1", "--num-grow-ch", "4", "--steps", "2",
                   "--steps-per-epoch", "1", "--batch-size", "2", "--lr-patch", "8",
                   "--threads", "1", "--run-dir", "run", "--version", "jax-sr", "--quiet"])
        assert rc == 0
        from core.imaging import load_scan
        from core.sr.upscalers import load_sr_model
        model = load_sr_model("rrdb_psnr", scale=2, version="jax-sr")
        y = model.upscale(load_scan({str(img)!r}).pixels[:48, :48])
        print(json.dumps({{"y": np.asarray(y, float).ravel()[::7].tolist(), "shape": y.shape}}))
    """, tmp_weights, tmp_path)

    from core import registry
    from core.imaging import load_scan
    from core.sr.upscalers import load_sr_model

    assert registry.load_card("sr", "jax-sr")["scale"] == 2
    y = load_sr_model("rrdb_psnr", scale=2, version="jax-sr").upscale(load_scan(img).pixels[:48, :48])
    assert list(y.shape) == out["shape"]
    np.testing.assert_allclose(np.asarray(y, float).ravel()[::7], out["y"], atol=1e-4)


def test_background_penalty_counts_in_the_loss_on_jax(data_dir, tmp_weights, tmp_path):
    """The penalty is an ``add_loss`` inside the graph: the JAX trainer must add it as the
    TensorFlow one does (loss = cross-entropy + λ × share), and a penalised run publishes."""
    out = _run_jax(f"""
        import numpy as np
        from core.classifier.focus import background_share, grid_shape, wrap
        from core.models import build_model
        card = {{"architecture": "vgg16_bn", "network": {{"num_classes": 4,
                 "input_shape": [32, 32, 3], "width": 0.125, "dropout": 0.0}}}}
        model = build_model(card)
        wrapped = wrap(model, "block5_conv3_relu", 2.0)
        rng = np.random.default_rng(0)
        x = rng.normal(size=(4, 32, 32, 3)).astype("float32") * 50
        y = np.eye(4, dtype="float32")
        grid = rng.random((4, *grid_shape(model, "block5_conv3_relu"))).astype("float32")
        wrapped.compile(loss="categorical_crossentropy")
        model.compile(loss="categorical_crossentropy")
        total = float(wrapped.evaluate((x, grid), y, verbose=0))
        ce = float(model.evaluate(x, y, verbose=0))
        acts = keras.Model(model.inputs[0], model.get_layer("block5_conv3_relu").output)(x)
        share = float(np.mean(keras.ops.convert_to_numpy(background_share(acts, grid))))
        from core.cli import main
        rc = main(["train", "classifier", "--data", {str(data_dir / "brain-mri")!r},
                   "--arch", "vgg16_bn", "--width", "0.125", "--input-size", "32",
                   "--epochs", "1", "--batch-size", "8", "--threads", "1",
                   "--background-penalty", "1", "--run-dir", "run", "--version", "jax-focus",
                   "--quiet"])
        print(json.dumps({{"total": total, "ce": ce, "share": share, "rc": rc}}))
    """, tmp_weights, tmp_path)
    assert out["rc"] == 0 and out["share"] > 0.05
    assert out["total"] == pytest.approx(out["ce"] + 2.0 * out["share"], rel=1e-3)

    from core import registry

    card = registry.load_card("classifier", "jax-focus")
    assert card["training"]["config"]["background_penalty"] == 1.0
