"""SRResNet: the SRGAN generator (Ledig et al. 2017, "Photo-Realistic Single Image
Super-Resolution Using a Generative Adversarial Network", CVPR, arXiv:1609.04802, fig. 4).

Layout, as in the paper: 9×9 conv + PReLU; ``num_blocks`` residual blocks (3×3 conv, batch norm,
PReLU, 3×3 conv, batch norm, identity skip); 3×3 conv + batch norm and a long skip back to the
first features; one sub-pixel stage per factor 2 (3×3 conv to 4·``features`` channels,
depth-to-space ×2, PReLU); a 9×9 conv to the output channels. The paper's configuration is
``num_blocks=16, features=64``. Input: low-resolution image ``(N, h, w, C)`` in [0, 1] (any
``h``, ``w``); output ``(N, scale·h, scale·w, C_out)``, linear and not clipped (the paper's tanh
mapped to [−1, 1] images; ours are [0, 1] and the caller clips).

``global_residual=True`` (off by default, as in the paper) adds a bicubic upscale of the input to
the output so that the network learns only the missing detail (the VDSR trick, Kim et al. 2016),
as :func:`core.models.rrdbnet.build_rrdbnet` does for short CPU runs.
"""
from __future__ import annotations

import keras
from keras import layers, ops

__all__ = ["build_srresnet", "PixelShuffle", "BN_MOMENTUM", "PRELU_INIT", "SUBPIXEL_FACTOR"]

# PyTorch's BatchNorm momentum 0.1 in Keras' convention (1 − 0.1): with Keras' default 0.99 the
# moving statistics lag far behind in short CPU runs and inference is then off.
BN_MOMENTUM = 0.9
# PReLU's initial negative slope (He et al. 2015; PyTorch's default, which SRGAN code uses).
PRELU_INIT = 0.25
# Each sub-pixel stage upsamples by this factor (the paper stacks two for ×4).
SUBPIXEL_FACTOR = 2


@keras.saving.register_keras_serializable(package="medscan")
class PixelShuffle(layers.Layer):
    """Sub-pixel convolution's rearrangement (Shi et al. 2016): ``(N, h, w, r²·C)`` →
    ``(N, r·h, r·w, C)``, channel ``(i·r + j)·C + c`` going to offset ``(i, j)``; the order of
    TensorFlow's ``depth_to_space``, written with ``keras.ops`` so it runs on any backend."""

    def __init__(self, factor: int = SUBPIXEL_FACTOR, **kwargs) -> None:
        super().__init__(**kwargs)
        self.factor = int(factor)

    def call(self, x):
        r = self.factor
        shape = ops.shape(x)
        n, h, w, c = shape[0], shape[1], shape[2], shape[3]
        out_c = c // (r * r)
        x = ops.reshape(x, (n, h, w, r, r, out_c))
        x = ops.transpose(x, (0, 1, 3, 2, 4, 5))
        return ops.reshape(x, (n, h * r, w * r, out_c))

    def compute_output_shape(self, input_shape):
        n, h, w, c = input_shape
        r = self.factor
        return (n, None if h is None else h * r, None if w is None else w * r, c // (r * r))

    def get_config(self) -> dict:
        return super().get_config() | {"factor": self.factor}


def _prelu(x, name: str):
    # one slope per channel (shared over space), so the model takes any image size
    return layers.PReLU(alpha_initializer=keras.initializers.Constant(PRELU_INIT),
                        shared_axes=[1, 2], name=name)(x)


def _bn(x, name: str):
    return layers.BatchNormalization(momentum=BN_MOMENTUM, epsilon=1e-5, name=name)(x)


def _residual_block(x, features: int, name: str):
    """conv-BN-PReLU-conv-BN plus the identity (Ledig et al. 2017, fig. 4)."""
    y = layers.Conv2D(features, 3, padding="same", name=f"{name}_conv1")(x)
    y = _prelu(_bn(y, f"{name}_bn1"), f"{name}_prelu")
    y = layers.Conv2D(features, 3, padding="same", name=f"{name}_conv2")(y)
    y = _bn(y, f"{name}_bn2")
    return layers.Add(name=f"{name}_add")([x, y])


def build_srresnet(scale: int = 4, num_blocks: int = 16, features: int = 64,
                   num_in_ch: int = 1, num_out_ch: int = 1, global_residual: bool = False,
                   name: str = "srresnet") -> keras.Model:
    """Build SRResNet (untrained). ``scale`` must be 2 or 4 (one or two sub-pixel stages)."""
    if scale not in (2, 4):
        raise ValueError(f"SRResNet scale must be 2 or 4, got {scale!r}.")
    for arg, val in (("num_blocks", num_blocks), ("features", features),
                     ("num_in_ch", num_in_ch), ("num_out_ch", num_out_ch)):
        if not isinstance(val, int) or isinstance(val, bool) or val < 1:
            raise ValueError(f"SRResNet {arg} must be a positive integer, got {val!r}.")
    if global_residual and num_in_ch != num_out_ch:
        raise ValueError("global_residual needs num_in_ch == num_out_ch.")

    inp = keras.Input(shape=(None, None, num_in_ch), name="lr")
    feat = _prelu(layers.Conv2D(features, 9, padding="same", name="conv_first")(inp),
                  "prelu_first")
    x = feat
    for b in range(num_blocks):
        x = _residual_block(x, features, f"block{b}")
    x = _bn(layers.Conv2D(features, 3, padding="same", name="conv_body")(x), "bn_body")
    x = layers.Add(name="body_add")([feat, x])
    for i in range(1, (2 if scale == 4 else 1) + 1):
        x = layers.Conv2D(features * SUBPIXEL_FACTOR**2, 3, padding="same", name=f"conv_up{i}")(x)
        x = PixelShuffle(SUBPIXEL_FACTOR, name=f"shuffle{i}")(x)
        x = _prelu(x, f"prelu_up{i}")
    out = layers.Conv2D(num_out_ch, 9, padding="same", name="conv_last")(x)
    if global_residual:
        skip = layers.UpSampling2D(scale, interpolation="bicubic", name="skip_bicubic")(inp)
        out = layers.Add(name="global_add")([out, skip])
    return keras.Model(inp, out, name=name)
