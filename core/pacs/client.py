"""A DICOMweb client for the hospital's PACS (QIDO-RS search, WADO-RS retrieve, STOW-RS store),
built on ``dicomweb-client``, with timeouts and errors a clinician can read.

Configuration (:func:`config_from_env`): the base URL of the DICOMweb service (e.g.
``http://pacs:8042/dicom-web``) from ``--url`` or ``MEDSCAN_DICOMWEB_URL``; credentials from
``MEDSCAN_DICOMWEB_USER`` / ``MEDSCAN_DICOMWEB_PASSWORD`` (or the Streamlit secrets, read by
``ui.pacs``), never from the repository. Credentials written into the URL
(``https://user:pass@host/...``) are taken out of it, so a URL printed in an error never shows
them.

Every failure is a :class:`PacsError` (a :class:`core.errors.MedScanError`) with a ``code``:
``not_configured``, ``bad_url``, ``unreachable``, ``timeout``, ``unauthorised``, ``not_found``,
``unsupported_transfer_syntax``, ``rejected``, ``server_error``, ``bad_response``.

What a user types to search (patient ID, accession number) is sent to the PACS and nowhere
else: this module does not log it, and it keeps the loggers of ``dicomweb_client`` and
``urllib3`` (which would log request URLs, query string included) at WARNING.
"""
from __future__ import annotations

import io
import logging
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit, urlunsplit

from core.errors import MedScanError

__all__ = ["PacsError", "PacsConfig", "PacsClient", "StudySummary", "SeriesSummary",
           "InstanceSummary", "config_from_env", "parse_date_range", "URL_ENV", "USER_ENV",
           "PASSWORD_ENV", "TIMEOUT_ENV", "DEFAULT_TIMEOUT_S"]

URL_ENV = "MEDSCAN_DICOMWEB_URL"
USER_ENV = "MEDSCAN_DICOMWEB_USER"
PASSWORD_ENV = "MEDSCAN_DICOMWEB_PASSWORD"
TIMEOUT_ENV = "MEDSCAN_DICOMWEB_TIMEOUT"
#: Seconds to wait for a PACS answer (reading); connecting gets at most 5 s.
DEFAULT_TIMEOUT_S = 30.0
_CONNECT_TIMEOUT_S = 5.0
#: Most studies one search lists (a PACS may hold millions; narrow the search instead).
MAX_STUDIES = 200

# Request URLs carry the search terms (PatientID=...): keep them out of the logs.
for _name in ("dicomweb_client", "urllib3.connectionpool"):
    logging.getLogger(_name).setLevel(logging.WARNING)


