"""Classifier ensembles (issue 12): an ensemble version is one registry version whose logits are
the mean of its members' logits and whose Grad-CAM map is the mean of the members' maps.

Members are tiny untrained VGG16-BN models (1/16 width, 48² input, different seeds) saved with
the real registry; their cards record the fixture folder's fingerprint and split, so the
ensemble command, the OOD fit and the flip derivation run on tests/data/brain-mri as on the
real data."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from core import registry
from core.classifier.gradcam import cam_from_gradients
from core.classifier.inference import Classifier
from core.cli import main
from core.errors import ModelCardError

DATA = Path(__file__).resolve().parent / "data" / "brain-mri"
CLASSES = ["glioma", "meningioma", "notumor", "pituitary"]
SIZE = 48


def _member(root: Path, version: str, seed: int, *, classes=CLASSES, split_seed: int = 42,
            tta: str | None = None, crop_margin: float | None = None) -> None:
    import keras

    from core.classifier.data import fingerprint, list_image_folder
    from core.classifier.preprocess import preprocessing_config
    from core.models.vgg16 import build_classifier_bn

    keras.utils.set_random_seed(seed)
    net = {"num_classes": 4, "input_shape": [SIZE, SIZE, 3], "width": 0.0625}
    pre = preprocessing_config("vgg16", 3, SIZE)
    if tta:
        pre["tta"] = tta
    if crop_margin is not None:
        pre["crop_margin"] = crop_margin
    registry.save_version("classifier", build_classifier_bn(**net), {
        "architecture": "vgg16_bn", "network": net, "classes": list(classes),
        "input_size": SIZE, "preprocessing": pre, "calibration": {"temperature": 1.3},
        "pretrained": False,
        "data": {"path": str(DATA), "modality": "MR", "body_part": ["BRAIN", "HEAD"],
                 "fingerprint": fingerprint(list_image_folder(DATA, CLASSES))},
        "training": {"config": {"val_fraction": 0.25, "seed": split_seed}},
        "caveats": [f"tiny test member {version}"],
    }, version=version, weights_dir=root)


def _ensemble(root: Path, version: str, members: list[str], *, tta: str | None = None,
              temperature: float = 1.0) -> None:
    """An ensemble card written by hand (the command is tested separately)."""
    from core.classifier.preprocess import preprocessing_config

    pre = preprocessing_config("vgg16", 3, SIZE)
    if tta:
        pre["tta"] = tta
    registry.save_version("classifier", None, {
        "architecture": "ensemble", "classes": CLASSES, "input_size": SIZE,
        "preprocessing": pre, "calibration": {"temperature": temperature},
        "combine": "mean of the members' logits",
        "members": [{"version": m, "weights_sha256": registry.weights_sha256(
            "classifier", m, weights_dir=root)} for m in members]},
        version=version, weights_dir=root)


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("ens") / "weights"
    root.mkdir()
    for version, seed in (("m1", 1), ("m2", 2), ("m3", 3)):
        _member(root, version, seed)
    _member(root, "m-classes", 4, classes=CLASSES[::-1])
    _member(root, "m-margin", 5, crop_margin=0.1)
    _member(root, "m-split", 6, split_seed=7)
    _member(root, "m-flip", 7, tta="hflip")   # another averaging: allowed, the ensemble decides
    _ensemble(root, "e12", ["m1", "m2"], temperature=1.7)
    _ensemble(root, "e12-flip", ["m1", "m2"], tta="hflip")
    _ensemble(root, "e1", ["m1"])
    return root


@pytest.fixture()
def root(base, tmp_path) -> Path:
    """A private copy of the module's registry (for tests that change it)."""
    out = tmp_path / "weights"
    shutil.copytree(base, out)
    return out


def _scan(cls: str = "glioma", i: int = 1) -> np.ndarray:
    path = sorted((DATA / cls).iterdir())[i]
    return cv2.imread(str(path), cv2.IMREAD_GRAYSCALE).astype(np.float32) / 255


