"""Training the U-Net: pairs → split by figshare number → ``model.fit`` (Dice + BCE) → best
checkpoint (validation Dice) → held-out evaluation → registry version with a model card.

Per epoch the run folder's ``ckpt/`` (``runs/segmentation/<version>/ckpt/``; the layout the
job runner's resume looks for) gets ``last.keras`` (model + optimizer, for ``resume``),
``best.weights.h5`` (highest validation Dice) and ``state.json`` (history, best epoch).
``max_minutes`` stops after the epoch that would otherwise overrun the budget; the run still
chooses its threshold on the validation pairs, evaluates and publishes. Backend-agnostic Keras 3
(``keras.ops`` loss, ``PyDataset`` input).
"""
from __future__ import annotations

import dataclasses
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core.device import limit_cpu_threads
from core.progress import Progress, ProgressCallback, null_progress
from core.segmentation import TASK

__all__ = ["TrainConfig", "TrainResult", "train", "dice_bce_loss", "soft_dice_loss", "dice_metric",
           "LOSS_WEIGHTS", "ARCHITECTURES"]

# architecture -> what it is (CLI choices and the Training page come from this table)
ARCHITECTURES = {"unet": "U-Net (Ronneberger et al. 2015), batch norm, sigmoid mask"}
# Dice + binary cross-entropy, equal weights: Dice counters the ~1 % foreground (a BCE-only model
# learns "no tumour anywhere"), BCE keeps gradients well-behaved where Dice is flat.
LOSS_WEIGHTS = {"dice": 1.0, "bce": 1.0}
# added to Dice's numerator and denominator: an empty prediction of an empty mask scores 1
_SMOOTH = 1.0


def _keras():
    import keras

    return keras


def soft_dice_loss(y_true, y_pred):
    """1 − soft Dice per image (sums over H, W, C), one value per image."""
    ops = _keras().ops
    y_true = ops.cast(y_true, y_pred.dtype)
    inter = ops.sum(y_true * y_pred, axis=(1, 2, 3))
    total = ops.sum(y_true, axis=(1, 2, 3)) + ops.sum(y_pred, axis=(1, 2, 3))
    return 1.0 - (2.0 * inter + _SMOOTH) / (total + _SMOOTH)


def dice_bce_loss(y_true, y_pred):
    """``LOSS_WEIGHTS`` · (soft Dice loss, mean per-pixel binary cross-entropy), per image."""
    keras = _keras()
    ops = keras.ops
    y_true = ops.cast(y_true, y_pred.dtype)
    p = ops.clip(y_pred, 1e-7, 1.0 - 1e-7)
    bce = -ops.mean(y_true * ops.log(p) + (1.0 - y_true) * ops.log(1.0 - p), axis=(1, 2, 3))
    return LOSS_WEIGHTS["dice"] * soft_dice_loss(y_true, y_pred) + LOSS_WEIGHTS["bce"] * bce


def dice_metric(y_true, y_pred):
    """Hard Dice (prediction ≥ 0.5) per image, both empty = 1: the number the card reports."""
    ops = _keras().ops
    t = ops.cast(y_true > 0.5, "float32")
    p = ops.cast(y_pred >= 0.5, "float32")
    inter = ops.sum(t * p, axis=(1, 2, 3))
    total = ops.sum(t, axis=(1, 2, 3)) + ops.sum(p, axis=(1, 2, 3))
    return ops.where(total > 0, 2.0 * inter / ops.maximum(total, 1.0), 1.0)


dice_bce_loss.__name__ = "dice_bce_loss"
dice_metric.__name__ = "dice"


def _registered():
    """The loss and metric registered with Keras' serialisation (``last.keras`` reloads)."""
    keras = _keras()
    if keras.saving.get_registered_object("medscan_segmentation>dice_bce_loss") is None:
        reg = keras.saving.register_keras_serializable(package="medscan_segmentation")
        reg(dice_bce_loss)
        reg(dice_metric)
    return dice_bce_loss, dice_metric


