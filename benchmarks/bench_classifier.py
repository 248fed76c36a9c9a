"""Latency of predict + Grad-CAM per image vs the bare forward pass, and peak memory.

    python benchmarks/bench_classifier.py [--model VERSION] [--data DIR] [--n 20] [--json]

Uses the active classifier (or ``--model``) and scans from ``--data`` (default: the test
fixtures). Prints medians in milliseconds: bare forward (one preprocessed image, no gradients,
no flip averaging),
``Classifier.predict`` (preprocessing + forward + calibration), ``Classifier.explain`` (one
forward + backward pass + Grad-CAM at the scan's size), the ratio explain / bare forward, and the
process's peak resident memory (``ru_maxrss``) before and after.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _median_ms(fn, items, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        for it in items:
            t = time.perf_counter()
            fn(it)
            times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None)
    ap.add_argument("--data", default=str(Path(__file__).resolve().parent.parent
                                          / "tests" / "data" / "brain-mri"))
    ap.add_argument("--n", type=int, default=16, help="images")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)

    rss0 = _rss_mb()
    import keras

    if args.threads and keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    from core.classifier import Classifier
    from core.classifier.data import list_image_folder
    from core.classifier.preprocess import read_gray

    clf = Classifier.load(args.model)
    files = list_image_folder(args.data, clf.classes).files
    step = max(1, len(files) // args.n)
    scans = [read_gray(f).astype("float32") / 255 for f in files[::step][:args.n]]
    rss_loaded = _rss_mb()
    xs = [clf.prepare(s)[0][None] for s in scans]
    # the bare forward pass: one image, no flip averaging even when the version uses it
    def forward(x):
        return keras.ops.convert_to_numpy(clf._forward(x))

    # warm-up (graph tracing) outside the timings
    forward(xs[0])
    clf.predict(scans[0])
    clf.explain(scans[0])
    fwd = _median_ms(forward, xs, args.repeat)
    pred = _median_ms(clf.predict, scans, args.repeat)
    expl = _median_ms(clf.explain, scans, args.repeat)
    out = {
        "model": clf.version, "architecture": clf.card["architecture"],
        "input_size": clf.card["input_size"], "tta": clf.tta, "scan_size": list(scans[0].shape),
        "images": len(scans), "repeat": args.repeat, "backend": keras.backend.backend(),
        "forward_ms": round(fwd, 2), "predict_ms": round(pred, 2),
        "predict_gradcam_ms": round(expl, 2), "ratio_gradcam_vs_forward": round(expl / fwd, 2),
        "ratio_predict_vs_forward": round(pred / fwd, 2),
        "peak_rss_mb": round(_rss_mb(), 1), "rss_after_load_mb": round(rss_loaded, 1),
        "rss_at_start_mb": round(rss0, 1), "cpu_count": os.cpu_count(),
    }
    if args.json:
        print(json.dumps(out))
    else:
        print(f"model {out['model']} ({out['architecture']}, {out['input_size']}² input, scans "
              f"{out['scan_size'][0]}×{out['scan_size'][1]}, {out['backend']}, "
              f"{'flip-averaged, ' if clf.tta else ''}"
              f"{out['images']} images × {args.repeat})")
        print(f"  bare forward        {fwd:8.2f} ms")
        print(f"  predict (calibrated){pred:8.2f} ms   ratio {pred / fwd:5.2f}×")
        print(f"  predict + Grad-CAM  {expl:8.2f} ms   ratio {expl / fwd:5.2f}×")
        print(f"  peak RSS {out['peak_rss_mb']:.0f} MB (after model load {rss_loaded:.0f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
