"""CLI for super-resolution: ``train sr``, ``evaluate sr`` and ``super-resolve``.

TensorFlow is imported inside the handlers only, so ``--help`` stays fast.
"""
from __future__ import annotations

import json

from core.jobs import add_progress_args, progress_from_args
from core.sr.degrade import DEGRADATIONS
from core.sr.methods import (GAN_PARTNER, METHOD_LABELS, SR_METHODS, TRAIN_NETWORKS,
                             TRAINING_METHODS, uses_alpha)

__all__ = ["register", "PRESETS"]

#: Network sizes per training network: ``cpu`` (what ships) and ``paper``.
PRESETS = {
    "rrdb": {
        "cpu": {"num_feat": 32, "num_block": 6, "num_grow_ch": 16, "global_residual": True},
        "paper": {"num_feat": 64, "num_block": 23, "num_grow_ch": 32, "global_residual": False},
    },
    "srresnet": {
        # the paper's depth (so its receptive field), half its width, bicubic skip
        "cpu": {"num_blocks": 16, "features": 32, "global_residual": True},
        "paper": {"num_blocks": 16, "features": 64, "global_residual": False},
    },
    "srcnn": {"cpu": {}, "paper": {}},
}
#: The generic size flags → each network's builder argument (None: not applicable).
_SIZE_FLAGS = {"rrdb": {"num_feat": "num_feat", "num_block": "num_block",
                        "num_grow_ch": "num_grow_ch"},
               "srresnet": {"num_feat": "features", "num_block": "num_blocks",
                            "num_grow_ch": None},
               "srcnn": {"num_feat": None, "num_block": None, "num_grow_ch": None}}


def _trains() -> str:
    return "; ".join(f"{net}: " + ", ".join(f"{stage} → {METHOD_LABELS[m]}"
                                            for stage, m in stages.items())
                     for net, stages in TRAINING_METHODS.items())


