"""Readers that turn each source on disk into uint8 tensors, with no torchvision and no pickle.load.

Each reader returns `(tensors, info)`: tensors `train_x`, `train_y`, `test_x`,
`test_y` with images as (N, C, H, W) uint8, and info holding the class names.
They are only called when the tensor cache cannot serve the split.
"""

from __future__ import annotations

import json
import logging
import os
import tarfile
import tempfile
from pathlib import Path

import numpy as np
import torch

from vtk_vision.core.atomic import atomic_dir
from vtk_vision.core.digest import file_sha256
from vtk_vision.data.cache import private_cache_dir
from vtk_vision.data.images import GREY_MODES, decode, list_tree, probe
from vtk_vision.core.text import printable
from vtk_vision.data.idx import check_pair, read_idx
from vtk_vision.data.splits import stratified_indices
from vtk_vision.core.errors import DataError

__all__ = ["torchvision_dataset", "idx_files", "read_idx_set", "read_cifar_pickles", "read_image_tree", "unpack_tarball"]

log = logging.getLogger("vtk")
Decoded = tuple[dict[str, torch.Tensor], dict]


def torchvision_dataset(name: str) -> type:
    """torchvision's dataset class `name`, imported on first use: importing torchvision costs ~2 s
    (it pulls in torch._dynamo), and a cached dataset never needs it."""
    from torchvision import datasets

    return getattr(datasets, name)


def idx_files(root: Path, name: str) -> list[Path]:
    """The four raw IDX files torchvision's dataset class `name` reads under `root`."""
    raw = root / name / "raw"
    return [raw / f"{split}-{kind}-idx{3 if kind == 'images' else 1}-ubyte"
            for split in ("train", "t10k") for kind in ("images", "labels")]


def read_idx_set(root: Path, name: str, classes: tuple[str, ...] | None = None) -> Decoded:
    """MNIST-style IDX files, each checked, read straight from the raw files vtk fingerprints.

    Not through torchvision's class: it prefers `processed/*.pt` tensors when they exist, which would
    serve other data than the files vtk checked and keyed its cache by. Class names come from the
    dataset entry, else from torchvision's class (a list of names, nothing read from disk).
    """
    files = idx_files(root, name)
    check_pair(files[0], files[1])
    check_pair(files[2], files[3])
    x_train, y_train, x_test, y_test = (torch.from_numpy(read_idx(f, 3 if "images" in f.name else 1).copy())
                                        for f in files)
    return ({"train_x": x_train.unsqueeze(1), "train_y": y_train.long(),
             "test_x": x_test.unsqueeze(1), "test_y": y_test.long()},
            {"classes": list(classes or torchvision_dataset(name).classes)})


def read_cifar_pickles(root: Path) -> Decoded:
    """CIFAR-10's python batches (`cifar-10-batches-py`), through an unpickler that resolves numpy arrays only."""
    from vtk_vision.data.cifar_pickles import TEST_BATCH, TRAIN_BATCHES, read_batches, read_class_names

    folder = root / "cifar-10-batches-py"
    train_x, train_y = read_batches(folder, TRAIN_BATCHES)
    test_x, test_y = read_batches(folder, (TEST_BATCH,))
    return ({"train_x": torch.from_numpy(train_x), "train_y": torch.from_numpy(train_y),
             "test_x": torch.from_numpy(test_x), "test_y": torch.from_numpy(test_y)},
            {"classes": read_class_names(folder)})


def unpack_tarball(tarball: Path, name: str) -> Path:
    """Unpack `tarball` once into the cache (never beside the source) and return the folder.

    The folder is used only when its completion marker, written last, names this tarball's SHA-256 and
    the number of files it unpacked, and that many files are there: a replaced tarball (even one of the
    same size), an interrupted unpack or a folder someone emptied is unpacked again.
    """
    digest = file_sha256(tarball)
    root = private_cache_dir("unpacked")
    if root is None:  # no cache this user owns: unpack into a private temporary folder for this process
        root = Path(tempfile.mkdtemp(prefix="vtk-unpacked-"))
    dest = root / name
    marker = dest / ".vtk-unpacked"
    try:
        stamp = json.loads(marker.read_text())
        if stamp.get("sha256") == digest and _count_files(dest) == stamp.get("files"):
            return dest
    except (OSError, ValueError, AttributeError):
        pass
    log.info("unpacking %s into %s (once)", printable(tarball), printable(dest))
    try:
        with atomic_dir(dest) as tmp, tarfile.open(tarball) as tar:
            tar.extractall(tmp, filter="data")
            (tmp / ".vtk-unpacked").write_text(json.dumps({"sha256": digest, "files": _count_files(tmp)}))
    except (tarfile.TarError, OSError, EOFError) as e:
        raise DataError(f"cannot unpack {printable(tarball)} into {printable(dest)}: {printable(e)}; replace the "
                        f"tarball with a good copy, or check the cache folder") from None
    return dest


def _count_files(folder: Path) -> int:
    return sum(len([f for f in files if not f.startswith(".")]) for _, _, files in os.walk(folder))


def read_image_tree(root: Path, test_fraction: float = 0.2, seed: int = 0) -> Decoded:
    """An ImageFolder tree: `train/<class>/*` and `test/<class>/*`, or one tree split by ratio."""
    has_train, has_test = (root / "train").is_dir(), (root / "test").is_dir()
    if has_train != has_test:
        there, missing = ("train", "test") if has_train else ("test", "train")
        raise DataError(f"{printable(root)} has {there}/ but no {missing}/; give both train/<class>/ and "
                        f"test/<class>/, or one <class>/ tree that vtk splits 80/20")
    if has_train:
        train_x, train_y, classes = _decode_folder(root / "train")
        test_x, test_y, test_classes = _decode_folder(root / "test", like=train_x)
        if test_classes != classes:
            raise DataError(f"{printable(root / 'test')} has classes {test_classes} but {printable(root / 'train')} "
                            f"has {classes}; both need the same class folders")
    else:
        x, y, classes = _decode_folder(root)
        test_idx = stratified_indices(y, test_fraction, seed)
        keep = torch.ones(len(y), dtype=torch.bool)
        keep[test_idx] = False
        train_x, train_y, test_x, test_y = x[keep], y[keep], x[test_idx], y[test_idx]
    return ({"train_x": train_x, "train_y": train_y, "test_x": test_x, "test_y": test_y},
            {"classes": classes})


def _decode_folder(folder: Path, like: torch.Tensor | None = None):
    """Every image under `folder` as one (N, C, H, W) uint8 tensor, resized as it is decoded.

    The size is the first image's (or `like`'s); the tree is grey (C=1) only when every image is grey.
    """
    classes, samples = list_tree(folder)
    headers = [probe(p) for p, _ in samples]
    # test/ takes train/'s channels, whatever its own files are: both splits feed the same model
    grey = like.shape[1] == 1 if like is not None else all(mode in GREY_MODES for mode, _ in headers)
    w, h = (like.shape[3], like.shape[2]) if like is not None else headers[0][1]
    resized = sum(size != (w, h) for _, size in headers)
    if resized:
        log.warning("%s: %d images resized to %dx%d to match the first", printable(folder), resized, w, h)
    arr = np.stack([decode(p, (w, h), grey, probed=True) for p, _ in samples])
    x = torch.from_numpy(arr).unsqueeze(1) if grey else torch.from_numpy(arr).permute(0, 3, 1, 2).contiguous()
    return x, torch.tensor([c for _, c in samples], dtype=torch.long), classes
