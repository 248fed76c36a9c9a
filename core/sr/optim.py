"""Optimiser and schedule helpers shared by the PSNR stage (``core.sr.train``) and the GAN stage
(``core.sr.gan``): Adam's moments, the cosine schedule, and saving / restoring optimiser state
for resume. Its own module so the two stages do not import each other."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from core.errors import MedScanError

__all__ = ["ADAM_BETAS", "LR_FLOOR", "lr_factor", "save_optimizer", "load_optimizer"]

#: The cosine schedule ends at this fraction of the initial learning rate.
LR_FLOOR = 0.05
#: Adam moments as in BasicSR's ESRGAN options.
ADAM_BETAS = (0.9, 0.99)


def lr_factor(frac: float, schedule: str) -> float:
    """Learning-rate multiplier at ``frac`` ∈ [0, 1] of the run: 1 (``constant``) or cosine from
    1 down to :data:`LR_FLOOR`."""
    if schedule == "constant":
        return 1.0
    frac = min(max(frac, 0.0), 1.0)
    return LR_FLOOR + (1 - LR_FLOOR) * 0.5 * (1 + math.cos(math.pi * frac))


def save_optimizer(opt, path: Path) -> None:
    np.savez(path, *[np.asarray(v) for v in opt.variables])


def load_optimizer(opt, variables, path: Path) -> None:
    opt.build(variables)
    data = np.load(path)
    arrays = [data[f"arr_{i}"] for i in range(len(data.files))]
    if len(arrays) != len(opt.variables):
        raise MedScanError(f"{path}: optimizer state does not match this model.")
    for var, arr in zip(opt.variables, arrays):
        var.assign(arr)