def register(cmds) -> None:
    p = cmds.train.add_parser(
        "sr", help="train a super-resolution model (RRDB/ESRGAN, SRResNet/SRGAN or SRCNN)",
        description="Stage psnr: L1 pre-training. Stage gan: adversarial fine-tuning of the "
                    "active PSNR model of the same network (ESRGAN: RaGAN + perceptual + L1; "
                    "SRGAN: standard GAN + perceptual + L1). " + _trains() + ".")
    p.add_argument("--data", required=True, help="folder of HR training images")
    p.add_argument("--val", default=None, help="folder of HR validation images (metrics in card)")
    p.add_argument("--val-limit", type=int, default=None)
    p.add_argument("--scale", type=int, default=4, choices=(2, 4))
    p.add_argument("--stage", default="psnr", choices=("psnr", "gan"))
    p.add_argument("--method", default="rrdb", choices=TRAIN_NETWORKS,
                   help="the network: " + _trains())
    p.add_argument("--preset", default="cpu", choices=("cpu", "paper"),
                   help="network size: rrdb cpu = 32 feat, 6 blocks, 16 growth, bicubic skip; "
                        "paper = ESRGAN's 64/23/32. srresnet cpu = 16 blocks of 32 features, "
                        "bicubic skip; paper = SRGAN's 16 blocks of 64")
    p.add_argument("--num-feat", type=int, help="features (rrdb num_feat, srresnet features)")
    p.add_argument("--num-block", type=int, help="blocks (rrdb num_block, srresnet num_blocks)")
    p.add_argument("--num-grow-ch", type=int, help="rrdb growth channels")
    p.add_argument("--global-residual", type=int, choices=(0, 1), default=None,
                   help="add a bicubic skip to the output (1) or not (0)")
    p.add_argument("--channels", type=int, default=1, choices=(1, 3))
    p.add_argument("--steps", type=int, default=None, help="total optimizer steps")
    p.add_argument("--epochs", type=int, default=None, help="alternative to --steps: "
                   "epochs of --steps-per-epoch steps")
    p.add_argument("--steps-per-epoch", type=int, default=100)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--lr-patch", type=int, default=48, help="LR patch side (HR = × scale)")
    p.add_argument("--lr", type=float, default=None,
                   help="learning rate (default 2e-4 psnr rrdb/srresnet, 1e-3 srcnn, 1e-4 gan)")
    p.add_argument("--schedule", default="cosine", choices=("cosine", "constant"))
    p.add_argument("--max-minutes", type=float, default=None, help="wall-clock cap")
    p.add_argument("--blur", type=float, default=0.0, help="max Gaussian blur sigma (HR px)")
    p.add_argument("--noise", type=float, default=0.0, help="max noise sigma ([0, 1] scale)")
    p.add_argument("--degradation", default="bicubic", choices=("bicubic", "kspace", "mixed"),
                   help="how LR patches are made: bicubic, MRI k-space truncation, or half "
                        "and half (one model for both); recorded in the card")
    p.add_argument("--window", default=None, choices=("tukey", "hamming"),
                   help="k-space window (default none)")
    p.add_argument("--rician-snr", type=float, default=0.0,
                   help="Rician noise on half the patches at SNR in [S, 4S] (0 = off)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--run-dir", default=None, help="checkpoint folder (default runs/sr_<m>_x<s>)")
    p.add_argument("--resume", action="store_true", help="continue the checkpoint in --run-dir")
    p.add_argument("--init", default=None, help="gan: PSNR model version to start from "
                   "(default: the active rrdb_psnr / srresnet of this scale); psnr: fine-tune "
                   "this published version (its architecture) instead of starting from scratch")
    p.add_argument("--perceptual", default="auto",
                   help="gan: auto | vgg19 | classifier | none | path of VGG19 no-top weights")
    p.add_argument("--perceptual-layer", default=None)
    p.add_argument("--gan-weight", type=float, default=None,
                   help="gan: adversarial weight (default: the recipe's, 5e-3)")
    p.add_argument("--l1-weight", type=float, default=None,
                   help="gan: L1 weight (default: the recipe's, 1e-2)")
    p.add_argument("--perceptual-weight", type=float, default=None,
                   help="gan: perceptual weight (default: the recipe's, 1)")
    p.add_argument("--disc-feat", type=int, default=64)
    p.add_argument("--activate", action="store_true", help="make it the active model of its slot")
    p.add_argument("--no-publish", action="store_true", help="do not save to the registry")
    p.add_argument("--version", default=None)
    p.add_argument("--threads", type=int, default=None, help="cap TensorFlow CPU threads")
    add_progress_args(p)
    p.set_defaults(func=_train)

    e = cmds.evaluate.add_parser("sr", help="PSNR/SSIM of bicubic and the SR models on HR images")
    e.add_argument("--data", required=True, help="folder of HR images (LR by bicubic downscaling)")
    e.add_argument("--scale", type=int, default=4, choices=(2, 4))
    e.add_argument("--model", default=None, help="evaluate this version in place of the active "
                   "model of its method")
    e.add_argument("--methods", default=None, help="comma list (default: every installed one)")
    e.add_argument("--alpha", type=float, default=1.0,
                   help="network interpolation of the GAN methods (" + ", ".join(GAN_PARTNER)
                   + "): 0 = their PSNR model, 1 = the GAN")
    e.add_argument("--alpha-curve", action="store_true",
                   help="instead: PSNR/SSIM of each GAN method (or --model) at α 0, 0.2, ..., 1")
    e.add_argument("--record", action="store_true",
                   help="with --alpha-curve: store each curve in its model card "
                        "(metrics.alpha_curve), the one the Super-resolution page plots")
    e.add_argument("--tile", type=int, default=0, help="tile size (LR px); 0 = untiled")
    e.add_argument("--limit", type=int, default=None)
    e.add_argument("--degradation", default="bicubic", choices=DEGRADATIONS,
                   help="how LR is made: bicubic downscaling, or MRI k-space truncation (adds "
                        "the zero-filled reference)")
    e.add_argument("--window", default=None, choices=("tukey", "hamming"),
                   help="kspace: window over the kept k-space (default none)")
    e.add_argument("--rician-snr", type=float, default=None,
                   help="add Rician noise at this SNR (mean signal / sigma)")
    e.add_argument("--json", action="store_true", help="print one JSON object")
    e.add_argument("--threads", type=int, default=None)
    add_progress_args(e)
    e.set_defaults(func=_evaluate)

    s = cmds.sub.add_parser("super-resolve", help="upscale an image with an SR model")
    s.add_argument("file")
    s.add_argument("--scale", type=int, default=4, choices=(2, 4))
    s.add_argument("--out", required=True, help="output PNG")
    s.add_argument("--method", default=None, choices=SR_METHODS,
                   help="default: esrgan if installed, else rrdb_psnr")
    s.add_argument("--model", default=None, help="model version (overrides --method)")
    s.add_argument("--alpha", type=float, default=None,
                   help="GAN methods: 0 = their PSNR model, 1 = the GAN; default: the model "
                        "card's recommended α (the largest beating bicubic in PSNR and SSIM "
                        "on validation), else 0.8")
    s.add_argument("--tile", type=int, default=None,
                   help="tile size (LR px, at least 8); 0 = untiled; default: from the memory "
                        "budget MEDSCAN_SR_MEMORY_MB (untiled when the image fits). Tiled "
                        "output equals untiled output.")
    s.add_argument("--threads", type=int, default=None)
    s.set_defaults(func=_super_resolve)


