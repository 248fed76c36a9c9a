"""``python -m core evaluate sr --json`` and ``super-resolve`` on tiny registry models."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from core import registry
from core.cli import main
from core.models.rrdbnet import build_rrdbnet
from core.models.srcnn import build_srcnn
from core.models.srresnet import build_srresnet
from core.sr.methods import GAN_PARTNER, MODEL_METHODS
from core.sr.evaluate import default_alpha, recommended_alpha

NET = {"scale": 4, "num_feat": 8, "num_block": 1, "num_grow_ch": 4, "global_residual": True}
SRRES = {"scale": 4, "num_blocks": 1, "features": 8, "global_residual": True}


def _install(weights):
    """Tiny random models of every learned method, all active (GANs with their partner)."""
    import keras

    versions = {"rrdb_psnr": "p1", "esrgan": "g1", "srcnn": "s1", "srresnet": "r1",
                "srgan": "n1"}
    for seed, (method, version, model, arch, net) in enumerate((
            ("rrdb_psnr", "p1", build_rrdbnet(**NET), "rrdbnet", NET),
            ("esrgan", "g1", build_rrdbnet(**NET), "rrdbnet", NET),
            ("srcnn", "s1", build_srcnn(scale=4, n1=8, n2=4), "srcnn",
             {"scale": 4, "n1": 8, "n2": 4}),
            ("srresnet", "r1", build_srresnet(**SRRES), "srresnet", SRRES),
            ("srgan", "n1", build_srresnet(**SRRES), "srresnet", SRRES))):
        keras.utils.set_random_seed(seed)
        model.set_weights([w + np.random.default_rng(seed).normal(0, 0.01, w.shape)
                           for w in model.get_weights()])
        card = {"architecture": arch, "network": net, "scale": 4, "method": method}
        if method in GAN_PARTNER:
            card["init_version"] = versions[GAN_PARTNER[method]]
        registry.save_version("sr", model, card, version=version, activate=True,
                              slot=f"{method}_x4", weights_dir=weights)
    assert set(versions) == set(MODEL_METHODS)


def test_evaluate_sr_json(tmp_weights, data_dir, capsys):
    _install(tmp_weights)
    rc = main(["evaluate", "sr", "--data", str(data_dir / "brain-mri-hr"), "--scale", "4",
               "--limit", "1", "--json"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["scale"] == 4 and out["images"] == 1
    assert set(out["methods"]) == {"bicubic", "srcnn", "srresnet", "srgan", "rrdb_psnr",
                                   "esrgan"}
    assert out["versions"]["srgan"] == "n1" and out["versions"]["srresnet"] == "r1"
    for d in out["methods"].values():
        assert set(d) == {"psnr", "ssim"} and 0 < d["ssim"] <= 1


def test_evaluate_sr_alpha_curve_json_and_record(tmp_weights, data_dir, capsys):
    """``evaluate sr --alpha-curve``: PSNR/SSIM at α 0, 0.2, ..., 1 for both GAN methods; α 0
    is the PSNR partner's own result; ``--record`` stores the curve in the card."""
    _install(tmp_weights)
    data = str(data_dir / "brain-mri-hr")
    assert main(["evaluate", "sr", "--data", data, "--limit", "1", "--json"]) == 0
    plain = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["methods"]
    rc = main(["evaluate", "sr", "--data", data, "--limit", "1", "--alpha-curve", "--json"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(out["alpha_curves"]) == {"srgan", "esrgan"}
    for gan, partner in (("srgan", "srresnet"), ("esrgan", "rrdb_psnr")):
        curve = out["alpha_curves"][gan]
        assert [p["alpha"] for p in curve["points"]] == [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
        assert curve["points"][0]["psnr"] == round(plain[partner]["psnr"], 4)
        assert curve["points"][-1]["psnr"] == round(plain[gan]["psnr"], 4)
        assert curve["bicubic"]["psnr"] == round(plain["bicubic"]["psnr"], 4)
        assert curve["recommended_alpha"] == recommended_alpha(curve)
    assert "alpha_curve" not in registry.load_card("sr", "n1").get("metrics", {})
    rc = main(["evaluate", "sr", "--data", data, "--limit", "1", "--alpha-curve", "--record",
               "--model", "n1"])
    assert rc == 0
    assert "recorded in its card" in capsys.readouterr().out
    card = registry.load_card("sr", "n1")
    assert card["metrics"]["alpha_curve"]["psnr_version"] == "r1"
    assert main(["evaluate", "sr", "--data", data, "--alpha-curve", "--model", "r1"]) == 2
    assert "GAN method" in capsys.readouterr().err


def test_recommended_alpha_is_the_largest_beating_bicubic_in_both():
    """The default α of a GAN model: the largest α whose PSNR and SSIM both exceed bicubic's on
    the card's curve (a tie is not better); none beating it gives its PSNR model (α 0), no
    curve the fixed 0.8, each with the reason."""
    ref = {"psnr": 28.9, "ssim": 0.85}
    pts = [(0.0, 30.9, 0.885), (0.2, 30.8, 0.884), (0.4, 30.4, 0.879), (0.6, 29.6, 0.866),
           (0.8, 28.3, 0.841), (1.0, 26.4, 0.80)]
    curve = {"points": [{"alpha": a, "psnr": p, "ssim": q} for a, p, q in pts],
             "bicubic": ref, "images": 40}
    assert recommended_alpha(curve) == 0.6
    # PSNR above bicubic but SSIM below at 0.6: 0.4 it is
    curve["points"][3]["ssim"] = 0.849
    assert recommended_alpha(curve) == 0.4
    curve["points"][2]["psnr"] = 28.9                       # a tie is not better
    assert recommended_alpha(curve) == 0.2
    assert default_alpha({"metrics": {"alpha_curve": curve}}) == (
        0.2, "the largest α at which it beats bicubic in both PSNR and SSIM on 40 validation "
             "images")
    worse = {"points": [{"alpha": 0.0, "psnr": 28.0, "ssim": 0.8}], "bicubic": ref}
    assert recommended_alpha(worse) is None
    assert default_alpha({"metrics": {"alpha_curve": worse}})[0] == 0.0
    assert recommended_alpha(None) is None
    assert default_alpha({}) == (0.8, "no trade-off curve recorded in its card")


def test_super_resolve_uses_the_cards_recommended_alpha(tmp_weights, tmp_path, capsys):
    """Without --alpha, a GAN model runs at its card's recommended α."""
    _install(tmp_weights)
    card = registry.load_card("sr", "n1")
    card.setdefault("metrics", {})["alpha_curve"] = {
        "points": [{"alpha": a / 5, "psnr": 30.0 - a, "ssim": 0.9 - a / 50} for a in range(6)],
        "bicubic": {"psnr": 28.5, "ssim": 0.85}}
    registry.replace_card("sr", "n1", card)
    src = tmp_path / "in.png"
    cv2.imwrite(str(src), (np.random.default_rng(0).random((24, 20)) * 255).astype(np.uint8))
    assert main(["super-resolve", str(src), "--model", "n1", "--scale", "4",
                 "--out", str(tmp_path / "o.png")]) == 0
    info = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert info["method"] == "srgan" and info["alpha"] == 0.2      # 29.0 dB > 28.5; 28.0 not


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


def test_super_resolve_srgan_and_tile_checks(tmp_weights, tmp_path, capsys):
    _install(tmp_weights)
    src = tmp_path / "in.png"
    cv2.imwrite(str(src), (np.random.default_rng(1).random((30, 26)) * 255).astype(np.uint8))
    outs = {}
    for tile in ("0", "8", None):
        out = tmp_path / f"out{tile}.png"
        args = ["super-resolve", str(src), "--out", str(out), "--method", "srgan",
                "--alpha", "0.6"] + (["--tile", tile] if tile else [])
        assert main(args) == 0
        info = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert info["method"] == "srgan" and info["version"] == "n1"
        outs[tile] = cv2.imread(str(out), cv2.IMREAD_UNCHANGED).astype(int)
    assert outs["0"].shape == (120, 104)
    assert np.abs(outs["8"] - outs["0"]).max() <= 1 and np.array_equal(outs[None], outs["0"])
    assert main(["super-resolve", str(src), "--out", str(tmp_path / "x.png"), "--tile", "4"]) == 2
    assert "Tile size 4" in capsys.readouterr().err


class _Stop(Exception):
    """Raised by the stand-in for train_sr: the test only looks at the config."""


def test_train_sr_cli_network_flags(monkeypatch):
    """The training CLI takes its networks from the methods table and maps the size flags to
    each builder's own argument names (what the admin page's job passes)."""
    from core.sr import cli as sr_cli
    from core.sr.methods import TRAIN_NETWORKS

    configs = []

    def fake_train(cfg, progress=None):
        configs.append(cfg)
        raise _Stop

    monkeypatch.setattr("core.sr.train.train_sr", fake_train)

    def parsed(*argv):
        with pytest.raises(_Stop):
            main(["train", "sr", "--data", "x", "--steps", "1", *argv])
        return configs[-1]

    assert parsed("--method", "srresnet").network == {"num_blocks": 16, "features": 32,
                                                      "global_residual": True}
    assert parsed("--method", "srresnet", "--preset", "paper", "--num-block", "8").network == {
        "num_blocks": 8, "features": 64, "global_residual": False}
    assert parsed("--method", "rrdb", "--num-feat", "16").network == {
        "num_feat": 16, "num_block": 6, "num_grow_ch": 16, "global_residual": True}
    cfg = parsed("--method", "srresnet", "--stage", "gan", "--preset", "cpu")
    assert (cfg.method, cfg.stage, cfg.network) == ("srresnet", "gan", {})
    assert (cfg.gan_weight, cfg.l1_weight, cfg.learning_rate) == (5e-3, 1e-2, 1e-4)
    assert main(["train", "sr", "--data", "x", "--method", "srresnet", "--num-grow-ch", "4"]) == 2
    assert set(TRAIN_NETWORKS) == set(sr_cli.PRESETS)


def test_unknown_version_is_a_clean_error(tmp_weights, tmp_path, capsys):
    rc = main(["super-resolve", str(tmp_path / "x.png"), "--out", str(tmp_path / "o.png"),
               "--model", "nope"])
    assert rc == 2 and "nope" in capsys.readouterr().err
