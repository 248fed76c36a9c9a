"""Import a folder of scans into the case library: resumable, with a summary of what was skipped.

Two layouts:

- an image-folder tree ``DIR/<label>/.../*.png`` with ``label_from_folder`` (the first folder
  under ``DIR`` is the label; files directly in ``DIR`` get none);
- any tree of DICOM (or image) files with labels from a CSV ``path,label`` (``path`` relative
  to ``DIR``, as the tree has it; a header row is allowed). A CSV label wins over the folder.

Every file goes through :func:`core.imaging.load_scan` (content-detected format, pydicom's
pixel pipeline, the upload size caps), so what is stored is what the app would show. A file
that cannot be read is skipped with its error in words; nothing stops the import. Rows are
committed every :data:`BATCH` files, so an interrupted import keeps what it did and a re-run
skips what is already in (by path when the path needed no masking, else by the pixel hash).
"""
from __future__ import annotations

import csv
import os
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.orm import Session

from core.db.cases import source_paths
from core.errors import MedScanError
from core.imaging import load_scan
from core.imaging.phi import mask_upload_name
from core.library.cases import add_scan
from core.library.store import PixelStore
from core.progress import Progress, ProgressCallback, null_progress

__all__ = ["ImportSummary", "import_tree", "read_labels_csv", "scan_files", "BATCH",
           "LibraryImportError"]

BATCH = 50
MAX_SOURCE_NAME = 120


class LibraryImportError(MedScanError):
    """The import cannot start (no such folder, bad labels file)."""


@dataclass
class ImportSummary:
    source: str
    files: int = 0
    added: int = 0
    already: int = 0                       # imported by an earlier run of this import
    duplicates: int = 0                    # same pixels as a case already in the library
    skipped: list[tuple[str, str]] = field(default_factory=list)   # (masked path, reason)
    added_per_label: Counter = field(default_factory=Counter)
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return {"source": self.source, "files": self.files, "added": self.added,
                "already_in_library": self.already, "duplicates": self.duplicates,
                "skipped": [{"path": p, "reason": r} for p, r in self.skipped],
                "added_per_label": {str(k): v for k, v in sorted(
                    self.added_per_label.items(), key=lambda kv: str(kv[0]))},
                "seconds": round(self.seconds, 1)}

    def text(self) -> str:
        per = ", ".join(f"{k if k is not None else 'no label'} {v}"
                        for k, v in sorted(self.added_per_label.items(), key=lambda kv: str(kv[0])))
        lines = [f"Import {self.source!r}: {self.files} files in {self.seconds:.0f} s; "
                 f"{self.added} new cases" + (f" ({per})" if per else "")
                 + f"; {self.already} already imported; {self.duplicates} duplicates of "
                 f"stored images; {len(self.skipped)} skipped."]
        lines += [f"  skipped {p}: {r}" for p, r in self.skipped]
        return "\n".join(lines)


def scan_files(root: Path) -> list[Path]:
    """Every regular file under ``root``, sorted, hidden files and folders left out."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        out += [Path(dirpath) / f for f in sorted(filenames) if not f.startswith(".")]
    return out


def read_labels_csv(path: Path) -> dict[str, str]:
    """``{relative path: label}`` from a ``path,label`` CSV (header optional)."""
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as err:
        raise LibraryImportError(f"Cannot read the labels file {path}: {err}") from err
    labels: dict[str, str] = {}
    for n, row in enumerate(csv.reader(text.splitlines()), 1):
        if not row or not "".join(row).strip():
            continue
        if len(row) < 2:
            raise LibraryImportError(f"Labels file {Path(path).name}, line {n}: expected "
                               f"'path,label', got {','.join(row)!r}.")
        key, label = row[0].strip().replace("\\", "/"), row[1].strip()
        while key.startswith("./"):
            key = key[2:]
        if n == 1 and key.lower() in ("path", "file", "filename") and label.lower() == "label":
            continue
        if label:
            labels[key] = label
    if not labels:
        raise LibraryImportError(f"The labels file {Path(path).name} has no 'path,label' rows.")
    return labels


def import_tree(session: Session, root: str | os.PathLike[str], *, name: str | None = None,
                label_from_folder: bool = False, labels: dict[str, str] | None = None,
                added_by: int | None = None, store: PixelStore | None = None,
                progress: ProgressCallback = null_progress,
                commit: Callable[[], None] | None = None, modality: str | None = None,
                body_part: str | None = None) -> ImportSummary:
    """Import every readable scan under ``root`` (see the module notes). ``name`` is the
    import's source name (default: the folder's name). ``commit`` is called every
    :data:`BATCH` files and at the end (default ``session.commit``). ``modality`` and
    ``body_part`` are recorded for files whose header has none (PNG / JPEG)."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise LibraryImportError(f"{root} is not a folder.")
    source = " ".join((name or root.resolve().name).split())[:MAX_SOURCE_NAME] or "import"
    commit = commit or session.commit
    files = scan_files(root)
    summary = ImportSummary(source=source, files=len(files))
    done = source_paths(session, source)
    labels = labels or {}
    t0 = time.monotonic()
    for i, path in enumerate(files, 1):
        rel = path.relative_to(root).as_posix()
        try:
            data = path.read_bytes()
        except OSError as err:
            summary.skipped.append((_masked(rel, b""), f"cannot read the file: "
                                                       f"{err.strerror or err}"))
            continue
        masked = _masked(rel, data)
        if masked == rel and rel in done:
            summary.already += 1
        else:
            label = labels.get(rel) or (
                rel.split("/", 1)[0] if label_from_folder and "/" in rel else None)
            try:
                scan = load_scan(data, filename=path.name)
                res = add_scan(session, scan, label=label, source=source, label_source="import",
                               source_path=masked, added_by=added_by, store=store,
                               modality=modality, body_part=body_part)
            except MedScanError as err:   # ScanError: unreadable; StoreError: disk
                summary.skipped.append((masked, str(err)))
            else:
                if res.created:
                    summary.added += 1
                    summary.added_per_label[label] += 1
                    done.add(masked)
                elif res.case.source == source and res.case.source_path == masked:
                    summary.already += 1
                else:
                    summary.duplicates += 1
        if i % BATCH == 0:
            commit()
        elapsed = time.monotonic() - t0
        progress(Progress(task="library", phase="import", epoch=1, epochs=1, step=i,
                          steps=len(files), eta_s=elapsed / i * (len(files) - i),
                          message=f"{summary.added} added"))
    commit()
    summary.seconds = time.monotonic() - t0
    progress(Progress(task="library", phase="done", epoch=1, epochs=1, step=len(files),
                      steps=len(files), message=f"{summary.added} added"))
    return summary


def _masked(rel: str, data: bytes) -> str:
    """The path as stored: identifiers masked (the file's own DICOM header's included)."""
    return (mask_upload_name(rel, data) or rel)[:255]