def _network(args) -> dict:
    from core.errors import MedScanError

    net = dict(PRESETS[args.method][args.preset])
    for flag, key in _SIZE_FLAGS[args.method].items():
        value = getattr(args, flag)
        if value is None:
            continue
        if key is None:
            raise MedScanError(f"--{flag.replace('_', '-')} does not apply to --method "
                               f"{args.method}.")
        net[key] = value
    if args.global_residual is not None:
        net["global_residual"] = bool(args.global_residual)
    return net


def _train(args) -> int:
    from core.sr.train import SRTrainConfig, limit_threads, train_sr

    limit_threads(args.threads)
    steps = args.steps or (args.epochs * args.steps_per_epoch if args.epochs else 5000)
    lr = args.lr or (1e-4 if args.stage == "gan" else 1e-3 if args.method == "srcnn" else 2e-4)
    cfg = SRTrainConfig(
        data=args.data, scale=args.scale, method=args.method, stage=args.stage,
        network=_network(args) if args.stage == "psnr" else {}, channels=args.channels,
        lr_patch=args.lr_patch, batch_size=args.batch_size, steps=steps,
        steps_per_epoch=args.steps_per_epoch, learning_rate=lr, schedule=args.schedule,
        max_minutes=args.max_minutes, blur_sigma_max=args.blur, noise_sigma_max=args.noise,
        kspace_fraction={"bicubic": 0.0, "kspace": 1.0, "mixed": 0.5}[args.degradation],
        kspace_window=args.window, rician_snr_min=args.rician_snr, seed=args.seed, val=args.val, val_limit=args.val_limit, run_dir=args.run_dir,
        resume=args.resume, init=args.init, perceptual=args.perceptual,
        perceptual_layer=args.perceptual_layer, gan_weight=args.gan_weight,
        l1_weight=args.l1_weight, perceptual_weight=args.perceptual_weight,
        disc_feat=args.disc_feat, publish=not args.no_publish, activate=args.activate,
        version=args.version)
    result = train_sr(cfg, progress_from_args(args))
    summary = {"version": result.version, "run_dir": str(result.run_dir),
               "metrics": result.card.get("metrics")}
    print(json.dumps(summary))
    return 0


def _evaluate(args) -> int:
    from core.sr import available_methods
    from core.sr.evaluate import evaluate_folder
    from core.sr.upscalers import load_sr_model
    from core.sr.train import limit_threads

    limit_threads(args.threads)
    if args.alpha_curve:
        return _alpha_curves(args)
    if args.record:
        from core.errors import MedScanError

        raise MedScanError("--record goes with --alpha-curve.")
    installed = available_methods(args.scale)
    methods = args.methods.split(",") if args.methods else list(installed)
    models = {}
    override = None
    if args.model:
        from core import registry

        card = registry.load_card("sr", args.model)
        override = card.get("method")
    for m in methods:
        version = args.model if m == override else None
        models[m] = load_sr_model(m, args.scale, version)
    if override and override not in models:
        models[override] = load_sr_model(override, args.scale, args.model)
    progress = progress_from_args(args) if not args.json else (lambda p: None)
    result = evaluate_folder(args.data, args.scale, models, tile=args.tile, alpha=args.alpha,
                             limit=args.limit, progress=progress, degradation=args.degradation,
                             window=args.window, rician_snr=args.rician_snr)
    result["versions"] = {m: getattr(mod, "version", None) for m, mod in models.items()}
    if args.json:
        for d in result["methods"].values():
            d.pop("seconds", None)
        print(json.dumps(result))
    else:
        print(f"LR by {result['degradation']['text']}, {result['images']} images")
        for m, d in result["methods"].items():
            print(f"{m:10s} PSNR {d['psnr']:.2f} dB  SSIM {d['ssim']:.4f}  "
                  f"{d['seconds']:.2f} s/image  ({result['versions'][m]})")
    return 0


