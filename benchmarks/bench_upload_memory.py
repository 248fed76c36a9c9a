"""Peak memory of loading one upload (``core.imaging.load_uploads``), one fresh process per case.

Prints, per case: the upload's size, what happened (loaded / refused with which code), the
process's peak RSS (``VmHWM`` from ``/proc/self/status``, Linux), and the peak above a baseline
process that only imported the loader. The files are generated into a temporary folder first (nothing is downloaded):

* ``dicom-512``   — a normal 512² 16-bit MR DICOM with rescale slope/intercept
* ``png-512``     — a normal 512² 8-bit PNG
* ``png-9000``    — a 78 KB PNG of 9000 × 9000 zeros (81 MP, under the 100 MP limit)
* ``png-10000``   — 10000 × 10000 (exactly the 100 MP limit, MEDSCAN_MAX_PIXELS)
* ``zip-series-100`` — a zip of 100 such slices (every member's Scan is kept: the memory adds up)
* ``dicom-4000``  — a 4000² 16-bit DICOM with rescale (32 MB)
* ``zip-bomb``    — a 1.1 MB zip whose one member is 1.06 GiB of zeros
* ``zip-bomb-small`` — 17 MiB of zeros at 1000 : 1 (under the total limit, refused by ratio)
* ``png-bomb``    — a PNG declaring 60000 × 60000

    python benchmarks/bench_upload_memory.py [--cases png-9000,zip-bomb] [--code-root DIR]

``--code-root`` runs another checkout's ``core`` (e.g. an older commit unpacked with
``git archive``) to compare before and after.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import struct
import subprocess
import sys
import tempfile
import zipfile
import zlib
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent

_CHILD = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
from core.errors import ScanError
from core.imaging import load_uploads
path = sys.argv[2]
result = "baseline"
if path != "-":
    data = open(path, "rb").read()
    try:
        ups = load_uploads(path.rsplit("/", 1)[-1], data)
        counts = {}
        for u in ups:
            key = ("loaded " + "x".join(map(str, u.scan.pixels.shape)) if u.ok
                   else "refused " + u.error.code)
            counts[key] = counts.get(key, 0) + 1
        result = ", ".join(k + (f" (x{n})" if n > 1 else "") for k, n in counts.items())
    except ScanError as err:
        result = "refused " + err.code
# VmHWM: this process's own peak RSS (ru_maxrss would include the parent's, kept across exec)
hwm = next(int(line.split()[1]) for line in open("/proc/self/status")
           if line.startswith("VmHWM:"))
print(json.dumps({"result": result, "peak_mb": hwm / 1024}))
"""


def _png(arr: np.ndarray) -> bytes:
    import cv2

    ok, buf = cv2.imencode(".png", arr, [cv2.IMWRITE_PNG_COMPRESSION, 9])
    assert ok
    return buf.tobytes()


def _png_declaring(width: int, height: int) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(
            ">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0,
                                                              0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))


def _dicom(side: int) -> bytes:
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian

    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.4"
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID = "1.2.3.4"
    ds.Modality = "MR"
    ds.Rows = ds.Columns = side
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.RescaleSlope, ds.RescaleIntercept = 1.5, -100
    ds.PixelData = (np.arange(side * side, dtype=np.uint32) % 4096).astype(np.uint16).tobytes()
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def _zip_of_zeros(path: Path, size: int) -> None:
    """A zip whose one member is ``size`` zero bytes, written in 1 MiB chunks."""
    chunk = bytes(1024 ** 2)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        info = zipfile.ZipInfo("scan.dcm", date_time=(2026, 1, 1, 0, 0, 0))
        info.compress_type = zipfile.ZIP_DEFLATED
        with z.open(info, "w", force_zip64=False) as member:
            left = size
            while left > 0:
                member.write(chunk[:min(left, len(chunk))])
                left -= len(chunk)


def _zip_series(path: Path, n: int) -> None:
    """A zip of ``n`` 512² DICOM slices (a small series)."""
    one = _dicom(512)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as z:
        for i in range(n):
            z.writestr(f"slice{i:03d}.dcm", one)


CASES = {
    "dicom-512": lambda p: p.write_bytes(_dicom(512)),
    "zip-series-100": lambda p: _zip_series(p, 100),
    "png-512": lambda p: p.write_bytes(_png((np.arange(512 * 512) % 256).astype(np.uint8)
                                            .reshape(512, 512))),
    "png-9000": lambda p: p.write_bytes(_png(np.zeros((9000, 9000), np.uint8))),
    "png-10000": lambda p: p.write_bytes(_png(np.zeros((10000, 10000), np.uint8))),
    "dicom-4000": lambda p: p.write_bytes(_dicom(4000)),
    "zip-bomb": lambda p: _zip_of_zeros(p, 1024 ** 3 + 64 * 1024 ** 2),
    "zip-bomb-small": lambda p: _zip_of_zeros(p, 17 * 1024 ** 2),
    "png-bomb": lambda p: p.write_bytes(_png_declaring(60000, 60000)),
}


def _run(code_root: Path, path: str) -> dict:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    out = subprocess.run([sys.executable, "-c", _CHILD, str(code_root), path], env=env,
                         capture_output=True, text=True, timeout=900)
    if out.returncode != 0:
        return {"result": "CRASHED: " + (out.stderr.strip().splitlines() or ["?"])[-1],
                "peak_mb": float("nan")}
    return json.loads(out.stdout)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--code-root", type=Path, default=ROOT)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    names = [c for c in args.cases.split(",") if c]
    base = _run(args.code_root, "-")["peak_mb"]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            path = Path(tmp) / (name + (".zip" if name.startswith("zip") else ""))
            CASES[name](path)
            r = _run(args.code_root, str(path))
            rows.append({"case": name, "bytes": path.stat().st_size, **r,
                         "above_baseline_mb": r["peak_mb"] - base})
            path.unlink()
    if args.json:
        print(json.dumps({"baseline_mb": base, "cases": rows}))
        return 0
    print(f"baseline (imports only): {base:.0f} MB peak RSS")
    print(f"{'case':<16}{'upload':>12}  {'peak RSS':>9}  {'above base':>10}  result")
    for r in rows:
        print(f"{r['case']:<16}{r['bytes']:>12,}  {r['peak_mb']:>6.0f} MB  "
              f"{r['above_baseline_mb']:>7.0f} MB  {r['result']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
