"""Self-supervised pre-training of the classifier's convolutional base (issue 12): SimCLR
(Chen et al., ICML 2020) on unlabelled brain images, as a stand-in for the ImageNet start that
cannot be downloaded here.

Two augmented views of every image (the training pipeline's own augmentations,
:data:`core.classifier.data.AUGMENTATIONS`) go through the same base (the classifier's
architecture up to its global average pooling) and a two-layer projection head; the NT-Xent loss
pulls the two views of an image together and pushes the other ``2·(B − 1)`` images of the batch
away. Labels and class folders are ignored: any folder of images counts (searched recursively),
so the HR and segmentation slices serve as well as the classification set.

The result is a weights file of the whole classifier (base + a freshly initialised head) that
``python -m core train classifier --init-from FILE`` starts from, with a JSON sidecar saying how
it was made. ``--probe DIR`` measures what the base learned without any fine-tuning: k-nearest-
neighbour accuracy of its pooled features on a labelled folder (a stratified 80/20 split), for
the pre-trained base and for the same base at random initialisation.

Backend-agnostic (``model.fit`` with a loss over the model's output, a ``PyDataset``), so it runs
under ``KERAS_BACKEND=jax`` on a GPU machine in minutes.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from core.classifier.architectures import architecture
from core.progress import Progress, ProgressCallback, null_progress

__all__ = ["PretrainConfig", "PretrainResult", "pretrain", "list_unlabelled", "knn_probe",
           "nt_xent", "validation_files", "bases_dir", "list_bases", "base_label",
           "base_mismatch", "expected_pretrain_minutes", "PRETRAIN_COST_VS_SUPERVISED",
           "BASE_NAME_RE"]

TASK = "classifier"

#: seconds per image-epoch of SimCLR (two views, batch 64) over those of supervised training
#: (batch 32) of the same network on the same machine: measured on the 2-core server
#: (2026-12-04: 64², width 0.5, 2 threads; supervised 101 s / 3,251 images per epoch, SimCLR
#: 126 s / 3,840 images). Used only when no pre-trained base of this server recorded its own.
PRETRAIN_COST_VS_SUPERVISED = 1.05
#: what a base's name may be (it becomes ``<bases_dir>/<name>.weights.h5``)
BASE_NAME_RE = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$"


def bases_dir() -> Path:
    """Where pre-training jobs started from the Training page write their bases:
    ``$MEDSCAN_DATA_DIR/pretrained``."""
    from core.config import data_dir

    return data_dir() / "pretrained"


def list_bases(folder: str | Path | None = None) -> list[dict]:
    """The pre-trained bases in ``folder`` (default :func:`bases_dir`), newest first: each
    ``{"name", "path", "info"}`` where ``info`` is the JSON sidecar (``{}`` when it is missing
    or unreadable). Only ``*.weights.h5`` files count."""
    root = Path(folder) if folder is not None else bases_dir()
    if not root.is_dir():
        return []
    out = []
    for f in sorted(root.glob("*.weights.h5"), key=lambda p: p.stat().st_mtime, reverse=True):
        try:
            info = json.loads(Path(str(f) + ".json").read_text())
        except (OSError, ValueError):
            info = {}
        out.append({"name": f.name[:-len(".weights.h5")], "path": f,
                    "info": info if isinstance(info, dict) else {}})
    return out


def base_label(base: dict) -> str:
    """One line for a picker: name, architecture, width, input size, epochs, images."""
    info = base.get("info") or {}
    cfg = info.get("config") or {}
    parts = [str(info.get("architecture") or cfg.get("arch") or "?")]
    if cfg.get("width") is not None:
        parts.append(f"width {float(cfg['width']):g}")
    if cfg.get("input_size"):
        parts.append(f"{int(cfg['input_size'])} px")
    if info.get("epochs_done") is not None:
        parts.append(f"{info['epochs_done']} epochs")
    if info.get("images"):
        parts.append(f"{info['images']:,} images")
    return f"{base['name']} ({', '.join(parts)})"


def base_mismatch(base: dict, arch: str, width: float) -> str | None:
    """Why the base cannot start a run of ``arch`` at ``width`` (its weights would not load),
    else None. Input size may differ: the network is convolutional up to a global pooling."""
    info = base.get("info") or {}
    cfg = info.get("config") or {}
    b_arch = info.get("architecture") or cfg.get("arch")
    b_width = cfg.get("width")
    if b_arch is None or b_width is None:
        return (f"The base {base['name']} has no readable description (its .json sidecar), so "
                "its architecture and width are unknown.")
    if b_arch != arch or abs(float(b_width) - float(width)) > 1e-9:
        return (f"The base {base['name']} is {b_arch} at width {float(b_width):g}; this run is "
                f"{arch} at width {float(width):g}. Choose the same architecture and width.")
    return None


def _seconds_per_image(epoch_seconds: list[float], images: int) -> float | None:
    secs = [float(s) for s in epoch_seconds if s]
    if not secs or not images:
        return None
    return float(np.median(secs)) / images


def expected_pretrain_minutes(*, n_images: int, input_size: int, width: float, epochs: int,
                              bases: list[dict] | None = None,
                              card: dict | None = None) -> float | None:
    """Expected wall-clock minutes of a pre-training run on this server: from the seconds per
    epoch the newest base that recorded them took (scaled by pixels, width squared and the
    number of images), else from the active classifier card's supervised seconds per image
    times :data:`PRETRAIN_COST_VS_SUPERVISED`. None when neither is known."""
    for base in bases or ():
        info = base.get("info") or {}
        cfg = info.get("config") or {}
        per = _seconds_per_image([h.get("seconds") for h in info.get("loss") or []
                                  if isinstance(h, dict)], int(info.get("images") or 0))
        if per and cfg.get("input_size") and cfg.get("width"):
            scale = ((input_size / int(cfg["input_size"])) ** 2
                     * (width / float(cfg["width"])) ** 2)
            return per * scale * n_images * epochs / 60 + 1.0
    from core.classifier.train import expected_minutes

    supervised = expected_minutes(card, input_size=input_size, width=width, epochs=epochs,
                                  n_images=n_images)
    if supervised is None:
        return None
    return (supervised - 1.0) * PRETRAIN_COST_VS_SUPERVISED + 1.0


@dataclass
class PretrainConfig:
    data: tuple[str, ...]               # folders of images, searched recursively; labels unused
    out: str                            # weights file (``*.weights.h5``) of the whole classifier
    arch: str = "vgg16_bn"
    input_size: int = 96
    width: float = 0.5
    num_classes: int = 4                # the head the weights file carries (random)
    bn_momentum: float = 0.9
    augmentation: str = "strong"
    epochs: int = 30
    batch_size: int = 64
    lr: float = 1e-3
    temperature: float = 0.2
    projection_dim: int = 128
    max_images: int | None = None       # a seeded subsample, for quick runs
    max_minutes: float | None = None    # stop after the epoch that would pass this budget
    seed: int = 0
    threads: int | None = None
    workers: int = 1
    holdout: str | None = None          # labelled training folder whose validation split
    holdout_val_fraction: float = 0.15  # (as `train classifier` draws it) is left out
    holdout_seed: int = 42
    probe: str | None = None            # labelled folder (<class>/*) for the kNN probe
    probe_k: int = 20
    command: str | None = None          # recorded in the sidecar
    overwrite: bool = False             # replace an existing ``out``


@dataclass
class PretrainResult:
    out: Path
    info: dict
    history: list[dict] = field(default_factory=list)


def list_unlabelled(folders) -> list[Path]:
    """Every image file under each folder (recursively, hidden folders skipped), sorted, each
    file once."""
    from core.classifier.data import IMAGE_EXTENSIONS

    seen: dict[Path, None] = {}
    for folder in folders:
        root = Path(folder)
        if not root.is_dir():
            raise FileNotFoundError(f"Data folder {root} does not exist.")
        for f in sorted(root.rglob("*")):
            if (f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS
                    and not any(p.startswith(".") for p in f.relative_to(root).parts)):
                seen.setdefault(f.resolve(), None)
    if not seen:
        raise ValueError(f"No images ({', '.join(sorted(IMAGE_EXTENSIONS))}) under "
                         f"{', '.join(str(f) for f in folders)}.")
    return list(seen)


def validation_files(folder, val_fraction: float = 0.15, seed: int = 42) -> list[Path]:
    """The validation images ``train classifier --data folder`` draws with this fraction and
    seed (its defaults), resolved: pre-training leaves them out, so the model chosen on them
    never saw them, not even without labels."""
    from core.classifier.data import list_image_folder, training_split

    data = list_image_folder(folder)
    _, va = training_split(data.labels, val_fraction, seed)
    return [data.files[i].resolve() for i in va]


def nt_xent(batch_size: int, temperature: float):
    """The NT-Xent loss of SimCLR as a Keras loss: ``y_pred`` is ``(B, 2, D)``, the projections
    of both views; per image the mean of its two views' cross-entropies over the other
    ``2B − 1`` embeddings (cosine similarity / ``temperature``). ``y_true`` is ignored."""
    from keras import ops

    b = int(batch_size)
    labels = np.concatenate([np.arange(b, 2 * b), np.arange(b)]).astype("int32")
    mask = (np.eye(2 * b, dtype="float32") * 1e9)

    def loss(y_true, y_pred):
        z = ops.cast(y_pred, "float32")
        z = z / ops.maximum(ops.sqrt(ops.sum(z * z, axis=-1, keepdims=True)), 1e-12)
        z = ops.concatenate([z[:, 0], z[:, 1]], axis=0)                 # (2B, D)
        logits = ops.matmul(z, ops.transpose(z)) / temperature - mask    # no self-match
        per = ops.sparse_categorical_crossentropy(labels, logits, from_logits=True)
        return (per[:b] + per[b:]) / 2.0
    return loss


def _views(batch_size: int, images: np.ndarray, augment, normalise_mode: str, channels: int,
           seed: int, workers: int):
    import keras

    from core.classifier.preprocess import normalise

    class TwoViews(keras.utils.PyDataset):
        """Full batches of two independently augmented views; the last partial batch is
        dropped (the loss needs a fixed batch)."""

        def __init__(self) -> None:
            super().__init__(workers=workers, use_multiprocessing=False, max_queue_size=8)
            self.epoch = 0
            self.order = np.random.default_rng((seed, 0)).permutation(len(images))

        def __len__(self) -> int:
            return len(images) // batch_size

        def __getitem__(self, index: int):
            idx = self.order[index * batch_size:(index + 1) * batch_size]
            rng = np.random.default_rng((seed, self.epoch, index))
            a = np.stack([augment(images[i], rng) for i in idx])
            b = np.stack([augment(images[i], rng) for i in idx])
            return ((normalise(a, normalise_mode, channels),
                     normalise(b, normalise_mode, channels)),
                    np.zeros((len(idx),), "float32"))

        def on_epoch_end(self) -> None:
            self.epoch += 1
            self.order = np.random.default_rng((seed, self.epoch)).permutation(len(images))
    return TwoViews()


def _network(cfg: PretrainConfig) -> tuple[dict, dict]:
    """(builder kwargs, preprocessing) of the classifier ``train classifier`` would build,
    without its head's dropout."""
    from core.classifier.train import network_config

    net, prep, _ = network_config(cfg.arch, cfg.input_size, cfg.width, 0.0, cfg.bn_momentum,
                                  cfg.num_classes)
    return net, prep


