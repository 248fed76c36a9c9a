"""Training: image folder -> stratified split -> ``model.fit`` -> best checkpoint -> temperature
-> registry version with a model card.

Backend-agnostic (Keras 3 layers, ``model.fit``, a ``keras.utils.PyDataset`` input), so the same
command trains under ``KERAS_BACKEND=jax`` on a GPU box and the weights load in the TensorFlow app.

Per epoch the run folder (``runs/classifier/<version>/``) gets ``last.keras`` (model + optimizer,
for ``--resume``), ``best.weights.h5`` (lowest validation loss) and ``state.json`` (history,
best epoch). Early stopping restores the best weights; ``max_minutes`` stops after the epoch that
would otherwise overrun the budget, and the run still calibrates and publishes.

Pretrained start (``pretrained="imagenet"`` or a weights file, architecture ``vgg16``): phase
"frozen" trains the head on a frozen base, phase "finetune" unfreezes blocks 4-5 at
``lr * finetune_lr_factor``. Without one the model trains from scratch and the card says so.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from core.classifier.architectures import CLASSIFIER_ARCHITECTURES, architecture
from core.device import limit_cpu_threads
from core.progress import Progress, ProgressCallback, null_progress

__all__ = ["TrainConfig", "TrainResult", "train", "recalibrate", "resolve_pretrained",
           "training_overlap", "init_source", "network_config",
           "SCRATCH_NOTICE", "IMAGENET_NOTOP_FILE", "ARCHITECTURES", "RECIPE_FIELDS",
           "recipe_from_card", "staged_recipe_note", "evaluate_versions", "default_eval_data",
           "default_train_data"]

SCRATCH_NOTICE = "trained from scratch, no ImageNet weights"
IMAGENET_NOTOP_FILE = "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"
_FINETUNE_BLOCKS = ("block4", "block5")
TASK = "classifier"
# architecture -> what it is (CLI choices and the Training page's selector), from the one table
ARCHITECTURES = {name: a.description for name, a in CLASSIFIER_ARCHITECTURES.items()}
#: augmentation recipes (implemented in ``core.classifier.data.AUGMENTATIONS``; kept here so the
#: CLI and the Training page list them without importing Keras)
AUGMENTATION_CHOICES = {
    "standard": "flip, rotation, zoom, shift, gamma/contrast, blur",
    "strong": "also wider geometry, bias field, noise, JPEG re-compression, padding bars and "
              "cut-out (against the data set's source shift)",
}
# training-config fields a new run copies from the active version's card (the shipped recipe)
RECIPE_FIELDS = ("arch", "input_size", "width", "dropout", "epochs", "batch_size", "lr",
                 "lr_schedule", "warmup_epochs", "patience", "val_fraction", "seed",
                 "label_smoothing", "bn_momentum", "augmentation", "extra_data",
                 "background_penalty", "source_oversample")


@dataclass
class TrainConfig:
    data: str
    arch: str = "vgg16_bn"              # vgg16 | vgg16_bn | cnn
    input_size: int = 96
    width: float = 0.5                  # VGG filter multiplier (1.0 = the Keras application)
    dropout: float = 0.5
    pretrained: str | None = None       # None | "imagenet" | path of VGG16 no-top weights
    epochs: int = 30
    frozen_epochs: int = 3              # pretrained only: epochs with the base frozen
    finetune_lr_factor: float = 0.1
    batch_size: int = 32
    lr: float = 1e-3
    lr_schedule: str = "cosine"         # cosine (after warm-up) | plateau | constant
    warmup_epochs: int = 1
    min_lr: float = 1e-5
    patience: int = 6                   # early stopping on validation loss
    val_fraction: float = 0.15
    seed: int = 42
    max_minutes: float | None = None
    max_images: int | None = None       # stratified subsample, for quick experiments
    modality: str | None = "MR"         # DICOM (0008,0060) of the training data; the app warns on others
    body_part: tuple[str, ...] | None = ("BRAIN", "HEAD")  # (0018,0015) values that match it
    class_weighting: bool = True
    label_smoothing: float = 0.0
    bn_momentum: float = 0.9
    augmentation: str = "standard"      # standard | strong (core.classifier.data.AUGMENTATIONS)
    extra_data: tuple[str, ...] = ()    # train-only folders (<class>/*.png); never in validation
    background_penalty: float = 0.0     # λ of core.classifier.focus (0: off)
    source_oversample: int = 1          # repeat a class's minority source group this often
    source_manifest: str | None = None  # per-file sources (default: train_manifest.csv by data)
    threads: int | None = None          # intra-op threads (TensorFlow back end)
    workers: int = 1                    # PyDataset augmentation threads
    init_from: str | None = None        # weights file of the same architecture (any input size)
    run_dir: str | None = None
    resume: bool = False
    version: str | None = None
    activate: bool = False
    publish: bool = True                # save a registry version at the end
    weights_dir: str | None = None
    eval_data: str | None = None        # fixed evaluation set (default $MEDSCAN_EVAL_DIR)
    command: str | None = None          # recorded in the card


@dataclass
class TrainResult:
    version: str | None
    path: Path | None
    card: dict
    run_dir: Path
    history: list[dict] = field(default_factory=list)


def resolve_pretrained(spec: str | None) -> tuple[str | None, str | None]:
    """``(weights argument for the builder, notice)``. ``"imagenet"`` resolves to the Keras cache
    file when present (never downloads during training); otherwise ``(None, notice)``."""
    if spec is None:
        return None, SCRATCH_NOTICE
    if spec == "imagenet":
        cache = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "models"
        path = cache / IMAGENET_NOTOP_FILE
        if path.is_file():
            return str(path), None
        return None, (f"{SCRATCH_NOTICE} (ImageNet weights requested but {path} is not cached; "
                      "download them on a machine with network access or pass --pretrained PATH)")
    if not Path(spec).is_file():
        raise ValueError(f"--pretrained {spec!r}: no such weights file.")
    return str(spec), None


def network_config(arch_name: str, input_size: int, width: float, dropout: float,
                   bn_momentum: float, num_classes: int) -> tuple[dict, dict, str]:
    """(builder kwargs for the card, preprocessing dict, Grad-CAM layer), from the
    architecture table (training and self-supervised pre-training build the same network)."""
    from core.classifier.preprocess import preprocessing_config

    arch = architecture(arch_name)
    n = int(input_size)
    net = {"num_classes": num_classes, "input_shape": [n, n, arch.channels]}
    if arch.default_width is not None:
        net |= {"weights": None, "width": width}
    net["dropout"] = dropout
    if arch.uses_bn_momentum:
        net["bn_momentum"] = bn_momentum
    return net, preprocessing_config(arch.normalise, arch.channels, n), arch.gradcam_layer


def _network(cfg: TrainConfig, num_classes: int) -> tuple[dict, dict, str]:
    return network_config(cfg.arch, cfg.input_size, cfg.width, cfg.dropout, cfg.bn_momentum,
                          num_classes)


def _lr_at(cfg: TrainConfig, epoch: int, base_lr: float, start: int = 0, total: int | None = None
           ) -> float:
    """Per-epoch learning rate: linear warm-up then cosine decay to ``min_lr``."""
    e = epoch - start
    total = (total or cfg.epochs) - start
    if cfg.lr_schedule == "constant":
        return base_lr
    if e < cfg.warmup_epochs:
        return base_lr * (e + 1) / (cfg.warmup_epochs + 1)
    span = max(total - cfg.warmup_epochs, 1)
    t = min(max(e - cfg.warmup_epochs, 0) / span, 1.0)
    return cfg.min_lr + 0.5 * (base_lr - cfg.min_lr) * (1 + math.cos(math.pi * t))


def _epoch_state_callback(run_dir: Path, cfg: TrainConfig, state: dict, progress: ProgressCallback,
                          t_start: float):
    """Checkpoints, best weights (lowest val_loss), early stopping and the wall-clock cap."""
    from core.keras_checkpoint import epoch_checkpoint

    return epoch_checkpoint(run_dir, state, progress, task=TASK, epochs=cfg.epochs,
                            patience=cfg.patience, max_minutes=cfg.max_minutes, t_start=t_start)


def _logits(model, x_seq) -> np.ndarray:
    import keras

    from core.classifier.focus import unwrap_input

    sub = keras.Model(model.inputs[0], model.get_layer("logits").output)
    return np.concatenate([np.asarray(keras.ops.convert_to_numpy(sub(unwrap_input(x), training=False)),
                                      np.float64) for x, _ in (x_seq[i] for i in range(len(x_seq)))])


@dataclass
class _Loaded:
    """What :func:`_load` gives the later stages: the folder, its split and the batches."""
    data: Any
    x_tr: np.ndarray
    y_tr: np.ndarray
    x_va: np.ndarray
    y_va: np.ndarray
    extra_entries: list[dict]
    train_seq: Any
    val_seq: Any
    repeats: np.ndarray | None = None   # per training image, with --source-oversample
    source_entry: dict | None = None    # the card's record of it


def _source_oversampling(cfg: TrainConfig, data, tr_idx: np.ndarray, n_train: int,
                         y_tr: np.ndarray, progress: ProgressCallback
                         ) -> tuple[np.ndarray | None, dict | None]:
    """``--source-oversample K``: repeats per training image (the main folder's images by their
    manifest source group, extra folders' once) and the card entry; (None, None) when off."""
    from core.classifier.sources import find_source_manifest, source_groups, source_repeats
    from core.config import portable

    if cfg.source_oversample <= 1:
        return None, None
    manifest = Path(cfg.source_manifest) if cfg.source_manifest else find_source_manifest(cfg.data)
    if manifest is None:
        raise ValueError(f"--source-oversample needs the data set's source manifest: no "
                         f"train_manifest.csv in or beside {cfg.data} (give --source-manifest).")
    groups = source_groups([data.files[i] for i in tr_idx], manifest)
    groups += [None] * (n_train - len(groups))          # extra folders: no source, once
    repeats, summary = source_repeats(y_tr, groups, int(cfg.source_oversample))
    listed = sum(g is not None for g in groups[:len(tr_idx)])
    if listed < 0.5 * len(tr_idx):
        raise ValueError(f"source manifest {manifest} lists only {listed} of the "
                         f"{len(tr_idx)} training images: is it this folder's manifest?")
    cells = {data.classes[c]: {g: {"images": n, "repeats": r} for g, (n, r) in gs.items()}
             for c, gs in summary.items()}
    entry = {"manifest": portable(str(manifest)),
             "manifest_sha256": hashlib.sha256(manifest.read_bytes()).hexdigest(),
             "factor": int(cfg.source_oversample), "groups": cells,
             "epoch_images": int(repeats.sum()),
             "rule": ("source group from the manifest: 'plain' = square source, not upscaled; "
                      "'padded or upscaled' otherwise. A group under 25 % of its class's "
                      "training images is repeated FACTOR times per epoch (each repeat augmented "
                      "afresh); extra folders' images once")}
    boosted = [f"{c} {g} {v['images']}×{v['repeats']}" for c, gs in cells.items()
               for g, v in gs.items() if v["repeats"] > 1]
    progress(Progress(task=TASK, phase="load", message=(
        f"source oversampling ×{cfg.source_oversample} ({portable(str(manifest))}): "
        + (", ".join(boosted) or "no minority group") + f"; {int(repeats.sum())} images an epoch")))
    return repeats, entry


def _load(cfg: TrainConfig, data, prep: dict, device_label: str, progress: ProgressCallback
          ) -> _Loaded:
    """Stage 1: split the listed folder ``data``, decode and crop the images, add the
    train-only extra folders, and build the training (augmented) and validation batches."""
    from core.classifier.data import ImageFolderSequence, load_images, training_split

    tr_idx, va_idx = training_split(data.labels, cfg.val_fraction, cfg.seed, cfg.max_images)
    progress(Progress(task=TASK, phase="load", message=(
        f"{len(tr_idx)} training / {len(va_idx)} validation images, classes {data.classes}, "
        f"{device_label}")))
    images = load_images([data.files[i] for i in np.concatenate([tr_idx, va_idx])], prep)
    x_tr, x_va = images[:len(tr_idx)], images[len(tr_idx):]
    y_tr, y_va = data.labels[tr_idx], data.labels[va_idx]
    extra_entries = []
    for extra in cfg.extra_data:
        x_ex, y_ex, entry = load_extra(extra, data.classes, prep, x_va)
        x_tr, y_tr = np.concatenate([x_tr, x_ex]), np.concatenate([y_tr, y_ex])
        extra_entries.append(entry)
        progress(Progress(task=TASK, phase="load", message=(
            f"extra training data {entry['path']}: {entry['used']} images used, "
            f"{entry['dropped_near_validation']} dropped as near duplicates of validation images")))
    repeats, source_entry = _source_oversampling(cfg, data, tr_idx, len(y_tr), y_tr, progress)
    norm, ch, k = prep["normalise"], prep["channels"], len(data.classes)
    train_seq = ImageFolderSequence(x_tr, y_tr, k, batch_size=cfg.batch_size,
                                    normalise_mode=norm, channels=ch, training=True,
                                    seed=cfg.seed, workers=cfg.workers,
                                    augmentation=cfg.augmentation, repeats=repeats)
    val_seq = ImageFolderSequence(x_va, y_va, k, batch_size=cfg.batch_size,
                                  normalise_mode=norm, channels=ch, training=False)
    return _Loaded(data, x_tr, y_tr, x_va, y_va, extra_entries, train_seq, val_seq,
                   repeats, source_entry)


def _pretrained_start(cfg: TrainConfig, start: dict | None, progress: ProgressCallback
                      ) -> tuple[str | None, str | None]:
    """(weights to start the base from, notice for the card): ImageNet-style weights only for
    plain vgg16 at width 1; everything else trains from scratch and says so, or names what
    ``--init-from`` started from (``start``: :func:`init_source`)."""
    pretrained_weights, notice = (None, SCRATCH_NOTICE)
    if architecture(cfg.arch).pretrained_weights and cfg.pretrained:
        if cfg.width != 1.0:
            raise ValueError(f"--width {cfg.width:g} cannot use pretrained weights (width 1 only).")
        pretrained_weights, notice = resolve_pretrained(cfg.pretrained)
    elif cfg.pretrained:
        have = [a for a, e in CLASSIFIER_ARCHITECTURES.items() if e.pretrained_weights]
        notice = (f"{SCRATCH_NOTICE} (--pretrained ignored: only architecture "
                  f"{', '.join(have)} has them)")
    if notice == SCRATCH_NOTICE and start:
        notice = f"no ImageNet weights; {start.get('reader') or 'started from ' + start['describe']}"
    if notice:
        progress(Progress(task=TASK, phase="load", message=f"NOTICE: {notice}"))
    return pretrained_weights, notice


def init_source(init_from: str | None) -> dict | None:
    """What ``--init-from`` started from, for the card: the file; when it was written by
    ``pretrain classifier`` (a JSON sidecar beside it) how it was pre-trained; when it is a
    checkpoint of an earlier training run (its ``card_draft.json`` beside it) that run's command,
    epochs, validation figures and, nested, what *it* started from (``from_run``), so that a
    staged recipe's card records every stage down to the first one's start."""
    if not init_from:
        return None
    from core.config import portable

    out = {"path": portable(str(init_from)), "describe": f"the weights {portable(str(init_from))}"}
    sidecar = Path(str(init_from) + ".json")
    if sidecar.is_file():
        try:
            info = json.loads(sidecar.read_text())
        except ValueError:
            return out
        out["self_supervised"] = {k: info.get(k) for k in (
            "method", "data", "images", "epochs_done", "minutes", "probe", "command")}
        ssl = _ssl_phrase(info)
        out["describe"] = f"{ssl}: {portable(str(init_from))})"
        out["reader"] = f"started from {ssl})"
        return out
    run = _run_of_checkpoint(Path(init_from))
    if run is not None:
        out["from_run"] = run
        earlier = run.get("initialisation") or {}
        out["describe"] = (f"the best checkpoint of the run {run['run_dir']} "
                           f"({run.get('input_size')} px, best epoch {run.get('best_epoch')} of "
                           f"{run.get('epochs_run')})"
                           + (f", which started from {earlier['describe']}"
                              if earlier.get("describe") else ", which started from scratch"))
        if earlier.get("self_supervised"):
            out["self_supervised"] = earlier["self_supervised"]
        out["reader"] = _reader_lineage(out)
    return out


def _ssl_phrase(info: dict) -> str:
    """"self-supervised weights (METHOD on N unlabelled images, E epochs" (no closing bracket)."""
    return (f"self-supervised weights ({(info.get('method') or 'SimCLR').split(':')[0]} "
            f"on {info.get('images')} unlabelled images, {info.get('epochs_done')} epochs")


def _reader_lineage(start: dict) -> str:
    """One sentence for readers of the card (its caveats and description): where a chain of
    ``--init-from`` runs began and how many supervised stages came before this one, without
    the run folders (those stay in ``initialisation``)."""
    stages, node = 0, start
    while node and node.get("from_run"):
        stages += 1
        node = (node["from_run"] or {}).get("initialisation") or {}
    n = f"{stages} earlier supervised stage{'s' if stages != 1 else ''}"
    if node and node.get("self_supervised"):
        return f"started from {_ssl_phrase(node['self_supervised'])}), then {n}"
    if node and node.get("path"):
        return f"continued from {n} that started from the weights {node['path']}"
    return f"continued from {n} that started from scratch"


def _run_of_checkpoint(weights: Path) -> dict | None:
    """The training run a checkpoint (``RUN_DIR/best.weights.h5`` and the like) came from, read
    from the ``card_draft.json`` that run wrote; None when there is none or it is unreadable."""
    from core.config import portable

    draft = weights.parent / "card_draft.json"
    if not draft.is_file():     # a registry version's weights: its card tells the same
        draft = weights.parent / "model_card.json"
    try:
        card = json.loads(draft.read_text()) if draft.is_file() else None
    except (OSError, ValueError):
        return None
    if not isinstance(card, dict):
        return None
    training = card.get("training") or {}
    validation = (card.get("metrics") or {}).get("validation") or {}
    run_dir = (weights.parent if draft.name == "card_draft.json"
               else Path(training.get("run_dir") or weights.parent))
    return {"run_dir": portable(str(run_dir)), "version": card.get("version"),
            "input_size": card.get("input_size"), "command": training.get("command"),
            "epochs_run": training.get("epochs_run"), "best_epoch": training.get("best_epoch"),
            "minutes": training.get("minutes"),
            "validation": {k: validation.get(k) for k in ("accuracy", "macro_f1", "n")
                           if k in validation},
            "initialisation": card.get("initialisation")}


def _build(cfg: TrainConfig, network: dict, pretrained_weights: str | None, run_dir: Path,
           loss, progress: ProgressCallback, gradcam_layer: str | None = None):
    """Stage 2: the compiled model and the run state — resumed from ``run_dir/last.keras``
    with ``cfg.resume``, else built (optionally initialised from ``cfg.init_from``) inside the
    distribution strategy's scope. With ``cfg.background_penalty`` the model is the two-input
    training graph of :func:`core.classifier.focus.wrap` around the classifier."""
    import keras

    from core.device import distribution_strategy

    state_path = run_dir / "state.json"
    state = {"epoch": 0, "best_val_loss": None, "best_epoch": None, "history": [],
             "stopped_reason": None}
    strategy = distribution_strategy()
    scope = strategy.scope() if strategy is not None else _nullcontext()
    with scope:
        if cfg.resume and (run_dir / "last.keras").is_file() and state_path.is_file():
            import core.classifier.focus  # noqa: F401  (registers BackgroundPenalty for loading)

            model = keras.saving.load_model(run_dir / "last.keras")
            state = json.loads(state_path.read_text())
            progress(Progress(task=TASK, phase="load",
                              message=f"resuming {run_dir} after epoch {state['epoch']}"))
        else:
            if cfg.resume:
                progress(Progress(task=TASK, phase="load",
                                  message=f"nothing to resume in {run_dir}: starting afresh"))
            builder = architecture(cfg.arch).builder
            model = builder(**dict(network, weights=pretrained_weights)
                            if "weights" in network else network)
            if cfg.init_from:
                if not Path(cfg.init_from).is_file():
                    raise ValueError(f"--init-from {cfg.init_from!r}: no such weights file.")
                model.load_weights(cfg.init_from)  # convolutional + GAP: any input size fits
                progress(Progress(task=TASK, phase="load",
                                  message=f"initialised from {cfg.init_from}"))
            if cfg.background_penalty:
                from core.classifier.focus import wrap

                model = wrap(model, gradcam_layer, cfg.background_penalty)
                progress(Progress(task=TASK, phase="load", message=(
                    f"background penalty {cfg.background_penalty:g} on {gradcam_layer}")))
            model.compile(optimizer=keras.optimizers.Adam(cfg.lr), loss=loss,
                          metrics=["accuracy"])
    return model, state


def _fit(cfg: TrainConfig, model, loss, d: _Loaded, state: dict, run_dir: Path,
         two_phase: bool, cw: dict | None, t_start: float, progress: ProgressCallback) -> None:
    """Stage 3: fit (pretrained: frozen base, then the last blocks), checkpointing every epoch
    into ``run_dir``; ends with the best epoch's weights loaded and ``state`` filled in."""
    import keras

    from core.keras_progress import KerasProgress

    common = dict(x=d.train_seq, validation_data=d.val_seq, class_weight=cw, verbose=0)
    epoch_cb = _epoch_state_callback(run_dir, cfg, state, progress, t_start)

    def callbacks(phase: str, offset: int, base_lr: float, start: int, total: int):
        cbs = [epoch_cb, KerasProgress(progress, task=TASK, phase=phase, total_epochs=cfg.epochs,
                                       epoch_offset=offset, steps_per_epoch=len(d.train_seq))]
        if cfg.lr_schedule == "plateau":
            cbs.append(keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=2,
                                                         min_lr=cfg.min_lr))
        else:
            cbs.append(keras.callbacks.LearningRateScheduler(
                lambda e, _lr: _lr_at(cfg, e, base_lr, start, total)))
        return cbs

    if two_phase and state["epoch"] < cfg.frozen_epochs:
        for layer in model.layers:
            if layer.name.startswith("block"):
                layer.trainable = False
        model.compile(optimizer=keras.optimizers.Adam(cfg.lr), loss=loss, metrics=["accuracy"])
        model.fit(epochs=cfg.frozen_epochs, initial_epoch=state["epoch"],
                  callbacks=callbacks("frozen", 0, cfg.lr, 0, cfg.frozen_epochs), **common)
    if two_phase and not model.stop_training:
        for layer in model.layers:
            layer.trainable = (not layer.name.startswith("block")
                               or layer.name.startswith(_FINETUNE_BLOCKS))
        ft_lr = cfg.lr * cfg.finetune_lr_factor
        model.compile(optimizer=keras.optimizers.Adam(ft_lr), loss=loss, metrics=["accuracy"])
        model.fit(epochs=cfg.epochs, initial_epoch=max(state["epoch"], cfg.frozen_epochs),
                  callbacks=callbacks("finetune", 0, ft_lr, cfg.frozen_epochs, cfg.epochs),
                  **common)
    elif not two_phase and state["epoch"] < cfg.epochs:
        model.fit(epochs=cfg.epochs, initial_epoch=state["epoch"],
                  callbacks=callbacks("train", 0, cfg.lr, 0, cfg.epochs), **common)
    if state["stopped_reason"] is None:
        state["stopped_reason"] = f"completed {state['epoch']} epochs"
    if (run_dir / "best.weights.h5").is_file():
        model.load_weights(run_dir / "best.weights.h5")


