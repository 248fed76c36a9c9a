"""Stage 2: adversarial fine-tuning of a PSNR-oriented generator, two recipes (:data:`RECIPES`):

* ``esrgan`` (Wang et al. 2018) from an RRDBNet: generator loss
  ``L_G = w_p·L_percep + λ·L_G^Ra + η·L_1`` (paper: w_p = 1, λ = 5e-3, η = 1e-2),
  discriminator loss ``L_D^Ra``. Relativistic average GAN (Jolicoeur-Martineau 2018):
  ``D_Ra(x_r, x_f) = σ(C(x_r) − E[C(x_f)])``.
* ``srgan`` (Ledig et al. 2017) from an SRResNet: the standard (non-relativistic) GAN,
  ``L_D = BCE(D(x_r), 1) + BCE(D(x_f), 0)`` and the non-saturating generator term
  ``BCE(D(x_f), 1)`` (= −log D(G(z)), the paper's eq. 6), with the same perceptual (VGG
  ``conv5_4`` before activation, or the project's classifier, :mod:`core.sr.perceptual`) and L1
  terms and weights as BasicSR / MMagic's SRGAN configuration (1, 5e-3, 1e-2).

Each adversarial loss is the mean of its real and fake binary-cross-entropy terms (as BasicSR
implements it). The discriminator is ESRGAN's VGG-style one for both (SRGAN's is the same
conv-BN-LeakyReLU pattern). One generator step, then one discriminator step per batch;
Adam(β = 0.9, 0.99) for both.

TensorFlow-specific: the two-optimizer step uses ``tf.GradientTape`` inside ``tf.function``.
"""
from __future__ import annotations

import json
import time

import numpy as np

from core.errors import MedScanError
from core.progress import Progress

__all__ = ["ragan_d_loss", "ragan_g_loss", "vanilla_d_loss", "vanilla_g_loss", "train_gan",
           "make_gan_step", "RECIPES", "ADVERSARIAL_LOSSES"]

#: The GAN stage's recipe per method: adversarial loss, default loss weights, paper.
RECIPES = {
    "esrgan": {"adversarial": "ragan", "perceptual_weight": 1.0, "gan_weight": 5e-3,
               "l1_weight": 1e-2, "paper": "Wang et al. 2018, ESRGAN (arXiv:1809.00219)"},
    "srgan": {"adversarial": "vanilla", "perceptual_weight": 1.0, "gan_weight": 5e-3,
              "l1_weight": 1e-2, "paper": "Ledig et al. 2017, SRGAN (arXiv:1609.04802); "
                                          "weights as BasicSR/MMagic's SRGAN configuration"},
}

# Progress lines at most this often (seconds).
_REPORT_EVERY_S = 2.0


def _bce_logits(logits, target: float):
    import tensorflow as tf

    return tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(
        labels=tf.fill(tf.shape(logits), tf.cast(target, logits.dtype)), logits=logits))


def ragan_d_loss(real_logits, fake_logits):
    """Discriminator: real should look *more* real than the average fake, and vice versa."""
    import tensorflow as tf

    return 0.5 * (_bce_logits(real_logits - tf.reduce_mean(fake_logits), 1.0)
                  + _bce_logits(fake_logits - tf.reduce_mean(real_logits), 0.0))


def ragan_g_loss(real_logits, fake_logits):
    """Generator: the symmetric objective (both real and fake logits carry gradients to G
    through the fake term)."""
    import tensorflow as tf

    return 0.5 * (_bce_logits(real_logits - tf.reduce_mean(fake_logits), 0.0)
                  + _bce_logits(fake_logits - tf.reduce_mean(real_logits), 1.0))


def vanilla_d_loss(real_logits, fake_logits):
    """Standard GAN discriminator: real → 1, fake → 0."""
    return 0.5 * (_bce_logits(real_logits, 1.0) + _bce_logits(fake_logits, 0.0))


def vanilla_g_loss(real_logits, fake_logits):
    """Non-saturating generator term −log D(G(z)) (Ledig et al. 2017, eq. 6); ``real_logits``
    unused (the signature matches the relativistic loss)."""
    del real_logits
    return _bce_logits(fake_logits, 1.0)


#: adversarial loss name → (generator loss, discriminator loss) on raw logits
ADVERSARIAL_LOSSES = {"ragan": (ragan_g_loss, ragan_d_loss),
                      "vanilla": (vanilla_g_loss, vanilla_d_loss)}


