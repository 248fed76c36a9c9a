"""Shapes and argument checks of the SR builders (tiny configurations, CPU)."""
from __future__ import annotations

import numpy as np
import pytest

from core.models import build_model
from core.models.discriminator import build_vgg_discriminator
from core.models.rrdbnet import build_rrdbnet
from core.models.srcnn import build_srcnn

TINY = {"num_feat": 8, "num_block": 1, "num_grow_ch": 4}


@pytest.mark.parametrize("scale", [2, 4])
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("global_residual", [False, True])
def test_rrdbnet_output_shape(scale, channels, global_residual):
    model = build_rrdbnet(scale=scale, num_in_ch=channels, num_out_ch=channels,
                          global_residual=global_residual, **TINY)
    out = model(np.zeros((2, 16, 12, channels), np.float32))
    assert tuple(out.shape) == (2, 16 * scale, 12 * scale, channels)


@pytest.mark.parametrize("scale", [2, 4])
@pytest.mark.parametrize("channels", [1, 3])
def test_srcnn_output_shape(scale, channels):
    model = build_srcnn(scale=scale, num_in_ch=channels, num_out_ch=channels, n1=8, n2=4)
    out = model(np.zeros((1, 16, 16, channels), np.float32))
    assert tuple(out.shape) == (1, 16 * scale, 16 * scale, channels)


def test_paper_rrdb_is_default_and_card_rebuilds():
    card = {"architecture": "rrdbnet", "network": {"scale": 4, **TINY}}
    model = build_model(card)
    assert model.output_shape == (None, None, None, 1)
    import inspect

    defaults = inspect.signature(build_rrdbnet).parameters
    assert (defaults["num_feat"].default, defaults["num_block"].default,
            defaults["num_grow_ch"].default) == (64, 23, 32)


@pytest.mark.parametrize("kwargs", [{"scale": 3}, {"num_block": 0}, {"num_feat": 2.5},
                                    {"global_residual": True, "num_in_ch": 1, "num_out_ch": 3}])
def test_rrdbnet_rejects_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        build_rrdbnet(**(TINY | kwargs))


@pytest.mark.parametrize("channels", [1, 3])
def test_discriminator_gives_one_logit_per_image(channels):
    d = build_vgg_discriminator(num_in_ch=channels, num_feat=4, input_size=32)
    out = d(np.zeros((3, 32, 32, channels), np.float32))
    assert tuple(out.shape) == (3, 1)
    with pytest.raises(ValueError, match="multiple of 32"):
        build_vgg_discriminator(input_size=48)


@pytest.mark.parametrize("scale", [2, 4])
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("global_residual", [False, True])
def test_srresnet_output_shape(scale, channels, global_residual):
    from core.models.srresnet import build_srresnet

    model = build_srresnet(scale=scale, num_blocks=2, features=8, num_in_ch=channels,
                           num_out_ch=channels, global_residual=global_residual)
    out = model(np.zeros((2, 16, 12, channels), np.float32))
    assert tuple(out.shape) == (2, 16 * scale, 12 * scale, channels)
    shuffles = [lyr for lyr in model.layers if lyr.name.startswith("shuffle")]
    assert len(shuffles) == {2: 1, 4: 2}[scale]           # one sub-pixel ×2 stage per factor 2


def test_srresnet_paper_defaults_rebuild_from_a_card_and_layout():
    """Ledig et al. 2017: 16 blocks of 64 features, 9×9 first and last convolutions, batch
    norm in the blocks, PReLU with one slope per channel (any image size)."""
    import inspect

    from keras import layers

    from core.models.srresnet import build_srresnet

    defaults = inspect.signature(build_srresnet).parameters
    assert (defaults["num_blocks"].default, defaults["features"].default) == (16, 64)
    model = build_model({"architecture": "srresnet",
                         "network": {"scale": 4, "num_blocks": 2, "features": 8}})
    assert model.get_layer("conv_first").kernel_size == (9, 9)
    assert model.get_layer("conv_last").kernel_size == (9, 9)
    assert isinstance(model.get_layer("block1_bn2"), layers.BatchNormalization)
    assert model.get_layer("block0_prelu").get_weights()[0].shape == (1, 1, 8)
    out = model(np.zeros((1, 7, 9, 1), np.float32))
    assert tuple(out.shape) == (1, 28, 36, 1)


def test_pixel_shuffle_matches_depth_to_space():
    tf = pytest.importorskip("tensorflow")
    from core.models.srresnet import PixelShuffle

    x = np.random.default_rng(0).random((2, 5, 6, 12)).astype(np.float32)
    np.testing.assert_array_equal(np.asarray(PixelShuffle(2)(x)),
                                  tf.nn.depth_to_space(x, 2).numpy())


@pytest.mark.parametrize("kwargs", [{"scale": 3}, {"num_blocks": 0}, {"features": 2.5},
                                    {"global_residual": True, "num_in_ch": 1, "num_out_ch": 3}])
def test_srresnet_rejects_bad_arguments(kwargs):
    from core.models.srresnet import build_srresnet

    with pytest.raises(ValueError):
        build_srresnet(**({"num_blocks": 1, "features": 8} | kwargs))