def _batch(clf) -> np.ndarray:
    return np.stack([clf.prepare(_scan(c))[0] for c in ("glioma", "notumor", "pituitary")])


def test_logits_and_features_are_the_members_mean_and_concatenation(base):
    ens = Classifier.load("e12", weights_dir=base)
    flip = Classifier.load("e12-flip", weights_dir=base)
    m1, m2 = (Classifier.load(v, weights_dir=base) for v in ("m1", "m2"))
    assert ens.members == ("m1", "m2") and ens.temperature == 1.7 and ens.tta is None
    assert ens.gradcam_layer == "block5_conv3_relu" and ens.notice   # no member pretrained
    x = _batch(ens)
    (l1, f1), (l2, f2) = m1.forward_batch(x), m2.forward_batch(x)
    le, fe = ens.forward_batch(x)
    np.testing.assert_allclose(le, (l1 + l2) / 2, atol=1e-5)
    assert ens.feature_layers == m1.feature_layers
    for a, b, e in zip(f1, f2, fe):
        np.testing.assert_allclose(e, np.concatenate([a, b], axis=1), atol=1e-5)
    assert ens.feature_dim("avg_pool") == 2 * m1.feature_dim("avg_pool") == fe[-1].shape[1]

    # flip averaging: every member's logits averaged over the scan and its mirror, then meaned
    mirror = np.ascontiguousarray(x[:, :, ::-1])
    want = (m1.logits_batch(x) + m1.logits_batch(mirror) + m2.logits_batch(x)
            + m2.logits_batch(mirror)) / 4
    np.testing.assert_allclose(flip.logits_batch(x), want, atol=1e-5)
    np.testing.assert_allclose(flip.logits_batch(mirror), want, atol=1e-5)

    pred = ens.predict(_scan())
    assert pred.version == "e12" and sum(pred.probabilities.values()) == pytest.approx(1)
    assert pred.ood_status == "not checked"
    from core.classifier.calibration import softmax

    np.testing.assert_allclose(list(pred.probabilities.values()),
                               softmax(ens.logits_batch(x[:1]), 1.7)[0], atol=1e-5)


def test_one_member_ensemble_is_its_member(base):
    one = Classifier.load("e1", weights_dir=base)
    m1 = Classifier.load("m1", weights_dir=base)
    x = _batch(one)
    np.testing.assert_allclose(one.logits_batch(x), m1.logits_batch(x), rtol=0, atol=1e-6)
    for a, b in zip(one.forward_batch(x)[1], m1.forward_batch(x)[1]):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)
    img = _scan("meningioma")
    for method in ("gradcam", "gradcam++"):
        for cls in (None, "notumor"):
            p1, h1 = one.explain(img, cls, method)
            p2, h2 = m1.explain(img, cls, method)
            assert p1.label == p2.label
            np.testing.assert_allclose(h1, h2, rtol=0, atol=1e-6)


def _member_cam(clf, x: np.ndarray, idx: int, n: int, method: str) -> np.ndarray:
    """One member's map from the gradient of the n-member ensemble's class score (the mean
    logit: this member's logit gradient divided by n)."""
    acts, (grads,), _, _ = clf._gradients_tf(x, [idx])
    return cam_from_gradients(acts[0], grads[0] / n, method)