@dataclass
class TrainConfig:
    data: str
    arch: str = "unet"
    input_size: int = 128
    base_filters: int = 16
    depth: int = 4
    batch_norm: bool = True
    dropout: float = 0.1
    epochs: int = 40
    batch_size: int = 8
    lr: float = 1e-3
    min_lr: float = 1e-5
    warmup_epochs: int = 1
    patience: int = 10                  # early stopping on validation Dice
    val_fraction: float = 0.10
    test_fraction: float = 0.15
    margin: int = 40                    # figshare numbers dropped around held-out windows
    head_crop: bool = True
    threshold: float = 0.5              # before tuning (or with tune=False)
    tune: bool = True                   # choose threshold and clean-up on the validation pairs
    seed: int = 42
    max_minutes: float | None = None
    max_images: int | None = None       # first N training pairs (quick runs, tests)
    threads: int | None = None
    workers: int = 1
    run_dir: str | None = None
    resume: bool = False
    version: str | None = None
    activate: bool = False
    publish: bool = True
    weights_dir: str | None = None
    tried: list[str] = field(default_factory=list)   # what else was tried (recorded in the card)
    command: str | None = None


@dataclass
class TrainResult:
    version: str | None
    path: Path | None
    card: dict
    run_dir: Path
    history: list[dict] = field(default_factory=list)


def _lr_at(cfg: TrainConfig, epoch: int, time_fraction: float = 0.0) -> float:
    """Linear warm-up, then cosine decay to ``min_lr``. The decay follows whichever is further
    along: the epochs (``epoch`` of ``cfg.epochs``) or the wall-clock budget
    (``time_fraction`` of ``max_minutes`` used), so a run cut by ``--max-minutes`` still ends
    at a low learning rate instead of stopping mid-schedule."""
    if epoch < cfg.warmup_epochs:
        return cfg.lr * (epoch + 1) / (cfg.warmup_epochs + 1)
    t = max(epoch - cfg.warmup_epochs, 0) / max(cfg.epochs - cfg.warmup_epochs, 1)
    t = min(max(t, time_fraction), 1.0)
    return cfg.min_lr + 0.5 * (cfg.lr - cfg.min_lr) * (1 + math.cos(math.pi * t))


def _epoch_callback(run_dir: Path, cfg: TrainConfig, state: dict, progress: ProgressCallback,
                    t_start: float):
    """Checkpoints, best weights (highest validation Dice), early stopping, wall-clock cap."""
    from core.keras_checkpoint import epoch_checkpoint

    return epoch_checkpoint(run_dir, state, progress, task=TASK, epochs=cfg.epochs,
                            patience=cfg.patience, max_minutes=cfg.max_minutes, t_start=t_start,
                            monitor=("val_dice", "dice"), best_key="best_val_dice",
                            higher_is_better=True, metric_words="validation Dice",
                            history_decimals=5)