def _calibrate(model, d: _Loaded) -> tuple[float, int, dict, dict]:
    """Stage 4: the temperature, fitted on the validation images with no near duplicate in the
    training images; returns (temperature, images used, report before, report after)."""
    from core.classifier.calibration import fit_temperature, softmax
    from core.classifier.dedup import calibration_subset
    from core.classifier.metrics import classification_report

    logits = _logits(model, d.val_seq)
    cal_idx = calibration_subset(d.x_tr, d.x_va)
    temperature = fit_temperature(logits[cal_idx], d.y_va[cal_idx])
    before = classification_report(softmax(logits), d.y_va, d.data.classes)
    after = classification_report(softmax(logits, temperature), d.y_va, d.data.classes)
    return temperature, len(cal_idx), before, after


def _card(cfg: TrainConfig, version: str, d: _Loaded, *, network: dict, prep: dict,
          gradcam_layer: str, calibration: dict, before: dict, after: dict, two_phase: bool,
          notice: str | None, initialisation: dict | None, state: dict, cw: dict | None,
          minutes: float, device_label: str,
          run_dir: Path) -> dict:
    """Stage 5: the model card (written through ``registry`` with portable paths)."""
    from core.classifier.data import fingerprint

    data, y_tr, y_va = d.data, d.y_tr, d.y_va
    cfg_dict = {k: v for k, v in dataclasses.asdict(cfg).items()
                if k not in ("command", "weights_dir", "publish")}
    return {
        "task": TASK, "version": version,
        "architecture": cfg.arch,
        "network": network,
        "classes": data.classes,
        "input_size": int(cfg.input_size),
        "preprocessing": prep,
        "gradcam_layer": gradcam_layer,
        "calibration": calibration,
        "pretrained": bool(two_phase),
        "pretrained_source": (cfg.pretrained if two_phase else None),
        "notice": notice,
        "initialisation": initialisation,
        "description": _describe(cfg, two_phase, initialisation),
        "data": {"path": str(Path(cfg.data).resolve()), "fingerprint": fingerprint(data),
                 "modality": cfg.modality,
                 "body_part": list(cfg.body_part) if cfg.body_part else None,
                 "counts": data.counts(),
                 "train_counts": {c: int((y_tr == i).sum()) for i, c in enumerate(data.classes)},
                 "val_counts": {c: int((y_va == i).sum()) for i, c in enumerate(data.classes)},
                 "split": {"val_fraction": cfg.val_fraction, "seed": cfg.seed,
                           "stratified_by": "class, by file"},
                 "extra_training_data": d.extra_entries,
                 **({"source_oversampling": d.source_entry} if d.source_entry else {})},
        "training": {"config": cfg_dict, "command": cfg.command, "device": device_label,
                     "epochs_run": state["epoch"], "best_epoch": state["best_epoch"],
                     "stopped_reason": state["stopped_reason"], "minutes": round(minutes, 1),
                     "history": state["history"],
                     "class_weights": cw, "run_dir": str(run_dir)},
        "metrics": {"validation": {
            "accuracy": after["accuracy"], "macro_f1": after["macro_f1"],
            "ece_uncalibrated": before["ece"], "ece_calibrated": after["ece"],
            "n": after["n"], "note": "validation split of the training folder (near duplicates "
                                     "may remain across it: expect test to be lower)"}},
        "caveats": _caveats(notice, cfg.background_penalty),
        "credits": ["Brain Tumor MRI Dataset, compiled by Masoud Nickparvar (Kaggle, CC0 1.0)",
                    "Cheng J. et al., PLoS ONE 10(10), 2015 (figshare brain tumor dataset, "
                    "CC BY 4.0)"],
    }


