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


def test_pretrain_refuses_what_it_cannot_use(tmp_path):
    from core.classifier.pretrain import PretrainConfig, pretrain

    with pytest.raises(ValueError, match=r"\.weights\.h5"):
        pretrain(PretrainConfig(data=(str(DATA),), out=str(tmp_path / "x.h5")))
    with pytest.raises(ValueError, match="fewer than one batch"):
        pretrain(PretrainConfig(data=(str(DATA),), out=str(tmp_path / "x.weights.h5"),
                                batch_size=64, input_size=32, width=0.125))