def train(cfg: TrainConfig, progress: ProgressCallback = null_progress) -> TrainResult:
    """Train, evaluate on the held-out windows and (``cfg.publish``) save a registry version."""
    limit_cpu_threads(cfg.threads)
    keras = _keras()

    from core import registry
    from core.config import REPO_ROOT
    from core.device import configure_device
    from core.keras_progress import KerasProgress
    from core.models.unet import build_unet
    from core.segmentation.data import (PairSequence, fingerprint, index_split, list_pairs,
                                        load_pairs, preprocessing_config)
    from core.segmentation.evaluate import evaluate_pairs, tune_postprocessing
    from core.segmentation.inference import Segmenter

    if cfg.arch not in ARCHITECTURES:
        raise ValueError(f"Unknown architecture {cfg.arch!r}; expected {', '.join(ARCHITECTURES)}.")
    t_start = time.monotonic()
    device = configure_device()
    keras.utils.set_random_seed(cfg.seed)
    loss_fn, metric_fn = _registered()
    version = cfg.version or registry.new_version_name(
        f"unet-{cfg.input_size}px-b{cfg.base_filters}d{cfg.depth}-")
    run_dir = Path(cfg.run_dir) if cfg.run_dir else REPO_ROOT / "runs" / TASK / version
    ckpt = run_dir / "ckpt"
    ckpt.mkdir(parents=True, exist_ok=True)

    data = list_pairs(cfg.data)
    tr, va, te = index_split(data.index, data.labels, val_fraction=cfg.val_fraction,
                             test_fraction=cfg.test_fraction, margin=cfg.margin)
    if cfg.max_images:
        tr = tr[:cfg.max_images]
    if not len(tr) or not len(va):
        raise ValueError(f"{cfg.data}: the split left {len(tr)} training and {len(va)} "
                         "validation pairs; need at least one of each.")
    prep = preprocessing_config(cfg.input_size, head_crop=cfg.head_crop, threshold=cfg.threshold)
    network = {"input_size": int(cfg.input_size), "base_filters": int(cfg.base_filters),
               "depth": int(cfg.depth), "batch_norm": bool(cfg.batch_norm),
               "dropout": float(cfg.dropout)}
    progress(Progress(task=TASK, phase="load", message=(
        f"{len(tr)} training / {len(va)} validation / {len(te)} test pairs "
        f"(figshare-number windows, margin {cfg.margin}), {device.label}")))
    x_tr, y_tr = load_pairs(data, tr, prep)
    x_va, y_va = load_pairs(data, va, prep)
    train_seq = PairSequence(x_tr, y_tr, batch_size=cfg.batch_size, training=True,
                             seed=cfg.seed, workers=cfg.workers)
    val_seq = PairSequence(x_va, y_va, batch_size=cfg.batch_size, training=False)

    state_path = ckpt / "state.json"
    state = {"epoch": 0, "best_val_dice": None, "best_epoch": None, "history": [],
             "stopped_reason": None}
    if cfg.resume and (ckpt / "last.keras").is_file() and state_path.is_file():
        model = keras.saving.load_model(ckpt / "last.keras")
        state = json.loads(state_path.read_text())
        state["stopped_reason"] = None
        progress(Progress(task=TASK, phase="load",
                          message=f"resuming {run_dir} after epoch {state['epoch']}"))
    else:
        if cfg.resume:
            progress(Progress(task=TASK, phase="load",
                              message=f"nothing to resume in {run_dir}: starting afresh"))
        model = build_unet(**network)
        model.compile(optimizer=keras.optimizers.Adam(cfg.lr), loss=loss_fn,
                      metrics=[metric_fn])
    if state["epoch"] < cfg.epochs:
        model.fit(train_seq, validation_data=val_seq, epochs=cfg.epochs,
                  initial_epoch=state["epoch"], verbose=0, callbacks=[
                      _epoch_callback(ckpt, cfg, state, progress, t_start),
                      KerasProgress(progress, task=TASK, phase="train", total_epochs=cfg.epochs,
                                    steps_per_epoch=len(train_seq)),
                      keras.callbacks.LearningRateScheduler(
                          lambda e, _lr: _lr_at(cfg, e, _time_fraction(cfg, t_start)))])
    if state["stopped_reason"] is None:
        state["stopped_reason"] = f"completed {state['epoch']} epochs"
    if (ckpt / "best.weights.h5").is_file():
        model.load_weights(ckpt / "best.weights.h5")

    # publish an uncompiled copy (no optimizer state in the weights file)
    export = build_unet(**network)
    export.set_weights(model.get_weights())
    minutes_train = (time.monotonic() - t_start) / 60
    draft = {"task": TASK, "version": version, "architecture": cfg.arch, "network": network,
             "input_size": int(cfg.input_size), "preprocessing": prep}
    tuning = None
    if cfg.tune:
        progress(Progress(task=TASK, phase="tune", message=(
            "threshold and mask clean-up chosen on the validation pairs")))
        tuning = tune_postprocessing(Segmenter(export, draft), data, va, progress=progress)
        prep.update(threshold=tuning["threshold"], postprocess=tuning["postprocess"],
                    tta=tuning["tta"])
    segmenter = Segmenter(export, draft)
    metrics = {}
    for name, positions in (("validation", va), ("test", te)):
        if len(positions):
            progress(Progress(task=TASK, phase="evaluate", message=(
                f"{name}: {len(positions)} held-out pairs at the masks' own size")))
            report = evaluate_pairs(segmenter, data, positions, progress=progress)
            report.pop("images")
            report["note"] = ("never seen in training or tuning" if name == "test" else
                              "chose the best epoch" + (" and the threshold / clean-up"
                                                        if tuning else "") + ": optimistic")
            metrics[name] = report
    held = metrics.get("test", metrics["validation"])
    seconds = [h["seconds"] for h in state["history"]]
    cfg_dict = {k: v for k, v in dataclasses.asdict(cfg).items()
                if k not in ("command", "weights_dir", "publish", "tried")}
    card = dict(draft, **{
        "description": (f"U-Net, {cfg.depth} levels, {cfg.base_filters} base filters, "
                        f"{cfg.input_size}² grayscale input after head crop, trained from scratch "
                        "on expert tumour masks (Dice + BCE); outputs the enhancing tumour"),
        "output": "one tumour probability per pixel; mask = probability ≥ "
                  "preprocessing.threshold, cleaned by preprocessing.postprocess",
        "classes_seen": data.classes,
        "data": {"name": data.root.name, "path": str(data.root.resolve()),
                 "fingerprint": fingerprint(data), "counts": data.counts(),
                 "train_counts": _counts(data, tr), "val_counts": _counts(data, va),
                 "test_counts": _counts(data, te),
                 "split": {"method": "contiguous figshare_index windows per class (no patient "
                                     "IDs in the source): test = lowest numbers, validation = "
                                     "highest; training drops same-class slices within the "
                                     "margin of either window",
                           "val_fraction": cfg.val_fraction, "test_fraction": cfg.test_fraction,
                           "margin": cfg.margin,
                           "test_index_ranges": _ranges(data, te),
                           "val_index_ranges": _ranges(data, va)}},
        "training": {"config": cfg_dict, "command": cfg.command, "device": device.label,
                     "loss": "soft Dice (per image) + binary cross-entropy, weights "
                             f"{LOSS_WEIGHTS}",
                     "augmentation": "horizontal flip, rotation ±15°, zoom 0.9–1.15, "
                                     "shift ±6 % (one affine map for image and mask; mask "
                                     "nearest), "
                                     "gamma / contrast / brightness / light blur on the image",
                     "epochs_run": state["epoch"], "best_epoch": state["best_epoch"],
                     "best_val_dice_training_size": state["best_val_dice"],
                     "stopped_reason": state["stopped_reason"],
                     "minutes": round(minutes_train, 1),
                     "seconds_per_epoch": round(float(np.median(seconds)), 1) if seconds else None,
                     "tuning": dict(tuning, note="flip, threshold and clean-up chosen on the "
                                                 "validation pairs only; test figures use them"
                                    ) if tuning else None,
                     "tried": list(cfg.tried), "history": state["history"]},
        "metrics": metrics,
        "headline": {"split": "test" if "test" in metrics else "validation",
                     "dice": held["dice"], "iou": held["iou"], "dice_ci95": held["dice_ci95"],
                     "n": held["n"]},
        "caveats": [
            "Research prototype, not a medical device: not validated for clinical use.",
            "Trained on 2-D T1 contrast-enhanced slices that all contain a glioma, meningioma or "
            "pituitary tumour; it has never seen a scan without a tumour, so a mask on a "
            "normal scan is possible.",
            "The masks outline the enhancing tumour only (no oedema), drawn as coarse polygons.",
            "No patient IDs: held-out slices are contiguous figshare-number windows with a "
            "margin, a proxy for patient-disjoint data, not a guarantee."],
        "credits": ["Cheng J. et al., PLoS ONE 10(10): e0140381, 2015, and PLoS ONE 11(6): "
                    "e0157112, 2016 (figshare brain tumor dataset, doi:10.6084/m9.figshare."
                    "1512427, CC BY 4.0)"],
    })
    (run_dir / "card_draft.json").write_text(json.dumps(card, indent=2))
    path = None
    if cfg.publish:
        path = registry.save_version(TASK, export, card, version=version, activate=cfg.activate,
                                     weights_dir=cfg.weights_dir)
    progress(Progress(task=TASK, phase="done", epoch=state["epoch"], epochs=cfg.epochs,
                      metrics={"dice": held["dice"], "iou": held["iou"]},
                      message=(f"version={version} saved {path}" if path else "not published")))
    return TrainResult(version if path else None, path, card, run_dir, state["history"])


def _time_fraction(cfg: TrainConfig, t_start: float) -> float:
    """Share of ``max_minutes`` used so far by this process (0 without a cap)."""
    if not cfg.max_minutes:
        return 0.0
    return (time.monotonic() - t_start) / (cfg.max_minutes * 60)


def _counts(data, positions) -> dict[str, int]:
    labels = data.labels[np.asarray(positions, np.int64)]
    return {c: int((labels == i).sum()) for i, c in enumerate(data.classes)}


def _ranges(data, positions) -> dict[str, list[int]]:
    """Per class: ``[lowest, highest]`` figshare number of the held-out pairs."""
    out = {}
    pos = np.asarray(positions, np.int64)
    for i, c in enumerate(data.classes):
        sel = pos[data.labels[pos] == i]
        if len(sel):
            out[c] = [int(data.index[sel].min()), int(data.index[sel].max())]
    return out
