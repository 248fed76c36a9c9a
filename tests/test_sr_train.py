"""A few training steps of each stage on the fixtures lower the loss; checkpoints, resume and
publishing work (tiny configurations, CPU)."""
from __future__ import annotations

import json

import keras
import numpy as np
import pytest
from keras import layers

from core import registry
from core.sr.data import PatchSampler, load_folder
from core.sr.train import SRTrainConfig, train_sr

TINY = {"num_feat": 8, "num_block": 1, "num_grow_ch": 4, "global_residual": True}


@pytest.fixture(scope="module")
def batch(data_dir):
    images = load_folder(data_dir / "brain-mri-hr")
    return PatchSampler(images, scale=4, lr_patch=8, batch_size=4, seed=1).batch()


def _tiny_feature_net():
    inp = keras.Input((None, None, 3))
    x = layers.Conv2D(4, 3, padding="same", activation="relu", name="block1_conv1")(inp)
    x = layers.MaxPooling2D(name="block1_pool")(x)
    x = layers.Conv2D(4, 3, padding="same", activation="relu", name="block2_conv1")(x)
    x = layers.GlobalAveragePooling2D()(x)
    return keras.Model(inp, layers.Dense(2)(x), name="tiny_vgg")


def test_patch_sampler_shapes_and_content(batch):
    lr, hr = batch
    assert lr.shape == (4, 8, 8, 1) and hr.shape == (4, 32, 32, 1)
    assert lr.dtype == hr.dtype == np.float32
    assert ((hr > 0.04).mean(axis=(1, 2, 3)) >= 0.5).all()  # no all-background patches


def test_psnr_stage_steps_lower_l1(batch):
    from core.models.rrdbnet import build_rrdbnet

    keras.utils.set_random_seed(0)
    lr, hr = batch
    model = build_rrdbnet(scale=4, **(TINY | {"global_residual": False}))
    model.compile(optimizer=keras.optimizers.Adam(2e-3), loss="mean_absolute_error")
    before = float(model.evaluate(lr, hr, verbose=0))
    model.fit(np.repeat(lr, 3, 0), np.repeat(hr, 3, 0), batch_size=4, epochs=4, verbose=0)
    assert float(model.evaluate(lr, hr, verbose=0)) < before


def test_gan_step_lowers_generator_loss(batch):
    from core.models.discriminator import build_vgg_discriminator
    from core.models.rrdbnet import build_rrdbnet
    from core.sr.gan import make_gan_step
    from core.sr.perceptual import _truncate

    keras.utils.set_random_seed(0)
    lr, hr = batch
    G = build_rrdbnet(scale=4, **TINY)
    D = build_vgg_discriminator(num_in_ch=1, num_feat=4, input_size=32)
    feats, layer = _truncate(_tiny_feature_net(), None, 1)
    assert layer == "block2_conv1"
    opt_g, opt_d = keras.optimizers.Adam(2e-3), keras.optimizers.Adam(2e-3)
    step = make_gan_step(G, D, feats, opt_g, opt_d, w_percep=1.0, w_gan=5e-3, w_l1=1e-2)
    losses = [{k: float(v) for k, v in step(lr, hr).items()} for _ in range(8)]
    assert all(np.isfinite(v) for v in losses[-1].values())
    content = [d["percep"] + 1e-2 * d["l1"] for d in losses]
    assert content[-1] < content[0]


def test_train_sr_checkpoint_resume_publish(data_dir, tmp_path, tmp_weights):
    seen = []
    cfg = dict(data=str(data_dir / "brain-mri-hr"), scale=4, network=TINY, lr_patch=8,
               batch_size=2, steps=2, steps_per_epoch=1, learning_rate=1e-3,
               run_dir=str(tmp_path / "run"), publish=False)
    train_sr(SRTrainConfig(**cfg), seen.append)
    state = json.loads((tmp_path / "run" / "ckpt" / "state.json").read_text())
    assert state["step"] == 2 and state["epoch"] == 2
    with pytest.raises(Exception, match="resume"):
        train_sr(SRTrainConfig(**cfg))
    res = train_sr(SRTrainConfig(**(cfg | dict(steps=3, resume=True, publish=True,
                                                 activate=True, version="p-test",
                                                 val=str(data_dir / "brain-mri-hr"),
                                                 val_limit=1))), seen.append)
    assert res.history[-1]["step"] == 3
    card = registry.load_card("sr", slot="rrdb_psnr_x4")
    assert card["version"] == "p-test" and card["method"] == "rrdb_psnr"
    assert card["network"]["num_feat"] == 8 and card["scale"] == 4
    assert set(card["metrics"]["methods"]) == {"bicubic", "rrdb_psnr"}
    assert seen[-1].phase == "done" and any(p.phase == "psnr" for p in seen)

    # stage gan from that model, no perceptual term (explicitly), published with its init
    gan = train_sr(SRTrainConfig(data=cfg["data"], scale=4, stage="gan", lr_patch=8,
                                 batch_size=2, steps=1, steps_per_epoch=1, disc_feat=4,
                                 perceptual="none", run_dir=str(tmp_path / "gan"),
                                 activate=True, version="g-test"))
    assert gan.card["init_version"] == "p-test" and gan.card["perceptual"]["kind"] == "none"
    assert registry.active_version("sr", slot="esrgan_x4") == "g-test"


