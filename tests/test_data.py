"""Datasets: real loaders on the real sets, edge cases on tiny fakes in tmp_path."""

from __future__ import annotations

import logging
import os

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from tests.data_fakes import fake_mnist, fake_tree, write_idx
from vtk_vision.cli import cli
from vtk_vision.data import load_dataset
from vtk_vision.core.errors import DataError, UnknownNameError

MNIST_TRAIN = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


# ------------------------------------------------------------- real data sets
def test_mnist_real(shared_data):
    ds = load_dataset("mnist", shared_data)
    assert ds.shape == (1, 28, 28) and ds.train.images.dtype == torch.uint8
    assert ds.train.class_counts(10) == MNIST_TRAIN and ds.test.class_counts(10) == MNIST_TEST
    assert ds.mean[0] == pytest.approx(0.1307, abs=1e-4) and ds.std[0] == pytest.approx(0.3081, abs=1e-4)


def test_fashion_mnist_real(shared_data):
    ds = load_dataset("fashion-mnist", shared_data)
    assert ds.train.class_counts(10) == [6000] * 10 and ds.test.class_counts(10) == [1000] * 10
    assert ds.classes[0] == "T-shirt/top" and ds.classes[9] == "Ankle boot"


def test_rgb_variant(shared_data):
    grey, rgb = load_dataset("mnist", shared_data), load_dataset("mnist-rgb", shared_data)
    assert rgb.shape == (3, 28, 28) and len(rgb.mean) == 3
    assert torch.equal(rgb.test.images[:5, 2], grey.test.images[:5, 0])


def test_cifar10_from_jpeg_tarball(shared_data, tmp_path, monkeypatch):
    ds = load_dataset("cifar10", shared_data)
    assert ds.shape == (3, 32, 32)
    assert ds.train.class_counts(10) == [5000] * 10 and ds.test.class_counts(10) == [1000] * 10
    assert ds.classes[0] == "airplane"
    assert not any(p.name == "train" for p in shared_data.iterdir()), "never unpack into shared/"


def test_validation_split_is_stratified_and_reproducible(shared_data):
    train = load_dataset("mnist", shared_data).train
    rest, val = train.split(1 / 6, seed=0)
    assert len(rest) + len(val) == 60_000 and abs(len(val) - 10_000) <= 10
    for c, n in enumerate(val.class_counts(10)):
        assert n == round(MNIST_TRAIN[c] / 6)
    assert torch.equal(train.split(1 / 6, seed=0)[1].labels, val.labels)
    assert not torch.equal(train.split(1 / 6, seed=1)[1].images[:50], val.images[:50])


def test_subset_keeps_half_of_each_class(shared_data):
    half = load_dataset("fashion-mnist", shared_data).train.subset(0.5, seed=0)
    assert half.class_counts(10) == [3000] * 10


# ------------------------------------------------------------- cache
def test_second_load_comes_from_cache(tmp_path, monkeypatch):
    root = fake_mnist(tmp_path / "data")
    monkeypatch.setenv("VTK_CACHE_DIR", str(tmp_path / "cache"))
    first = load_dataset("mnist", root)
    calls = []
    monkeypatch.setattr("vtk_vision.data.sources.read_idx_set", lambda *a: calls.append(a))
    second = load_dataset("mnist", root)
    assert calls == [] and torch.equal(first.train.images, second.train.images)


def test_stale_cache_is_never_served(tmp_path, monkeypatch, caplog):
    root = fake_mnist(tmp_path / "data")
    monkeypatch.setenv("VTK_CACHE_DIR", str(tmp_path / "cache"))
    load_dataset("mnist", root)
    new = np.full((20, 28, 28), 7)
    path = write_idx(root / "MNIST" / "raw" / "t10k-images-idx3-ubyte", new)
    os.utime(path, ns=(1, 1))  # a different mtime even on coarse clocks
    with caplog.at_level(logging.WARNING, logger="vtk"):
        ds = load_dataset("mnist", root)
    assert (ds.test.images == 7).all()
    assert "stale" in caplog.text and "t10k-images-idx3-ubyte (modified)" in caplog.text


def test_damaged_cache_file_is_rebuilt(tmp_path, monkeypatch):
    root = fake_mnist(tmp_path / "data")
    monkeypatch.setenv("VTK_CACHE_DIR", str(tmp_path / "cache"))
    good = load_dataset("mnist", root)
    (cache_file,) = (tmp_path / "cache" / "tensors").glob("*.safetensors")
    cache_file.write_bytes(cache_file.read_bytes()[:100])
    assert torch.equal(load_dataset("mnist", root).test.images, good.test.images)


# ------------------------------------------------------------- bad IDX files
def _break(root, name, data: bytes):
    (root / "MNIST" / "raw" / name).write_bytes(data)


@pytest.mark.parametrize("damage,needle", [
    (lambda p: p.write_bytes(b"\x00\x00\x09\x03" + p.read_bytes()[4:]), "magic number 00000903"),
    (lambda p: p.write_bytes(p.read_bytes()[:-100]), "truncated or padded"),
    (lambda p: p.write_bytes(b"\x00\x00"), "magic number"),
])
def test_bad_idx_file_is_named(tmp_path, damage, needle):
    root = fake_mnist(tmp_path)
    damage(root / "MNIST" / "raw" / "train-images-idx3-ubyte")
    with pytest.raises(DataError, match=needle) as e:
        load_dataset("mnist", root)
    assert "train-images-idx3-ubyte" in str(e.value)


