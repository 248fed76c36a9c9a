"""Super-resolution inference benchmark: throughput and peak memory, tiled vs untiled.

    python benchmarks/bench_sr.py [--method rrdb_psnr] [--sizes 256,512,2048] [--tile 128]
                                  [--threads 2] [--repeats 2] [--json OUT.json]

Three tilings per size: untiled, ``--tile`` (with the model's own context margin, see
core/sr/tiling.py) and ``auto`` (the tile size the app and CLI choose from
``MEDSCAN_SR_MEMORY_MB``; "untiled" when the image fits). The ``vs untiled`` column is the
tiled throughput over the untiled one at the same size (1.0 = no tiling overhead).

Each (size, tiling) case runs in a fresh subprocess so that its peak resident memory
(``ru_maxrss``) is its own; "model RSS" is the process after loading TensorFlow and the model,
"peak" the maximum during inference. Throughput is output megapixels per second (median of
``--repeats`` runs after one warm-up run, which includes tracing). Uses the active registry
model of ``--method`` at x4, or the shipped CPU configuration with random weights if none is
installed (speed does not depend on the weights). Untiled inputs whose estimated activation
memory exceeds ``--max-untiled-gb`` are skipped and reported as such.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCALE = 4


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def _one(args) -> dict:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.path.insert(0, str(ROOT))
    from core.sr.train import limit_threads

    limit_threads(args.threads)
    import numpy as np

    from core.errors import ModelCardError
    from core.sr.upscalers import KerasSR, load_sr_model

    try:
        model = load_sr_model(args.method, SCALE)
        source = f"sr/{model.version}"
    except ModelCardError:
        from core.models.rrdbnet import build_rrdbnet
        from core.sr.train import SHIPPED_RRDB

        net = {"scale": SCALE, **SHIPPED_RRDB, "num_block": 4}
        model = KerasSR(build_rrdbnet(**net), {"scale": SCALE, "network": net}, args.method)
        source = "random weights, shipped configuration"
    lr = np.random.default_rng(0).random((args.size, args.size)).astype(np.float32)
    tile = None if args.tile < 0 else args.tile           # -1: automatic (memory budget)
    chosen = model.tile_for(args.size, args.size) if tile is None else tile
    overlap = model.context if chosen else 0              # measured before timing starts
    base = _rss_mb()
    times = []
    for _ in range(args.repeats + 1):
        t = time.perf_counter()
        out = model.upscale(lr, tile=tile)
        times.append(time.perf_counter() - t)
    sec = statistics.median(times[1:])
    return {"size": args.size, "tile": args.tile, "chosen_tile": chosen, "overlap": overlap,
            "seconds": round(sec, 3),
            "first_call_s": round(times[0], 3),
            "mp_per_s": round(out.size / 1e6 / sec, 3), "model_rss_mb": round(base),
            "peak_rss_mb": round(_rss_mb()), "model": source,
            "network": model.card.get("network") if model.card else None}


def _estimate_untiled_gb(size: int, num_feat: int = 32) -> float:
    # dominant: a few num_feat-channel float32 tensors at the output resolution
    return 4 * (size * SCALE) ** 2 * num_feat * 4 / 1e9


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--method", default="rrdb_psnr")
    p.add_argument("--sizes", default="256,512,2048")
    p.add_argument("--tile", type=int, default=128, help="the fixed tile size compared")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--max-untiled-gb", type=float, default=6.0)
    p.add_argument("--json", default=None)
    p.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--size", type=int, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.one:
        print(json.dumps(_one(args)))
        return 0
    rows = []
    for size in (int(s) for s in args.sizes.split(",")):
        for tile in (0, args.tile, -1):
            if tile > 0 and tile >= size:
                continue  # one tile == untiled
            if not tile and _estimate_untiled_gb(size) > args.max_untiled_gb:
                rows.append({"size": size, "tile": 0, "skipped":
                             f"untiled needs ≈{_estimate_untiled_gb(size):.0f} GB of activations"})
                continue
            cmd = [sys.executable, __file__, "--one", "--size", str(size), "--tile", str(tile),
                   "--method", args.method, "--threads", str(args.threads),
                   "--repeats", str(1 if size >= 2048 else args.repeats)]
            res = subprocess.run(cmd, capture_output=True, text=True)
            if res.returncode:
                rows.append({"size": size, "tile": tile, "error": res.stderr.strip()[-300:]})
            else:
                rows.append(json.loads(res.stdout.strip().splitlines()[-1]))
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    untiled = {r["size"]: r["mp_per_s"] for r in rows if r["tile"] == 0 and "mp_per_s" in r}
    print("| input | tiling | s / image | output MP/s | vs untiled | model RSS MB | peak RSS MB |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        if r["tile"] == 0:
            tiling = "untiled"
        else:
            auto = "auto: " if r["tile"] < 0 else ""
            tiling = (f"{auto}tile {r['chosen_tile']}, overlap {r['overlap']}"
                      if r.get("chosen_tile") else f"{auto}untiled")
        if "seconds" in r:
            ratio = (f"{r['mp_per_s'] / untiled[r['size']]:.2f}" if r["size"] in untiled
                     else "—")
            print(f"| {r['size']}² | {tiling} | {r['seconds']} | {r['mp_per_s']} | {ratio} | "
                  f"{r['model_rss_mb']} | {r['peak_rss_mb']} |")
        else:
            print(f"| {r['size']}² | {tiling} | {r.get('skipped') or r.get('error')} | | | | |")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
