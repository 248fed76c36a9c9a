"""Compare classifier versions on their clean validation images, without touching the test set.

Rebuilds the validation split from the cards (all versions must share data, seed and fraction),
keeps the validation images with no near duplicate in the training split (the same subset the
temperature is fitted on), and prints accuracy, macro-F1, calibrated NLL, Brier and ECE per
version as one JSON object; with ``--gradcam-mass`` also the mean Grad-CAM mass outside the
head on those images (the test-time target is at most 0.10). Used to decide which version to publish before the test set is run.

    python scripts/compare_classifiers_val.py --data ../shared/datasets/brain-mri/train V1 V2 ...
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True, help="the training folder the versions share")
    ap.add_argument("--gradcam-mass", action="store_true",
                    help="also the mean Grad-CAM mass outside the head on the clean images")
    ap.add_argument("--by-source", action="store_true",
                    help="also accuracy by source group on the whole validation split (groups "
                         "from the data set's train_manifest.csv, as --source-oversample reads "
                         "them), and on the minority groups together")
    ap.add_argument("versions", nargs="+")
    args = ap.parse_args(argv)

    from core.classifier.calibration import softmax
    from core.classifier.data import card_split, list_image_folder, load_images, read_gray
    from core.classifier.gradcam import mass_outside
    from core.classifier.metrics import bootstrap_interval
    from core.classifier.preprocess import head_mask
    from core.classifier.dedup import calibration_subset
    from core.classifier.inference import Classifier
    from core.classifier.metrics import classification_report
    from core.classifier.preprocess import normalise

    clfs = [Classifier.load(v) for v in args.versions]
    folder = list_image_folder(args.data, clfs[0].classes)
    try:
        splits = [card_split(folder, c.card, args.data) for c in clfs]
    except ValueError as err:
        raise SystemExit(str(err)) from None
    tr, va = splits[0]
    if any(not (np.array_equal(t, tr) and np.array_equal(v, va)) for t, v in splits[1:]):
        raise SystemExit("the versions were trained on different splits (seed, fraction or "
                         "subsample differ): their validation images are not comparable")
    # one subset for all versions (hashed at the first version's preprocessing)
    pre0 = clfs[0].preprocessing
    keep = calibration_subset(load_images([folder.files[i] for i in tr], pre0),
                              load_images([folder.files[i] for i in va], pre0))
    out = {"n_validation": int(len(va)), "n_clean": int(len(keep))}
    if args.by_source:
        from core.classifier.sources import find_source_manifest, source_groups, source_repeats

        manifest = find_source_manifest(args.data)
        if manifest is None:
            raise SystemExit(f"--by-source: no train_manifest.csv in or beside {args.data}")
        # minority groups as training defines them (on the training split, factor 2 = marked)
        g_tr = source_groups([folder.files[i] for i in tr], manifest)
        _, cells = source_repeats(folder.labels[tr], g_tr, 2)
        minority = {(c, g) for c, gs in cells.items() for g, (_, r) in gs.items() if r > 1}
        g_va = source_groups([folder.files[i] for i in va], manifest)
        y_all = folder.labels[va]
        in_min = np.array([(int(y), g) in minority for y, g in zip(y_all, g_va)])
    for clf in clfs:
        pre = clf.preprocessing
        x_va = load_images([folder.files[i] for i in va], pre)
        logits = clf.logits_batch(normalise(x_va[keep], pre["normalise"],
                                            int(pre.get("channels", 3))))
        y = folder.labels[va][keep]
        rep = classification_report(softmax(logits, clf.temperature), y, clf.classes, ci=True)
        out[clf.version] = {k: rep[k] for k in ("accuracy", "macro_f1", "nll", "brier", "ece",
                                                "ece_ci95", "n")}
        out[clf.version]["temperature"] = clf.temperature
        if args.by_source:
            x_all = normalise(x_va, pre["normalise"], int(pre.get("channels", 3)))
            hit = clf.logits_batch(x_all).argmax(1) == y_all
            groups = {}
            for y, g, h in zip(y_all, g_va, hit):
                key = f"{clf.classes[int(y)]} / {g}"
                n, k = groups.get(key, (0, 0))
                groups[key] = (n + 1, k + int(h))
            out[clf.version]["by_source"] = {k: {"n": n, "correct": c}
                                             for k, (n, c) in sorted(groups.items())}
            out[clf.version]["minority_source"] = {"n": int(in_min.sum()),
                                                   "correct": int(hit[in_min].sum())}
        if args.gradcam_mass:
            masses = []
            for i in np.asarray(va)[keep]:
                gray = read_gray(folder.files[i])
                masses.append(mass_outside(clf.explain(gray)[1], head_mask(gray)))
            m = np.asarray(masses, np.float64)
            out[clf.version]["gradcam_outside_head"] = float(m.mean())
            out[clf.version]["gradcam_outside_head_ci95"] = list(bootstrap_interval(
                lambda j: float(m[j].mean()), len(m)))
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