def make_gan_step(G, D, features, opt_g, opt_d, *, w_percep: float, w_gan: float, w_l1: float,
                  adversarial: str = "ragan"):
    """A compiled train step ``(lr, hr) -> dict of losses``; ``adversarial``: ``"ragan"``
    (ESRGAN) or ``"vanilla"`` (SRGAN)."""
    import tensorflow as tf

    if adversarial not in ADVERSARIAL_LOSSES:
        raise MedScanError(f"Unknown adversarial loss {adversarial!r}; expected one of "
                           f"{', '.join(ADVERSARIAL_LOSSES)}.")
    g_adv, d_adv = ADVERSARIAL_LOSSES[adversarial]

    @tf.function
    def step(lr, hr):
        with tf.GradientTape() as tape:
            sr = G(lr, training=True)
            l1 = tf.reduce_mean(tf.abs(sr - hr))
            percep = (tf.reduce_mean(tf.abs(features(sr, training=False)
                                            - features(hr, training=False)))
                      if features is not None else tf.constant(0.0))
            fake = D(sr, training=True)
            # the relativistic term compares with the real logits; the standard one does not
            real = (tf.stop_gradient(D(hr, training=True)) if adversarial == "ragan"
                    else tf.zeros_like(fake))
            g_gan = g_adv(real, fake)
            g_loss = w_percep * percep + w_gan * g_gan + w_l1 * l1
        grads = tape.gradient(g_loss, G.trainable_variables)
        opt_g.apply_gradients(zip(grads, G.trainable_variables))
        with tf.GradientTape() as tape:
            real = D(hr, training=True)
            fake = D(tf.stop_gradient(sr), training=True)
            d_loss = d_adv(real, fake)
        grads = tape.gradient(d_loss, D.trainable_variables)
        opt_d.apply_gradients(zip(grads, D.trainable_variables))
        return {"g_loss": g_loss, "l1": l1, "percep": percep, "g_gan": g_gan, "d_loss": d_loss,
                "d_real": tf.reduce_mean(real), "d_fake": tf.reduce_mean(fake)}

    return step


