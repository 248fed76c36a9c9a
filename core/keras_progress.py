"""Adapter from Keras' callback protocol to :class:`core.progress.Progress`."""
from __future__ import annotations

import time

import keras

from core.progress import Progress, ProgressCallback

__all__ = ["KerasProgress"]


class KerasProgress(keras.callbacks.Callback):
    """Reports epoch/step/loss/metrics and an ETA to a ``ProgressCallback``.

    ``epoch_offset``/``total_epochs`` let several ``fit`` calls (e.g. the two fine-tuning phases)
    report one continuous job. Batch-level reports are throttled to one per ``every_s`` seconds.
    """

    def __init__(self, callback: ProgressCallback, *, task: str, phase: str, total_epochs: int,
                 epoch_offset: int = 0, steps_per_epoch: int | None = None,
                 every_s: float = 2.0) -> None:
        super().__init__()
        self.callback = callback
        self.task, self.phase = task, phase
        self.total_epochs, self.epoch_offset = total_epochs, epoch_offset
        self.steps_per_epoch = steps_per_epoch or 0
        self.every_s = every_s
        self._start = self._last = 0.0
        self._epoch = 0

    def _eta(self, done_fraction: float) -> float | None:
        elapsed = time.monotonic() - self._start
        if done_fraction <= 0:
            return None
        return elapsed / done_fraction * (1 - done_fraction)

    def on_train_begin(self, logs=None):
        self._start = time.monotonic()
        if not self.steps_per_epoch:
            self.steps_per_epoch = int(self.params.get("steps") or 0)

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def _local_fraction(self, epoch: int, step: int) -> float:
        epochs_here = max(self.total_epochs - self.epoch_offset, 1)
        within = step / self.steps_per_epoch if self.steps_per_epoch else 0.0
        return min(1.0, (epoch + within) / epochs_here)

    def on_train_batch_end(self, batch, logs=None):
        now = time.monotonic()
        if now - self._last < self.every_s:
            return
        self._last = now
        logs = logs or {}
        self.callback(Progress(
            task=self.task, phase=self.phase,
            epoch=self.epoch_offset + self._epoch + 1, epochs=self.total_epochs,
            step=batch + 1, steps=self.steps_per_epoch,
            loss=_f(logs.get("loss")),
            metrics={k: _f(v) for k, v in logs.items() if k != "loss" and _f(v) is not None},
            eta_s=self._eta(self._local_fraction(self._epoch, batch + 1)),
        ))

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        self.callback(Progress(
            task=self.task, phase=self.phase,
            epoch=self.epoch_offset + epoch + 1, epochs=self.total_epochs,
            step=self.steps_per_epoch, steps=self.steps_per_epoch,
            loss=_f(logs.get("loss")),
            metrics={k: _f(v) for k, v in logs.items() if k != "loss" and _f(v) is not None},
            eta_s=self._eta(self._local_fraction(epoch + 1, 0)),
            message="epoch end",
        ))


def _f(v) -> float | None:
    try:
        return float(v)
    except (TypeError, ValueError):
        return None
