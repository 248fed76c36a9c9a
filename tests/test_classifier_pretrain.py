"""Self-supervised pre-training (issue 12): the NT-Xent loss against a NumPy reference, the
unlabelled image listing, the kNN probe, and the command end to end on the fixture images with
a tiny network: its weights file starts a classifier training run, whose card says so."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from core.classifier.pretrain import knn_probe, list_unlabelled, nt_xent

DATA = Path(__file__).parent / "data" / "brain-mri"


def _reference(z: np.ndarray, t: float) -> np.ndarray:
    """NT-Xent per image, written out: for view i its positive is the other view of the image,
    the denominator every embedding but itself."""
    b = z.shape[0]
    e = np.concatenate([z[:, 0], z[:, 1]])
    e = e / np.linalg.norm(e, axis=1, keepdims=True)
    sim = e @ e.T / t
    out = np.zeros(2 * b)
    for i in range(2 * b):
        pos = (i + b) % (2 * b)
        others = [j for j in range(2 * b) if j != i]
        out[i] = -sim[i, pos] + np.log(np.exp(sim[i, others]).sum())
    return (out[:b] + out[b:]) / 2


def test_nt_xent_matches_the_definition_and_prefers_matching_views():
    from keras import ops

    rng = np.random.default_rng(0)
    z = rng.normal(size=(6, 2, 8)).astype(np.float32)
    loss = nt_xent(6, 0.5)
    got = np.asarray(ops.convert_to_numpy(loss(np.zeros(6), z)))
    np.testing.assert_allclose(got, _reference(z, 0.5), rtol=1e-4, atol=1e-5)
    # two views that agree cost less than two that do not
    same = np.repeat(rng.normal(size=(6, 1, 8)).astype(np.float32), 2, axis=1)
    shuffled = same.copy()
    shuffled[:, 1] = same[::-1, 1]
    assert (ops.convert_to_numpy(loss(np.zeros(6), same)).mean()
            < ops.convert_to_numpy(loss(np.zeros(6), shuffled)).mean() - 1)


def test_unlabelled_images_are_found_recursively_once(tmp_path):
    from PIL import Image

    (tmp_path / "a" / "deep").mkdir(parents=True)
    (tmp_path / "a" / ".hidden").mkdir()
    for p in ("a/x.png", "a/deep/y.jpg", "a/.hidden/z.png"):
        Image.new("L", (8, 8)).save(tmp_path / p)
    (tmp_path / "a" / "notes.txt").write_text("not an image")
    files = list_unlabelled([tmp_path / "a", tmp_path / "a" / "deep"])
    # the hidden folder and the text file are skipped; the deep folder, given twice, counts once
    assert sorted(f.name for f in files) == ["x.png", "y.jpg"]
    with pytest.raises(FileNotFoundError):
        list_unlabelled([tmp_path / "missing"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="No images"):
        list_unlabelled([tmp_path / "empty"])


def test_knn_probe_separates_clusters_and_breaks_ties_by_the_nearest():
    rng = np.random.default_rng(1)
    centres = np.eye(3, 5) * 10
    x = np.concatenate([c + rng.normal(size=(20, 5)) for c in centres])
    y = np.repeat(np.arange(3), 20)
    assert knn_probe(x[::2], y[::2], x[1::2], y[1::2], k=5) == 1.0
    assert knn_probe(x[::2], y[::2], x[1::2], (y[1::2] + 1) % 3, k=5) == 0.0
    # k=2 with one neighbour of each class: the nearer one wins
    train = np.array([[1.0, 0.05], [1.0, 0.5]])
    assert knn_probe(train, np.array([0, 1]), np.array([[1.0, 0.0]]), np.array([0]), k=2) == 1.0


def test_pretrain_command_writes_weights_that_start_a_training_run(tmp_path, monkeypatch):
    import keras

    from core.__main__ import main
    from core.classifier.pretrain import PretrainConfig, _classifier
    from core.classifier.train import TrainConfig, train

    import shutil

    from core.classifier.pretrain import validation_files

    # another folder holding a copy of one validation image (another name): a near duplicate
    more = tmp_path / "more"
    more.mkdir()
    shutil.copy(validation_files(DATA)[0], more / "copy_of_a_validation_slice.png")
    out = tmp_path / "ssl" / "base.weights.h5"
    rc = main(["pretrain", "classifier", "--data", str(DATA), "--data", str(more),
               "--out", str(out),
               "--input-size", "32", "--width", "0.125", "--epochs", "2", "--batch-size", "8",
               "--probe", str(DATA), "--hold-out-validation-of", str(DATA), "--quiet"])
    assert rc == 0 and out.is_file()
    info = json.loads(Path(str(out) + ".json").read_text())
    # the training run's validation split (1 of 8 per class at 0.15, seed 42) is left out
    assert info["held_out"]["images"] == 4 and info["held_out"]["seed"] == 42
    assert info["held_out"]["near_duplicates"] == 1
    assert info["images"] == 28 and info["epochs_done"] == 2
    assert len(info["loss"]) == 2 and all(np.isfinite(h["loss"]) for h in info["loss"])
    # the first epoch starts near chance: log(2B - 1) for B = 8
    assert abs(info["loss"][0]["loss"] - np.log(15)) < 0.5
    probe = info["probe"]
    assert probe["images"] == 32 and 0 <= probe["pretrained_knn_accuracy"] <= 1
    assert "random_init_knn_accuracy" in probe
    assert info["network"]["width"] == 0.125 and info["architecture"] == "vgg16_bn"
    assert all(h["seconds"] > 0 for h in info["loss"])

    # the Training page's view of it: listed, described, checked, timed
    from core.classifier.pretrain import (base_label, base_mismatch, expected_pretrain_minutes,
                                          list_bases)

    bases = list_bases(out.parent)
    assert [b["name"] for b in bases] == ["base"] and bases[0]["path"] == out
    assert base_label(bases[0]) == "base (vgg16_bn, width 0.125, 32 px, 2 epochs, 28 images)"
    assert base_mismatch(bases[0], "vgg16_bn", 0.125) is None
    assert "width 0.125" in base_mismatch(bases[0], "vgg16_bn", 0.25)
    assert "cnn" in base_mismatch(bases[0], "cnn", 0.125)
    per_image = float(np.median([h["seconds"] for h in info["loss"]])) / 28
    eta = expected_pretrain_minutes(n_images=56, input_size=64, width=0.25, epochs=10,
                                    bases=bases)
    assert eta == pytest.approx(per_image * 4 * 4 * 56 * 10 / 60 + 1.0)

    # the weights differ from the same network's initialisation (the base was trained)
    keras.utils.set_random_seed(0)
    fresh, _ = _classifier(PretrainConfig(data=(str(DATA),), out=str(out), input_size=32,
                                          width=0.125))
    loaded, _ = _classifier(PretrainConfig(data=(str(DATA),), out=str(out), input_size=32,
                                           width=0.125))
    loaded.load_weights(out)
    w0 = fresh.get_layer("block1_conv1").get_weights()[0]
    w1 = loaded.get_layer("block1_conv1").get_weights()[0]
    assert not np.allclose(w0, w1)

    # ... and start a classifier run (with its head's dropout) whose card names them
    monkeypatch.setenv("MEDSCAN_DATA_DIR", str(tmp_path / "data"))
    result = train(TrainConfig(data=str(DATA), input_size=32, width=0.125, epochs=1,
                               batch_size=8, init_from=str(out), publish=False,
                               run_dir=str(tmp_path / "run")))
    card = result.card
    assert card["notice"].startswith("no ImageNet weights; started from self-supervised "
                                     "weights (SimCLR")
    assert card["initialisation"]["self_supervised"]["images"] == 28
    # the images it left out are the ones this run validates on
    from core.classifier.data import card_split, list_image_folder

    data = list_image_folder(DATA)
    _, va = card_split(data, card)
    assert sorted(validation_files(DATA)) == sorted(data.files[i].resolve() for i in va)
    assert card["caveats"][0] == card["notice"]

    # a next stage started from this run's checkpoint records the whole lineage
    from core.classifier.train import init_source

    assert (tmp_path / "run" / "card_draft.json").is_file()   # written by every run
    nxt = init_source(str(tmp_path / "run" / "best.weights.h5"))
    assert nxt["from_run"]["input_size"] == 32 and nxt["from_run"]["epochs_run"] == 1
    assert nxt["from_run"]["command"] == card["training"]["command"]
    assert nxt["from_run"]["initialisation"] == card["initialisation"]
    assert nxt["describe"].startswith("the best checkpoint of the run ")
    assert "which started from self-supervised weights (SimCLR" in nxt["describe"]
    # readers get one sentence without run folders (the card's notice, caveats, description)
    assert nxt["reader"].startswith("started from self-supervised weights (SimCLR")
    assert nxt["reader"].endswith("28 unlabelled images, 2 epochs), then 1 earlier supervised "
                                  "stage") and "runs/" not in nxt["reader"]
    assert nxt["self_supervised"]["images"] == 28
    (tmp_path / "run" / "card_draft.json").write_text("{broken")
    assert "from_run" not in init_source(str(tmp_path / "run" / "best.weights.h5"))


def test_pretrain_refuses_what_it_cannot_use(tmp_path):
    from core.classifier.pretrain import PretrainConfig, pretrain

    with pytest.raises(ValueError, match=r"\.weights\.h5"):
        pretrain(PretrainConfig(data=(str(DATA),), out=str(tmp_path / "x.h5")))
    taken = tmp_path / "taken.weights.h5"
    taken.write_bytes(b"a base a card may name")
    with pytest.raises(ValueError, match="exists already"):
        pretrain(PretrainConfig(data=(str(DATA),), out=str(taken)))
    assert taken.read_bytes() == b"a base a card may name"
    with pytest.raises(ValueError, match="fewer than one batch"):
        pretrain(PretrainConfig(data=(str(DATA),), out=str(tmp_path / "x.weights.h5"),
                                batch_size=64, input_size=32, width=0.125))


def test_bases_listing_labels_and_duration_without_a_timed_base(tmp_path, monkeypatch):
    """Bases are ``*.weights.h5`` files with a JSON sidecar, newest first; one without a
    readable sidecar is listed but cannot start a run. With no base that recorded its epoch
    times, the duration comes from the active card's supervised seconds per image."""
    import os

    from core.classifier.pretrain import (PRETRAIN_COST_VS_SUPERVISED, base_label,
                                          base_mismatch, bases_dir, expected_pretrain_minutes,
                                          list_bases)

    monkeypatch.setenv("MEDSCAN_DATA_DIR", str(tmp_path))
    assert bases_dir() == tmp_path / "pretrained" and list_bases() == []
    bases_dir().mkdir()
    old = bases_dir() / "old.weights.h5"
    old.write_bytes(b"x")
    Path(str(old) + ".json").write_text(json.dumps({
        "architecture": "vgg16_bn", "config": {"width": 0.5, "input_size": 64},
        "epochs_done": 4, "images": 4651, "loss": [{"epoch": 1, "loss": 3.5}]}))
    os.utime(old, (1, 1))
    new = bases_dir() / "new.weights.h5"
    new.write_bytes(b"x")
    Path(str(new) + ".json").write_text("{not json")
    (bases_dir() / "notes.txt").write_text("not a base")
    bases = list_bases()
    assert [b["name"] for b in bases] == ["new", "old"] and bases[0]["info"] == {}
    assert base_label(bases[1]) == "old (vgg16_bn, width 0.5, 64 px, 4 epochs, 4,651 images)"
    assert "no readable description" in base_mismatch(bases[0], "vgg16_bn", 0.5)
    # no base recorded seconds per epoch: the card's 100 s per epoch over 1,000 images, scaled
    card = {"input_size": 64, "network": {"width": 0.5},
            "data": {"train_counts": {"a": 600, "b": 400}},
            "training": {"history": [{"seconds": 90}, {"seconds": 100}, {"seconds": 110}]}}
    eta = expected_pretrain_minutes(n_images=2000, input_size=96, width=0.5, epochs=3,
                                    bases=bases, card=card)
    supervised = 100 * (96 / 64) ** 2 * 2 * 3 / 60
    assert eta == pytest.approx(supervised * PRETRAIN_COST_VS_SUPERVISED + 1.0)
    assert expected_pretrain_minutes(n_images=10, input_size=64, width=0.5, epochs=1,
                                     bases=bases, card=None) is None


def test_pretraining_is_a_job_kind_with_its_command():
    from core.db.tables import JOB_KINDS
    from core.jobs.runner import job_command

    assert "pretrain" in JOB_KINDS
    cmd = job_command("pretrain", ["--data", "d", "--out", "b.weights.h5"], 7)
    assert cmd[1:5] == ["-m", "core", "pretrain", "classifier"]
    assert cmd[-2:] == ["--job-id", "7"]