def test_label_count_mismatch(tmp_path):
    root = fake_mnist(tmp_path)
    write_idx(root / "MNIST" / "raw" / "t10k-labels-idx1-ubyte", np.zeros(19))
    with pytest.raises(DataError, match="holds 19 labels but .* holds 20 images"):
        load_dataset("mnist", root)


def test_missing_dataset_says_where_and_how(tmp_path):
    with pytest.raises(DataError, match=f"mnist not found under {tmp_path}.*--download"):
        load_dataset("mnist", tmp_path)


def test_unknown_dataset():
    with pytest.raises(UnknownNameError, match="valid datasets: mnist, fashion-mnist"):
        load_dataset("imagenet")


# ------------------------------------------------------------- image trees
def test_image_tree_with_train_and_test(tmp_path):
    fake_tree(tmp_path / "t" / "train", per_class=5)
    fake_tree(tmp_path / "t" / "test", per_class=2)
    ds = load_dataset(f"imagefolder:{tmp_path / 't'}")
    assert ds.classes == ("cat", "dog") and ds.shape == (3, 10, 12)
    assert len(ds.train) == 10 and len(ds.test) == 4


def test_single_grey_tree_is_split_by_ratio(tmp_path):
    fake_tree(tmp_path / "t", per_class=10, mode="L")
    ds = load_dataset(f"imagefolder:{tmp_path / 't'}")
    assert ds.shape == (1, 10, 12) and ds.test.class_counts(2) == [2, 2] and len(ds.train) == 16


def test_mixed_sizes_are_resized_to_the_first(tmp_path):
    fake_tree(tmp_path / "t", classes=("a",), per_class=3, size=(8, 8))
    fake_tree(tmp_path / "t", classes=("b",), per_class=3, size=(16, 8))
    assert load_dataset(f"imagefolder:{tmp_path / 't'}").shape == (3, 8, 8)


def test_non_image_file_is_named(tmp_path):
    root = fake_tree(tmp_path / "t")
    (root / "dog" / "notes.jpg").write_text("not an image")
    with pytest.raises(DataError, match="notes.jpg is not a readable image"):
        load_dataset(f"imagefolder:{root}")


def test_empty_class_folder(tmp_path):
    root = fake_tree(tmp_path / "t")
    (root / "bird").mkdir()
    with pytest.raises(DataError, match="bird"):
        load_dataset(f"imagefolder:{root}")


def test_missing_tree(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_dataset(f"imagefolder:{tmp_path / 'nope'}")


# ------------------------------------------------------------- commands
def test_show_writes_png(tmp_path):
    root = fake_mnist(tmp_path / "data")
    out = tmp_path / "grid.png"
    res = CliRunner().invoke(cli, ["show", "mnist", "--data-dir", str(root), "--n", "9", "--out", str(out)], obj={})
    assert res.exit_code == 0, res.output
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_show_bad_data_one_line_and_no_file(tmp_path):
    root = fake_mnist(tmp_path / "data")
    (root / "MNIST" / "raw" / "t10k-images-idx3-ubyte").write_bytes(b"junk")
    out = tmp_path / "grid.png"
    res = CliRunner().invoke(cli, ["show", "mnist", "--data-dir", str(root), "--out", str(out)], obj={})
    assert res.exit_code == 1 and len(res.output.strip().splitlines()) == 1
    assert "t10k-images-idx3-ubyte" in res.output and not out.exists()
    assert list(tmp_path.glob("*.png")) == [] and list(tmp_path.glob(".grid*")) == []


def test_datasets_command(tmp_path):
    root = fake_mnist(tmp_path / "data")
    res = CliRunner().invoke(cli, ["datasets", "--data-dir", str(root), "--json"], obj={})
    rows = {r["name"]: r for r in __import__("json").loads(res.output)}
    assert rows["mnist"]["train"] == 60 and rows["mnist-rgb"]["shape"] == [3, 28, 28]
    assert rows["cifar10"]["source"] is None and "not found" in rows["cifar10"]["error"]


# ------------------------------------------------------------- the dataset table
def test_augmentation_reads_the_entry_not_the_name(tmp_path):
    from vtk_vision.data import DATASETS
    from vtk_vision.training.augment import Augment

    assert DATASETS["cifar10"].flips and not DATASETS["mnist"].flips and not DATASETS["fashion-mnist-rgb"].flips
    # a grey character set in a user's tree: never mirrored unless the user says so
    glyphs = load_dataset(f"imagefolder:{fake_tree(tmp_path / 'glyphs', mode='L')}")
    assert Augment.for_dataset(glyphs).flip is False and Augment.for_dataset(glyphs, flip=True).flip is True
    assert Augment.for_dataset(glyphs, jitter=0.3).jitter == 0.0  # colour jitter is for 3-channel data


def test_a_new_dataset_is_one_entry(tmp_path, monkeypatch):
    from vtk_vision.data import DATASETS, DatasetEntry
    from vtk_vision.data.entries import _idx

    monkeypatch.setitem(DATASETS, "kmnist", DatasetEntry("kmnist", "Kuzushiji-MNIST", 1, flips=False,
                                                         sources=tuple(_idx("KMNIST")), download_as="KMNIST"))
    root = fake_mnist(tmp_path / "data", folder="KMNIST")
    ds = load_dataset("kmnist", root)
    assert ds.shape == (1, 28, 28) and len(ds.classes) == 10 and ds.entry.name == "kmnist"
    res = CliRunner().invoke(cli, ["datasets", "--data-dir", str(root), "--json"], obj={})
    assert {r["name"]: r for r in __import__("json").loads(res.output)}["kmnist"]["train"] == 60
