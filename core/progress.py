"""The progress interface every long job (training, evaluation) reports through.

A job calls ``callback(Progress(...))``; the CLI prints it, and a job run for the Training page
(``--job-id N``) also writes it to the job's row. Keras-free so that it can be used anywhere;
``core.keras_progress`` adapts it to a Keras callback.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field

__all__ = ["Progress", "ProgressCallback", "print_progress", "null_progress", "fanout",
           "add_progress_args", "progress_from_args"]


@dataclass
class Progress:
    task: str                      # "classifier" | "sr"
    phase: str                     # e.g. "frozen", "finetune", "psnr", "gan", "calibrate", "done"
    epoch: int = 0                 # 1-based; 0 before the first epoch
    epochs: int = 0
    step: int = 0                  # step within the epoch, 1-based
    steps: int = 0
    loss: float | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    eta_s: float | None = None     # seconds left for the whole job, when known
    message: str = ""

    @property
    def fraction(self) -> float:
        """Overall completion in [0, 1] (epochs and steps), for a progress bar."""
        if self.phase == "done":
            return 1.0
        if not self.epochs:
            return 0.0
        within = (self.step / self.steps) if self.steps else 0.0
        return max(0.0, min(1.0, (max(self.epoch - 1, 0) + within) / self.epochs))

    def to_dict(self) -> dict:
        return asdict(self) | {"fraction": self.fraction}


ProgressCallback = Callable[[Progress], None]


def null_progress(_: Progress) -> None:
    return None


def print_progress(p: Progress) -> None:
    """Default CLI reporter: one line per call."""
    parts = [f"[{p.task}:{p.phase}]"]
    if p.epochs:
        parts.append(f"epoch {p.epoch}/{p.epochs}")
    if p.steps:
        parts.append(f"step {p.step}/{p.steps}")
    if p.loss is not None:
        parts.append(f"loss {p.loss:.4f}")
    parts += [f"{k} {v:.4f}" for k, v in p.metrics.items()]
    if p.eta_s is not None:
        parts.append(f"eta {p.eta_s / 60:.1f} min")
    if p.message:
        parts.append(p.message)
    print(" ".join(parts), flush=True)


def fanout(*callbacks: ProgressCallback) -> ProgressCallback:
    """One callback that calls each of ``callbacks`` in turn."""
    def _call(p: Progress) -> None:
        for cb in callbacks:
            cb(p)
    return _call