def test_perceptual_auto_fails_clearly_without_features(tmp_weights, monkeypatch, tmp_path):
    from core.errors import MedScanError
    from core.sr.perceptual import build_perceptual

    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    with pytest.raises(MedScanError, match="--perceptual none"):
        build_perceptual("auto")
    assert build_perceptual("none")[0] is None


def test_perceptual_from_project_classifier(tmp_weights):
    vgg16 = pytest.importorskip("core.models.vgg16")
    from core.sr.perceptual import build_perceptual

    clf = vgg16.build_classifier_bn(num_classes=2, input_shape=(32, 32, 3), width=0.0625)
    registry.save_version("classifier", clf, {
        "architecture": "vgg16_bn", "network": {"num_classes": 2, "input_shape": [32, 32, 3],
                                                "width": 0.0625},
        "classes": ["a", "b"], "input_size": [32, 32],
        "preprocessing": {"normalise": "vgg16", "channels": 3}}, version="c1", activate=True)
    feats, info = build_perceptual("auto", channels=1)
    assert info["kind"] == "classifier" and info["classifier_version"] == "c1"
    assert info["layer"] == "block5_conv3"
    out = feats(np.zeros((1, 64, 48, 1), np.float32))
    assert tuple(out.shape) == (1, 4, 3, 32)
    assert float(np.min(out)) < 0  # before the ReLU


def test_psnr_fine_tune_from_a_published_version_on_mixed_degradation(data_dir, tmp_path,
                                                                      tmp_weights):
    """``--init V`` at the psnr stage starts from V's weights and architecture; the card records
    it and the k-space / bicubic mixture."""
    import numpy as np

    base = dict(data=str(data_dir / "brain-mri-hr"), scale=4, lr_patch=8, batch_size=2,
                steps=1, steps_per_epoch=1)
    train_sr(SRTrainConfig(**base, network=TINY, learning_rate=1e-3,
                           run_dir=str(tmp_path / "a"), version="p-base"))
    res = train_sr(SRTrainConfig(**base, init="p-base", learning_rate=0.0,
                                 kspace_fraction=0.5, rician_snr_min=20.0,
                                 run_dir=str(tmp_path / "b"), version="p-ft"))
    card = registry.load_card("sr", "p-ft")
    assert card["init_version"] == "p-base" and card["network"] == registry.load_card(
        "sr", "p-base")["network"]
    assert card["degradation"]["kind"] == "mixed" and card["degradation"]["rician_snr_min"] == 20
    a, _ = registry.load_model("sr", "p-base")
    b, _ = registry.load_model("sr", "p-ft")
    for wa, wb in zip(a.get_weights(), b.get_weights()):   # learning rate 0: the same weights
        assert np.allclose(wa, wb)
    assert res.version == "p-ft"


TINY_SRRESNET = {"num_blocks": 1, "features": 8, "global_residual": True}


def test_srgan_step_lowers_generator_loss(batch):
    """The SRGAN recipe: standard (non-relativistic) GAN term on the same machinery."""
    from core.models.discriminator import build_vgg_discriminator
    from core.models.srresnet import build_srresnet
    from core.sr.gan import make_gan_step, vanilla_d_loss, vanilla_g_loss
    from core.sr.perceptual import _truncate

    import tensorflow as tf

    real, fake = tf.constant([[3.0], [2.0]]), tf.constant([[-2.0], [-1.0]])
    assert float(vanilla_d_loss(real, fake)) < float(vanilla_d_loss(fake, real))
    assert float(vanilla_g_loss(real, real)) < float(vanilla_g_loss(real, fake))
    keras.utils.set_random_seed(0)
    lr, hr = batch
    G = build_srresnet(scale=4, **TINY_SRRESNET)
    D = build_vgg_discriminator(num_in_ch=1, num_feat=4, input_size=32)
    feats, _ = _truncate(_tiny_feature_net(), None, 1)
    step = make_gan_step(G, D, feats, keras.optimizers.Adam(2e-3), keras.optimizers.Adam(2e-3),
                         w_percep=1.0, w_gan=5e-3, w_l1=1e-2, adversarial="vanilla")
    losses = [{k: float(v) for k, v in step(lr, hr).items()} for _ in range(8)]
    assert all(np.isfinite(v) for v in losses[-1].values())
    content = [d["percep"] + 1e-2 * d["l1"] for d in losses]
    assert content[-1] < content[0]
    with pytest.raises(Exception, match="adversarial"):
        make_gan_step(G, D, feats, keras.optimizers.Adam(), keras.optimizers.Adam(),
                      w_percep=1.0, w_gan=5e-3, w_l1=1e-2, adversarial="wgan")