@pytest.mark.parametrize("method", ["gradcam", "gradcam++"])
def test_ensemble_map_is_the_mean_of_the_members_maps(base, method):
    ens = Classifier.load("e12", weights_dir=base)
    members = [Classifier.load(v, weights_dir=base) for v in ("m1", "m2")]
    img = _scan("pituitary", 2)
    x, box = ens.prepare(img)
    checked = 0
    for idx, cls in enumerate(CLASSES):
        maps = [_member_cam(m, x, idx, 2, method) for m in members]
        pred, cam, box_e = ens.explain_cam(img, cls, method)
        assert box_e == box and cam.shape == maps[0].shape
        np.testing.assert_allclose(cam, (maps[0] + maps[1]) / 2, atol=1e-5)
        if method == "gradcam":   # scale-free: the members' own maps are the same maps
            own = [m.explain_cam(img, cls, method)[1] for m in members]
            np.testing.assert_allclose(cam, (own[0] + own[1]) / 2, atol=1e-5)
        checked += all(m.max() > 0 for m in maps)
    assert checked, "no class where both members have a non-empty map: the test proves nothing"
    # the placed map and the prediction are the ensemble's
    pred, heat = ens.explain(img)
    assert heat.shape == img.shape and 0 <= heat.min() and heat.max() <= 1
    assert pred.probabilities == pytest.approx(ens.predict(img).probabilities, abs=1e-5)
    # every class by every method in one pass: the same maps as explain()'s
    pred_all, maps = ens.explain_all(img)
    assert pred_all.probabilities == pytest.approx(pred.probabilities, abs=1e-5)
    for (method, cls), m in maps.items():
        np.testing.assert_allclose(m, ens.explain(img, cls, method)[1], rtol=0, atol=1e-6)


def test_card_validation_and_member_checks(root):
    from core.classifier.ensemble import create_ensemble

    # mismatched classes / preprocessing / split, too few members, nesting: refused in words
    for members, match in ((["m1", "m-classes"], "classes"),
                           (["m1", "m-margin"], "preprocessing differs .*crop_margin"),
                           (["m1", "m-split"], "different validation splits"),
                           (["m1"], "2 to 3 members"), (["m1", "m2", "m3", "m-flip"], "2 to 3"),
                           (["m1", "e12"], "itself an ensemble"), (["m1", "nope"], "nope")):
        with pytest.raises(ModelCardError, match=match):
            create_ensemble(members, DATA, "bad", weights_dir=root)
    assert registry.location("classifier", "bad", weights_dir=root) is None
    # a card naming mismatched members does not load either
    card_path = root / "classifier" / "e12" / registry.CARD_FILE
    card = json.loads(card_path.read_text())
    bad = dict(card, members=card["members"] + [{"version": "m-classes", "weights_sha256":
               registry.weights_sha256("classifier", "m-classes", weights_dir=root)}])
    card_path.write_text(json.dumps(bad))
    with pytest.raises(ModelCardError, match="member m-classes has classes"):
        Classifier.load("e12", weights_dir=root)
    for members, match in (([], "1 to 3"), ([{"version": "m1"}], "weights_sha256"),
                           ([card["members"][0]] * 2, "twice")):
        card_path.write_text(json.dumps(dict(card, members=members)))
        with pytest.raises(ModelCardError, match=match):
            registry.load_card("classifier", "e12", weights_dir=root)
    card_path.write_text(json.dumps(card))
    # a member with its own flip averaging is fine: the ensemble's tta applies to all
    _ensemble(root, "e-mixed", ["m1", "m-flip"])
    assert Classifier.load("e-mixed", weights_dir=root).tta is None

    # versions without a weights file are listed and loadable when they are ensembles
    rows = {r["version"]: r for r in registry.version_rows("classifier", weights_dir=root)}
    assert rows["e12"]["architecture"] == "ensemble"
    assert not (root / "classifier" / "e12" / registry.WEIGHTS_FILE).exists()
    loaded = Classifier.load("e12", weights_dir=root)
    assert loaded.version == "e12" and loaded.model.get_layer("logits") is not None
    # the registry has no single model for it (core stays below the classifier package)
    with pytest.raises(ModelCardError, match="is an ensemble of m1, m2: it has no single model"):
        registry.load_model("classifier", "e12", weights_dir=root)

    # deleting a member is refused while an ensemble lists it; the ensemble itself can go
    with pytest.raises(ModelCardError, match="member of the ensembles e-mixed, e1, e12, e12-flip: delete them first"):
        registry.delete_version("classifier", "m1", weights_dir=root)
    registry.delete_version("classifier", "m3", weights_dir=root)      # no ensemble uses it

    # changed member weights: the hash no longer matches
    import keras

    from core.models.vgg16 import build_classifier_bn

    keras.utils.set_random_seed(99)
    other = build_classifier_bn(num_classes=4, input_shape=[SIZE, SIZE, 3], width=0.0625)
    other.save_weights(root / "classifier" / "m2" / registry.WEIGHTS_FILE)
    with pytest.raises(ModelCardError, match="weights of its member m2 have changed"):
        Classifier.load("e12", weights_dir=root)
    with pytest.raises(ModelCardError, match="m2 have changed"):
        registry.activate("classifier", "e12", weights_dir=root)

    # a missing member (removed behind the registry's back)
    shutil.rmtree(root / "classifier" / "m1")
    with pytest.raises(ModelCardError, match="member m1 is not in the registry"):
        Classifier.load("e1", weights_dir=root)
    assert "e1" in {c["version"] for c in registry.list_versions("classifier", weights_dir=root)}


