"""The PACS room (core/pacs) against a real Orthanc with the DICOMweb plugin (tests/pacs_fixtures):
search, retrieve, predict --pacs-study, send-gradcam (Secondary Capture), send-seg (DICOM SEG),
reading the sent objects back, and the errors (unreachable, wrong password, unknown study)."""
from __future__ import annotations

import io
import json
import logging
import shutil

import numpy as np
import pydicom
import pytest

from app_env import make_db, tiny_weights  # noqa: F401
from core.cli import main
from core.pacs.client import PacsClient, PacsConfig, PacsError, config_from_env, parse_date_range
from pacs_fixtures import PASSWORD, STUDY_A, STUDY_B, USER, free_port, orthanc, pacs_env  # noqa: F401


def _json(capsys, *argv) -> tuple[int, object]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, (json.loads(out.out) if out.out.strip() else None), out.err


def _run(capsys, *argv):
    code, data, _ = _json(capsys, *argv)
    return code, data


# ---- configuration and parsing (no server needed) ------------------------------------------

@pytest.mark.parametrize("text, expected", [
    (None, None), ("", None), ("20240101-20241231", "20240101-20241231"),
    ("2024-01-01..2024-12-31", "20240101-20241231"), ("20240101-", "20240101-"),
    ("-20241231", "-20241231"), ("2024-03-15", "20240315"), ("20240315", "20240315"),
])
def test_parse_date_range(text, expected):
    assert parse_date_range(text) == expected


@pytest.mark.parametrize("text", ["yesterday", "20241231-20240101", "2024-13", "1/2/3"])
def test_parse_date_range_rejects(text):
    with pytest.raises(PacsError):
        parse_date_range(text)


def test_config_keeps_credentials_out_of_the_url():
    cfg = config_from_env("http://alice:s3cret@pacs.example:8042/dicom-web/", env={})
    assert cfg.url == "http://pacs.example:8042/dicom-web"
    assert (cfg.username, cfg.password) == ("alice", "s3cret")
    assert "s3cret" not in repr(cfg)
    with pytest.raises(PacsError) as err:
        config_from_env(None, env={})
    assert err.value.code == "not_configured" and "MEDSCAN_DICOMWEB_URL" in str(err.value)
    with pytest.raises(PacsError) as err:
        config_from_env("pacs:8042", env={})
    assert err.value.code == "bad_url"


# ---- search and retrieve --------------------------------------------------------------------

def test_search_cli_filters_and_masks(pacs_env, capsys):
    fx = pacs_env.fixture
    code, studies = _run(capsys, "pacs", "search", "--json")
    assert code == 0 and {s["study_uid"] for s in studies} == {fx.study_a, fx.study_b}
    a = next(s for s in studies if s["study_uid"] == fx.study_a)
    assert a["modality"] == "MR" and a["date"] == "2024-03-15" and a["n_instances"] == 4
    assert a["patient_id"] == "****LPHA" and a["patient_name"] == "Te^A***"
    assert a["accession"] == "****0315"
    raw = json.dumps(studies)
    for secret in (STUDY_A["PatientID"], STUDY_A["AccessionNumber"], "Testperson",
                   STUDY_B["PatientID"]):
        assert secret not in raw
    for args, want in [(["--patient-id", STUDY_A["PatientID"]], {fx.study_a}),
                       (["--accession", STUDY_B["AccessionNumber"]], {fx.study_b}),
                       (["--modality", "CT"], {fx.study_b}),
                       (["--date", "20240101-20241231"], {fx.study_a}),
                       (["--date", "2023-01-01..2023-01-31", "--modality", "MR"], set()),
                       (["--patient-id", "NOBODY"], set())]:
        code, studies = _run(capsys, "pacs", "search", *args, "--json")
        assert code == 0 and {s["study_uid"] for s in studies} == want, args