def _tiny_classifier(version="c1"):
    vgg16 = pytest.importorskip("core.models.vgg16")
    net = {"num_classes": 2, "input_shape": [32, 32, 3], "width": 0.0625}
    registry.save_version("classifier", vgg16.build_classifier_bn(**net), {
        "architecture": "vgg16_bn", "network": net, "classes": ["a", "b"],
        "input_size": [32, 32], "preprocessing": {"normalise": "vgg16", "channels": 3}},
        version=version, activate=True)


def test_srresnet_psnr_then_srgan_with_recipe_alpha_curve_and_resume(data_dir, tmp_path,
                                                                     tmp_weights):
    """``train sr --method srresnet --stage psnr`` then ``--stage gan``: the GAN starts from the
    active SRResNet, uses the project classifier's features when there is no VGG19 (as ESRGAN
    does), records its recipe and α curve in the card, and resumes from its checkpoint."""
    _tiny_classifier()
    base = dict(data=str(data_dir / "brain-mri-hr"), scale=4, method="srresnet", lr_patch=8,
                batch_size=2, steps_per_epoch=1)
    psnr = train_sr(SRTrainConfig(**base, network=TINY_SRRESNET, steps=1, learning_rate=1e-3,
                                  run_dir=str(tmp_path / "p"), activate=True, version="sp1"))
    assert psnr.card["architecture"] == "srresnet" and psnr.card["method"] == "srresnet"
    assert psnr.card["recipe"]["stage"] == "psnr" and psnr.card["recipe"]["pixel_loss"] == "L1"
    assert registry.active_version("sr", slot="srresnet_x4") == "sp1"

    seen = []
    gan_cfg = dict(base, stage="gan", steps=1, disc_feat=4, run_dir=str(tmp_path / "g"),
                   publish=False)
    train_sr(SRTrainConfig(**gan_cfg), seen.append)
    state = json.loads((tmp_path / "g" / "ckpt" / "state.json").read_text())
    assert state["step"] == 1
    assert (tmp_path / "g" / "ckpt" / "discriminator.weights.h5").is_file()
    with pytest.raises(Exception, match="resume"):
        train_sr(SRTrainConfig(**gan_cfg))
    res = train_sr(SRTrainConfig(**(gan_cfg | dict(steps=2, resume=True, publish=True,
                                                     activate=True, version="sg1",
                                                     val=str(data_dir / "brain-mri-hr"),
                                                     val_limit=1))), seen.append)
    assert res.history[-1]["step"] == 2 and [h["step"] for h in res.history] == [1, 2]
    assert any(p.phase == "gan" for p in seen)
    card = registry.load_card("sr", "sg1")
    assert card["method"] == "srgan" and card["architecture"] == "srresnet"
    assert card["init_version"] == "sp1" and card["network"] == psnr.card["network"]
    recipe = card["recipe"]
    assert recipe["adversarial"] == "vanilla" and recipe["generator_init"] == {
        "version": "sp1", "method": "srresnet"}
    assert recipe["perceptual"]["kind"] == "classifier"
    assert recipe["loss_weights"] == {"perceptual": 1.0, "gan": 5e-3, "l1": 1e-2}
    assert "Ledig" in recipe["paper"] and card["training"]["steps_done"] == 2
    curve = card["metrics"]["alpha_curve"]
    assert [p["alpha"] for p in curve["points"]] == [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    assert curve["psnr_version"] == "sp1" and curve["images"] == 1
    assert set(card["metrics"]["methods"]) == {"bicubic", "srgan"}
    # α 1 of the curve is the GAN generator the card's metrics measured
    assert curve["points"][-1]["psnr"] == pytest.approx(card["metrics"]["methods"]["srgan"]["psnr"],
                                                         abs=1e-3)
    assert registry.active_version("sr", slot="srgan_x4") == "sg1"

    from core.sr import available_methods

    assert available_methods(4) == {"bicubic": None, "srresnet": "sp1", "srgan": "sg1"}


def test_gan_stage_needs_its_own_psnr_partner(data_dir, tmp_path, tmp_weights):
    """srresnet --stage gan with only an RRDB PSNR model installed: a clear error naming the
    missing slot; an RRDB given as --init is refused."""
    from core.errors import MedScanError

    base = dict(data=str(data_dir / "brain-mri-hr"), scale=4, lr_patch=8, batch_size=2,
                steps=1, steps_per_epoch=1)
    train_sr(SRTrainConfig(**base, network=TINY, run_dir=str(tmp_path / "r"), activate=True,
                           version="rp"))
    gan = dict(base, method="srresnet", stage="gan", perceptual="none", disc_feat=4)
    with pytest.raises(MedScanError, match="srresnet_x4"):
        train_sr(SRTrainConfig(**gan, run_dir=str(tmp_path / "g1")))
    with pytest.raises(MedScanError, match="srresnet"):
        train_sr(SRTrainConfig(**gan, init="rp", run_dir=str(tmp_path / "g2")))
    with pytest.raises(MedScanError, match="stage"):
        SRTrainConfig(**(base | {"method": "srcnn", "stage": "gan"}))