def _publish(cfg: TrainConfig, version: str, model, card: dict, progress: ProgressCallback
             ) -> Path | None:
    """Stage 6: save the registry version (the chief alone in a TF_CONFIG cluster), fit its
    out-of-distribution statistics, and evaluate it next to the active version on the fixed
    evaluation set when there is one. Returns the version's folder, or None."""
    from core import registry
    from core.config import eval_dir
    from core.device import is_chief
    from core.errors import MedScanError

    path = None
    if cfg.publish and is_chief():   # TF_CONFIG cluster: the chief alone publishes
        # publish an uncompiled copy: the weights file then holds no optimizer state (1/3 size)
        from core.models import build_model

        export = build_model(card)
        export.set_weights(model.get_weights())
        path = registry.save_version(TASK, export, card, version=version, activate=cfg.activate,
                                     weights_dir=cfg.weights_dir)
    if path is not None:
        _fit_ood_or_warn(cfg, version, progress)
    eval_data = cfg.eval_data or (str(eval_dir()) if eval_dir() else None)
    if path is not None and eval_data:
        active = registry.active_version(TASK, weights_dir=cfg.weights_dir)
        try:
            evaluate_versions([version] + ([active] if active and active != version else []),
                              eval_data, weights_dir=cfg.weights_dir, progress=progress)
        except (ValueError, OSError, MedScanError) as err:   # the candidate stays published
            progress(Progress(task=TASK, phase="evaluate",
                              message=f"WARNING: evaluation set {eval_data} skipped: {err}"))
    return path