def test_search_terms_are_not_logged(orthanc, caplog):
    caplog.set_level(logging.DEBUG)
    client = PacsClient(orthanc.config())
    assert client.search_studies(patient_id=STUDY_A["PatientID"],
                                 accession=STUDY_A["AccessionNumber"])
    assert STUDY_A["PatientID"] not in caplog.text
    assert STUDY_A["AccessionNumber"] not in caplog.text


def test_fetch_writes_loadable_files(pacs_env, tmp_path, capsys):
    from core.imaging import load_scan

    fx = pacs_env.fixture
    code, written = _run(capsys, "pacs", "fetch", fx.study_a, "--out", str(tmp_path / "got"),
                         "--json")
    assert code == 0 and len(written) == 4
    by_sop = {w["sop_uid"]: w for w in written}
    multi = load_scan(by_sop[fx.sop["a_multiframe"]]["path"])
    assert multi.n_frames == 3
    comp_path = by_sop[fx.sop["a_compressed"]]["path"]
    # compressed stays compressed (transfer-syntax=*): the scan loader decodes it
    assert str(pydicom.dcmread(comp_path).file_meta.TransferSyntaxUID) == fx.compressed_syntax
    assert load_scan(comp_path).pixels.shape == (256, 256)
    code, only = _run(capsys, "pacs", "fetch", fx.study_a, "--series", fx.series_single,
                      "--out", str(tmp_path / "one"), "--json")
    assert code == 0 and {w["sop_uid"] for w in only} == {fx.sop["a_slice1"], fx.sop["a_slice2"]}


def test_predict_pacs_study(pacs_env, tiny_weights, monkeypatch, capsys):
    monkeypatch.setenv("MEDSCAN_WEIGHTS_DIR", str(tiny_weights))
    fx = pacs_env.fixture
    code, results = _run(capsys, "predict", "--pacs-study", fx.study_a, "--json")
    assert code == 0, results
    assert len(results) == 4
    assert {r["sop_instance_uid"] for r in results} == {fx.sop[k] for k in (
        "a_slice1", "a_slice2", "a_multiframe", "a_compressed")}
    for r in results:
        assert r["study_uid"] == fx.study_a and r["label"] in ("glioma", "meningioma", "notumor",
                                                              "pituitary")
        assert abs(sum(r["probabilities"].values()) - 1) < 1e-4
    assert main(["predict", "--json"]) == 2            # neither files nor a study
    assert "one of the two" in capsys.readouterr().err


# ---- sending back ---------------------------------------------------------------------------

