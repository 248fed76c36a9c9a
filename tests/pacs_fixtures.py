"""A real PACS for the tests (and the demo): Debian's Orthanc with its DICOMweb plugin, on a free
loopback port, with a throw-away storage folder and JSON configuration, HTTP authentication on
(user :data:`USER`), and the DICOM port off. :func:`make_studies` writes the fixture DICOM files
(real brain MRI slices from ``tests/data/brain-mri``: single-frame, multi-frame and compressed)
that are loaded into it.

pytest: the session fixture :func:`orthanc` (skips with the reason when Orthanc or the plugin is
missing). Demo: ``python tests/pacs_fixtures.py serve --port 8042 --dir DIR`` runs Orthanc in
the foreground with the demo studies loaded (``scripts/demo_pacs.sh``).
"""
from __future__ import annotations

import glob
import json
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parent / "data"
USER, PASSWORD = "medscan", "pacs-test-pass-1234"
PLUGIN_CANDIDATES = ("/usr/share/orthanc/plugins/libOrthancDicomWeb.so",
                     "/usr/lib/orthanc/libOrthancDicomWeb.so*")

# The two fixture studies (fictitious people).
STUDY_A = {"PatientName": "Testperson^Alice", "PatientID": "PAT-0001-ALPHA",
           "AccessionNumber": "ACC20240315", "StudyDate": "20240315", "Modality": "MR",
           "PatientBirthDate": "19700101", "PatientSex": "F", "StudyID": "1"}
STUDY_B = {"PatientName": "Otherperson^Bob", "PatientID": "PAT-0002-BETA",
           "AccessionNumber": "ACC20230101", "StudyDate": "20230101", "Modality": "CT",
           "PatientBirthDate": "19600101", "PatientSex": "M", "StudyID": "2"}


def orthanc_binary() -> str | None:
    return shutil.which("Orthanc")


def dicomweb_plugin() -> str | None:
    for pattern in PLUGIN_CANDIDATES:
        for path in sorted(glob.glob(pattern)):
            if Path(path).is_file():
                return path
    return None


