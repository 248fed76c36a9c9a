"""Source oversampling (core.classifier.sources): groups from the data set's manifest, how
often each image goes into an epoch, the training sequence that repeats them, and a tiny
training run that records it in the card."""
from __future__ import annotations

import csv
import hashlib
from pathlib import Path

import numpy as np
import pytest

from core.classifier.sources import (MARKED, PLAIN, find_source_manifest, source_groups,
                                     source_repeats)


def _manifest(path: Path, rows: list[tuple[str, int, int, bool]]) -> Path:
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["file", "label", "source_width", "source_height", "upscaled"])
        for f, sw, sh, up in rows:
            w.writerow([f, f.split("/")[0], sw, sh, up])
    return path


def test_groups_follow_what_the_resize_left_visible(tmp_path):
    m = _manifest(tmp_path / "m.csv", [("a/sq.jpg", 512, 512, False),
                                       ("a/small-square.jpg", 300, 300, False),
                                       ("a/wide.jpg", 600, 400, False),
                                       ("b/up.jpg", 200, 200, True)])
    files = [Path("/x/a/sq.jpg"), Path("/x/a/small-square.jpg"), Path("/y/a/wide.jpg"),
             Path("b/up.jpg"), Path("a/unlisted.jpg")]
    assert source_groups(files, m) == [PLAIN, PLAIN, MARKED, MARKED, None]


def test_bad_manifests_say_what_is_wrong(tmp_path):
    with pytest.raises(ValueError, match="No such file"):
        source_groups([], tmp_path / "none.csv")
    bad = tmp_path / "bad.csv"
    bad.write_text("file,width\na/x.jpg,3\n")
    with pytest.raises(ValueError, match="needs the columns"):
        source_groups([], bad)


def test_a_class_s_rare_group_is_repeated_factor_times():
    labels = np.array([0] * 10 + [1] * 10 + [2] * 4)
    groups = ([PLAIN] * 10                      # class 0: one group, nothing repeated
              + [PLAIN] * 8 + [MARKED] * 2      # class 1: 20 % marked -> repeated
              + [MARKED] * 3 + [None])          # class 2: unlisted file counts once
    rep, summary = source_repeats(labels, groups, 3)
    assert rep.tolist() == [1] * 10 + [1] * 8 + [3] * 2 + [1] * 4
    assert summary == {0: {PLAIN: [10, 1]}, 1: {MARKED: [2, 3], PLAIN: [8, 1]},
                       2: {MARKED: [3, 1]}}
    # exactly a quarter is not "under 25 %"
    rep, _ = source_repeats(np.zeros(8, int), [PLAIN] * 6 + [MARKED] * 2, 5)
    assert rep.tolist() == [1] * 8
    with pytest.raises(ValueError, match="at least 1"):
        source_repeats(labels, groups, 0)


def test_manifest_is_found_in_or_beside_the_data_folder(tmp_path):
    data = tmp_path / "train"
    data.mkdir()
    assert find_source_manifest(data) is None
    (tmp_path / "train_manifest.csv").write_text("x")
    assert find_source_manifest(data) == tmp_path / "train_manifest.csv"
    (data / "train_manifest.csv").write_text("x")
    assert find_source_manifest(data) == data / "train_manifest.csv"


def test_training_sequence_repeats_images_and_keeps_the_old_order_without():
    pytest.importorskip("keras")
    from core.classifier.data import ImageFolderSequence

    imgs = np.zeros((5, 16, 16), np.uint8)
    labels = np.array([0, 0, 1, 1, 1])
    kw = dict(batch_size=4, normalise_mode="vgg16", channels=3, training=True, seed=3)
    plain = ImageFolderSequence(imgs, labels, 2, **kw)
    assert len(plain) == 2
    assert plain._order.tolist() == np.random.default_rng((3, 0)).permutation(5).tolist()
    rep = ImageFolderSequence(imgs, labels, 2, repeats=np.array([1, 3, 1, 1, 2]), **kw)
    assert len(rep) == 2 and sorted(rep._order.tolist()) == [0, 1, 1, 1, 2, 3, 4, 4]
    rep.on_epoch_end()                                  # each epoch reshuffles the same pool
    assert sorted(rep._order.tolist()) == [0, 1, 1, 1, 2, 3, 4, 4]
    (x, y) = rep[1]
    assert x.shape[0] == 4 and y.shape == (4, 2)
    val = ImageFolderSequence(imgs, labels, 2, batch_size=4, normalise_mode="vgg16", channels=3,
                              training=False, repeats=np.array([1, 3, 1, 1, 2]))
    assert val._order.tolist() == [0, 1, 2, 3, 4]       # never in validation


def test_training_with_source_oversampling_records_it(data_dir, tmp_path):
    pytest.importorskip("keras")
    import shutil

    from core.classifier.train import TrainConfig, train

    data = tmp_path / "brain-mri" / "train"
    shutil.copytree(data_dir / "brain-mri", data)
    files = sorted(p.relative_to(data).as_posix() for p in data.glob("*/*.jpg"))
    # one notumor image of a "plain" source: under 25 % of notumor, repeated
    rows = [(f, 512, 512, False) if not f.startswith("notumor") else
            ((f, 512, 512, False) if i == 0 else (f, 300, 240, True))
            for i, f in enumerate(sorted(files, key=lambda f: (not f.startswith("notumor"), f)))]
    m = _manifest(tmp_path / "brain-mri" / "train_manifest.csv", rows)
    tiny = dict(input_size=32, width=1 / 16, batch_size=8, epochs=1, val_fraction=0.25,
                warmup_epochs=0, workers=1, arch="vgg16_bn", publish=False)
    events = []
    result = train(TrainConfig(data=str(data), source_oversample=5,
                               run_dir=str(tmp_path / "run"), **tiny), events.append)
    entry = result.card["data"]["source_oversampling"]
    assert entry["factor"] == 5 and entry["manifest"].endswith("train_manifest.csv")
    assert entry["manifest_sha256"] == hashlib.sha256(m.read_bytes()).hexdigest()
    groups = entry["groups"]
    n_plain = groups["notumor"]["plain"]["images"]
    assert groups["notumor"]["plain"]["repeats"] == 5 and n_plain <= 1
    assert groups["glioma"] == {"plain": {"images": 6, "repeats": 1}}
    assert entry["epoch_images"] == 24 + 4 * n_plain
    assert any("source oversampling ×5" in (e.message or "") for e in events)
    assert "shown 5× per epoch" in result.card["description"]
    assert result.card["training"]["config"]["source_oversample"] == 5
    # no manifest anywhere near the data: a clear error before any training
    bare = tmp_path / "bare"
    shutil.copytree(data_dir / "brain-mri", bare)
    with pytest.raises(ValueError, match="needs the data set's source manifest"):
        train(TrainConfig(data=str(bare), source_oversample=2, run_dir=str(tmp_path / "r2"),
                          **tiny))
    # a manifest of another data set lists none of these files
    other = _manifest(tmp_path / "other.csv", [("glioma/zzz.jpg", 512, 512, False)])
    with pytest.raises(ValueError, match="lists only 0 of the"):
        train(TrainConfig(data=str(bare), source_oversample=2, source_manifest=str(other),
                          run_dir=str(tmp_path / "r3"), **tiny))
