"""The one table of super-resolution methods: names, what people read for each, which have a
model and with which architecture, which are GAN generators interpolated towards a PSNR partner
(network interpolation, the α slider), how the training CLI's network + stage name them, and the
registry slot of a method at a scale. Imports nothing of the project but its errors, so the
storage layer can label rated views (``core.db.rows``) without importing model code."""
from __future__ import annotations

from core.errors import MedScanError

__all__ = ["SR_METHODS", "METHOD_LABELS", "MODEL_METHODS", "ARCHITECTURE_BY_METHOD", "slot_name",
           "REFERENCE_METHODS", "GAN_PARTNER", "GAN_METHODS", "uses_alpha", "TRAINING_METHODS",
           "TRAIN_NETWORKS", "method_of", "PAPERS"]

SR_METHODS = ("bicubic", "srcnn", "srresnet", "srgan", "rrdb_psnr", "esrgan", "zero_filled")
#: Upscalers without weights: bicubic (the reference under bicubic degradation) and zero-filled
#: k-space (sinc) interpolation (the reference under k-space degradation).
REFERENCE_METHODS = ("bicubic", "zero_filled")
#: What people read for each method (menus, tables, My ratings, the export's ``view`` text).
METHOD_LABELS = {"bicubic": "Bicubic", "srcnn": "SRCNN", "srresnet": "SRResNet (PSNR)",
                 "srgan": "SRGAN", "rrdb_psnr": "RRDB (PSNR)", "esrgan": "ESRGAN",
                 "zero_filled": "Zero-filled (sinc)"}
MODEL_METHODS = tuple(m for m in SR_METHODS if m not in REFERENCE_METHODS)
ARCHITECTURE_BY_METHOD = {"srcnn": "srcnn", "srresnet": "srresnet", "srgan": "srresnet",
                          "rrdb_psnr": "rrdbnet", "esrgan": "rrdbnet"}
#: GAN generator → the PSNR-trained generator it was fine-tuned from and is interpolated with
#: (``θ = (1 − α)·θ_PSNR + α·θ_GAN``, Wang et al. 2018 sec. 3.4).
GAN_PARTNER = {"srgan": "srresnet", "esrgan": "rrdb_psnr"}
GAN_METHODS = tuple(GAN_PARTNER)
#: Where each method comes from, for tables and cards.
PAPERS = {"srcnn": "Dong et al. 2014", "srresnet": "Ledig et al. 2017",
          "srgan": "Ledig et al. 2017", "rrdb_psnr": "Wang et al. 2018",
          "esrgan": "Wang et al. 2018"}
#: The training CLI's ``--method`` (a network) and ``--stage`` → the method it produces.
TRAINING_METHODS = {"rrdb": {"psnr": "rrdb_psnr", "gan": "esrgan"},
                    "srresnet": {"psnr": "srresnet", "gan": "srgan"},
                    "srcnn": {"psnr": "srcnn"}}
TRAIN_NETWORKS = tuple(TRAINING_METHODS)


def uses_alpha(method: str) -> bool:
    """Whether ``method`` takes the network-interpolation α (a GAN generator)."""
    return method in GAN_PARTNER


def method_of(network: str, stage: str) -> str:
    """Registry method a training run produces: ``rrdb``+``psnr`` → ``rrdb_psnr``,
    ``srresnet``+``gan`` → ``srgan``, ..."""
    stages = TRAINING_METHODS.get(network)
    if stages is None:
        raise MedScanError(f"Unknown SR network {network!r}; expected one of "
                           f"{', '.join(TRAIN_NETWORKS)}.")
    if stage not in stages:
        raise MedScanError(f"{network} has no {stage!r} stage; it has "
                           f"{', '.join(stages)}.")
    return stages[stage]


def slot_name(method: str, scale: int) -> str:
    """Registry slot holding the active model of ``method`` at ``scale``, e.g. ``rrdb_psnr_x4``."""
    if method not in MODEL_METHODS:
        raise MedScanError(f"Unknown SR method {method!r}; expected one of {', '.join(MODEL_METHODS)}.")
    return f"{method}_x{int(scale)}"
