"""Readers that turn each source on disk into uint8 tensors, using torchvision's datasets.

Each reader returns `(tensors, info)`: tensors `train_x`, `train_y`, `test_x`,
`test_y` with images as (N, C, H, W) uint8, and info holding the class names.
They are only called when the tensor cache cannot serve the split.
"""

from __future__ import annotations

import logging
import tarfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from vtk_vision.core.atomic import atomic_dir
from vtk_vision.core.paths import cache_root
from vtk_vision.data.idx import check_pair
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


def read_idx_set(root: Path, name: str) -> Decoded:
    """MNIST-style IDX files through torchvision, each file checked first."""
    files = idx_files(root, name)
    cls = torchvision_dataset(name)
    check_pair(files[0], files[1])
    check_pair(files[2], files[3])
    train, test = cls(str(root), train=True), cls(str(root), train=False)
    return ({"train_x": train.data.unsqueeze(1), "train_y": train.targets.long(),
             "test_x": test.data.unsqueeze(1), "test_y": test.targets.long()},
            {"classes": list(cls.classes)})


def read_cifar_pickles(root: Path) -> Decoded:
    """torchvision's pickled CIFAR-10 batches (`cifar-10-batches-py`)."""
    try:
        cifar = torchvision_dataset("CIFAR10")
        train, test = cifar(str(root), train=True), cifar(str(root), train=False)
    except RuntimeError as e:
        raise DataError(f"CIFAR-10 batches under {root / 'cifar-10-batches-py'} are damaged ({e}); "
                        f"delete the folder and use --download, or point --data-dir elsewhere") from None

    def nchw(a):
        return torch.from_numpy(np.ascontiguousarray(a.transpose(0, 3, 1, 2)))

    return ({"train_x": nchw(train.data), "train_y": torch.tensor(train.targets),
             "test_x": nchw(test.data), "test_y": torch.tensor(test.targets)},
            {"classes": list(train.classes)})


def unpack_tarball(tarball: Path, name: str) -> Path:
    """Unpack `tarball` once into the cache (never beside the source) and return the folder."""
    dest = cache_root() / "unpacked" / name
    stamp = dest / ".unpacked-from"
    if stamp.exists() and stamp.read_text() == f"{tarball}:{tarball.stat().st_size}":
        return dest
    log.info("unpacking %s into %s (once)", tarball, dest)
    try:
        with atomic_dir(dest) as tmp, tarfile.open(tarball) as tar:
            tar.extractall(tmp, filter="data")
            (tmp / ".unpacked-from").write_text(f"{tarball}:{tarball.stat().st_size}")
    except (tarfile.TarError, OSError, EOFError) as e:
        raise DataError(f"cannot unpack {tarball}: {e}; replace it with a good copy") from None
    return dest


def read_image_tree(root: Path, test_fraction: float = 0.2, seed: int = 0) -> Decoded:
    """An ImageFolder tree: `train/<class>/*` and `test/<class>/*`, or one tree split by ratio."""
    if (root / "train").is_dir() and (root / "test").is_dir():
        train_x, train_y, classes = _decode_folder(root / "train")
        test_x, test_y, test_classes = _decode_folder(root / "test", size=tuple(train_x.shape[1:]))
        if test_classes != classes:
            raise DataError(f"{root / 'test'} has classes {test_classes} but {root / 'train'} has {classes}; "
                            f"both need the same class folders")
    else:
        x, y, classes = _decode_folder(root)
        test_idx = stratified_indices(y, test_fraction, seed)
        keep = torch.ones(len(y), dtype=torch.bool)
        keep[test_idx] = False
        train_x, train_y, test_x, test_y = x[keep], y[keep], x[test_idx], y[test_idx]
    return ({"train_x": train_x, "train_y": train_y, "test_x": test_x, "test_y": test_y},
            {"classes": classes})


def _open_image(path: str) -> Image.Image:
    try:
        img = Image.open(path)
        img.load()
        return img
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise DataError(f"{path} is not a readable image ({type(e).__name__}); remove it from the tree "
                        f"or replace it") from None


def _decode_folder(folder: Path, size: tuple[int, int, int] | None = None):
    """Decode every image under `folder` into one (N, C, H, W) uint8 tensor.

    Images that differ from the first one's size (or `size`) are resized to it;
    the tree is grey (C=1) only when every image is grey.
    """
    try:
        tree = torchvision_dataset("ImageFolder")(str(folder), loader=_open_image,
                               is_valid_file=lambda p: not Path(p).name.startswith("."))
    except FileNotFoundError as e:
        raise DataError(f"bad image tree at {folder}: {e} Every class needs a non-empty folder "
                        f"of images") from None
    images = [tree.loader(p) for p, _ in tree.samples]
    grey = all(im.mode in ("L", "1", "I;16") for im in images) and (size is None or size[0] == 1)
    mode = "L" if grey else "RGB"
    hw = (size[1], size[2]) if size else (images[0].height, images[0].width)
    resized = sum(im.size != (hw[1], hw[0]) for im in images)
    if resized:
        log.warning("%s: %d images resized to %dx%d to match the first", folder, resized, hw[1], hw[0])
    arr = np.stack([np.asarray(im.convert(mode).resize((hw[1], hw[0]), Image.BILINEAR)
                               if im.size != (hw[1], hw[0]) else im.convert(mode)) for im in images])
    x = torch.from_numpy(arr).unsqueeze(1) if grey else torch.from_numpy(arr).permute(0, 3, 1, 2).contiguous()
    return x, torch.tensor(tree.targets, dtype=torch.long), list(tree.classes)