def _alpha_curves(args) -> int:
    """``evaluate sr --alpha-curve``: one curve per GAN method (or the ``--model`` version)."""
    from core import registry
    from core.errors import MedScanError
    from core.sr import available_methods
    from core.sr.evaluate import alpha_curve
    from core.sr.upscalers import load_sr_model

    if args.model:
        card = registry.load_card("sr", args.model)
        targets = {card.get("method"): args.model}
        if not uses_alpha(card.get("method", "")):
            raise MedScanError(f"sr/{args.model} is a {card.get('method')!r} model; the α curve "
                               f"needs a GAN method ({', '.join(GAN_PARTNER)}).")
    else:
        wanted = args.methods.split(",") if args.methods else list(GAN_PARTNER)
        installed = available_methods(args.scale)
        targets = {m: installed[m] for m in wanted if uses_alpha(m) and installed.get(m)}
        if not targets:
            raise MedScanError(f"No installed GAN method at x{args.scale} among "
                               f"{', '.join(wanted)}.")
    progress = progress_from_args(args) if not args.json else (lambda p: None)
    curves = {}
    for method, version in targets.items():
        model = load_sr_model(method, args.scale, version)
        curve = alpha_curve(args.data, args.scale, model, limit=args.limit, progress=progress,
                            degradation=args.degradation, window=args.window,
                            rician_snr=args.rician_snr)
        curves[method] = curve
        if args.record:
            card = registry.load_card("sr", model.version)
            card.setdefault("metrics", {})["alpha_curve"] = curve
            registry.replace_card("sr", model.version, card)
    if args.json:
        print(json.dumps({"scale": args.scale, "alpha_curves": curves}))
        return 0
    for method, c in curves.items():
        print(f"{METHOD_LABELS[method]} {c['version']} (α 0 = {c['psnr_version']}), "
              f"{c['images']} images, LR by {c['degradation']}"
              + (" — recorded in its card" if args.record else ""))
        print(f"  bicubic    PSNR {c['bicubic']['psnr']:.2f} dB  SSIM {c['bicubic']['ssim']:.4f}")
        for p in c["points"]:
            print(f"  α {p['alpha']:.1f}      PSNR {p['psnr']:.2f} dB  SSIM {p['ssim']:.4f}")
        best = c.get("recommended_alpha")
        print(f"  recommended α: {best:.1f} (the largest beating bicubic in PSNR and SSIM)"
              if best is not None else "  no α beats bicubic in both PSNR and SSIM")
    return 0


def _super_resolve(args) -> int:
    import time


    from core.imaging import load_scan
    from core.sr import available_methods
    from core.sr.upscalers import load_sr_model
    from core.sr.train import limit_threads

    from core.sr.tiling import check_tile

    limit_threads(args.threads)
    check_tile(args.tile)
    if args.model:
        from core import registry

        card = registry.load_card("sr", args.model)
        model = load_sr_model(card.get("method", "rrdb_psnr"), int(card["scale"]), args.model)
    else:
        method = args.method or ("esrgan" if "esrgan" in available_methods(args.scale)
                                 else "rrdb_psnr")
        model = load_sr_model(method, args.scale)
    alpha = args.alpha
    if alpha is None and uses_alpha(model.method):
        from core.sr.evaluate import default_alpha

        alpha, _ = default_alpha(model.card)
    scan = load_scan(args.file)
    t = time.perf_counter()
    out = model.upscale(scan.pixels, tile=args.tile, alpha=1.0 if alpha is None else alpha)
    seconds = time.perf_counter() - t
    from core.imaging.export import write_png

    write_png(args.out, out)
    print(json.dumps({"out": args.out, "method": model.method, "version": model.version,
                      "input": list(scan.pixels.shape), "output": list(out.shape),
                      **({"alpha": alpha} if uses_alpha(model.method) else {}),
                      "seconds": round(seconds, 3)}))
    return 0
