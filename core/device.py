"""Where models run: the GPU when one is visible, the CPU otherwise.

Works on any Keras 3 backend (TensorFlow in the app; JAX on a GPU training machine).
"""
from __future__ import annotations

import os
from dataclasses import dataclass

__all__ = ["DeviceInfo", "configure_device", "distribution_strategy"]


@dataclass(frozen=True)
class DeviceInfo:
    backend: str
    gpus: tuple[str, ...]
    mixed_precision: bool

    @property
    def label(self) -> str:
        if self.gpus:
            return f"GPU ({', '.join(self.gpus)}) via {self.backend}"
        return f"CPU via {self.backend}"


_configured: DeviceInfo | None = None


def configure_device(mixed_precision: bool | None = None) -> DeviceInfo:
    """Detect GPUs once, enable memory growth, and optionally mixed precision.

    ``mixed_precision=None`` means: on for training when a GPU is present, otherwise off. Set the
    environment variable ``MEDSCAN_FORCE_CPU=1`` to hide GPUs.
    """
    global _configured
    import keras

    backend = keras.backend.backend()
    gpus: list[str] = []
    if os.environ.get("MEDSCAN_FORCE_CPU") == "1":
        os.environ.setdefault("CUDA_VISIBLE_DEVICES", "-1")
    elif backend == "tensorflow":
        import tensorflow as tf

        for gpu in tf.config.list_physical_devices("GPU"):
            try:
                tf.config.experimental.set_memory_growth(gpu, True)
            except RuntimeError:  # already initialised: growth can no longer be changed
                pass
            gpus.append(gpu.name)
    elif backend == "jax":
        import jax

        gpus = [str(d) for d in jax.devices() if d.platform == "gpu"]
    elif backend == "torch":
        import torch

        gpus = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]

    use_mp = bool(gpus) if mixed_precision is None else mixed_precision
    if use_mp:
        keras.mixed_precision.set_global_policy("mixed_float16")
    _configured = DeviceInfo(backend=backend, gpus=tuple(gpus), mixed_precision=use_mp)
    return _configured


def distribution_strategy():
    """``tf.distribute.MirroredStrategy`` when more than one GPU is visible, else None."""
    info = _configured or configure_device(mixed_precision=False)
    if info.backend == "tensorflow" and len(info.gpus) > 1:
        import tensorflow as tf

        return tf.distribute.MirroredStrategy()
    return None