class PacsError(MedScanError):
    """The PACS could not be reached or refused a request; ``code`` says why."""

    def __init__(self, message: str, code: str = "pacs_error") -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class PacsConfig:
    """Where the PACS is and how to log in. ``password`` never appears in ``repr``."""

    url: str
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    timeout: float = DEFAULT_TIMEOUT_S

    def __post_init__(self) -> None:
        parts = urlsplit(str(self.url or "").strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise PacsError(f"The PACS address must be an http(s) URL such as "
                            f"http://pacs:8042/dicom-web, got {_without_credentials(self.url)!r}.",
                            code="bad_url")
        if parts.username is not None:      # credentials typed into the URL: move them out
            object.__setattr__(self, "username", self.username or unquote(parts.username))
            object.__setattr__(self, "password", self.password or unquote(parts.password or ""))
        object.__setattr__(self, "url", _without_credentials(self.url).rstrip("/"))

    @property
    def display_url(self) -> str:
        return self.url


def _without_credentials(url: object) -> str:
    text = str(url or "").strip()
    try:
        parts = urlsplit(text)
    except ValueError:
        return "<invalid URL>"
    if parts.username is None and parts.password is None:
        return text
    host = parts.hostname or ""
    netloc = host + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def config_from_env(url: str | None = None, *, username: str | None = None,
                    password: str | None = None, env: dict | None = None) -> PacsConfig:
    """The PACS configuration: arguments first, then ``MEDSCAN_DICOMWEB_*`` variables.
    Raises :class:`PacsError` (``not_configured``) when no URL is known."""
    env = os.environ if env is None else env
    url = url or env.get(URL_ENV)
    if not url:
        raise PacsError(f"No PACS is configured: set {URL_ENV} (or pass --url), e.g. "
                        f"http://pacs:8042/dicom-web.", code="not_configured")
    try:
        timeout = float(env.get(TIMEOUT_ENV) or DEFAULT_TIMEOUT_S)
    except ValueError:
        raise PacsError(f"{TIMEOUT_ENV} must be a number of seconds.", code="bad_url") from None
    return PacsConfig(url=url, username=username or env.get(USER_ENV) or None,
                      password=password or env.get(PASSWORD_ENV) or None, timeout=timeout)


_DATE = re.compile(r"^\d{8}$")


def _dicom_date(text: str) -> str:
    digits = text.strip().replace("-", "")
    if not _DATE.match(digits):
        raise PacsError(f"Dates are written YYYYMMDD or YYYY-MM-DD, got {text.strip()!r}.",
                        code="bad_query")
    return digits


def parse_date_range(text: str | None) -> str | None:
    """A DICOM date range (``"20240101-20241231"``, ``"20240101-"``, ``"-20241231"``) from what
    a user writes: ``YYYYMMDD-YYYYMMDD``, ISO dates joined by ``..`` or ``/``, one date, or
    an open end. ``None`` or empty: no date filter."""
    if text is None or not str(text).strip():
        return None
    text = str(text).strip()
    for sep in ("..", "/", " to "):
        if sep in text:
            lo, hi = text.split(sep, 1)
            break
    else:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text) or _DATE.match(text):
            lo = hi = text
        elif text.count("-") == 1:
            lo, hi = text.split("-")
        else:
            raise PacsError(f"A date range is written FROM-TO (YYYYMMDD-YYYYMMDD) or "
                            f"YYYY-MM-DD..YYYY-MM-DD, got {text!r}.", code="bad_query")
    lo = _dicom_date(lo) if lo.strip() else ""
    hi = _dicom_date(hi) if hi.strip() else ""
    if lo and hi and lo > hi:
        raise PacsError("The date range ends before it starts.", code="bad_query")
    return f"{lo}-{hi}" if lo != hi else lo


@dataclass(frozen=True)
class StudySummary:
    """One study as a list shows it: UIDs and coded values in full, identifiers masked
    (:mod:`core.imaging.phi`)."""
    study_uid: str
    date: str                 # YYYY-MM-DD ("" when the PACS has none)
    modality: str             # ModalitiesInStudy, joined with "/"
    n_series: int | None
    n_instances: int | None
    patient_name: str         # masked
    patient_id: str           # masked
    accession: str            # masked
    description: str          # shown only when clean (PS3.15 E.3.5), else "***"

    def to_dict(self) -> dict:
        return dict(self.__dict__)

    @property
    def label(self) -> str:
        bits = [self.date or "no date", self.modality or "?", self.patient_name or "—",
                f"ID {self.patient_id or '—'}", f"acc. {self.accession or '—'}"]
        if self.n_instances is not None:
            bits.append(f"{self.n_instances} instance{'s' if self.n_instances != 1 else ''}")
        return "  ·  ".join(bits)


@dataclass(frozen=True)
class SeriesSummary:
    study_uid: str
    series_uid: str
    modality: str
    number: int | None
    n_instances: int | None
    description: str          # shown only when clean, else "***"

    def to_dict(self) -> dict:
        return dict(self.__dict__)

    @property
    def label(self) -> str:
        text = f"Series {self.number if self.number is not None else '?'} · {self.modality or '?'}"
        if self.description:
            text += f" · {self.description}"
        if self.n_instances is not None:
            text += f" · {self.n_instances} instance{'s' if self.n_instances != 1 else ''}"
        return text


