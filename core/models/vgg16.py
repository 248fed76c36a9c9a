"""VGG16 classifiers (Simonyan & Zisserman, ICLR 2015) with a small GAP head.

Two public builders, both returning a functional ``keras.Model`` that maps an ``(H, W, 3)`` image,
normalised as in :func:`core.classifier.preprocess.normalise` ("vgg16": caffe-style BGR mean
subtraction, the Keras application's ``preprocess_input``), to class probabilities:

- :func:`build_classifier`: the Keras ``applications.VGG16`` convolutional base (same layer names
  ``block1_conv1`` ... ``block5_conv3``, ``block5_pool``), so ImageNet weights load when available.
- :func:`build_classifier_bn`: the same 13-conv / 5-pool layout with batch normalisation after
  every convolution (torchvision's ``vgg16_bn``); trains from scratch far better than plain VGG16.

Head: global average pooling -> dropout -> ``Dense(num_classes)`` named ``"logits"`` -> softmax
``Activation`` named ``"predictions"``. Logits are a layer of their own so that temperature scaling
(Guo et al. 2017) and Grad-CAM (Selvaraju et al. 2017, class-score gradients) can use them.
"""
from __future__ import annotations

from pathlib import Path

import keras
from keras import layers

__all__ = ["build_classifier", "build_classifier_bn", "VGG16_BLOCKS", "GRADCAM_LAYER",
           "GRADCAM_LAYER_BN", "LOGITS_LAYER", "PREDICTIONS_LAYER", "BN_MOMENTUM"]

# (convs per block, filters) of VGG16 configuration "D".
VGG16_BLOCKS: tuple[tuple[int, int], ...] = ((2, 64), (2, 128), (3, 256), (3, 512), (3, 512))
GRADCAM_LAYER = "block5_conv3"          # last conv layer (ReLU inside the layer)
GRADCAM_LAYER_BN = "block5_conv3_relu"  # BN variant: the rectified output of the last conv
LOGITS_LAYER = "logits"
PREDICTIONS_LAYER = "predictions"
# Keras' default 0.99 lets the moving statistics lag far behind when training from scratch on a
# few thousand images (evaluation stayed at chance for two epochs, see STACK-NOTES); 0.9 follows
# torchvision's effective momentum (0.1 in its convention).
BN_MOMENTUM = 0.9


def _check_common(num_classes: int, input_shape, width: float, dropout: float) -> tuple:
    if not isinstance(num_classes, int) or num_classes < 2:
        raise ValueError(f"num_classes must be an integer >= 2, got {num_classes!r}.")
    shape = tuple(int(s) for s in input_shape)
    if len(shape) != 3 or shape[-1] != 3 or min(shape[:2]) < 32:
        raise ValueError(
            f"input_shape must be (H, W, 3) with H, W >= 32 (five 2x2 poolings), got {input_shape!r}.")
    if not (isinstance(width, (int, float)) and 0 < width <= 1):
        raise ValueError(f"width must be a number in (0, 1], got {width!r}.")
    if not (0 <= dropout < 1):
        raise ValueError(f"dropout must be in [0, 1), got {dropout!r}.")
    return shape


def _filters(f: int, width: float) -> int:
    return max(4, int(round(f * width)))


def _head(x, num_classes: int, dropout: float):
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    if dropout:
        x = layers.Dropout(dropout, name="head_dropout")(x)
    x = layers.Dense(num_classes, name=LOGITS_LAYER)(x)
    # float32 softmax even under mixed precision
    return layers.Activation("softmax", dtype="float32", name=PREDICTIONS_LAYER)(x)


def build_classifier(num_classes: int = 4, input_shape=(224, 224, 3), weights: str | None = None,
                     width: float = 1.0, dropout: float = 0.5):
    """VGG16 base + GAP/dropout/dense head.

    ``weights``: ``None`` (random init), ``"imagenet"`` (Keras cache or download) or the path of a
    Keras VGG16 *no-top* weights file (``vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5``).
    ``width`` < 1 scales every conv's filter count (only with ``weights=None``).
    """
    shape = _check_common(num_classes, input_shape, width, dropout)
    if weights is not None and weights != "imagenet":
        if not Path(str(weights)).is_file():
            raise ValueError(
                f"weights must be None, 'imagenet' or the path of a VGG16 no-top weights file; "
                f"{weights!r} is not a file.")
    if weights is not None and width != 1.0:
        raise ValueError(
            f"width={width!r} needs weights=None: pretrained weights exist only for width 1.0.")
    inputs = keras.Input(shape, name="image")
    if width == 1.0:
        try:
            base = keras.applications.VGG16(include_top=False, weights=weights,
                                            input_tensor=inputs)
        except Exception as err:  # no network, corrupt cache, wrong file
            raise ValueError(f"Could not load VGG16 weights {weights!r}: {err}") from None
        x = base.output
        # Flatten the nested application into this model's graph: same layer names, one level.
        model = keras.Model(inputs, _head(x, num_classes, dropout), name="vgg16_classifier")
        return model
    x = inputs
    for b, (n, f) in enumerate(VGG16_BLOCKS, start=1):
        for c in range(1, n + 1):
            x = layers.Conv2D(_filters(f, width), 3, padding="same", activation="relu",
                              name=f"block{b}_conv{c}")(x)
        x = layers.MaxPooling2D(2, strides=2, name=f"block{b}_pool")(x)
    return keras.Model(inputs, _head(x, num_classes, dropout), name="vgg16_classifier")


def build_classifier_bn(num_classes: int = 4, input_shape=(224, 224, 3), weights: str | None = None,
                        width: float = 1.0, dropout: float = 0.5,
                        bn_momentum: float = BN_MOMENTUM):
    """Batch-normalised VGG16 (torchvision ``vgg16_bn`` layout): conv -> BN -> ReLU.

    Layer names: ``block{b}_conv{c}`` (linear conv, no bias), ``..._bn``, ``..._relu``,
    ``block{b}_pool``. No ImageNet weights exist for it here, so ``weights`` is ``None`` or the
    path of a weights file saved from this same architecture.
    """
    shape = _check_common(num_classes, input_shape, width, dropout)
    if weights == "imagenet":
        raise ValueError("weights='imagenet' is not available for vgg16_bn; use architecture "
                         "'vgg16' for an ImageNet start, or weights=None.")
    if weights is not None and not Path(str(weights)).is_file():
        raise ValueError(f"weights must be None or a weights file path; {weights!r} is not a file.")
    inputs = keras.Input(shape, name="image")
    x = inputs
    for b, (n, f) in enumerate(VGG16_BLOCKS, start=1):
        for c in range(1, n + 1):
            name = f"block{b}_conv{c}"
            x = layers.Conv2D(_filters(f, width), 3, padding="same", use_bias=False, name=name)(x)
            x = layers.BatchNormalization(momentum=bn_momentum, name=f"{name}_bn")(x)
            x = layers.ReLU(name=f"{name}_relu")(x)
        x = layers.MaxPooling2D(2, strides=2, name=f"block{b}_pool")(x)
    model = keras.Model(inputs, _head(x, num_classes, dropout), name="vgg16_bn_classifier")
    if weights is not None:
        model.load_weights(str(weights))
    return model
