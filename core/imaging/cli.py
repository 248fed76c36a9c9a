"""``python -m core inspect`` and ``python -m core convert``.

    python -m core inspect FILE [--json] [--frame N] [--window PRESET|C,W]   (FILE may be a .zip)
    python -m core convert FILE --out OUT.png [--window PRESET|C,W] [--frame N]

``convert`` writes :meth:`Scan.to_uint8` as an 8-bit PNG: the same pixels the app shows and the
models get. Negative centres need ``--window=-600,1500``. Errors are ``ScanError``: the
dispatcher prints one line on stderr and exits 2.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

__all__ = ["register"]


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="FILE", help="DICOM, PNG, JPEG or TIFF (any extension)")
    parser.add_argument("--frame", type=int, default=None,
                        help="frame of a multi-frame file, from 0 (default: the middle one)")
    parser.add_argument("--window", default=None, metavar="PRESET|C,W",
                        help="display window: brain, subdural, stroke, bone, lung, "
                             "'soft tissue', mediastinum, liver, min-max, or CENTRE,WIDTH "
                             "(use --window=-600,1500 for a negative centre)")


def register(cmds: Any) -> None:
    """Add ``inspect`` and ``convert`` to the top-level commands."""
    inspect = cmds.sub.add_parser("inspect", help="print a scan's metadata (PHI masked) and "
                                                  "pixel statistics")
    _add_common(inspect)
    inspect.add_argument("--json", action="store_true", help="print one JSON object")
    inspect.set_defaults(func=_inspect)

    convert = cmds.sub.add_parser("convert", help="write the displayed image as an 8-bit PNG")
    _add_common(convert)
    convert.add_argument("--out", required=True, metavar="OUT.png", help="output PNG path")
    convert.set_defaults(func=_convert)


def _load(args: argparse.Namespace):
    from core.imaging import load_scan

    return load_scan(args.file, frame=args.frame, window=args.window)


def _inspect_zip(args: argparse.Namespace, data: bytes) -> int:
    from core.imaging import load_uploads

    uploads = load_uploads(Path(args.file).name, data, frame=args.frame, window=args.window)
    rows = []
    for upload in uploads:
        if upload.scan is not None:
            rows.append({"name": upload.name, "ok": True, "metadata": upload.scan.metadata,
                         "pixels": upload.scan.stats()})
        else:
            assert upload.error is not None
            rows.append({"name": upload.name, "ok": False, "code": upload.error.code,
                         "error": str(upload.error)})
    if args.json:
        print(json.dumps({"file": Path(args.file).name, "format": "zip", "members": rows},
                         ensure_ascii=False))
    else:
        for row in rows:
            if row["ok"]:
                meta = row["metadata"]
                print(f"{row['name']}: {meta.get('Format')} {meta.get('Modality', '')} "
                      f"{meta.get('Size')}, window {meta.get('Window')}")
            else:
                print(f"{row['name']}: error ({row['code']}): {row['error']}")
    return 0 if any(row["ok"] for row in rows) else 2


def _inspect(args: argparse.Namespace) -> int:
    path = Path(args.file)
    if path.is_file():
        with path.open("rb") as fh:
            if fh.read(4) == b"PK\x03\x04":
                return _inspect_zip(args, path.read_bytes())
    scan = _load(args)
    stats = scan.stats()
    if args.json:
        print(json.dumps({"file": Path(args.file).name, "format": scan.source_format,
                          "sha256": scan.sha256, "metadata": scan.metadata, "pixels": stats,
                          "warnings": list(scan.warnings)}, ensure_ascii=False))
        return 0
    width = max(len(k) for k in scan.metadata)
    for key, value in scan.metadata.items():
        print(f"{key:<{width}}  {value}")
    print()
    print(f"{'Displayed':<{width}}  shape {tuple(stats['shape'])}, min {stats['min']:.4f}, "
          f"max {stats['max']:.4f}, mean {stats['mean']:.4f}, std {stats['std']:.4f}")
    lo, hi = scan.original_range
    print(f"{'Stored':<{width}}  {scan.original_dtype}, range {lo:g} to {hi:g}")
    for warning in scan.warnings:          # e.g. non-finite pixels replaced, surplus data
        print(f"{'Warning':<{width}}  {warning}")
    return 0


def _convert(args: argparse.Namespace) -> int:
    from core.imaging.export import write_png

    scan = _load(args)
    out = Path(args.out)
    write_png(out, scan.to_uint8())
    print(f"wrote {out} ({scan.pixels.shape[1]} × {scan.pixels.shape[0]}, "
          f"{'RGB' if scan.is_color else 'grayscale'}, window {scan.metadata['Window']})")
    return 0
