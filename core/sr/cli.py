"""CLI for super-resolution: ``train sr``, ``evaluate sr`` and ``super-resolve``.

TensorFlow is imported inside the handlers only, so ``--help`` stays fast.
"""
from __future__ import annotations

import json

from core.progress import add_progress_args, progress_from_args
from core.sr.degrade import DEGRADATIONS

__all__ = ["register"]

PRESETS = {
    "cpu": {"num_feat": 32, "num_block": 6, "num_grow_ch": 16, "global_residual": True},
    "paper": {"num_feat": 64, "num_block": 23, "num_grow_ch": 32, "global_residual": False},
}


def register(cmds) -> None:
    p = cmds.train.add_parser(
        "sr", help="train a super-resolution model (RRDB PSNR/ESRGAN or SRCNN)",
        description="Stage psnr: L1 pre-training (RRDB or SRCNN). Stage gan: ESRGAN fine-tuning "
                    "from a PSNR model (RaGAN + perceptual + L1).")
    p.add_argument("--data", required=True, help="folder of HR training images")
    p.add_argument("--val", default=None, help="folder of HR validation images (metrics in card)")
    p.add_argument("--val-limit", type=int, default=None)
    p.add_argument("--scale", type=int, default=4, choices=(2, 4))
    p.add_argument("--stage", default="psnr", choices=("psnr", "gan"))
    p.add_argument("--method", default="rrdb", choices=("rrdb", "srcnn"))
    p.add_argument("--preset", default="cpu", choices=tuple(PRESETS),
                   help="RRDB size: cpu = 32 feat, 6 blocks, 16 growth, bicubic skip (shipped); "
                        "paper = ESRGAN's 64/23/32")
    p.add_argument("--num-feat", type=int)
    p.add_argument("--num-block", type=int)
    p.add_argument("--num-grow-ch", type=int)
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
                   help="learning rate (default 2e-4 psnr rrdb, 1e-3 srcnn, 1e-4 gan)")
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
                   "(default: the active rrdb_psnr of this scale); psnr: fine-tune this "
                   "published version (its architecture) instead of starting from scratch")
    p.add_argument("--perceptual", default="auto",
                   help="gan: auto | vgg19 | classifier | none | path of VGG19 no-top weights")
    p.add_argument("--perceptual-layer", default=None)
    p.add_argument("--gan-weight", type=float, default=5e-3)
    p.add_argument("--l1-weight", type=float, default=1e-2)
    p.add_argument("--perceptual-weight", type=float, default=1.0)
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
    e.add_argument("--alpha", type=float, default=1.0, help="esrgan network interpolation")
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
    s.add_argument("--method", default=None, choices=("bicubic", "srcnn", "rrdb_psnr", "esrgan"),
                   help="default: esrgan if installed, else rrdb_psnr")
    s.add_argument("--model", default=None, help="model version (overrides --method)")
    s.add_argument("--alpha", type=float, default=0.8, help="esrgan: 0 = PSNR model, 1 = GAN")
    s.add_argument("--tile", type=int, default=128, help="tile size (LR px); 0 = untiled")
    s.add_argument("--threads", type=int, default=None)
    s.set_defaults(func=_super_resolve)


def _network(args) -> dict:
    net = dict(PRESETS[args.preset]) if args.method == "rrdb" else {}
    for key in ("num_feat", "num_block", "num_grow_ch"):
        if getattr(args, key) is not None:
            net[key] = getattr(args, key)
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
    from core.sr.models import load_sr_model
    from core.sr.train import limit_threads

    limit_threads(args.threads)
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


def _super_resolve(args) -> int:
    import time


    from core.imaging import load_scan
    from core.sr import available_methods
    from core.sr.models import load_sr_model
    from core.sr.train import limit_threads

    limit_threads(args.threads)
    if args.model:
        from core import registry

        card = registry.load_card("sr", args.model)
        model = load_sr_model(card.get("method", "rrdb_psnr"), int(card["scale"]), args.model)
    else:
        method = args.method or ("esrgan" if "esrgan" in available_methods(args.scale)
                                 else "rrdb_psnr")
        model = load_sr_model(method, args.scale)
    scan = load_scan(args.file)
    t = time.perf_counter()
    out = model.upscale(scan.pixels, tile=args.tile, alpha=args.alpha)
    seconds = time.perf_counter() - t
    from core.imaging.export import write_png

    write_png(args.out, out)
    print(json.dumps({"out": args.out, "method": model.method, "version": model.version,
                      "input": list(scan.pixels.shape), "output": list(out.shape),
                      "seconds": round(seconds, 3)}))
    return 0