def test_cli_ensemble_ood_and_flip_version(root, monkeypatch, capsys):
    monkeypatch.setenv("MEDSCAN_WEIGHTS_DIR", str(root))
    data = str(DATA)
    assert main(["ensemble", "classifier", "--members", "m1", "m2", "--data", data,
                 "--version", "cli-ens", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["version"] == "cli-ens" and out["members"] == ["m1", "m2"]
    assert out["n_validation"] == 8 and out["n_clean"] == 8 and out["temperature"] > 0
    assert out["after"]["nll"] <= out["before"]["nll"] + 1e-9
    assert set(out["members_clean"]) == {"m1", "m2"} and not out["activated"]
    folder = root / "classifier" / "cli-ens"
    assert sorted(p.name for p in folder.iterdir()) == [registry.CARD_FILE]
    card = registry.load_card("classifier", "cli-ens")
    assert card["architecture"] == "ensemble" and card["combine"] == "mean of the members' logits"
    assert [m["version"] for m in card["members"]] == ["m1", "m2"]
    assert all(m["weights_sha256"].startswith("sha256:") for m in card["members"])
    assert card["calibration"]["temperature"] == out["temperature"]
    assert card["calibration"]["n"] == 8 and "gradcam" in card and "network" not in card
    assert card["data"]["fingerprint"] == registry.load_card("classifier", "m1")["data"][
        "fingerprint"] and card["data"]["path"] == "tests/data/brain-mri"
    assert card["training"]["command"] and card["preprocessing"].get("tta") is None
    assert card["caveats"] == ["tiny test member m1", "tiny test member m2"]

    # the human-readable form, with flip averaging and activation
    assert main(["ensemble", "classifier", "--members", "m1", "m2", "m-flip", "--data", data,
                 "--version", "cli-ens3", "--tta", "hflip", "--activate"]) == 0
    text = capsys.readouterr().out
    assert "temperature" in text and "clean validation" in text and "member m-flip" in text
    assert registry.active_version("classifier") == "cli-ens3"
    assert Classifier.load().members == ("m1", "m2", "m-flip")
    assert main(["ensemble", "classifier", "--members", "m1", "--data", data,
                 "--version", "x"]) == 2
    assert "2 to 3 members" in capsys.readouterr().err
    assert main(["ensemble", "classifier", "--members", "m1", "m2", "--data", data,
                 "--version", "cli-ens"]) == 2
    assert "already exists" in capsys.readouterr().err

    # the OOD check fitted for the ensemble (its concatenated features)
    assert main(["calibrate", "ood", "--data", data, "--model", "cli-ens"]) == 0
    section = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    single = Classifier.load("m1")
    assert section["feature_dims"] == [2 * single.feature_dim(n) for n in single.feature_layers]
    ens = Classifier.load("cli-ens")
    assert ens.ood is not None and (folder / "ood.npz").is_file()
    assert isinstance(ens.predict(_scan()).out_of_distribution, bool)

    # a flip-averaged version of the ensemble: a new ensemble card, same members, T refitted
    assert main(["calibrate", "classifier", "--data", data, "--model", "cli-ens",
                 "--tta", "hflip", "--as", "cli-ens-flip"]) == 0
    entry = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    flip = Classifier.load("cli-ens-flip")
    assert entry["version"] == "cli-ens-flip" and flip.tta == "hflip"
    assert flip.members == ("m1", "m2") and flip.card["derived_from"] == "cli-ens"
    assert not (root / "classifier" / "cli-ens-flip" / registry.WEIGHTS_FILE).exists()
    x = _batch(flip)
    np.testing.assert_allclose(flip.logits_batch(x), ens.logits_batch(x) / 2 + ens.logits_batch(
        np.ascontiguousarray(x[:, :, ::-1])) / 2, atol=1e-5)
    # and in place: the ensemble's card gets the new temperature
    assert main(["calibrate", "classifier", "--data", data, "--model", "cli-ens"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["version"] == "cli-ens"

    files = [str(sorted((DATA / c).iterdir())[0]) for c in ("glioma", "notumor")]
    assert main(["predict", *files, "--model", "cli-ens", "--json"]) == 0
    preds = json.loads(capsys.readouterr().out)
    assert len(preds) == 2 and all(isinstance(p["out_of_distribution"], bool) for p in preds)


def test_retrieval_embeddings_of_an_ensemble(base):
    from core.retrieval.embed import embed_images, embedding_dim

    ens = Classifier.load("e12", weights_dir=base)
    single = Classifier.load("m1", weights_dir=base)
    vectors = embed_images(ens, [_scan("glioma"), _scan("notumor")])
    assert vectors.shape == (2, 2 * embedding_dim(single)) == (2, embedding_dim(ens))
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    assert embed_images(ens, []).shape == (0, embedding_dim(ens))


def test_ensemble_in_the_writable_registry_uses_shipped_members(base, tmp_path, monkeypatch):
    """The app's layout: shipped versions read-only in weights/, new ones in data/weights."""
    from core.classifier.ensemble import create_ensemble

    shipped = tmp_path / "shipped"
    (shipped / "classifier").mkdir(parents=True)
    for v in ("m1", "m2"):
        shutil.copytree(base / "classifier" / v, shipped / "classifier" / v)
    (shipped / registry.READ_ONLY_MARKER).write_text("")
    monkeypatch.setenv("MEDSCAN_REGISTRY_DIR", str(tmp_path / "data-weights"))
    out = create_ensemble(["m1", "m2"], DATA, "ens-local", weights_dir=shipped)
    assert Path(out["path"]) == tmp_path / "data-weights" / "classifier" / "ens-local"
    assert Classifier.load("ens-local", weights_dir=shipped).members == ("m1", "m2")
    assert registry.version_status("classifier", "ens-local", weights_dir=shipped) == "candidate"
    with pytest.raises(ModelCardError, match="shipped"):
        registry.delete_version("classifier", "m1", weights_dir=shipped)
    # seen without the shipped root, the members are missing: said in words
    with pytest.raises(ModelCardError, match="not in the registry"):
        Classifier.load("ens-local", weights_dir=tmp_path / "data-weights")


def test_classifier_benchmark_runs_on_an_ensemble(base, monkeypatch, capsys):
    """benchmarks/bench_classifier.py (its cost figures for the card) on a single model and an
    ensemble: the JSON names the version and gives positive times."""
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_classifier.py"
    spec = importlib.util.spec_from_file_location("bench_classifier", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    monkeypatch.setenv("MEDSCAN_WEIGHTS_DIR", str(base))
    for version, tta in (("m1", None), ("e12-flip", "hflip")):
        assert bench.main(["--model", version, "--n", "2", "--repeat", "1", "--json"]) == 0
        out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert out["model"] == version and out["tta"] == tta
        assert out["forward_ms"] > 0 and out["predict_gradcam_ms"] > 0
