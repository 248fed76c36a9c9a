"""Segmentation commands: ``train segmentation``, ``evaluate segmentation``, ``segment`` and
``evaluate gradcam-localization`` (the classifier's Grad-CAM against the tumour masks).

Heavy imports (TensorFlow) happen inside the handlers so that ``--help`` stays fast.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from core.cli import command_line
from core.errors import MedScanError
from core.jobs import add_progress_args, progress_from_args

__all__ = ["register"]


def register(cmds) -> None:
    t = cmds.train.add_parser(
        "segmentation", help="train the tumour segmentation U-Net on image/mask pairs",
        description="Train on DIR/images/<class>/* + DIR/masks/<class>/* (split by contiguous "
                    "figshare-number windows with a margin), evaluate on the held-out windows at "
                    "the masks' own size, publish a registry version with its model card.")
    t.add_argument("--data", required=True, help="folder with images/<class>/ and masks/<class>/")
    t.add_argument("--input-size", type=int, default=128, help="model input side (px)")
    t.add_argument("--base-filters", type=int, default=16)
    t.add_argument("--depth", type=int, default=4, help="encoder stages (input size / 2**depth)")
    t.add_argument("--no-batch-norm", action="store_true")
    t.add_argument("--dropout", type=float, default=0.1, help="bottleneck dropout")
    t.add_argument("--epochs", type=int, default=40)
    t.add_argument("--batch-size", type=int, default=8)
    t.add_argument("--lr", type=float, default=1e-3)
    t.add_argument("--patience", type=int, default=10, help="early stopping on validation Dice")
    t.add_argument("--val-fraction", type=float, default=0.10)
    t.add_argument("--test-fraction", type=float, default=0.15)
    t.add_argument("--margin", type=int, default=40,
                   help="figshare numbers dropped from training around held-out windows")
    t.add_argument("--no-head-crop", action="store_true")
    t.add_argument("--threshold", type=float, default=0.5,
                   help="probability → mask (with --no-tune; else chosen on validation)")
    t.add_argument("--no-tune", action="store_true",
                   help="keep --threshold and no clean-up instead of choosing them on the "
                        "validation pairs")
    t.add_argument("--seed", type=int, default=42)
    t.add_argument("--max-minutes", type=float, default=None,
                   help="stop after the epoch that would pass this wall-clock budget")
    t.add_argument("--max-images", type=int, default=None, help="use the first N training pairs")
    t.add_argument("--threads", type=int, default=None, help="intra-op CPU threads")
    t.add_argument("--workers", type=int, default=1, help="augmentation threads")
    t.add_argument("--run-dir", default=None,
                   help="checkpoints (default runs/segmentation/VERSION)")
    t.add_argument("--resume", action="store_true", help="continue from RUN_DIR/last.keras")
    t.add_argument("--version", default=None, help="registry version name")
    t.add_argument("--activate", action="store_true", help="make the new version active")
    t.add_argument("--no-publish", action="store_true", help="train only; no registry version")
    t.add_argument("--tried", action="append", default=[], metavar="TEXT",
                   help="what else was tried (recorded in the model card; repeatable)")
    add_progress_args(t)
    t.set_defaults(func=_train)

    e = cmds.evaluate.add_parser(
        "segmentation", help="Dice and IoU of the segmentation model on image/mask pairs")
    e.add_argument("--data", required=True, help="folder with images/<class>/ and masks/<class>/")
    e.add_argument("--model", default=None, metavar="VERSION", help="default: the active version")
    e.add_argument("--per-image", action="store_true", help="include every image's figures")
    e.add_argument("--json", action="store_true", help="print one JSON object")
    add_progress_args(e)
    e.set_defaults(func=_evaluate)

    g = cmds.evaluate.add_parser(
        "gradcam-localization", help="does Grad-CAM look at the tumour? (pointing game, energy "
                                     "in the mask's box, against expert masks)")
    g.add_argument("--data", required=True, help="folder with images/<class>/ and masks/<class>/ "
                                                 "(manifest.csv: near-duplicate groups)")
    g.add_argument("--model", default=None, metavar="VERSION",
                   help="classifier version (default: the active one)")
    g.add_argument("--explain", default="true", choices=("true", "predicted"),
                   help="explain each image's own class (default) or the predicted class")
    g.add_argument("--limit", type=int, default=None, help="first N pairs only")
    g.add_argument("--json", action="store_true", help="print one JSON object")
    add_progress_args(g)
    g.set_defaults(func=_localization)

    s = cmds.sub.add_parser("segment", help="tumour mask of one scan (any format the loader reads)")
    s.add_argument("file", metavar="FILE")
    s.add_argument("--out", required=True, metavar="MASK.png", help="mask PNG (0 / 255)")
    s.add_argument("--overlay", default=None, metavar="OVERLAY.png",
                   help="also write the scan with the tumour outline and its box")
    s.add_argument("--model", default=None, metavar="VERSION", help="default: the active version")
    s.add_argument("--json", action="store_true", help="print one JSON object")
    s.set_defaults(func=_segment)


def _train(args: argparse.Namespace) -> int:
    from core.segmentation.train import TrainConfig, train

    cfg = TrainConfig(
        data=args.data, input_size=args.input_size, base_filters=args.base_filters,
        depth=args.depth, batch_norm=not args.no_batch_norm, dropout=args.dropout,
        epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, patience=args.patience,
        val_fraction=args.val_fraction, test_fraction=args.test_fraction, margin=args.margin,
        head_crop=not args.no_head_crop, threshold=args.threshold, tune=not args.no_tune,
        seed=args.seed,
        max_minutes=args.max_minutes, max_images=args.max_images, threads=args.threads,
        workers=args.workers, run_dir=args.run_dir, resume=args.resume, version=args.version,
        activate=args.activate, publish=not args.no_publish, tried=list(args.tried),
        command=command_line())
    try:
        result = train(cfg, progress_from_args(args))
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(json.dumps({"version": result.version,
                      "path": str(result.path) if result.path else None,
                      "run_dir": str(result.run_dir), "metrics": {
                          k: {m: v[m] for m in ("dice", "iou", "dice_ci95", "per_class", "n")}
                          for k, v in result.card["metrics"].items()}}))
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from core.segmentation.evaluate import evaluate_folder
    from core.segmentation.inference import Segmenter

    seg = Segmenter.load(args.model)
    try:
        report = evaluate_folder(seg, args.data,
                                 progress=progress_from_args(args) if not args.json else
                                 (progress_from_args(args) if args.job_id else _silent))
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    images = report.pop("images")
    if args.per_image:
        report["images"] = images
    report = {"model": seg.version, "data": str(Path(args.data).resolve()), **report}
    if args.json:
        print(json.dumps(report))
        return 0
    print(f"model {seg.version}: Dice {report['dice']:.4f} (95% CI {report['dice_ci95'][0]:.4f}–"
          f"{report['dice_ci95'][1]:.4f})  IoU {report['iou']:.4f}  n={report['n']}")
    for c, m in report["per_class"].items():
        print(f"  {c:<12} Dice {m['dice']:.4f}  IoU {m['iou']:.4f}  n={m['n']}")
    return 0


def _localization(args: argparse.Namespace) -> int:
    from core.classifier.inference import Classifier
    from core.segmentation.localization import evaluate_localization

    clf = Classifier.load(args.model)
    try:
        report = evaluate_localization(clf, args.data, explain=args.explain, limit=args.limit,
                                       progress=None if args.json else progress_from_args(args))
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    report["data"] = str(Path(args.data).resolve())
    if args.json:
        print(json.dumps(report))
        return 0
    print(f"classifier {clf.version}, {report['n']} images, explained class: {args.explain}; "
          f"uniform-map energy baseline {report['baseline_energy_in_box']}")
    for method in ("gradcam", "gradcam++"):
        for group, m in report[method].items():
            print(f"  {method:<10} {group:<20} pointing game {m['pointing_game']}  energy in "
                  f"box {m['energy_in_box']}  n={m['n']}")
    return 0


def _silent(_p) -> None:
    return None


def _segment(args: argparse.Namespace) -> int:
    from core.imaging import load_scan
    from core.imaging.export import to_uint8, write_png
    from core.segmentation.inference import Segmenter, contour_overlay, mask_png

    seg = Segmenter.load(args.model)
    try:
        scan = load_scan(Path(args.file))
    except MedScanError as err:
        print(f"error: {args.file}: {err}", file=sys.stderr)
        return 2
    result = seg.segment_scan(scan)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    write_png(args.out, mask_png(result.mask))
    if args.overlay:
        Path(args.overlay).parent.mkdir(parents=True, exist_ok=True)
        write_png(args.overlay, contour_overlay(to_uint8(scan.pixels), result.mask,
                                                box=result.bbox))
    info = {"file": args.file, **result.summary(), "model": seg.version,
            "shape": list(result.mask.shape), "out": args.out, "overlay": args.overlay}
    if args.json:
        print(json.dumps(info))
    else:
        size = (f"{info['area_mm2']:.1f} mm²" if info["area_mm2"] is not None
                else f"{info['tumour_pixels']} pixels (no pixel spacing)")
        print(f"{args.file}: tumour {size}, box {info['bbox']}, max probability "
              f"{info['max_probability']:.3f} -> {args.out}")
    return 0