def missing_reason() -> str | None:
    """Why no Orthanc can be started here, or None."""
    if orthanc_binary() is None:
        return "Orthanc is not installed (Debian: apt-get install orthanc orthanc-dicomweb)"
    if dicomweb_plugin() is None:
        return "Orthanc's DICOMweb plugin is not installed (Debian: orthanc-dicomweb)"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Orthanc:
    """One Orthanc process; :meth:`start` returns when its REST API answers."""
    folder: Path
    port: int = 0
    process: subprocess.Popen | None = None
    log: Path | None = None
    loaded: list[str] = field(default_factory=list)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        """The DICOMweb root (what MEDSCAN_DICOMWEB_URL is set to)."""
        return f"{self.base}/dicom-web"

    def start(self, timeout: float = 60.0) -> "Orthanc":
        import requests

        self.port = self.port or free_port()
        storage = self.folder / "storage"
        storage.mkdir(parents=True, exist_ok=True)
        config = {
            "Name": "medscan-test-pacs", "StorageDirectory": str(storage),
            "IndexDirectory": str(storage), "HttpPort": self.port,
            "DicomServerEnabled": False, "DicomPort": free_port(),
            "RemoteAccessAllowed": False, "AuthenticationEnabled": True,
            "RegisteredUsers": {USER: PASSWORD}, "Plugins": [dicomweb_plugin()],
            "DicomWeb": {"Enable": True, "Root": "/dicom-web/", "EnableWado": False,
                         "StudiesMetadata": "Full", "SeriesMetadata": "Full"},
            "StorageCompression": False, "HttpCompressionEnabled": False,
            "ConcurrentJobs": 1, "HttpThreadsCount": 8, "KeepAlive": True,
        }
        cfg = self.folder / "orthanc.json"
        cfg.write_text(json.dumps(config, indent=1))
        self.log = self.folder / "orthanc.log"
        self.process = subprocess.Popen([orthanc_binary(), str(cfg)],
                                        stdout=self.log.open("wb"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"Orthanc exited ({self.process.returncode}): "
                                   + self.log.read_text()[-2000:])
            try:
                r = requests.get(f"{self.base}/system", auth=(USER, PASSWORD), timeout=2)
                if r.ok:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError("Orthanc did not start within %.0f s" % timeout)

    def upload(self, data: bytes) -> str:
        """Store one DICOM file through Orthanc's REST API; returns its Orthanc id."""
        import requests

        r = requests.post(f"{self.base}/instances", data=data, auth=(USER, PASSWORD),
                          headers={"Content-Type": "application/dicom"}, timeout=30)
        r.raise_for_status()
        self.loaded.append(r.json()["ID"])
        return r.json()["ID"]

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.process = None


# ---- fixture DICOM files --------------------------------------------------------------------

def _gray(path: Path) -> np.ndarray:
    import cv2

    img = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    assert img is not None, path
    return img


def _base(patient: dict, study_uid: str, series_uid: str, number: int, series_number: int,
          pixels: np.ndarray, modality: str, sop_class: str):
    """An uncompressed, explicit-VR little-endian image with patient geometry."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    frames = pixels if pixels.ndim == 3 else pixels[None]
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = sop_class
    sop = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = sop
    ds.SOPClassUID, ds.SOPInstanceUID = sop_class, sop
    for k in ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "AccessionNumber",
              "StudyDate", "StudyID"):
        setattr(ds, k, patient[k])
    ds.StudyTime, ds.SeriesDate, ds.SeriesTime = "101500", patient["StudyDate"], "101600"
    ds.ReferringPhysicianName = ""
    ds.StudyDescription = "MRI BRAIN" if modality == "MR" else "CT HEAD"
    ds.SeriesDescription = "AX T1" if modality == "MR" else "AX"
    ds.StudyInstanceUID, ds.SeriesInstanceUID = study_uid, series_uid
    ds.FrameOfReferenceUID = generate_uid()
    ds.Modality, ds.Manufacturer = modality, "MedScanTestFixture"
    ds.BodyPartExamined = "BRAIN" if modality == "MR" else "HEAD"
    ds.SeriesNumber, ds.InstanceNumber = series_number, number
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.PatientPosition = "HFS"
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.ImagePositionPatient = [0, 0, float(5 * number)]
    ds.SliceThickness, ds.PixelSpacing = 5.0, [0.9, 0.9]
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.Rows, ds.Columns = frames.shape[1:]
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.WindowCenter, ds.WindowWidth = 2048, 4096
    if len(frames) > 1:
        ds.NumberOfFrames = len(frames)
    ds.PixelData = (frames.astype(np.uint16) * 16).tobytes()
    return ds


@dataclass
class Fixture:
    """What :func:`make_studies` wrote: files by name, and the UIDs the tests look for."""
    files: dict[str, Path]
    study_a: str
    study_b: str
    series_single: str       # study A: two single-frame slices
    series_mixed: str        # study A: one multi-frame and one compressed instance
    sop: dict[str, str]      # name -> SOP Instance UID
    compressed_syntax: str   # transfer syntax of the compressed instance


def make_studies(out: Path) -> Fixture:
    """Write the fixture studies under ``out``: study A (MR, 4 instances in 2 series: two
    single-frame brain slices; a 3-frame image; a JPEG-LS lossless (else RLE) compressed slice)
    and study B (CT, 1 instance)."""
    from pydicom.uid import (JPEGLSLossless, MRImageStorage, RLELossless, CTImageStorage,
                             generate_uid)

    out.mkdir(parents=True, exist_ok=True)
    slices = [_gray(DATA / "brain-mri" / c / n) for c, n in
              (("glioma", "Tr-glTr_0000.jpg"), ("notumor", "Tr-noTr_0000.jpg"),
               ("meningioma", sorted(p.name for p in (DATA / "brain-mri/meningioma").iterdir())[0]),
               ("pituitary", "Tr-piTr_0000.jpg"))]
    study_a, study_b = generate_uid(), generate_uid()
    s1, s2, s3 = generate_uid(), generate_uid(), generate_uid()
    items = {
        "a_slice1": _base(STUDY_A, study_a, s1, 1, 1, slices[0], "MR", MRImageStorage),
        "a_slice2": _base(STUDY_A, study_a, s1, 2, 1, slices[1], "MR", MRImageStorage),
        "a_multiframe": _base(STUDY_A, study_a, s2, 1, 2, np.stack(slices[:3]), "MR",
                              MRImageStorage),
        "a_compressed": _base(STUDY_A, study_a, s2, 2, 2, slices[3], "MR", MRImageStorage),
        "b_ct": _base(STUDY_B, study_b, s3, 1, 1, slices[2], "CT", CTImageStorage),
    }
    ct = items["b_ct"]
    ct.RescaleSlope, ct.RescaleIntercept, ct.RescaleType = 1, -1024, "HU"
    syntax = None
    for ts in (JPEGLSLossless, RLELossless):
        try:
            items["a_compressed"].compress(ts)
            syntax = str(ts)
            break
        except Exception:  # noqa: BLE001 - encoder plugin missing: try the next one
            continue
    files = {}
    for name, ds in items.items():
        path = out / f"{name}.dcm"
        ds.save_as(path, enforce_file_format=True)
        files[name] = path
    return Fixture(files=files, study_a=study_a, study_b=study_b, series_single=s1,
                   series_mixed=s2, sop={k: str(v.SOPInstanceUID) for k, v in items.items()},
                   compressed_syntax=syntax or "")


# ---- pytest (absent from the runtime environment the demo runs in) --------------------------
try:
    import pytest
except ImportError:  # scripts/demo_pacs.sh: `make run`'s environment has no pytest
    class _NoPytest:
        @staticmethod
        def fixture(*args, **kwargs):
            return (lambda f: f) if not args or not callable(args[0]) else args[0]

    pytest = _NoPytest()


@dataclass
class Pacs:
    server: Orthanc
    fixture: Fixture

    @property
    def url(self) -> str:
        return self.server.url

    def config(self, password: str = PASSWORD):
        from core.pacs.client import PacsConfig

        return PacsConfig(url=self.url, username=USER, password=password, timeout=20)


@pytest.fixture(scope="session")
def orthanc(tmp_path_factory) -> Pacs:
    """A running Orthanc holding the two fixture studies (skipped with the reason when Orthanc
    or its DICOMweb plugin is not installed)."""
    reason = missing_reason()
    if reason:
        pytest.skip(reason)
    folder = tmp_path_factory.mktemp("orthanc")
    fixture = make_studies(folder / "files")
    server = Orthanc(folder).start()
    try:
        for path in fixture.files.values():
            server.upload(path.read_bytes())
        yield Pacs(server, fixture)
    finally:
        server.stop()


@pytest.fixture()
def pacs_env(orthanc, monkeypatch) -> Pacs:
    """MEDSCAN_DICOMWEB_* pointing at the test Orthanc."""
    monkeypatch.setenv("MEDSCAN_DICOMWEB_URL", orthanc.url)
    monkeypatch.setenv("MEDSCAN_DICOMWEB_USER", USER)
    monkeypatch.setenv("MEDSCAN_DICOMWEB_PASSWORD", PASSWORD)
    return orthanc


# ---- demo -----------------------------------------------------------------------------------

def _serve(argv: list[str]) -> int:
    """``serve --port N --dir DIR [--ready FILE]``: Orthanc in the foreground with the demo
    studies loaded; writes the DICOMweb URL to FILE once ready."""
    import argparse
    import signal

    p = argparse.ArgumentParser(prog="tests/pacs_fixtures.py serve")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--dir", required=True)
    p.add_argument("--ready", default=None)
    args = p.parse_args(argv)
    reason = missing_reason()
    if reason:
        print(f"error: {reason}", file=sys.stderr)
        return 2
    folder = Path(args.dir)
    fixture = make_studies(folder / "files")
    server = Orthanc(folder, port=args.port).start()
    for path in fixture.files.values():
        server.upload(path.read_bytes())
    print(f"Orthanc (DICOMweb) at {server.url} (user {USER}); studies: "
          f"{fixture.study_a} (MR, accession {STUDY_A['AccessionNumber']}), "
          f"{fixture.study_b} (CT)", flush=True)
    if args.ready:      # URL, user, password of this throw-away server, one a line
        Path(args.ready).write_text(f"{server.url}\n{USER}\n{PASSWORD}\n")
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt))
    try:
        while server.process is not None and server.process.poll() is None:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "serve":
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
        sys.exit(_serve(sys.argv[2:]))
    print(__doc__)