def train(cfg: TrainConfig, progress: ProgressCallback = null_progress) -> TrainResult:
    """Train, calibrate and (``cfg.publish``) save a registry version. See the module doc.
    Stages: :func:`_load`, :func:`_build`, :func:`_fit`, :func:`_calibrate`, :func:`_card`,
    :func:`_publish`."""
    limit_cpu_threads(cfg.threads)
    import keras

    from core import registry
    from core.classifier.data import class_weights, list_image_folder
    from core.config import REPO_ROOT
    from core.device import configure_device, worker_run_dir

    t_start = time.monotonic()
    device = configure_device()
    keras.utils.set_random_seed(cfg.seed)
    version = cfg.version or registry.new_version_name(f"{cfg.arch}-")
    run_dir = Path(cfg.run_dir) if cfg.run_dir else REPO_ROOT / "runs" / TASK / version
    run_dir = worker_run_dir(run_dir)   # TF_CONFIG cluster: non-chief workers write their own
    run_dir.mkdir(parents=True, exist_ok=True)

    data = list_image_folder(cfg.data)
    network, prep, gradcam_layer = _network(cfg, len(data.classes))
    d = _load(cfg, data, prep, device.label, progress)
    start = init_source(cfg.init_from)
    pretrained_weights, notice = _pretrained_start(cfg, start, progress)
    two_phase = pretrained_weights is not None
    loss = keras.losses.CategoricalCrossentropy(label_smoothing=cfg.label_smoothing)
    model, state = _build(cfg, network, pretrained_weights, run_dir, loss, progress,
                          gradcam_layer)
    if cfg.background_penalty:
        from core.classifier.focus import grid_shape

        grid = grid_shape(model, gradcam_layer)
        d.train_seq.background_grid = d.val_seq.background_grid = grid
    # balanced over what an epoch holds (repeated images counted as often as they appear)
    y_epoch = d.y_tr if d.repeats is None else np.repeat(d.y_tr, d.repeats)
    cw = class_weights(y_epoch, len(d.data.classes)) if cfg.class_weighting else None
    _fit(cfg, model, loss, d, state, run_dir, two_phase, cw, t_start, progress)

    progress(Progress(task=TASK, phase="calibrate", epoch=state["epoch"], epochs=cfg.epochs,
                      message="fitting temperature on the validation split"))
    temperature, n_cal, before, after = _calibrate(model, d)
    card = _card(cfg, version, d, network=network, prep=prep, gradcam_layer=gradcam_layer,
                 calibration=_calibration_entry(temperature, n_cal, len(d.y_va)),
                 before=before, after=after, two_phase=two_phase, notice=notice,
                 initialisation=start, state=state,
                 cw=cw, minutes=(time.monotonic() - t_start) / 60, device_label=device.label,
                 run_dir=run_dir)
    (run_dir / "card_draft.json").write_text(json.dumps(card, indent=2))
    path = _publish(cfg, version, model, card, progress)
    progress(Progress(task=TASK, phase="done", epoch=state["epoch"], epochs=cfg.epochs,
                      metrics={"val_accuracy": after["accuracy"], "val_macro_f1": after["macro_f1"],
                               "temperature": temperature},
                      message=(f"version={version} saved {path}" if path else "not published")))
    return TrainResult(version if path else None, path, card, run_dir, state["history"])


