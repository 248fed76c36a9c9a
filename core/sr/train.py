"""Training for super-resolution models, with checkpoints, resume, wall-clock cap and progress.

Networks (``method``): ``rrdb`` (RRDBNet), ``srresnet`` (SRResNet) and ``srcnn``; the method a
run produces follows from network and stage (:data:`core.sr.methods.TRAINING_METHODS`).
Stage ``"psnr"``: L1 loss, Adam — ESRGAN's PSNR-oriented pre-training (Wang et al. 2018,
sec. 4.1), SRResNet's MSE-free variant. Runs through ``keras.Model.fit`` and so on any Keras 3
backend. Stage ``"gan"`` (RRDBNet → ESRGAN, SRResNet → SRGAN, initialised from the active PSNR
model of the same network): adversarial (relativistic for ESRGAN, standard for SRGAN),
perceptual and L1 losses; its train step uses ``tf.GradientTape`` and therefore needs the
TensorFlow backend (see :mod:`core.sr.gan`). The card records the recipe and, with ``val``, the
PSNR/SSIM trade-off over the interpolation α (``metrics.alpha_curve``).

A run lives in ``run_dir`` (default ``runs/sr_<method>_x<scale>``): ``ckpt/`` holds the latest
weights, optimizer state and ``state.json`` (epoch, step, elapsed seconds); ``resume=True``
continues from there. The learning rate follows a cosine from ``learning_rate`` down to
``LR_FLOOR`` × that over the run's budget — steps, or wall-clock minutes if they end first.
At the end the model is evaluated on ``val`` (if given) and published to the registry.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path


from core.cli import command_line
from core.device import limit_cpu_threads
from core.errors import MedScanError
from core.progress import Progress, ProgressCallback, null_progress
from core.sr.data import DegradationConfig, PatchSampler, folder_fingerprint, load_folder
from core.sr.methods import GAN_PARTNER, PAPERS, TRAINING_METHODS, method_of
from core.sr.optim import ADAM_BETAS, LR_FLOOR, load_optimizer, lr_factor, save_optimizer

__all__ = ["SRTrainConfig", "TrainResult", "train_sr", "limit_threads", "method_of",
           "PAPER_RRDB", "SHIPPED_RRDB", "PAPER_SRRESNET", "GENERATORS", "GAN_WEIGHT",
           "L1_WEIGHT_GAN", "PERCEPTUAL_WEIGHT", "LR_FLOOR", "CREDITS"]

# ESRGAN paper's generator (BasicSR RRDBNet defaults).
PAPER_RRDB = {"num_feat": 64, "num_block": 23, "num_grow_ch": 32}
# The shipped CPU configuration (≈1.4 s for 256² → 1024² on 2 idle cores).
SHIPPED_RRDB = {"num_feat": 32, "num_block": 6, "num_grow_ch": 16, "global_residual": True}
# SRGAN paper's generator (Ledig et al. 2017: 16 residual blocks of 64 features).
PAPER_SRRESNET = {"num_blocks": 16, "features": 64}
#: Training network → (architecture in core.models, default builder arguments).
GENERATORS = {"rrdb": ("rrdbnet", PAPER_RRDB), "srresnet": ("srresnet", PAPER_SRRESNET),
              "srcnn": ("srcnn", {})}
# ESRGAN loss weights (sec. 4.1): L_G = L_percep + λ·L_G^Ra + η·L_1, λ = 5e-3, η = 1e-2.
GAN_WEIGHT = 5e-3
L1_WEIGHT_GAN = 1e-2
PERCEPTUAL_WEIGHT = 1.0
CREDITS = ("Training data: Brain Tumor MRI Dataset compiled by Masoud Nickparvar (Kaggle, CC0); "
           "HR slices from Cheng J. et al., PLoS ONE 10(10), 2015 (figshare, CC BY 4.0).")


def degradation_of(cfg) -> DegradationConfig:
    """The patch degradation a training config asks for (recorded in the card)."""
    return DegradationConfig(cfg.blur_sigma_max, cfg.noise_sigma_max, cfg.kspace_fraction,
                             cfg.kspace_window, cfg.rician_snr_min)


@dataclass
class SRTrainConfig:
    data: str
    scale: int = 4
    method: str = "rrdb"                 # a network: rrdb | srresnet | srcnn
    stage: str = "psnr"                  # psnr | gan
    network: dict = field(default_factory=dict)   # builder keyword arguments (overrides)
    channels: int = 1
    lr_patch: int = 48
    batch_size: int = 16
    steps: int = 5000
    steps_per_epoch: int = 100           # report, checkpoint and schedule granularity
    learning_rate: float = 2e-4
    schedule: str = "cosine"             # cosine | constant
    max_minutes: float | None = None
    blur_sigma_max: float = 0.0
    noise_sigma_max: float = 0.0
    kspace_fraction: float = 0.0         # share of patches degraded by k-space truncation
    kspace_window: str | None = None
    rician_snr_min: float = 0.0          # 0 = no Rician noise
    min_content: float = 0.5
    seed: int = 0
    val: str | None = None
    val_limit: int | None = None
    run_dir: str | None = None
    resume: bool = False
    # stage "gan"
    init: str | None = None              # PSNR model version to start from (default: active)
    perceptual: str = "auto"             # auto | vgg19 | classifier | none | path to VGG19 weights
    perceptual_layer: str | None = None
    gan_weight: float | None = None      # None: the method's recipe (core.sr.gan.RECIPES)
    l1_weight: float | None = None
    perceptual_weight: float | None = None
    disc_feat: int = 64
    # publishing
    publish: bool = True
    activate: bool = False
    version: str | None = None

    def __post_init__(self) -> None:
        if self.scale not in (2, 4):
            raise MedScanError(f"scale must be 2 or 4, got {self.scale}.")
        if self.stage not in ("psnr", "gan"):
            raise MedScanError(f"stage must be psnr or gan, got {self.stage!r}.")
        if self.method not in TRAINING_METHODS:
            raise MedScanError(f"Unknown SR network {self.method!r}; expected one of "
                               f"{', '.join(TRAINING_METHODS)}.")
        method = method_of(self.method, self.stage)
        if self.steps < 1 or self.batch_size < 1 or self.lr_patch < 4:
            raise MedScanError("steps, batch_size must be ≥ 1 and lr_patch ≥ 4.")
        if self.stage == "gan":
            from core.sr.gan import RECIPES

            for key in ("gan_weight", "l1_weight", "perceptual_weight"):
                if getattr(self, key) is None:
                    setattr(self, key, RECIPES[method][key])


@dataclass
class TrainResult:
    model: object
    card: dict
    run_dir: Path
    version: str | None
    history: list[dict]


#: Cap TensorFlow's CPU threads (the one helper, :func:`core.device.limit_cpu_threads`).
limit_threads = limit_cpu_threads


class _Clock:
    """Budget bookkeeping shared by both stages (elapsed includes earlier, resumed sessions)."""

    def __init__(self, cfg: SRTrainConfig, prior_s: float) -> None:
        self.cfg, self.prior, self.t0 = cfg, prior_s, time.monotonic()

    @property
    def elapsed(self) -> float:
        return self.prior + time.monotonic() - self.t0

    def fraction(self, step: int) -> float:
        f = step / self.cfg.steps
        if self.cfg.max_minutes:
            f = max(f, self.elapsed / (60 * self.cfg.max_minutes))
        return f

    def out_of_time(self) -> bool:
        return bool(self.cfg.max_minutes) and self.elapsed >= 60 * self.cfg.max_minutes


def _build_generator(cfg: SRTrainConfig):
    from core.models import build_model

    arch, defaults = GENERATORS[cfg.method]
    network = {"scale": cfg.scale, **defaults, "num_in_ch": cfg.channels,
               "num_out_ch": cfg.channels} | cfg.network
    return build_model({"architecture": arch, "network": network}), arch, network


def _run_dir(cfg: SRTrainConfig) -> Path:
    from core.config import REPO_ROOT

    name = f"sr_{method_of(cfg.method, cfg.stage)}_x{cfg.scale}"
    return Path(cfg.run_dir) if cfg.run_dir else REPO_ROOT / "runs" / name


def train_sr(cfg: SRTrainConfig, progress: ProgressCallback | None = None) -> TrainResult:
    """Train one SR model as ``cfg`` says; returns the model, its card and (if published) the
    registry version."""
    progress = progress or null_progress
    run_dir = _run_dir(cfg)
    ckpt = run_dir / "ckpt"
    ckpt.mkdir(parents=True, exist_ok=True)
    state = {"epoch": 0, "step": 0, "elapsed_s": 0.0, "history": []}
    if cfg.resume:
        if not (ckpt / "state.json").is_file():
            raise MedScanError(f"--resume: no checkpoint in {ckpt}.")
        state = json.loads((ckpt / "state.json").read_text())
    elif (ckpt / "state.json").is_file():
        raise MedScanError(f"{run_dir} already holds a checkpoint; pass --resume to continue "
                           "it or choose another --run-dir.")
    (run_dir / "config.json").write_text(json.dumps(asdict(cfg), indent=2) + "\n")

    images = load_folder(cfg.data, cfg.channels)
    sampler = PatchSampler(images, scale=cfg.scale, lr_patch=cfg.lr_patch,
                           batch_size=cfg.batch_size, seed=cfg.seed + state["step"],
                           degradation=degradation_of(cfg),
                           min_content=cfg.min_content)
    from core.device import configure_device

    device = configure_device(mixed_precision=False)
    clock = _Clock(cfg, float(state["elapsed_s"]))
    if cfg.stage == "psnr":
        model, arch, network, extra = _train_psnr(cfg, sampler, state, ckpt, clock, progress)
    else:
        from core.sr.gan import train_gan

        model, arch, network, extra = train_gan(cfg, sampler, state, ckpt, clock, progress)

    method = method_of(cfg.method, cfg.stage)
    card = {
        "architecture": arch, "network": network, "scale": cfg.scale, "method": method,
        "channels": cfg.channels, "input": "LR image, float32 [0, 1], (N, h, w, C)",
        "output": f"(N, {cfg.scale}h, {cfg.scale}w, C), clip to [0, 1]",
        "data": folder_fingerprint(cfg.data),
        "degradation": degradation_of(cfg).describe(),
        "training": {"config": asdict(cfg), "steps_done": state["step"],
                     "elapsed_minutes": round(clock.elapsed / 60, 1), "device": device.label,
                     "command": command_line()},
        "credits": CREDITS,
        "caveats": ["Trained on brain MRI (T1 contrast-enhanced) slices only; other anatomy or "
                    "contrasts may be reconstructed less faithfully.",
                    "Super-resolved images are for visual comparison; not for diagnosis."],
    } | extra
    if cfg.val:
        from core.sr.evaluate import evaluate_folder
        from core.sr.upscalers import BicubicSR, KerasSR

        models = {"bicubic": BicubicSR(cfg.scale),
                  method: KerasSR(model, card | {"version": None}, method)}
        card["metrics"] = evaluate_folder(cfg.val, cfg.scale, models, limit=cfg.val_limit,
                                          channels=cfg.channels, progress=progress)
        card["metrics"]["data"] = str(cfg.val)
        card["metrics"]["note"] = ("means over val images; LR by bicubic downscaling; "
                                   f"border crop {cfg.scale} px")
        if method in GAN_PARTNER:
            from core import registry
            from core.sr.evaluate import alpha_curve
            from core.sr.upscalers import InterpolatedSR

            psnr_model, _ = registry.load_model("sr", card["init_version"])
            gan = InterpolatedSR(model, card | {"version": None}, psnr_model.get_weights(),
                                 card["init_version"], method)
            card["metrics"]["alpha_curve"] = alpha_curve(
                cfg.val, cfg.scale, gan, limit=cfg.val_limit, channels=cfg.channels,
                progress=progress)
            gan.set_alpha(1.0)
    version = None
    if cfg.publish:
        from core import registry
        from core.models import build_model
        from core.sr.upscalers import slot_name

        version = cfg.version or registry.new_version_name(f"{method}_x{cfg.scale}-")
        clean = build_model(card)  # uncompiled copy: the weights file carries no optimizer state
        clean.set_weights(model.get_weights())
        registry.save_version("sr", clean, card, version=version, activate=cfg.activate,
                              slot=slot_name(method, cfg.scale))
    progress(Progress(task="sr", phase="done", epoch=state["epoch"], epochs=state["epoch"],
                      message=f"published sr/{version}" if version else "not published",
                      metrics={f"{m}_{k}": v for m, d in card.get("metrics", {}).get(
                          "methods", {}).items() for k, v in d.items() if k != "seconds"}))
    return TrainResult(model, card, run_dir, version, state["history"])


def _train_psnr(cfg, sampler, state, ckpt, clock, progress):
    import keras

    from core.keras_progress import KerasProgress

    init_version = None
    if cfg.init:   # fine-tune a published version (its architecture; resume loads over it)
        from core import registry

        model, init_card = registry.load_model("sr", cfg.init)
        if int(init_card["scale"]) != cfg.scale or init_card.get("method") != method_of(
                cfg.method, "psnr"):
            raise MedScanError(f"--init {cfg.init}: need an x{cfg.scale} "
                               f"{method_of(cfg.method, 'psnr')} model, got "
                               f"x{init_card['scale']} {init_card.get('method')}.")
        arch, network = init_card["architecture"], dict(init_card["network"])
        init_version = cfg.init
    else:
        model, arch, network = _build_generator(cfg)
    opt = keras.optimizers.Adam(cfg.learning_rate, beta_1=ADAM_BETAS[0], beta_2=ADAM_BETAS[1])
    model.compile(optimizer=opt, loss="mean_absolute_error")
    if cfg.resume:
        model.load_weights(ckpt / "generator.weights.h5")
        load_optimizer(opt, model.trainable_variables, ckpt / "optimizer.npz")
    epochs = math.ceil(cfg.steps / cfg.steps_per_epoch)

    class Batches(keras.utils.PyDataset):
        def __len__(self):
            return cfg.steps_per_epoch

        def __getitem__(self, i):
            return sampler.batch()

    class Budget(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            step = int(keras.ops.convert_to_numpy(opt.iterations))
            opt.learning_rate = cfg.learning_rate * lr_factor(clock.fraction(step), cfg.schedule)
            if step >= cfg.steps or clock.out_of_time():
                self.model.stop_training = True

        def on_epoch_end(self, epoch, logs=None):
            state["epoch"] = epoch + 1
            state["step"] = int(keras.ops.convert_to_numpy(opt.iterations))
            state["elapsed_s"] = clock.elapsed
            state["history"].append({"epoch": epoch + 1, "step": state["step"],
                                     "loss": float((logs or {}).get("loss", float("nan"))),
                                     "lr": float(keras.ops.convert_to_numpy(opt.learning_rate)),
                                     "elapsed_s": round(clock.elapsed, 1)})
            model.save_weights(ckpt / "generator.weights.h5")
            save_optimizer(opt, ckpt / "optimizer.npz")
            (ckpt / "state.json").write_text(json.dumps(state) + "\n")
            if state["step"] >= cfg.steps or clock.out_of_time():
                self.model.stop_training = True

    if state["step"] < cfg.steps and not clock.out_of_time():
        model.fit(Batches(), epochs=epochs, initial_epoch=state["epoch"], verbose=0,
                  callbacks=[Budget(), KerasProgress(progress, task="sr", phase=cfg.stage,
                                                     total_epochs=epochs,
                                                     steps_per_epoch=cfg.steps_per_epoch)])
    method = method_of(cfg.method, "psnr")
    recipe = {"method": method, "paper": PAPERS[method], "stage": "psnr", "pixel_loss": "L1",
              "generator_init": {"version": init_version} if init_version else "random",
              "optimizer": {"name": "Adam", "betas": list(ADAM_BETAS),
                            "learning_rate": cfg.learning_rate, "schedule": cfg.schedule},
              "batch_size": cfg.batch_size, "lr_patch": cfg.lr_patch}
    return model, arch, network, {"loss": "L1", "init_version": init_version, "recipe": recipe}