def _classifier(cfg: PretrainConfig):
    net, _ = _network(cfg)
    return architecture(cfg.arch).builder(**net), net


def _base(model):
    """The classifier's convolutional base with its global average pooling (``avg_pool``)."""
    import keras

    return keras.Model(model.inputs, model.get_layer("avg_pool").output, name="base")


def _features(base, images: np.ndarray, normalise_mode: str, channels: int,
              batch: int = 128) -> np.ndarray:
    from core.classifier.preprocess import normalise

    out = [np.asarray(base.predict_on_batch(normalise(images[i:i + batch], normalise_mode,
                                                      channels)))
           for i in range(0, len(images), batch)]
    return np.concatenate(out).astype(np.float32)


def knn_probe(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray,
              k: int = 20) -> float:
    """Accuracy of a cosine k-nearest-neighbour vote (ties to the nearest neighbour's class)."""
    def unit(a):
        return a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
    sim = unit(test_x) @ unit(train_x).T
    k = min(k, len(train_x))
    nn = np.argsort(-sim, axis=1)[:, :k]
    correct = 0
    for row, y in zip(nn, test_y):
        votes = np.bincount(train_y[row], minlength=int(train_y.max()) + 1)
        best = np.flatnonzero(votes == votes.max())
        pred = best[0] if len(best) == 1 else next(train_y[j] for j in row if train_y[j] in best)
        correct += int(pred == y)
    return correct / len(test_y)