def load_extra(folder: str | Path, classes: list[str], prep: dict, x_val: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray, dict]:
    """Train-only images from ``folder`` (``<class>/*``, a subset of ``classes``): decoded like
    the training images; those within the near-duplicate distance of any validation image are
    dropped, so validation stays unseen. Returns (images, labels, card entry)."""
    from core.classifier.data import fingerprint, list_image_folder, load_images
    from core.classifier.dedup import (DEDUP_MAX_BITS, DEDUP_MIN_NCC, max_ncc, min_hamming,
                                       phashes)

    root = Path(folder)
    if not root.is_dir():
        raise ValueError(f"--extra-data {folder}: no such folder.")
    present = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    unknown = [c for c in present if c not in classes]
    if unknown:
        raise ValueError(f"--extra-data {folder}: class folder(s) {unknown} are not among the "
                         f"training classes {classes}.")
    extra = list_image_folder(root, [c for c in classes if c in present], min_classes=1)
    labels = np.asarray([classes.index(extra.classes[i]) for i in extra.labels], np.int64)
    images = load_images(extra.files, prep)
    near = ((min_hamming(phashes(images), phashes(x_val)) <= DEDUP_MAX_BITS)
            | (max_ncc(images, x_val) > DEDUP_MIN_NCC))
    keep = np.flatnonzero(~near)
    entry = {"path": str(root.resolve()), "fingerprint": fingerprint(extra),
             "counts": extra.counts(), "used": int(len(keep)),
             "dropped_near_validation": int(near.sum()),
             "used_counts": {c: int((labels[keep] == i).sum()) for i, c in enumerate(classes)},
             "rule": f"train only; dropped when the DCT pHash is within {DEDUP_MAX_BITS} of 64 "
                     f"bits of any validation image, or the normalised correlation at 64x64 "
                     f"exceeds {DEDUP_MIN_NCC}"}
    return images[keep], labels[keep], entry


