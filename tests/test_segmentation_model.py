"""U-Net builder (shapes, layer names, argument checks) and the training loss / metric."""
from __future__ import annotations

import numpy as np
import pytest

from core.models.unet import OUTPUT_LAYER, TINY_CONFIG, build_unet


@pytest.mark.parametrize("size, base, depth, batch_norm", [
    (32, 4, 2, True),
    (64, 4, 3, False),
    (48, 2, 4, True),      # 48 / 2**4 = 3: odd bottleneck sizes work with "same" padding
])
def test_unet_output_shape_and_range(size, base, depth, batch_norm):
    model = build_unet(input_size=size, base_filters=base, depth=depth, batch_norm=batch_norm)
    x = np.random.default_rng(0).random((2, size, size, 1), dtype=np.float32)
    y = np.asarray(model(x, training=False))
    assert model.output_shape == (None, size, size, 1)
    assert y.shape == (2, size, size, 1)
    assert float(y.min()) >= 0.0 and float(y.max()) <= 1.0
    names = {layer.name for layer in model.layers}
    assert {"image", "enc1_conv1", "bottleneck_conv2", "dec1_up", "dec1_concat", "logits",
            OUTPUT_LAYER} <= names
    assert f"enc{depth}_pool" in names and f"enc{depth + 1}_pool" not in names
    assert ("enc1_bn1" in names) == batch_norm


def test_unet_filters_double_per_level():
    model = build_unet(**TINY_CONFIG)
    assert model.get_layer("enc1_conv1").filters == 4
    assert model.get_layer("enc2_conv1").filters == 8
    assert model.get_layer("bottleneck_conv1").filters == 16
    assert model.get_layer("dec1_conv2").filters == 4


@pytest.mark.parametrize("kwargs, fragment", [
    ({"input_size": 30, "depth": 2}, "input_size 30"),
    ({"input_size": 32, "depth": 0}, "depth"),
    ({"input_size": 32, "base_filters": 0}, "base_filters"),
    ({"input_size": 32, "depth": 2, "dropout": 1.0}, "dropout"),
])
def test_unet_rejects_bad_arguments(kwargs, fragment):
    with pytest.raises(ValueError, match=fragment):
        build_unet(**kwargs)


def test_build_model_from_card():
    from core.models import build_model

    model = build_model({"architecture": "unet", "network": dict(TINY_CONFIG)})
    assert model.output_shape == (None, 32, 32, 1)


def test_soft_dice_and_dice_bce_loss():
    from core.segmentation.train import dice_bce_loss, dice_metric, soft_dice_loss

    truth = np.zeros((2, 8, 8, 1), np.float32)
    truth[0, 2:4, 2:4] = 1.0                      # 4 pixels in image 0, image 1 empty
    perfect = np.clip(truth, 1e-7, 1 - 1e-7)
    assert np.allclose(np.asarray(soft_dice_loss(truth, truth)), [0.0, 0.0], atol=1e-6)
    assert np.allclose(np.asarray(dice_bce_loss(truth, perfect)), [0.0, 0.0], atol=1e-4)
    half = truth * 0.5                            # soft Dice: 1 - (2*2 + 1) / (4 + 2 + 1)
    assert np.asarray(soft_dice_loss(truth, half))[0] == pytest.approx(1 - 5 / 7, abs=1e-6)
    wrong = 1.0 - truth                           # everything inverted: a large loss
    assert float(np.asarray(dice_bce_loss(truth, wrong))[0]) > 5
    # hard Dice per image: both empty counts as 1; half the tumour found gives 2*2/(4+2)
    pred = np.zeros_like(truth)
    pred[0, 2:3, 2:4] = 1.0
    assert np.allclose(np.asarray(dice_metric(truth, pred)), [4 / 6, 1.0])
