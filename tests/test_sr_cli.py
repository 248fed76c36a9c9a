"""``python -m core evaluate sr --json`` and ``super-resolve`` on tiny registry models."""
from __future__ import annotations

import json

import cv2
import numpy as np

from core import registry
from core.cli import main
from core.models.rrdbnet import build_rrdbnet
from core.models.srcnn import build_srcnn

NET = {"scale": 4, "num_feat": 8, "num_block": 1, "num_grow_ch": 4, "global_residual": True}


def _install(weights):
    for method, version, model, arch, net in (
            ("rrdb_psnr", "p1", build_rrdbnet(**NET), "rrdbnet", NET),
            ("esrgan", "g1", build_rrdbnet(**NET), "rrdbnet", NET),
            ("srcnn", "s1", build_srcnn(scale=4, n1=8, n2=4), "srcnn",
             {"scale": 4, "n1": 8, "n2": 4})):
        card = {"architecture": arch, "network": net, "scale": 4, "method": method}
        if method == "esrgan":
            card["init_version"] = "p1"
        registry.save_version("sr", model, card, version=version, activate=True,
                              slot=f"{method}_x4", weights_dir=weights)


def test_evaluate_sr_json(tmp_weights, data_dir, capsys):
    _install(tmp_weights)
    rc = main(["evaluate", "sr", "--data", str(data_dir / "brain-mri-hr"), "--scale", "4",
               "--limit", "1", "--json"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["scale"] == 4 and out["images"] == 1
    assert set(out["methods"]) == {"bicubic", "srcnn", "rrdb_psnr", "esrgan"}
    for d in out["methods"].values():
        assert set(d) == {"psnr", "ssim"} and 0 < d["ssim"] <= 1


def test_super_resolve_writes_png(tmp_weights, tmp_path, capsys):
    _install(tmp_weights)
    src = tmp_path / "in.png"
    cv2.imwrite(str(src), (np.random.default_rng(0).random((24, 20)) * 255).astype(np.uint8))
    out = tmp_path / "out.png"
    rc = main(["super-resolve", str(src), "--scale", "4", "--out", str(out), "--alpha", "0.5",
               "--tile", "8"])
    assert rc == 0
    info = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert info["method"] == "esrgan" and info["version"] == "g1"
    assert cv2.imread(str(out), cv2.IMREAD_UNCHANGED).shape == (96, 80)


def test_unknown_version_is_a_clean_error(tmp_weights, tmp_path, capsys):
    rc = main(["super-resolve", str(tmp_path / "x.png"), "--out", str(tmp_path / "o.png"),
               "--model", "nope"])
    assert rc == 2 and "nope" in capsys.readouterr().err