def _fit_ood_or_warn(cfg: TrainConfig, version: str, progress: ProgressCallback) -> None:
    """Fit the new version's out-of-distribution check on its own training split (threshold
    from its validation split), so a candidate is not published "not checked" when it could be
    checked. A model without the feature layers, or data that cannot be read again, leaves the
    version "not checked" with a warning in the progress log; the version stays published."""
    from core.classifier.evaluate import fit_ood
    from core.errors import MedScanError

    try:
        fit_ood(cfg.data, version, weights_dir=cfg.weights_dir, command=cfg.command,
                progress=progress)
    except (ValueError, OSError, MedScanError) as err:
        progress(Progress(task=TASK, phase="ood",
                          message=f"WARNING: out-of-distribution check not fitted ({err}); "
                                  f"the version says 'not checked'"))


def _trained_card(card: dict | None) -> dict | None:
    """``card``, or for an ensemble (no training of its own) its first member's card, as the
    default registry has it (None when that member cannot be read)."""
    from core import registry
    from core.errors import MedScanError

    if not registry.is_ensemble(card):
        return card
    try:
        return registry.load_card(TASK, registry.weights_version(card))
    except MedScanError:
        return None


def staged_recipe_note(card: dict | None) -> str | None:
    """For the Training page: when ``card``'s version did not start from random weights, one
    sentence on where it began and what its recipe's defaults leave out (None otherwise)."""
    card = _trained_card(card)
    if not card:
        return None
    init = card.get("initialisation") or {}
    if not init and not (((card.get("training") or {}).get("config") or {}).get("init_from")):
        return None
    if init.get("from_run") or init.get("self_supervised"):
        began = ((init.get("reader") or _reader_lineage(init)) if init.get("from_run")
                 else f"started from {_ssl_phrase(init['self_supervised'])})")
    else:
        began = f"continued from the weights {init.get('path') or 'of an earlier run'}"
    note = (f"That version {began}. The defaults below repeat only its last stage: from random "
            "weights they land far lower. On the same classes, start from the active version's "
            "weights (*Start from*, below) to fine-tune it")
    from core.classifier.recipe import staged_stages

    if staged_stages(card):
        return note + (", or rerun its whole recipe with the switch below (on the server: "
                       f"`python -m core train classifier --data DIR --recipe-of "
                       f"{card.get('version')}`).")
    repro = (card.get("reproduce") or {}).get("command")
    return note + (f", or rerun its whole recipe on the server: `{repro}`." if repro else ".")


def recipe_from_card(card: dict | None) -> dict:
    """The training settings (:data:`RECIPE_FIELDS`) of a version's card: its recorded training
    config, with architecture, width and input size taken from the model itself; the
    :class:`TrainConfig` defaults fill what the card lacks. Not copied: data, init_from,
    run_dir, version (a run from the app starts from scratch on its own folder)."""
    recipe = {f.name: f.default for f in dataclasses.fields(TrainConfig) if f.name in RECIPE_FIELDS}
    card = _trained_card(card)
    if not card:
        return recipe
    recorded = ((card.get("training") or {}).get("config") or {})
    recipe.update({k: v for k, v in recorded.items() if k in RECIPE_FIELDS and v is not None})
    net = card.get("network") or {}
    recipe["arch"] = card.get("architecture", recipe["arch"])
    recipe["input_size"] = int(card.get("input_size", recipe["input_size"]))
    if "width" in net:
        recipe["width"] = float(net["width"])
    if "dropout" in net:
        recipe["dropout"] = float(net["dropout"])
    return recipe