@dataclass(frozen=True)
class InstanceSummary:
    study_uid: str
    series_uid: str
    sop_uid: str
    sop_class_uid: str
    number: int | None
    n_frames: int | None
    rows: int | None
    columns: int | None

    def to_dict(self) -> dict:
        return dict(self.__dict__)

    @property
    def label(self) -> str:
        text = f"Instance {self.number if self.number is not None else '?'}"
        if self.columns and self.rows:
            text += f" · {self.columns}×{self.rows}"
        if self.n_frames and self.n_frames > 1:
            text += f" · {self.n_frames} frames"
        return text


def _ds(item: dict):
    from pydicom import Dataset

    try:
        return Dataset.from_json(item)
    except Exception as err:  # noqa: BLE001 - a malformed answer must read as one
        raise PacsError("The PACS sent a search answer that is not valid DICOM JSON.",
                        code="bad_response") from err


def _int(value) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _date(value) -> str:
    text = str(value or "").strip()
    return f"{text[:4]}-{text[4:6]}-{text[6:8]}" if _DATE.match(text) else ""


class PacsClient:
    """One PACS, by :class:`PacsConfig`. Methods raise :class:`PacsError` only."""

    def __init__(self, config: PacsConfig) -> None:
        from dicomweb_client.api import DICOMwebClient
        from dicomweb_client.session_utils import create_session, create_session_from_user_pass

        self.config = config
        session = (create_session_from_user_pass(config.username, config.password or "")
                   if config.username else create_session())
        self._web = DICOMwebClient(url=config.url, session=session,
                                   timeout=(min(_CONNECT_TIMEOUT_S, config.timeout),
                                            config.timeout))
        # One retry on 429/503/504 (a busy PACS), never the default five with back-off: a
        # clinician waiting on a page needs the error, not a minute of silence.
        self._web.set_http_retry_params(retry=True, max_attempts=2,
                                        wait_exponential_multiplier=200)

    # -- error mapping --------------------------------------------------------------------
    def _call(self, what: str, fn: Callable, *args, not_found: str | None = None, **kwargs):
        import requests

        where = self.config.display_url
        try:
            return fn(*args, **kwargs)
        except requests.exceptions.HTTPError as err:
            status = err.response.status_code if err.response is not None else None
            raise self._http_error(what, status, not_found) from None
        except requests.exceptions.Timeout:
            raise PacsError(f"The PACS at {where} did not answer within "
                            f"{self.config.timeout:g} s ({what}). Try again, or ask IT whether "
                            "it is overloaded.", code="timeout") from None
        except requests.exceptions.SSLError:
            raise PacsError(f"The PACS at {where} could not be reached securely (its TLS "
                            "certificate was not accepted).", code="unreachable") from None
        except requests.exceptions.ConnectionError:
            raise PacsError(f"The PACS at {where} cannot be reached. Check the address and "
                            "that the PACS is running.", code="unreachable") from None
        except requests.exceptions.RequestException as err:
            raise PacsError(f"The request to the PACS failed ({what}): {type(err).__name__}.",
                            code="unreachable") from None
        except PacsError:
            raise
        except ValueError as err:
            # dicomweb-client checks UIDs and media types before sending anything
            text = str(err)
            if "UID" in text:
                raise PacsError(f"That is not a valid DICOM UID ({what}).",
                                code="bad_query") from None
            raise PacsError(f"The PACS sent an answer MedScan cannot read ({what}).",
                            code="bad_response") from None

    def _http_error(self, what: str, status: int | None, not_found: str | None) -> PacsError:
        where = self.config.display_url
        if status in (401, 403):
            return PacsError(f"The PACS at {where} refused the login (HTTP {status}): check the "
                             "user name and password.", code="unauthorised")
        if status == 404:
            return PacsError(not_found or f"The PACS has no such object ({what}).",
                             code="not_found")
        if status in (406, 415):
            return PacsError(f"The PACS cannot send or accept this object in a transfer syntax "
                             f"MedScan reads (HTTP {status}, {what}).",
                             code="unsupported_transfer_syntax")
        if status == 409:
            return PacsError(f"The PACS rejected the object ({what}; HTTP 409).",
                             code="rejected")
        if status is not None and status >= 500:
            return PacsError(f"The PACS had an internal error (HTTP {status}, {what}). Try "
                             "again later.", code="server_error")
        return PacsError(f"The PACS answered HTTP {status} ({what}).", code="bad_response")

    # -- QIDO-RS ----------------------------------------------------------------------------
    def search_studies(self, *, patient_id: str | None = None, accession: str | None = None,
                       modality: str | None = None, date: str | None = None,
                       limit: int = MAX_STUDIES) -> list[StudySummary]:
        """Studies matching every filter given (QIDO-RS). ``date`` is a DICOM date or range
        (:func:`parse_date_range`). Identifiers in the result are masked."""
        from core.imaging.phi import clean_descriptor, mask_id, mask_name

        filters: dict[str, str] = {}
        if patient_id and patient_id.strip():
            filters["PatientID"] = patient_id.strip()
        if accession and accession.strip():
            filters["AccessionNumber"] = accession.strip()
        if modality and modality.strip():
            filters["ModalitiesInStudy"] = modality.strip().upper()
        if date:
            filters["StudyDate"] = date
        fields = ["StudyDate", "ModalitiesInStudy", "PatientName", "PatientID",
                  "AccessionNumber", "StudyDescription", "NumberOfStudyRelatedSeries",
                  "NumberOfStudyRelatedInstances"]
        items = self._call("study search", self._web.search_for_studies,
                           search_filters=filters, fields=fields, limit=int(limit))
        out = []
        for item in items or []:
            ds = _ds(item)
            uid = str(ds.get("StudyInstanceUID", "") or "")
            if not uid:
                continue
            mods = ds.get("ModalitiesInStudy", "")
            mods = "/".join(str(m) for m in mods) if not isinstance(mods, str) else mods
            out.append(StudySummary(
                study_uid=uid, date=_date(ds.get("StudyDate")), modality=mods,
                n_series=_int(ds.get("NumberOfStudyRelatedSeries")),
                n_instances=_int(ds.get("NumberOfStudyRelatedInstances")),
                patient_name=mask_name(ds.get("PatientName")),
                patient_id=mask_id(ds.get("PatientID")),
                accession=mask_id(ds.get("AccessionNumber")),
                description=clean_descriptor(ds.get("StudyDescription"))))
        out.sort(key=lambda s: (s.date, s.study_uid), reverse=True)
        return out

    def series(self, study_uid: str) -> list[SeriesSummary]:
        """The series of one study (QIDO-RS), in series-number order."""
        from core.imaging.phi import clean_descriptor

        items = self._call("series search", self._web.search_for_series,
                           study_instance_uid=study_uid,
                           fields=["Modality", "SeriesNumber", "SeriesDescription",
                                   "NumberOfSeriesRelatedInstances"],
                           not_found="The PACS has no study with that Study Instance UID.")
        out = []
        for item in items or []:
            ds = _ds(item)
            uid = str(ds.get("SeriesInstanceUID", "") or "")
            if uid:
                out.append(SeriesSummary(
                    study_uid=study_uid, series_uid=uid, modality=str(ds.get("Modality", "")),
                    number=_int(ds.get("SeriesNumber")),
                    n_instances=_int(ds.get("NumberOfSeriesRelatedInstances")),
                    description=clean_descriptor(ds.get("SeriesDescription"))))
        out.sort(key=lambda s: (s.number is None, s.number or 0, s.series_uid))
        return out

    def instances(self, study_uid: str, series_uid: str | None = None
                  ) -> list[InstanceSummary]:
        """The instances of a study (or of one of its series), in series then instance-number
        order. An unknown study is ``not_found``."""
        items = self._call("instance search", self._web.search_for_instances,
                           study_instance_uid=study_uid, series_instance_uid=series_uid,
                           fields=["SOPClassUID", "InstanceNumber", "NumberOfFrames", "Rows",
                                   "Columns", "SeriesInstanceUID"],
                           not_found="The PACS has no study with that Study Instance UID.")
        out = []
        for item in items or []:
            ds = _ds(item)
            sop = str(ds.get("SOPInstanceUID", "") or "")
            if sop:
                out.append(InstanceSummary(
                    study_uid=study_uid,
                    series_uid=str(ds.get("SeriesInstanceUID", "") or series_uid or ""),
                    sop_uid=sop, sop_class_uid=str(ds.get("SOPClassUID", "") or ""),
                    number=_int(ds.get("InstanceNumber")), n_frames=_int(ds.get("NumberOfFrames")),
                    rows=_int(ds.get("Rows")), columns=_int(ds.get("Columns"))))
        if not out:
            raise PacsError("The PACS has no instances for that study"
                            + (" and series." if series_uid else "."), code="not_found")
        out.sort(key=lambda i: (i.series_uid, i.number is None, i.number or 0, i.sop_uid))
        return out

    # -- WADO-RS ----------------------------------------------------------------------------
    def retrieve(self, inst: InstanceSummary) -> bytes:
        """One instance as a DICOM file (Part 10 bytes) in the transfer syntax the PACS stored
        it in (compressed stays compressed: the scan loader decodes it)."""
        ds = self._call("retrieve", self._web.retrieve_instance, inst.study_uid,
                        inst.series_uid, inst.sop_uid,
                        media_types=(("application/dicom", "*"),),
                        not_found="The PACS no longer has that instance.")
        return dataset_bytes(ds)

    def fetch(self, study_uid: str, *, series_uid: str | None = None,
              sop_uids: Iterable[str] | None = None,
              progress: Callable[[int, int], None] | None = None
              ) -> list[tuple[InstanceSummary, bytes]]:
        """Retrieve the instances of a study (one series, or the SOP Instance UIDs given), in
        order. ``progress(done, total)`` is called after each one."""
        wanted = set(sop_uids) if sop_uids is not None else None
        todo = [i for i in self.instances(study_uid, series_uid)
                if wanted is None or i.sop_uid in wanted]
        if not todo:
            raise PacsError("None of the chosen instances is in that study.", code="not_found")
        out = []
        for n, inst in enumerate(todo, 1):
            out.append((inst, self.retrieve(inst)))
            if progress is not None:
                progress(n, len(todo))
        return out

    # -- STOW-RS ----------------------------------------------------------------------------
    def store(self, datasets: list) -> list[str]:
        """Store ``datasets`` (STOW-RS); returns the SOP Instance UIDs the PACS accepted. Any
        refused instance is a :class:`PacsError` (``rejected``) naming how many."""
        if not datasets:
            return []
        study = str(datasets[0].StudyInstanceUID)
        answer = self._call("store", self._web.store_instances, list(datasets),
                            study_instance_uid=study)
        failed = list(getattr(answer, "FailedSOPSequence", []) or []) if answer is not None else []
        if failed:
            raise PacsError(f"The PACS refused {len(failed)} of {len(datasets)} object(s) "
                            f"(failure reason {failed[0].get('FailureReason', '?')}).",
                            code="rejected")
        stored = [str(item.ReferencedSOPInstanceUID) for item in
                  (getattr(answer, "ReferencedSOPSequence", []) or [])
                  if "ReferencedSOPInstanceUID" in item] if answer is not None else []
        return stored or [str(ds.SOPInstanceUID) for ds in datasets]


def dataset_bytes(ds) -> bytes:
    """A pydicom dataset as DICOM Part 10 bytes (preamble, file meta, its own transfer
    syntax)."""
    import pydicom

    buf = io.BytesIO()
    try:
        pydicom.dcmwrite(buf, ds, enforce_file_format=True)
    except Exception as err:  # noqa: BLE001 - any encoding failure reads as a bad answer
        raise PacsError("The PACS sent an instance that cannot be written as a DICOM file "
                        f"({type(err).__name__}).", code="bad_response") from err
    return buf.getvalue()
