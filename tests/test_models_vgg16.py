from __future__ import annotations

import keras
import numpy as np
import pytest

from core.models import build_model
from core.models.simple_cnn import GRADCAM_LAYER as CNN_LAYER, build_simple_cnn
from core.models.vgg16 import (GRADCAM_LAYER, GRADCAM_LAYER_BN, build_classifier,
                               build_classifier_bn)

TINY = dict(num_classes=4, input_shape=(32, 32, 3), width=1 / 16)


def _names(model) -> list[str]:
    return [layer.name for layer in model.layers]


def test_full_width_matches_keras_application_names():
    ours = build_classifier(4, (32, 32, 3))
    ref = keras.applications.VGG16(include_top=False, weights=None, input_shape=(32, 32, 3))
    conv_names = [n for n in _names(ref) if n.startswith("block")]
    assert [n for n in _names(ours) if n.startswith("block")] == conv_names
    for name in conv_names:
        assert ours.get_layer(name).output.shape == ref.get_layer(name).output.shape
    assert ours.get_layer(GRADCAM_LAYER).output.shape == (None, 2, 2, 512)


@pytest.mark.parametrize("builder, cam_layer", [(build_classifier, GRADCAM_LAYER),
                                                (build_classifier_bn, GRADCAM_LAYER_BN)])
def test_tiny_shapes_and_head(builder, cam_layer):
    model = builder(**TINY)
    x = np.random.default_rng(0).normal(size=(2, 32, 32, 3)).astype("float32")
    p = keras.ops.convert_to_numpy(model(x))
    assert p.shape == (2, 4)
    np.testing.assert_allclose(p.sum(1), 1.0, rtol=1e-5)
    assert model.get_layer("logits").output.shape == (None, 4)
    assert model.get_layer(cam_layer).output.shape == (None, 2, 2, 32)
    assert {"block1_conv1", "block5_conv3", "block5_pool", "predictions"} <= set(_names(model))


def test_bn_layout_has_13_batch_norms_with_momentum():
    model = build_classifier_bn(**TINY)
    bns = [l for l in model.layers if isinstance(l, keras.layers.BatchNormalization)]
    assert len(bns) == 13 and all(abs(l.momentum - 0.9) < 1e-9 for l in bns)
    assert all(not l.use_bias for l in model.layers if isinstance(l, keras.layers.Conv2D))


@pytest.mark.parametrize("kwargs, message", [
    (dict(width=0.5, weights="imagenet"), "width=0.5"),
    (dict(width=0.0), "width must be"),
    (dict(width=1.5), "width must be"),
    (dict(weights="/no/such/file.h5"), "/no/such/file.h5"),
    (dict(num_classes=1), "num_classes"),
    (dict(input_shape=(16, 16, 3)), "input_shape"),
    (dict(input_shape=(64, 64, 1)), "input_shape"),
])
def test_bad_arguments_are_named(kwargs, message):
    args = dict(num_classes=4, input_shape=(32, 32, 3)) | kwargs
    with pytest.raises(ValueError, match=message.replace(".", r"\.")):
        build_classifier(**args)


def test_bn_refuses_imagenet():
    with pytest.raises(ValueError, match="imagenet"):
        build_classifier_bn(**TINY, weights="imagenet")


def test_weights_file_loads(tmp_path):
    src = build_classifier_bn(**TINY)
    path = tmp_path / "w.weights.h5"
    src.save_weights(path)
    again = build_classifier_bn(**TINY, weights=str(path))
    x = np.ones((1, 32, 32, 3), "float32")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(again(x)),
                               keras.ops.convert_to_numpy(src(x)), rtol=1e-5)


def test_simple_cnn_and_build_model_from_card():
    cnn = build_simple_cnn(4, (32, 32, 1), filters=(4, 8, 8, 8))
    assert cnn.output.shape == (None, 4) and cnn.get_layer(CNN_LAYER).output.shape == (None, 4, 4, 8)
    card = {"architecture": "vgg16_bn", "network": dict(TINY, input_shape=[32, 32, 3])}
    assert build_model(card).count_params() == build_classifier_bn(**TINY).count_params()


def test_architecture_table_matches_the_builders():
    """The classifier table's Grad-CAM layers are the builders' constants and name real layers;
    the CLI choices and the Training page's list come from the same table."""
    from core.classifier.architectures import CLASSIFIER_ARCHITECTURES, architecture
    from core.classifier.train import ARCHITECTURES
    from core.models import simple_cnn, vgg16

    assert architecture("vgg16_bn").gradcam_layer == vgg16.GRADCAM_LAYER_BN
    assert architecture("vgg16").gradcam_layer == vgg16.GRADCAM_LAYER
    assert architecture("cnn").gradcam_layer == simple_cnn.GRADCAM_LAYER
    assert list(ARCHITECTURES) == list(CLASSIFIER_ARCHITECTURES)
    for name, arch in CLASSIFIER_ARCHITECTURES.items():
        kw = {"num_classes": 3, "input_shape": (32, 32, arch.channels)}
        if arch.default_width is not None:
            kw |= {"weights": None, "width": 1 / 16}
        model = arch.builder(**kw)
        assert model.get_layer(arch.gradcam_layer) is not None, name
        assert model.output_shape == (None, 3)
    with pytest.raises(ValueError, match="Unknown architecture 'resnet'"):
        architecture("resnet")
