"""Classifier commands: ``train classifier``, ``evaluate classifier``, ``ensemble classifier``,
``predict``, ``gradcam``.

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
    t = cmds.train.add_parser("classifier", help="train the scan classifier on an image folder",
                              description="Train on DIR/<class>/*.png|jpg, calibrate, publish a "
                                          "registry version with its model card.")
    t.add_argument("--data", required=True, help="image folder, one subfolder per class")
    from core.classifier.architectures import CLASSIFIER_ARCHITECTURES, DEFAULT_ARCHITECTURE

    t.add_argument("--arch", default=DEFAULT_ARCHITECTURE, choices=list(CLASSIFIER_ARCHITECTURES),
                   help="; ".join(f"{a}: {e.description}"
                                  for a, e in CLASSIFIER_ARCHITECTURES.items()))
    t.add_argument("--input-size", type=int, default=96)
    t.add_argument("--width", type=float, default=None,
                   help="VGG filter multiplier in (0, 1] (default: the architecture's, 0.5 for "
                        "vgg16_bn, 1.0 for vgg16)")
    t.add_argument("--dropout", type=float, default=0.5)
    t.add_argument("--pretrained", default=None, metavar="imagenet|PATH",
                   help="VGG16 no-top weights: 'imagenet' (Keras cache) or a file (vgg16 only)")
    t.add_argument("--epochs", type=int, default=30)
    t.add_argument("--frozen-epochs", type=int, default=3, help="pretrained: frozen-base epochs")
    t.add_argument("--batch-size", type=int, default=32)
    t.add_argument("--lr", type=float, default=1e-3)
    t.add_argument("--lr-schedule", default="cosine", choices=["cosine", "plateau", "constant"])
    t.add_argument("--warmup-epochs", type=int, default=1)
    t.add_argument("--patience", type=int, default=6)
    t.add_argument("--val-fraction", type=float, default=0.15)
    t.add_argument("--seed", type=int, default=42)
    t.add_argument("--max-minutes", type=float, default=None,
                   help="stop after the epoch that would pass this wall-clock budget")
    t.add_argument("--max-images", type=int, default=None, help="stratified subsample")
    t.add_argument("--modality", default="MR",
                   help="DICOM modality of the training data, recorded in the model card; the "
                        "app warns when a scan's modality differs (default MR; 'none' to omit)")
    t.add_argument("--body-part", default="BRAIN,HEAD",
                   help="comma-separated DICOM body-part values matching the training data "
                        "(default BRAIN,HEAD; 'none' to omit)")
    t.add_argument("--no-class-weights", action="store_true")
    t.add_argument("--label-smoothing", type=float, default=0.0)
    t.add_argument("--background-penalty", type=float, default=0.0, metavar="LAMBDA",
                   help="add LAMBDA x the share of the Grad-CAM layer's activation that lies "
                        "outside the head to the loss (keeps the maps on the anatomy; 0: off)")
    from core.classifier.train import AUGMENTATION_CHOICES

    t.add_argument("--augmentation", default="standard", choices=list(AUGMENTATION_CHOICES),
                   help="; ".join(f"{a}: {d}" for a, d in AUGMENTATION_CHOICES.items()))
    t.add_argument("--extra-data", action="append", default=[], metavar="DIR",
                   help="more labelled images (<class>/*), used for training only; images "
                        "that are near duplicates of a validation image are dropped "
                        "(repeatable)")
    t.add_argument("--source-oversample", type=int, default=1, metavar="K",
                   help="repeat K times per epoch the training images of a source group that is "
                        "under 25%% of its class (plain-looking notumor scans, padded or "
                        "upscaled tumour scans: the data set's source bias), groups read from "
                        "its train_manifest.csv; 1: off")
    t.add_argument("--source-manifest", default=None, metavar="CSV",
                   help="the per-file source manifest for --source-oversample (default: "
                        "train_manifest.csv in or beside --data)")
    t.add_argument("--threads", type=int, default=None, help="intra-op CPU threads")
    t.add_argument("--workers", type=int, default=1, help="augmentation threads")
    t.add_argument("--init-from", default=None, metavar="WEIGHTS.h5",
                   help="start from weights of the same architecture (e.g. a run's "
                        "best.weights.h5 at another input size: progressive resizing)")
    t.add_argument("--run-dir", default=None, help="checkpoints (default runs/classifier/VERSION)")
    t.add_argument("--resume", action="store_true", help="continue from RUN_DIR/last.keras")
    t.add_argument("--recipe-of", default=None, metavar="VERSION",
                   help="rerun every stage that produced VERSION (its card's lineage: "
                        "pre-training and each supervised run) on --data; only the last stage "
                        "publishes, as --version. Other training options are ignored, except "
                        "--extra-data (replaces the recorded ones), --eval-data, --run-dir "
                        "(the stages' folder) and --resume (skips completed stages)")
    t.add_argument("--dry-run", action="store_true",
                   help="with --recipe-of: print the stages' commands and stop")
    t.add_argument("--version", default=None, help="registry version name (default: arch-date)")
    t.add_argument("--activate", action="store_true", help="make the new version active")
    t.add_argument("--no-publish", action="store_true", help="train only; no registry version")
    t.add_argument("--eval-data", default=None, metavar="DIR",
                   help="fixed evaluation set: the new version and the active one are evaluated "
                        "on it after training (default $MEDSCAN_EVAL_DIR)")
    add_progress_args(t)
    t.set_defaults(func=_train)

    e = cmds.evaluate.add_parser("classifier", help="accuracy, F1, ECE, confusion matrix")
    e.add_argument("--data", required=True, help="image folder, one subfolder per class")
    e.add_argument("--model", default=None, metavar="VERSION", help="default: the active version")
    e.add_argument("--uncalibrated", action="store_true", help="ignore the card's temperature")
    e.add_argument("--gradcam-mass", action="store_true",
                   help="also report the mean Grad-CAM mass outside the head")
    e.add_argument("--batch-size", type=int, default=32)
    e.add_argument("--json", action="store_true", help="print one JSON object")
    e.add_argument("--record", default=None, metavar="NAME",
                   help="also store the report in the model card as metrics.NAME (e.g. test)")
    add_progress_args(e)
    e.set_defaults(func=_evaluate)

    cal = cmds.sub.add_parser("calibrate", help="refit a model's temperature or OOD "
                              "threshold").add_subparsers(dest="model_kind", metavar="MODEL",
                                                          required=True)
    _register_ood(cmds, cal)
    c = cal.add_parser("classifier", help="refit the classifier's temperature on its own "
                                        "validation split (near duplicates of training excluded)")
    c.add_argument("--data", required=True, help="the training folder the model was trained on")
    c.add_argument("--model", default=None, metavar="VERSION", help="default: the active version")
    c.add_argument("--tta", default=None, choices=["none", "hflip"],
                   help="test-time averaging of the new version (needs --as): hflip = mean "
                        "logits of the scan and its left-right mirror")
    c.add_argument("--as", dest="new_version", default=None, metavar="NEW_VERSION",
                   help="publish the result as a new version (same weights) instead of "
                        "rewriting the model's card")
    add_progress_args(c)
    c.set_defaults(func=_calibrate)

    ens = cmds.sub.add_parser("ensemble", help="publish an ensemble of model versions as one "
                              "version").add_subparsers(dest="model_kind", metavar="MODEL",
                                                        required=True)
    en = ens.add_parser(
        "classifier", help="2-3 classifier versions as one: mean logits, one temperature",
        description="Publish a classifier version whose logits are the mean of its members' "
                    "(registry versions with the same classes, preprocessing and validation "
                    "split), with one temperature fitted on the members' clean validation "
                    "images, as 'calibrate classifier' does. The version holds only its model "
                    "card; Grad-CAM averages the members' maps. Fit its out-of-distribution "
                    "check afterwards with 'calibrate ood --model VERSION'.")
    en.add_argument("--members", nargs="+", required=True, metavar="VERSION",
                    help="two or three registry versions")
    en.add_argument("--data", required=True, help="the training folder the members were "
                                                  "trained on (their validation split)")
    en.add_argument("--version", required=True, help="the new version's name")
    en.add_argument("--tta", default="none", choices=["none", "hflip"],
                    help="test-time averaging for every member: hflip = the scan and its "
                         "left-right mirror (default none)")
    en.add_argument("--activate", action="store_true", help="make the new version active")
    en.add_argument("--json", action="store_true", help="print one JSON object")
    add_progress_args(en)
    en.set_defaults(func=_ensemble)

    pre = cmds.sub.add_parser("pretrain", help="self-supervised pre-training (SimCLR) of a "
                              "model's base on unlabelled images").add_subparsers(
        dest="model_kind", metavar="MODEL", required=True)
    pt = pre.add_parser(
        "classifier", help="SimCLR on unlabelled images; a weights file for 'train classifier "
                           "--init-from'",
        description="Pre-train the classifier's convolutional base without labels (SimCLR: "
                    "two augmented views of each image pulled together, the other images of "
                    "the batch pushed away), on every image under the --data folders. Writes "
                    "the whole classifier's weights (the head random) to --out, a JSON "
                    "sidecar beside it, and with --probe the kNN accuracy of the base's "
                    "features, pre-trained and at random initialisation.")
    pt.add_argument("--data", action="append", required=True, metavar="DIR",
                    help="a folder of images, searched recursively; labels are not used "
                         "(repeatable). Keep the test set out.")
    pt.add_argument("--out", required=True, metavar="FILE.weights.h5")
    pt.add_argument("--overwrite", action="store_true",
                    help="replace an existing --out (its sidecar too); without it an existing "
                         "base is refused, since training runs' cards name it by path")
    pt.add_argument("--hold-out-validation-of", default=None, metavar="TRAIN_DIR",
                    help="leave out the validation split that 'train classifier --data "
                         "TRAIN_DIR' draws (--val-fraction, --seed below as there), so the "
                         "fine-tuned model is chosen on images pre-training never saw")
    pt.add_argument("--val-fraction", type=float, default=0.15)
    pt.add_argument("--split-seed", type=int, default=42, help="the training run's --seed")
    pt.add_argument("--arch", default=DEFAULT_ARCHITECTURE, choices=list(CLASSIFIER_ARCHITECTURES))
    pt.add_argument("--input-size", type=int, default=96)
    pt.add_argument("--width", type=float, default=None, help="as for train classifier")
    pt.add_argument("--augmentation", default="strong", choices=list(AUGMENTATION_CHOICES))
    pt.add_argument("--epochs", type=int, default=30)
    pt.add_argument("--batch-size", type=int, default=64,
                    help="images per step; each has 2·(B−1) negatives (default 64)")
    pt.add_argument("--lr", type=float, default=1e-3, help="Adam, cosine decay")
    pt.add_argument("--temperature", type=float, default=0.2)
    pt.add_argument("--projection-dim", type=int, default=128)
    pt.add_argument("--max-images", type=int, default=None, help="a seeded subsample")
    pt.add_argument("--max-minutes", type=float, default=None,
                    help="stop after the epoch that would pass this wall-clock budget")
    pt.add_argument("--probe", default=None, metavar="DIR",
                    help="labelled folder (<class>/*): kNN accuracy of the base's features")
    pt.add_argument("--seed", type=int, default=0)
    pt.add_argument("--threads", type=int, default=None, help="intra-op CPU threads")
    pt.add_argument("--workers", type=int, default=1, help="augmentation threads")
    add_progress_args(pt)
    pt.set_defaults(func=_pretrain)

    p = cmds.sub.add_parser("predict", help="classify scans (calibrated confidence)")
    p.add_argument("files", nargs="*", metavar="FILE")
    from core.pacs.cli import add_source_args

    add_source_args(p)   # --pacs-study STUDY_UID [--url URL] [--series UID]
    p.add_argument("--model", default=None, metavar="VERSION")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_predict)

    g = cmds.sub.add_parser("gradcam", help="Grad-CAM overlay of one scan")
    g.add_argument("file", metavar="FILE")
    g.add_argument("--out", required=True, metavar="OVERLAY.png")
    g.add_argument("--class", dest="class_name", default=None, metavar="NAME",
                   help="explain this class (default: the predicted one)")
    g.add_argument("--method", default="gradcam", choices=["gradcam", "gradcam++"])
    g.add_argument("--heatmap", default=None, metavar="MAP.npy",
                   help="also save the raw map (float32, [0, 1], scan height × width)")
    g.add_argument("--alpha", type=float, default=0.4, help="overlay opacity")
    g.add_argument("--model", default=None, metavar="VERSION")
    g.add_argument("--json", action="store_true")
    g.set_defaults(func=_gradcam)


def _register_ood(cmds, cal) -> None:
    """``calibrate ood`` (fit a version's out-of-distribution statistics and threshold) and
    ``evaluate ood`` (AUROC, FPR at 95% TPR, flagged fractions on two folders)."""
    o = cal.add_parser("ood", help="fit the classifier's out-of-distribution detector "
                                   "(Mahalanobis on its features) and record it in the card",
                       description="Class means and a shared Ledoit-Wolf covariance of the "
                                   "version's training-split features; threshold = a percentile "
                                   "of its validation scores. Writes ood.npz next to the weights "
                                   "and the card's 'ood' section.")
    o.add_argument("--data", required=True, help="the training folder the model was trained on")
    o.add_argument("--model", default=None, metavar="VERSION", help="default: the active version")
    o.add_argument("--percentile", type=float, default=None,
                   help="threshold percentile of in-distribution validation scores (default 95: "
                        "about 5%% of in-distribution scans flagged)")
    add_progress_args(o)
    o.set_defaults(func=_calibrate_ood)

    e = cmds.evaluate.add_parser("ood", help="out-of-distribution detection: AUROC, FPR at 95%% "
                                             "TPR, flagged fractions")
    e.add_argument("--in", dest="in_dir", required=True, metavar="DIR",
                   help="in-distribution scans (any layout, e.g. the test folder)")
    e.add_argument("--out", dest="out_dir", required=True, metavar="DIR",
                   help="out-of-distribution scans, one subfolder per kind "
                        "(scripts/make_ood_set.py)")
    e.add_argument("--model", default=None, metavar="VERSION", help="default: the active version")
    e.add_argument("--batch-size", type=int, default=32)
    e.add_argument("--json", action="store_true", help="print one JSON object")
    e.add_argument("--record", action="store_true",
                   help="also store the report in the card as ood.evaluation")
    add_progress_args(e)
    e.set_defaults(func=_evaluate_ood)


def _calibrate_ood(args: argparse.Namespace) -> int:
    from core.classifier.evaluate import fit_ood

    try:
        section = fit_ood(args.data, args.model, percentile=args.percentile,
                          command=command_line(), progress=progress_from_args(args))
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(json.dumps(section))
    return 0


def _evaluate_ood(args: argparse.Namespace) -> int:
    from core.classifier.evaluate import evaluate_ood, record_ood_evaluation
    from core.classifier.inference import Classifier

    clf = Classifier.load(args.model)
    try:
        report = evaluate_ood(clf, args.in_dir, args.out_dir, batch_size=args.batch_size,
                              progress=progress_from_args(args) if not args.json else None)
        if args.record:
            record_ood_evaluation(clf.version, report, command=command_line())
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(report))
        return 0
    f = lambda d: f"{d['count']}/{d['n']} ({d['fraction']:.1%})"  # noqa: E731
    print(f"model {clf.version}: OOD AUROC {report['auroc']:.4f}  FPR at 95% TPR "
          f"{report['fpr_at_95_tpr']:.4f}  threshold {report['threshold']:.2f}")
    print(f"  flagged: in-distribution {f(report['in_flagged'])}, out-of-distribution "
          f"{f(report['out_flagged'])}")
    for kind, d in report["out_flagged_by_kind"].items():
        print(f"    {kind:<16} {f(d)}")
    return 0


def _width(args: argparse.Namespace) -> float:
    """``--width``, or the architecture's own (1.0 for one without a width)."""
    from core.classifier.architectures import architecture

    return args.width if args.width is not None else architecture(args.arch).default_width or 1.0


def _train_recipe(args: argparse.Namespace) -> int:
    """``train classifier --recipe-of VERSION``: :func:`core.classifier.recipe.run_recipe`."""
    import shlex

    from core import registry
    from core.classifier.recipe import recipe_minutes, recipe_stages, run_recipe
    from core.errors import MedScanError

    try:
        card = registry.load_card("classifier", args.recipe_of)
        stages = recipe_stages(card)
    except (MedScanError, ValueError) as err:
        print(f"error: --recipe-of {args.recipe_of}: {err}", file=sys.stderr)
        return 2
    version = args.version or registry.new_version_name(f"{card.get('architecture', 'clf')}-")
    run_root = Path(args.run_dir or Path("runs") / "recipe" / version).resolve()
    try:
        commands = run_recipe(
            card, data=str(Path(args.data).resolve()), version=version, run_root=run_root,
            extra_data=[str(Path(e).resolve()) for e in args.extra_data] or None,
            eval_data=str(Path(args.eval_data).resolve()) if args.eval_data else None,
            job_id=args.job_id, progress=progress_from_args(args), dry_run=args.dry_run,
            resume=args.resume)
    except (ValueError, RuntimeError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    if args.dry_run:
        minutes = recipe_minutes(stages)
        print(f"# {len(stages)} stages of {args.recipe_of}"
              + (f", {minutes:.0f} min as recorded" if minutes is not None else ""))
        for stage, argv in zip(stages, commands):
            print(f"# {stage.label}\npython -m core {shlex.join(argv)}")
        return 0
    print(json.dumps({"version": version, "recipe_of": args.recipe_of, "stages": len(stages),
                      "run_dir": str(run_root)}))
    return 0


def _train(args: argparse.Namespace) -> int:
    from core.classifier.train import TrainConfig, train

    if args.recipe_of:
        return _train_recipe(args)
    if args.dry_run:
        print("error: --dry-run needs --recipe-of", file=sys.stderr)
        return 2

    width = _width(args)
    cfg = TrainConfig(
        data=args.data, arch=args.arch, input_size=args.input_size, width=width,
        dropout=args.dropout, pretrained=args.pretrained, epochs=args.epochs,
        frozen_epochs=args.frozen_epochs, batch_size=args.batch_size, lr=args.lr,
        lr_schedule=args.lr_schedule, warmup_epochs=args.warmup_epochs, patience=args.patience,
        val_fraction=args.val_fraction, seed=args.seed, max_minutes=args.max_minutes,
        max_images=args.max_images,
        modality=None if args.modality.lower() == "none" else args.modality.upper(),
        body_part=(None if args.body_part.lower() == "none"
                   else tuple(p.strip().upper() for p in args.body_part.split(",") if p.strip())),
        class_weighting=not args.no_class_weights, label_smoothing=args.label_smoothing,
        augmentation=args.augmentation, extra_data=tuple(args.extra_data),
        background_penalty=args.background_penalty,
        source_oversample=args.source_oversample, source_manifest=args.source_manifest,
        threads=args.threads,
        workers=args.workers, init_from=args.init_from,
        run_dir=args.run_dir, resume=args.resume,
        version=args.version, activate=args.activate, publish=not args.no_publish,
        eval_data=args.eval_data, command=command_line())
    try:
        result = train(cfg, progress_from_args(args))
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    val = result.card["metrics"]["validation"]
    print(json.dumps({"version": result.version, "path": str(result.path) if result.path else None,
                      "run_dir": str(result.run_dir), "validation": val,
                      "temperature": result.card["calibration"]["temperature"]}))
    return 0


def _pretrain(args: argparse.Namespace) -> int:
    from core.classifier.pretrain import PretrainConfig, pretrain

    width = _width(args)
    cfg = PretrainConfig(
        data=tuple(args.data), out=args.out, arch=args.arch, input_size=args.input_size,
        width=width, augmentation=args.augmentation, epochs=args.epochs,
        batch_size=args.batch_size, lr=args.lr, temperature=args.temperature,
        projection_dim=args.projection_dim, max_images=args.max_images,
        max_minutes=args.max_minutes, probe=args.probe, seed=args.seed, threads=args.threads,
        holdout=args.hold_out_validation_of, holdout_val_fraction=args.val_fraction,
        holdout_seed=args.split_seed, overwrite=args.overwrite,
        workers=args.workers, command=command_line())
    try:
        result = pretrain(cfg, progress_from_args(args))
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    info = result.info
    print(json.dumps({"out": str(result.out), "epochs_done": info["epochs_done"],
                      "loss": [h["loss"] for h in info["loss"]], "probe": info.get("probe")}))
    return 0


def _calibrate(args: argparse.Namespace) -> int:
    from core.classifier.train import recalibrate

    try:
        entry = recalibrate(args.data, args.model, tta={None: "same", "none": None}.get(
                            args.tta, args.tta), new_version=args.new_version,
                            progress=progress_from_args(args))
    except (ValueError, FileNotFoundError, MedScanError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(json.dumps(entry))
    return 0


def _ensemble(args: argparse.Namespace) -> int:
    from core.classifier.ensemble import create_ensemble
    from core.progress import null_progress

    try:
        out = create_ensemble(args.members, args.data, args.version,
                              tta=None if args.tta == "none" else args.tta,
                              activate=args.activate, command=command_line(),
                              progress=null_progress if args.json else progress_from_args(args))
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(out))
        return 0
    b, a = out["before"], out["after"]
    print(f"ensemble {out['version']} of {', '.join(out['members'])} "
          f"(mean logits; flip averaging {out['tta'] or 'off'}) -> {out['path']}"
          + (" (active)" if out["activated"] else " (candidate, not active)"))
    print(f"  temperature {out['temperature']:.4f}, fitted on {out['n_clean']} of "
          f"{out['n_validation']} validation images (no near duplicate in training)")
    print(f"  clean validation: accuracy {b['accuracy']:.4f}  NLL {b['nll']:.4f} (T = 1)"
          f" -> accuracy {a['accuracy']:.4f}  NLL {a['nll']:.4f}  ECE {a['ece']:.4f}")
    for v, m in out["members_clean"].items():
        print(f"  member {v}: accuracy {m['accuracy']:.4f}  NLL {m['nll']:.4f} (its own "
              f"temperature {m['temperature']:.3f}, flip averaging {m['tta'] or 'off'})")
    print(f"  next: python -m core calibrate ood --data {args.data} --model {out['version']}")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from core.classifier.evaluate import evaluate_folder
    from core.classifier.inference import Classifier

    clf = Classifier.load(args.model)
    try:
        report = evaluate_folder(clf, args.data, calibrated=not args.uncalibrated,
                                 gradcam_mass=args.gradcam_mass, batch_size=args.batch_size,
                                 progress=progress_from_args(args) if not args.json else None)
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    report["data"] = str(Path(args.data).resolve())
    if args.record:
        from core.classifier.evaluate import record_metrics

        record_metrics(clf.version, args.record, report,
                       command=command_line())
    if args.json:          # paths as cards record them (relative to the project)
        from core.config import portable

        print(portable(json.dumps(report)))
    else:
        print(f"model {clf.version}: accuracy {report['accuracy']:.4f}  macro-F1 "
              f"{report['macro_f1']:.4f}  ECE {report['ece']:.4f} (uncalibrated "
              f"{report['ece_uncalibrated']:.4f})  n={report['n']}")
        for c, m in report["per_class"].items():
            print(f"  {c:<12} P {m['precision']:.3f}  R {m['recall']:.3f}  F1 {m['f1']:.3f}  "
                  f"n={m['support']}")
        print("  confusion (rows true, cols predicted):", report["confusion_matrix"])
        if "gradcam_outside_head" in report:
            print(f"  Grad-CAM mass outside the head: {report['gradcam_outside_head']:.4f}")
    return 0


def _load_pixels(path: str):
    """Pixels through the scan loader (every format it reads)."""
    from core.imaging import load_scan

    return load_scan(Path(path)).pixels


def _predict(args: argparse.Namespace) -> int:
    from core.classifier.inference import Classifier
    from core.errors import MedScanError

    from core.imaging import load_scan

    if bool(args.files) == bool(args.pacs_study):
        raise MedScanError("Give scan files or --pacs-study STUDY_UID (one of the two).")
    clf = Classifier.load(args.model)
    # One result per file (or PACS instance, keyed by its UIDs), in order: a broken file gets
    # an error entry and never stops the batch. Exit status: 0 every file classified, 1 some
    # file failed (see its entry), 2 the command itself failed (usage, model, PACS) before
    # any file was read.
    if args.pacs_study:
        from core.pacs.cli import pacs_sources

        sources = pacs_sources(args)      # retrieved bytes go through the same loader
    else:
        sources = [({"file": f}, Path(f)) for f in args.files]
    out, status = [], 0
    for head, src in sources:
        try:
            scan = load_scan(src)
            pred = clf.predict(scan.pixels)
        except MedScanError as err:
            out.append({**head, "error": str(err), "code": getattr(err, "code", "error")})
            status = 1
            continue
        except Exception as err:  # noqa: BLE001 - one file's failure must not end the batch
            out.append({**head, "error": f"This file could not be classified (internal "
                        f"error: {type(err).__name__}).", "code": "internal"})
            status = 1
            continue
        out.append({**head, "label": pred.label, "confidence": pred.confidence,
                    "probabilities": pred.probabilities, **pred.ood_fields(),
                    **({"warnings": list(scan.warnings)} if scan.warnings else {})})
    failed = sum("error" in r for r in out)
    if failed:
        print(f"error: {failed} of {len(out)} file(s) could not be classified",
              file=sys.stderr)
    if args.json:
        print(json.dumps(out, indent=None))
    else:
        for r in out:
            name = r.get("file") or r.get("sop_instance_uid")
            if "error" in r:
                print(f"{name}: error: {r['error']}")
            else:
                print(f"{name}: {r['label']} ({r['confidence']:.1%}); "
                      + ("OUT OF DISTRIBUTION: " + r["ood_reason"] if r["out_of_distribution"]
                         else r["ood_status"]))
                for warning in r.get("warnings", []):
                    print(f"  warning: {warning}")
        if clf.notice:
            print(f"note: model {clf.version} {clf.notice}")
    return status


def _gradcam(args: argparse.Namespace) -> int:
    import cv2
    import numpy as np

    from core.classifier.gradcam import hot_region_bbox, overlay_heatmap
    from core.classifier.inference import Classifier
    from core.classifier.preprocess import to_gray_uint8
    from core.imaging.export import to_uint8, write_png

    clf = Classifier.load(args.model)
    pixels = _load_pixels(args.file)
    pred, heatmap = clf.explain(pixels, args.class_name, method=args.method)
    base = to_uint8(pixels) if pixels.ndim == 3 else to_gray_uint8(pixels)
    overlay = overlay_heatmap(base, heatmap, alpha=args.alpha)
    box = hot_region_bbox(heatmap)
    if box is not None:
        cv2.rectangle(overlay, box[:2], (box[2] - 1, box[3] - 1), (0, 255, 0), 2)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    write_png(args.out, overlay)
    if args.heatmap:
        np.save(args.heatmap, heatmap.astype(np.float32))
    info = {"file": args.file, "label": pred.label, "confidence": pred.confidence,
            "explained_class": args.class_name or pred.label, "method": args.method,
            "bbox": list(box) if box else None, "overlay": args.out, "heatmap": args.heatmap}
    print(json.dumps(info) if args.json else
          f"{args.file}: {pred.label} ({pred.confidence:.1%}); Grad-CAM of "
          f"{info['explained_class']} -> {args.out}" + (f", box {box}" if box else ""))
    return 0