@pytest.fixture()
def db_env(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'medscan.db'}"
    monkeypatch.setenv("MEDSCAN_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("MEDSCAN_DATABASE_URL", url)
    ids = make_db(url)
    yield {"url": url, "ids": ids}
    from core.db import dispose_engines

    dispose_engines()


def _audit_rows(url):
    from core.db import get_engine, session_scope
    from core.db.audit import recent_audit

    with session_scope(get_engine(url)) as s:
        return [(r.username, r.detail) for r in recent_audit(s, action="pacs_send")]


def _retrieve(orthanc, study, series, sop) -> pydicom.Dataset:
    from core.pacs.client import InstanceSummary

    data = PacsClient(orthanc.config()).retrieve(
        InstanceSummary(study, series, sop, "", None, None, None, None))
    return pydicom.dcmread(io.BytesIO(data))


def test_send_gradcam_secondary_capture(pacs_env, tiny_weights, db_env, monkeypatch, capsys):
    monkeypatch.setenv("MEDSCAN_WEIGHTS_DIR", str(tiny_weights))
    fx = pacs_env.fixture
    code, rows = _run(capsys, "pacs", "send-gradcam", fx.study_a, "--series", fx.series_single,
                      "--user", "reader", "--json")
    assert code == 0, rows
    assert len(rows) == 2 and len({r["sop_instance_uid"] for r in rows}) == 2
    assert len({r["series_instance_uid"] for r in rows}) == 1      # one new series
    source = pydicom.dcmread(fx.files["a_slice1"])
    for r in rows:
        ds = _retrieve(pacs_env, fx.study_a, r["series_instance_uid"], r["sop_instance_uid"])
        assert ds.SOPClassUID == pydicom.uid.SecondaryCaptureImageStorage
        assert ds.StudyInstanceUID == fx.study_a
        assert ds.SeriesInstanceUID not in (fx.series_single, fx.series_mixed)
        assert ds.PatientID == source.PatientID and ds.PatientName == source.PatientName
        assert ds.AccessionNumber == source.AccessionNumber
        assert "NOT FOR DIAGNOSTIC USE" in ds.ImageComments
        assert r["label"] in ds.ImageComments and "clf-test" in ds.ImageComments
        assert "calibrated probability" in ds.ImageComments
        assert ds.BurnedInAnnotation == "YES"
        assert ds.SourceImageSequence[0].ReferencedSOPInstanceUID == r["source_sop_uid"]
        px = ds.pixel_array
        assert px.ndim == 3 and px.shape[2] == 3 and px.shape[1] >= 512
        assert px.shape[0] > px.shape[1]                # the caption band below the image
    audit = _audit_rows(db_env["url"])
    assert len(audit) == 2 and all(name == "reader" for name, _ in audit)
    detail = audit[0][1]
    assert detail["study_uid"] == fx.study_a and detail["object"] == "secondary_capture"
    assert detail["new_sop"] in {r["sop_instance_uid"] for r in rows}
    assert PASSWORD not in json.dumps(audit)


def _save_tiny_unet(root, version: str) -> None:
    """A tiny U-Net whose output is sigmoid(+10): the whole head crop is 'tumour' (a mask with
    a real edge: the crop box inside the image)."""
    import keras

    from core import registry
    from core.models.unet import TINY_CONFIG, build_unet
    from core.segmentation.data import preprocessing_config

    keras.utils.set_random_seed(0)
    model = build_unet(**TINY_CONFIG)
    logits = model.get_layer("logits")
    kernel, b = logits.get_weights()
    logits.set_weights([np.zeros_like(kernel), np.full_like(b, 10.0)])
    registry.save_version("segmentation", model, {
        "architecture": "unet", "network": dict(TINY_CONFIG), "input_size": 32,
        "preprocessing": preprocessing_config(32)}, version=version, activate=True,
        weights_dir=root)


def test_send_seg_frames_match_the_mask(pacs_env, tiny_weights, db_env, tmp_path, monkeypatch,
                                        capsys):
    import highdicom as hd

    from core.imaging import load_scan
    from core.segmentation.inference import Segmenter

    root = tmp_path / "weights"
    shutil.copytree(tiny_weights, root)
    _save_tiny_unet(root, "seg-test")
    monkeypatch.setenv("MEDSCAN_WEIGHTS_DIR", str(root))
    fx = pacs_env.fixture
    code, rows, err = _json(capsys, "pacs", "send-seg", fx.study_a, "--json")
    assert code == 0, err
    assert len(rows) == 4
    model = Segmenter.load("seg-test", weights_dir=root)
    by_name = {v: k for k, v in fx.sop.items()}
    for r in rows:
        ds = _retrieve(pacs_env, fx.study_a, r["series_instance_uid"], r["sop_instance_uid"])
        assert ds.SOPClassUID == pydicom.uid.SegmentationStorage
        assert ds.StudyInstanceUID == fx.study_a
        source = pydicom.dcmread(fx.files[by_name[r["source_sop_uid"]]])
        assert ds.PatientID == source.PatientID
        ref = ds.ReferencedSeriesSequence[0]
        assert ref.SeriesInstanceUID == source.SeriesInstanceUID
        assert ref.ReferencedInstanceSequence[0].ReferencedSOPInstanceUID == source.SOPInstanceUID
        assert ds.SegmentSequence[0].SegmentAlgorithmName == "MedScan tumour segmentation"
        assert "NOT FOR DIAGNOSTIC USE" in ds.ContentDescription
        scan = load_scan(fx.files[by_name[r["source_sop_uid"]]].read_bytes())
        want = model.segment_scan(scan).mask
        assert want.any() and not want.all()
        seg = hd.seg.Segmentation.from_dataset(ds)
        got = seg.get_pixels_by_source_instance(
            source_sop_instance_uids=[source.SOPInstanceUID], segment_numbers=[1],
            **({"source_frame_numbers": [scan.frame_index + 1]} if scan.n_frames > 1 else {}),
            combine_segments=True) if scan.n_frames == 1 else None
        if scan.n_frames == 1:
            np.testing.assert_array_equal(got[0].astype(bool), want)
        else:   # multi-frame source: the analysed frame's mask is the one non-empty frame
            frames = ds.pixel_array.reshape(-1, *want.shape).astype(bool)
            assert len(frames) == 1 and ds.PerFrameFunctionalGroupsSequence[0] \
                .DerivationImageSequence[0].SourceImageSequence[0].ReferencedFrameNumber \
                == scan.frame_index + 1
            np.testing.assert_array_equal(frames[0], want)
    assert {d["object"] for _, d in _audit_rows(db_env["url"])} == {"segmentation"}


def test_send_seg_without_a_model_says_so(pacs_env, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MEDSCAN_WEIGHTS_DIR", str(tmp_path / "empty"))
    (tmp_path / "empty").mkdir()
    assert main(["pacs", "send-seg", pacs_env.fixture.study_a]) == 2
    assert "No segmentation model is active" in capsys.readouterr().err


# ---- errors ---------------------------------------------------------------------------------

def test_unreachable_pacs(monkeypatch, capsys):
    url = f"http://127.0.0.1:{free_port()}/dicom-web"
    with pytest.raises(PacsError) as err:
        PacsClient(PacsConfig(url, timeout=3)).search_studies()
    assert err.value.code == "unreachable" and "cannot be reached" in str(err.value)
    code, _, stderr = _json(capsys, "pacs", "search", "--url", url, "--json")
    assert code == 2 and stderr.startswith("error: The PACS at") and "Traceback" not in stderr


def test_wrong_password(orthanc, monkeypatch, capsys):
    with pytest.raises(PacsError) as err:
        PacsClient(orthanc.config(password="wrong")).search_studies()
    assert err.value.code == "unauthorised" and "user name and password" in str(err.value)
    monkeypatch.setenv("MEDSCAN_DICOMWEB_USER", USER)
    monkeypatch.setenv("MEDSCAN_DICOMWEB_PASSWORD", "wrong")
    code, _, stderr = _json(capsys, "pacs", "search", "--url", orthanc.url)
    assert code == 2 and "refused the login" in stderr and "wrong" not in stderr


def test_unknown_study(pacs_env, tmp_path, capsys):
    unknown = "1.2.3.4.5.6.7.8.9"
    with pytest.raises(PacsError) as err:
        PacsClient(pacs_env.config()).fetch(unknown)
    assert err.value.code == "not_found"
    code, _, stderr = _json(capsys, "pacs", "fetch", unknown, "--out", str(tmp_path / "x"))
    assert code == 2 and "no instances" in stderr.lower() and "Traceback" not in stderr
    code, _, stderr = _json(capsys, "pacs", "fetch", "not-a-uid", "--out", str(tmp_path / "x"))
    assert code == 2 and "not a valid DICOM UID" in stderr


def test_unsupported_transfer_syntax_is_a_readable_error():
    client = PacsClient(PacsConfig("http://127.0.0.1:1/dicom-web"))
    err = client._http_error("retrieve", 406, None)
    assert err.code == "unsupported_transfer_syntax" and "transfer syntax" in str(err)
