"""The per-epoch bookkeeping every resumable Keras trainer shares (classifier, segmentation):
history, best weights by a monitored metric, an atomic last checkpoint, early stopping and the
wall-clock cap, all written to ``run_dir`` so a killed worker resumes from the last epoch.

Files (each written to a temporary name, then renamed, so a worker killed mid-write leaves the
previous one): ``best.weights.h5``, ``last.keras``, ``state.json``.
"""
from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from pathlib import Path

from core.progress import Progress, ProgressCallback

__all__ = ["epoch_checkpoint"]


def epoch_checkpoint(run_dir: Path, state: dict, progress: ProgressCallback, *, task: str,
                     epochs: int, patience: int, max_minutes: float | None, t_start: float,
                     monitor: Sequence[str] = ("val_loss", "loss"), best_key: str = "best_val_loss",
                     higher_is_better: bool = False, metric_words: str = "val_loss",
                     history_decimals: int | None = None):
    """A Keras callback. ``state`` (the run's ``state.json`` contents) gets ``history``,
    ``epoch``, ``state[best_key]``, ``best_epoch`` and, when training stops early,
    ``stopped_reason``. The first of ``monitor`` found in the epoch's logs is compared with
    ``state[best_key]`` (greater wins with ``higher_is_better``)."""
    import keras

    class EpochState(keras.callbacks.Callback):
        """Checkpoints, best weights, early stopping and the wall-clock cap, resumable."""

        def on_epoch_begin(self, epoch, logs=None):
            self._t0 = time.monotonic()

        def on_epoch_end(self, epoch, logs=None):
            logs = {k: float(v) for k, v in (logs or {}).items()}
            try:
                logs["lr"] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
            except Exception:  # noqa: BLE001 - a schedule object: not needed for the record
                pass
            dt = time.monotonic() - self._t0
            shown = logs if history_decimals is None else {
                k: round(v, history_decimals) for k, v in logs.items()}
            state["history"].append({"epoch": epoch + 1, "seconds": round(dt, 1), **shown})
            state["epoch"] = epoch + 1
            score = next((logs[k] for k in monitor if k in logs), None)
            best = state.get(best_key)
            if score is not None and (best is None or (score > best if higher_is_better
                                                       else score < best)):
                state[best_key], state["best_epoch"] = score, epoch + 1
                self.model.save_weights(run_dir / "best.tmp.weights.h5")
                os.replace(run_dir / "best.tmp.weights.h5", run_dir / "best.weights.h5")
            self.model.save(run_dir / "last.tmp.keras")
            os.replace(run_dir / "last.tmp.keras", run_dir / "last.keras")
            stop = None
            if state.get("best_epoch") is not None and epoch + 1 - state["best_epoch"] >= patience:
                stop = f"early stopping: no {metric_words} improvement for {patience} epochs"
            elapsed = time.monotonic() - t_start
            if max_minutes is not None and elapsed + dt > max_minutes * 60:
                stop = (f"time cap: {elapsed / 60:.1f} min used, another epoch (~{dt / 60:.1f} min)"
                        f" would pass --max-minutes {max_minutes:g}")
            if stop:
                state["stopped_reason"] = stop
                self.model.stop_training = True
                progress(Progress(task=task, phase="train", epoch=epoch + 1, epochs=epochs,
                                  message=stop))
            (run_dir / "state.tmp.json").write_text(json.dumps(state, indent=1))
            os.replace(run_dir / "state.tmp.json", run_dir / "state.json")

    return EpochState()