def _probe(cfg: PretrainConfig, model, prep: dict, progress: ProgressCallback) -> dict:
    """kNN accuracy of the pooled features on ``cfg.probe`` (stratified 80/20, seeded): the
    pre-trained base and the same architecture at random initialisation."""
    import keras

    from core.classifier.data import list_image_folder, load_images, stratified_split

    data = list_image_folder(cfg.probe)
    tr, te = stratified_split(data.labels, 0.2, cfg.seed)
    images = load_images(data.files, prep)
    norm, ch = prep["normalise"], prep["channels"]
    out = {"data": cfg.probe, "images": len(data.files), "k": cfg.probe_k,
           "split": "stratified 80/20 by file, seed %d" % cfg.seed, "classes": data.classes,
           "note": "near-duplicate slices across a by-file split raise both figures alike: "
                   "compare the two bases with it, do not read it as a classifier's accuracy"}
    keras.utils.set_random_seed(cfg.seed)
    random_model, _ = _classifier(cfg)
    for name, m in (("random_init", random_model), ("pretrained", model)):
        feats = _features(_base(m), images, norm, ch)
        acc = knn_probe(feats[tr], data.labels[tr], feats[te], data.labels[te], cfg.probe_k)
        out[f"{name}_knn_accuracy"] = round(acc, 4)
        progress(Progress(task=TASK, phase="probe",
                          message=f"kNN probe ({name}): accuracy {acc:.3f} on {len(te)} images"))
    return out