def train_gan(cfg, sampler, state, ckpt, clock, progress):
    """Run stage 2 for ``cfg`` (a :class:`core.sr.train.SRTrainConfig`); see module docstring."""
    import keras

    if keras.backend.backend() != "tensorflow":
        raise MedScanError("The GAN stage needs the TensorFlow backend (KERAS_BACKEND).")
    from core import registry
    from core.models.discriminator import build_vgg_discriminator
    from core.sr.methods import ARCHITECTURE_BY_METHOD, GAN_PARTNER, method_of, slot_name
    from core.sr.perceptual import build_perceptual
    from core.sr.optim import ADAM_BETAS, load_optimizer, lr_factor, save_optimizer

    method = method_of(cfg.method, "gan")
    partner = GAN_PARTNER[method]
    arch = ARCHITECTURE_BY_METHOD[partner]
    recipe = RECIPES[method]
    init_version = cfg.init or registry.active_version("sr", slot=slot_name(partner, cfg.scale))
    if init_version is None:
        raise MedScanError(f"Stage gan ({method}) starts from a PSNR-oriented {arch} model: train "
                           f"one first (--method {cfg.method} --stage psnr) or pass --init "
                           f"VERSION; no active {slot_name(partner, cfg.scale)}.")
    G, init_card = registry.load_model("sr", init_version)
    if init_card["architecture"] != arch or int(init_card["scale"]) != cfg.scale:
        raise MedScanError(f"--init {init_version}: need an x{cfg.scale} {arch}, got "
                           f"x{init_card['scale']} {init_card['architecture']}.")
    channels = int(init_card["network"].get("num_in_ch", 1))
    D = build_vgg_discriminator(num_in_ch=channels, num_feat=cfg.disc_feat,
                                input_size=sampler.hr_patch)
    features, percep_info = build_perceptual(cfg.perceptual, cfg.perceptual_layer,
                                             channels=channels)
    opt_g = keras.optimizers.Adam(cfg.learning_rate, beta_1=ADAM_BETAS[0], beta_2=ADAM_BETAS[1])
    opt_d = keras.optimizers.Adam(cfg.learning_rate, beta_1=ADAM_BETAS[0], beta_2=ADAM_BETAS[1])
    opt_g.build(G.trainable_variables)
    opt_d.build(D.trainable_variables)
    if cfg.resume:
        G.load_weights(ckpt / "generator.weights.h5")
        D.load_weights(ckpt / "discriminator.weights.h5")
        load_optimizer(opt_g, G.trainable_variables, ckpt / "optimizer.npz")
        load_optimizer(opt_d, D.trainable_variables, ckpt / "optimizer_d.npz")
    step_fn = make_gan_step(G, D, features, opt_g, opt_d, w_percep=cfg.perceptual_weight,
                            w_gan=cfg.gan_weight, w_l1=cfg.l1_weight,
                            adversarial=recipe["adversarial"])
    epochs = -(-cfg.steps // cfg.steps_per_epoch)
    step, last, t_start, start_step = state["step"], 0.0, time.monotonic(), state["step"]
    window: list[dict] = []
    while step < cfg.steps and not clock.out_of_time():
        lr_now = cfg.learning_rate * lr_factor(clock.fraction(step), cfg.schedule)
        opt_g.learning_rate = lr_now
        opt_d.learning_rate = lr_now
        lr_b, hr_b = sampler.batch()
        logs = {k: float(v) for k, v in step_fn(lr_b, hr_b).items()}
        step += 1
        window.append(logs)
        epoch, within = divmod(step - 1, cfg.steps_per_epoch)
        now = time.monotonic()
        end_of_epoch = within + 1 == cfg.steps_per_epoch or step >= cfg.steps or clock.out_of_time()
        if now - last >= _REPORT_EVERY_S or end_of_epoch:
            last = now
            rate = (now - t_start) / max(step - start_step, 1)
            eta = rate * (cfg.steps - step)
            if cfg.max_minutes:
                eta = min(eta, max(0.0, 60 * cfg.max_minutes - clock.elapsed))
            progress(Progress(task="sr", phase="gan", epoch=epoch + 1, epochs=epochs,
                              step=within + 1, steps=cfg.steps_per_epoch, loss=logs["g_loss"],
                              metrics={k: v for k, v in logs.items() if k != "g_loss"},
                              eta_s=eta, message="epoch end" if end_of_epoch else ""))
        if end_of_epoch:
            mean = {k: float(np.mean([w[k] for w in window])) for k in window[0]}
            window = []
            state.update(epoch=epoch + 1, step=step, elapsed_s=clock.elapsed)
            state["history"].append({"epoch": epoch + 1, "step": step, "lr": lr_now,
                                     "elapsed_s": round(clock.elapsed, 1)} | mean)
            G.save_weights(ckpt / "generator.weights.h5")
            D.save_weights(ckpt / "discriminator.weights.h5")
            save_optimizer(opt_g, ckpt / "optimizer.npz")
            save_optimizer(opt_d, ckpt / "optimizer_d.npz")
            (ckpt / "state.json").write_text(json.dumps(state) + "\n")
    adversarial = {"ragan": "RaGAN (relativistic average)",
                   "vanilla": "standard GAN (non-saturating generator term)"}[recipe["adversarial"]]
    weights = {"perceptual": cfg.perceptual_weight, "gan": cfg.gan_weight, "l1": cfg.l1_weight}
    discriminator = {"architecture": "esrgan_discriminator",
                     "network": {"num_in_ch": channels, "num_feat": cfg.disc_feat,
                                 "input_size": sampler.hr_patch}}
    extra = {"init_version": init_version, "perceptual": percep_info,
             "loss": f"{method.upper()}: perceptual (L1 on features) + {adversarial} + L1",
             "loss_weights": weights, "discriminator": discriminator,
             "recipe": {"method": method, "paper": recipe["paper"], "stage": "gan",
                        "generator_init": {"version": init_version, "method": partner},
                        "adversarial": recipe["adversarial"], "adversarial_text": adversarial,
                        "perceptual": percep_info, "pixel_loss": "L1", "loss_weights": weights,
                        "discriminator": discriminator,
                        "optimizer": {"name": "Adam", "betas": list(ADAM_BETAS),
                                      "learning_rate": cfg.learning_rate,
                                      "schedule": cfg.schedule},
                        "batch_size": cfg.batch_size, "lr_patch": cfg.lr_patch,
                        "steps_per_iteration": "one generator step, then one discriminator "
                                               "step"}}
    return G, arch, dict(init_card["network"]), extra