def expected_minutes(card: dict | None, *, input_size: int, width: float, epochs: int,
                     n_images: int | None = None) -> float | None:
    """Expected wall-clock minutes of a run on this kind of machine, from the median seconds
    per epoch the card's own training recorded, scaled by pixels (input size squared), by
    width (the convolutions' cost grows with width squared) and by the number of training
    images (``n_images``; the card's own count when None). None when the card has no timing.
    An ensemble's figures are its first member's (a run trains one model)."""
    card = _trained_card(card)
    if not card:
        return None
    training = card.get("training") or {}
    secs = [float(h["seconds"]) for h in training.get("history") or []
            if isinstance(h, dict) and h.get("seconds")]
    if not secs:
        return None
    per_epoch = float(np.median(secs))
    size0 = int(card.get("input_size") or input_size)
    width0 = float((card.get("network") or {}).get("width") or width)
    n0 = sum(((card.get("data") or {}).get("train_counts") or {}).values()) or None
    scale = (input_size / size0) ** 2 * (width / width0) ** 2
    if n_images and n0:
        scale *= n_images / n0
    return per_epoch * scale * epochs / 60 + 1.0   # + loading, calibration and OOD fit


def default_extra_data(card: dict | None) -> list[str]:
    """The active version's train-only extra folders that exist on this machine."""
    from core.config import recorded_path

    entries = ((_trained_card(card) or {}).get("data") or {}).get("extra_training_data") or []
    out = []
    for e in entries:
        p = recorded_path(str(e.get("path", "")))
        if e.get("path") and p.is_dir():
            out.append(str(p))
    return out


def default_train_data(card: dict | None) -> str | None:
    """The folder the active version was trained on, when it exists on this machine."""
    from core.config import recorded_path

    path = ((_trained_card(card) or {}).get("data") or {}).get("path")
    folder = recorded_path(str(path)) if path else None
    return str(folder) if folder is not None and folder.is_dir() else None


def default_eval_data(card: dict | None) -> str | None:
    """The fixed evaluation set to offer: ``$MEDSCAN_EVAL_DIR``, else the folder the active
    version's recorded test figures came from, when it exists on this machine."""
    from core.config import eval_dir

    if eval_dir() is not None:
        return str(eval_dir())
    test = ((card or {}).get("metrics") or {}).get("test") or {}
    data = test.get("data") if isinstance(test, dict) else None
    if not data:
        return None
    from core.config import recorded_path

    folder = recorded_path(str(data))
    return str(folder) if folder.is_dir() else None


def _name_prefix(names) -> str | None:
    """The one leading tag (letters then '-' or '_', e.g. ``Tr-``) all ``names`` share."""
    import re

    tags = {m.group(1) if (m := re.match(r"([A-Za-z]{1,8}[-_])", n)) else None for n in names}
    return next(iter(tags)) if len(tags) == 1 and None not in tags else None


def training_overlap(card: dict, data: str | Path | None, data_fingerprint: str | None = None
                     ) -> str | None:
    """Why the evaluation set ``data`` (with ``data_fingerprint``) is, or looks like, the
    training data of the version ``card`` — in words — or None when nothing was detected.

    Cheap checks only, on what the card records (``data.path``, ``data.fingerprint``) and on
    file names (no pixels compared): the same fingerprint; the same folder or one inside it;
    evaluation files whose ``class/file name`` also occurs in the training folder; every
    evaluation file name starting with the tag (e.g. ``Tr-``) that every training file name
    starts with. Name checks need both folders on this machine; None means "not detected",
    never "no overlap"."""
    from core.classifier.data import list_image_folder
    from core.classifier.evaluate import dataset_name

    recorded = card.get("data") or {}
    train = recorded.get("path") or ((card.get("training") or {}).get("config") or {}).get("data")
    label = dataset_name(train) if train else "its training folder"
    if data_fingerprint and data_fingerprint == recorded.get("fingerprint"):
        return (f"the evaluation set has the same fingerprint as its training data ({label}): "
                "it is that folder, validation split included")
    if not data or not train:
        return None
    from core.config import recorded_path

    ev, tr = Path(data).expanduser().resolve(), recorded_path(train).resolve()
    if ev == tr or tr in ev.parents:
        return f"the evaluation folder is {'' if ev == tr else 'inside '}the training folder ({label})"
    try:
        ev_names = {f"{f.parent.name}/{f.name}" for f in
                    list_image_folder(ev, card.get("classes")).files}
        tr_names = {f"{f.parent.name}/{f.name}" for f in
                    list_image_folder(tr, card.get("classes")).files}
    except (OSError, ValueError):
        return None
    shared = ev_names & tr_names
    if shared:
        return (f"{len(shared)} of {len(ev_names)} evaluation images have the same class and "
                f"file name as images of the training folder ({label}), e.g. "
                f"{sorted(shared)[0]}")
    tag = _name_prefix(n.split("/", 1)[1] for n in tr_names)
    if tag and _name_prefix(n.split("/", 1)[1] for n in ev_names) == tag:
        return (f"all {len(ev_names)} evaluation file names start with '{tag}', as every file "
                f"of the training folder ({label}) does: they look like training images")
    return None


def evaluate_versions(versions, data: str | Path, *, weights_dir: str | None = None,
                      progress: ProgressCallback = null_progress) -> list[dict]:
    """Evaluate each version on the image folder ``data`` (the fixed evaluation set; the same
    files for all) and record the report beside it (``registry.record_evaluation``) with the
    set's fingerprint. Returns the reports in order."""
    from core import registry
    from core.classifier.data import fingerprint, list_image_folder
    from core.classifier.evaluate import evaluate_folder
    from core.classifier.inference import Classifier

    out = []
    for v in versions:
        clf = Classifier.load(v, weights_dir=weights_dir)
        progress(Progress(task=TASK, phase="evaluate", message=f"{v} on the evaluation set {data}"))
        report = evaluate_folder(clf, data, progress=progress)
        report.update(data=str(Path(data).resolve()), version=clf.version,
                      data_fingerprint=fingerprint(list_image_folder(data, clf.classes)))
        registry.record_evaluation(TASK, clf.version, report, weights_dir=weights_dir)
        out.append(report)
    return out