def pretrain(cfg: PretrainConfig, progress: ProgressCallback = null_progress) -> PretrainResult:
    """Run SimCLR on ``cfg.data``; write ``cfg.out`` (the whole classifier's weights) and
    ``cfg.out`` + ``.json`` (how it was made, the loss per epoch, the probe)."""
    import keras
    from keras import layers

    from core.classifier.data import AUGMENTATIONS, load_images
    from core.device import limit_cpu_threads
    from core.config import portable

    out = Path(cfg.out)
    if not out.name.endswith(".weights.h5"):
        raise ValueError(f"--out {cfg.out!r}: the file name must end in .weights.h5 "
                         "(what --init-from loads).")
    if out.exists() and not cfg.overwrite:
        raise ValueError(f"--out {cfg.out!r} exists already: training runs' cards name a base "
                         "by its path, so choose another name (or pass --overwrite).")
    if cfg.augmentation not in AUGMENTATIONS:
        raise ValueError(f"augmentation must be one of {sorted(AUGMENTATIONS)}.")
    if cfg.batch_size < 2:
        raise ValueError("--batch-size must be at least 2 (the other images are the negatives).")
    arch = architecture(cfg.arch)
    limit_cpu_threads(cfg.threads)
    t0 = time.monotonic()
    files = list_unlabelled(cfg.data)
    held_out, near_dropped, val_files = 0, 0, []
    if cfg.holdout:
        val_files = validation_files(cfg.holdout, cfg.holdout_val_fraction, cfg.holdout_seed)
        val = set(val_files)
        kept = [f for f in files if f not in val]
        held_out = len(files) - len(kept)
        files = kept
    if cfg.max_images and len(files) > cfg.max_images:
        pick = np.sort(np.random.default_rng(cfg.seed).choice(len(files), cfg.max_images,
                                                              replace=False))
        files = [files[i] for i in pick]
    if len(files) < cfg.batch_size:
        raise ValueError(f"{len(files)} images: fewer than one batch of {cfg.batch_size}.")
    prep = _network(cfg)[1]
    images = load_images(files, prep)
    if cfg.holdout:
        # ... and their near duplicates in the other folders, by the rule --extra-data uses
        from core.classifier.dedup import (DEDUP_MAX_BITS, DEDUP_MIN_NCC, max_ncc,
                                           min_hamming, phashes)

        x_val = load_images(val_files, prep)
        near = ((min_hamming(phashes(images), phashes(x_val)) <= DEDUP_MAX_BITS)
                | (max_ncc(images, x_val) > DEDUP_MIN_NCC))
        images, near_dropped = images[~near], int(near.sum())
        files = [f for f, n in zip(files, near) if not n]
        progress(Progress(task=TASK, phase="load", message=(
            f"left out the {held_out} validation images of {cfg.holdout} and {near_dropped} "
            f"near duplicates of them")))
        if len(files) < cfg.batch_size:
            raise ValueError(f"{len(files)} images left: fewer than one batch of "
                             f"{cfg.batch_size}.")
    progress(Progress(task=TASK, phase="load",
                      message=f"pre-training on {len(files)} unlabelled images"))

    keras.utils.set_random_seed(cfg.seed)
    model, net = _classifier(cfg)
    base = _base(model)
    projector = keras.Sequential([layers.Dense(int(base.output.shape[-1]), activation="relu",
                                               name="proj_hidden"),
                                  layers.Dense(cfg.projection_dim, name="proj_out")],
                                 name="projector")
    shape = (cfg.input_size, cfg.input_size, arch.channels)
    view_a, view_b = keras.Input(shape, name="view_a"), keras.Input(shape, name="view_b")
    z = layers.Concatenate(axis=1)([layers.Reshape((1, cfg.projection_dim))(projector(base(v)))
                                    for v in (view_a, view_b)])
    simclr = keras.Model([view_a, view_b], z, name="simclr")
    seq = _views(cfg.batch_size, images, AUGMENTATIONS[cfg.augmentation], prep["normalise"],
                 prep["channels"], cfg.seed, cfg.workers)
    steps = len(seq) * cfg.epochs
    schedule = keras.optimizers.schedules.CosineDecay(cfg.lr, decay_steps=max(1, steps),
                                                      alpha=0.01)
    simclr.compile(optimizer=keras.optimizers.Adam(schedule),
                   loss=nt_xent(cfg.batch_size, cfg.temperature))

    from core.keras_progress import KerasProgress

    history: list[dict] = []
    budget = cfg.max_minutes * 60 if cfg.max_minutes else None
    fit_start = time.monotonic()

    class Budget(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.epoch_start = time.monotonic()

        def on_epoch_end(self, epoch, logs=None):
            history.append({"epoch": epoch + 1, "loss": float((logs or {}).get("loss", math.nan)),
                            "seconds": round(time.monotonic() - self.epoch_start, 1)})
            spent = time.monotonic() - fit_start
            if budget and spent / (epoch + 1) * (epoch + 2) > budget:
                self.model.stop_training = True

    simclr.fit(seq, epochs=cfg.epochs, verbose=0,
               callbacks=[Budget(), KerasProgress(progress, task=TASK, phase="pretrain",
                                                  total_epochs=cfg.epochs,
                                                  steps_per_epoch=len(seq))])
    out.parent.mkdir(parents=True, exist_ok=True)
    model.save_weights(out)
    info = {
        "method": "SimCLR (Chen et al. 2020): NT-Xent over two augmented views",
        "architecture": cfg.arch, "network": net,
        "preprocessing": prep,
        "data": [portable(str(d)) for d in cfg.data], "images": len(files),
        "held_out": ({"validation_of": portable(str(cfg.holdout)), "images": held_out,
                      "near_duplicates": near_dropped,
                      "val_fraction": cfg.holdout_val_fraction, "seed": cfg.holdout_seed}
                     if cfg.holdout else None),
        "config": {k: v for k, v in asdict(cfg).items()
                   if k not in ("data", "out", "command", "overwrite")},
        "epochs_done": len(history), "loss": history,
        "minutes": round((time.monotonic() - t0) / 60, 1),
        "backend": keras.backend.backend(),
        "command": cfg.command,
        "use": f"python -m core train classifier --arch {cfg.arch} --input-size "
               f"{cfg.input_size} --width {cfg.width:g} --init-from {portable(str(out))} ...",
        "note": "The head (logits) is random; only the convolutional base was trained.",
    }
    if cfg.probe:
        info["probe"] = _probe(cfg, model, prep, progress)
        info["probe"]["data"] = portable(str(cfg.probe))
    Path(str(out) + ".json").write_text(json.dumps(info, indent=2))
    progress(Progress(task=TASK, phase="done", message=f"wrote {out}"))
    return PretrainResult(out, info, history)