def _calibration_entry(temperature: float, n_used: int, n_val: int) -> dict:
    from core.classifier.dedup import DEDUP_MAX_BITS

    return {"temperature": float(temperature),
            "method": "temperature scaling (Guo et al. 2017): NLL on the validation images that "
                      "have no near duplicate in the training split (DCT pHash distance > "
                      f"{DEDUP_MAX_BITS} of 64 bits); near duplicates are confidently right and "
                      "would bias T low",
            "n": int(n_used), "n_validation": int(n_val), "dedup_max_bits": DEDUP_MAX_BITS}


def recalibrate(data: str, version: str | None = None, *, weights_dir: str | None = None,
                tta: str | None = "same", new_version: str | None = None,
                progress: ProgressCallback = null_progress) -> dict:
    """Refit the temperature of a registry version on its own validation split (rebuilt from
    the card's seed and fraction; the folder must match the card's data fingerprint).

    Without ``new_version`` the version's card is rewritten atomically (same predictions,
    new confidence). With ``new_version`` a new version is published instead, with the same
    weights, ``preprocessing.tta`` set to ``tta`` (``"hflip"``: flip-averaged logits, None: off,
    ``"same"``: as the source version) and the temperature fitted for it; its card records where
    it came from. Returns the new ``calibration`` entry (with ``version``: the version written).
    An ensemble (:mod:`core.classifier.ensemble`) is recalibrated the same way; its new version
    is a new ensemble card over the same members (no weights are written).
    """
    from core import registry
    from core.classifier.calibration import fit_temperature, softmax
    from core.classifier.data import card_split, list_image_folder, load_images
    from core.classifier.dedup import calibration_subset
    from core.classifier.inference import TTA_MODES, Classifier
    from core.classifier.metrics import classification_report
    from core.classifier.preprocess import normalise

    if tta != "same" and tta not in TTA_MODES:
        raise ValueError(f"tta must be one of {TTA_MODES}, got {tta!r}.")
    clf = Classifier.load(version, weights_dir=weights_dir)
    card = clf.card
    tta = clf.tta if tta == "same" else tta
    if new_version is None and tta != clf.tta:
        raise ValueError("Changing test-time averaging changes the predictions: publish it as "
                         "a new version (new_version / --as NEW_VERSION).")
    folder = list_image_folder(data, clf.classes)
    tr, va = card_split(folder, card, data)
    progress(Progress(task=TASK, phase="calibrate", message=f"{len(va)} validation images"))
    x_tr = load_images([folder.files[i] for i in tr], clf.preprocessing)
    x_va = load_images([folder.files[i] for i in va], clf.preprocessing)
    preprocessing = dict(card["preprocessing"])
    preprocessing.pop("tta", None)
    if tta:
        preprocessing["tta"] = tta
    target_clf = clf if new_version is None else Classifier(
        clf.model, dict(card, preprocessing=preprocessing))
    logits = target_clf.logits_batch(normalise(x_va, clf.preprocessing["normalise"],
                                               int(clf.preprocessing.get("channels", 3))))
    cal_idx = calibration_subset(x_tr, x_va)
    y_cal = folder.labels[va][cal_idx]
    entry = _calibration_entry(fit_temperature(logits[cal_idx], y_cal), len(cal_idx), len(va))
    entry["previous_temperature"] = clf.temperature
    if new_version is None:
        registry.replace_card(TASK, clf.version, dict(card, calibration=entry),
                              weights_dir=weights_dir)
        return dict(entry, version=clf.version)

    clean = classification_report(softmax(logits[cal_idx], entry["temperature"]), y_cal,
                                  clf.classes)
    from core.cli import command_line

    derived = {k: v for k, v in card.items() if k not in ("version", "created_at", "metrics")}
    derived.update(
        preprocessing=preprocessing, calibration=entry, derived_from=clf.version,
        derivation={"from": clf.version, "change": f"test-time averaging: {tta or 'none'}; "
                    "weights unchanged; temperature refitted", "command": command_line()},
        description=(card.get("description", "") + (
            "; predictions average the scan and its left-right mirror" if tta == "hflip" else "")),
        metrics={"validation_clean": {k: clean[k] for k in (
            "accuracy", "macro_f1", "ece", "nll", "brier", "n")} | {
            "note": "validation images with no near duplicate in the training split (the "
                    "temperature was fitted on them, so this ECE is optimistic)"}})
    registry.save_version(TASK, clf.model, derived, version=new_version, weights_dir=weights_dir)
    return dict(entry, version=new_version)


def _describe(cfg: TrainConfig, pretrained: bool, init: dict | None = None) -> str:
    arch = architecture(cfg.arch)
    if arch.default_width is None:
        return f"{arch.label}, {cfg.input_size}² grayscale input, trained from scratch"
    bn = arch.label
    start = "fine-tuned from ImageNet weights" if pretrained else "trained from scratch"
    if cfg.init_from and not pretrained:
        begun = (init or {}).get("reader") or f"continued from {Path(cfg.init_from).name}"
        start = f"no ImageNet weights; {begun}"
    if cfg.background_penalty:
        start += (f", with a background penalty (λ = {cfg.background_penalty:g}) that keeps "
                  "its Grad-CAM maps on the head")
    if cfg.source_oversample > 1:
        start += (f", each class's rare source look (padded or upscaled tumour scans, plain "
                  f"notumor scans) shown {cfg.source_oversample}× per epoch")
    return f"{bn}, width multiplier {cfg.width:g}, {cfg.input_size}² input, {start}"


PENALTY_CAVEAT = ("Its Grad-CAM maps were trained to stay inside the head (background penalty): "
                  "a map on the head does not by itself show that the prediction ignores "
                  "what lies outside it.")


def _caveats(notice: str | None, background_penalty: float = 0.0) -> list[str]:
    out = ["Research prototype, not a medical device: not validated for clinical use.",
           "Trained on one public data set of 2-D brain MRI slices (4 classes); other anatomy, "
           "sequences or scanners are out of distribution.",
           "notumor training images mostly come from other, smaller sources than the tumour "
           "classes (padding bars, upscaling blur); mitigated by head cropping and blur "
           "augmentation, check Grad-CAM."]
    if background_penalty:
        out.append(PENALTY_CAVEAT)
    if notice:
        out.insert(0, notice)
    return out


class _nullcontext:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False
