"""Named datasets as cached uint8 tensors with their class names and statistics.

    ds = load_dataset("fashion-mnist")          # decoded once, then memory-mapped
    train, val = ds.train.split(1 / 6, seed=0)  # stratified, reproducible

Names: mnist, fashion-mnist, cifar10, imagefolder:PATH and the RGB versions
mnist-rgb and fashion-mnist-rgb (the grey image in three channels, for models
that take three).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from vtk_vision.core.paths import data_root
from vtk_vision.data import sources
from vtk_vision.data.cache import cached
from vtk_vision.data.splits import stratified_indices
from vtk_vision.core.errors import DataError, UnknownNameError

__all__ = ["Split", "Dataset", "load_dataset", "DATASET_NAMES", "find_source"]


@dataclass(frozen=True)
class Split:
    """Images (N, C, H, W) uint8 and labels (N,) int64, on one device."""

    images: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return len(self.labels)

    def take(self, idx: torch.Tensor) -> Split:
        return Split(self.images[idx], self.labels[idx])

    def split(self, fraction: float, seed: int) -> tuple[Split, Split]:
        """(rest, held_out): a stratified `fraction` held out, reproducible from `seed`."""
        held = stratified_indices(self.labels.cpu(), fraction, seed)
        keep = torch.ones(len(self), dtype=torch.bool)
        keep[held] = False
        return self.take(keep.nonzero().flatten().to(self.labels.device)), self.take(held.to(self.labels.device))

    def subset(self, fraction: float, seed: int) -> Split:
        """Class-balanced subsample keeping `fraction` of each class."""
        return self if fraction >= 1.0 else self.take(
            stratified_indices(self.labels.cpu(), fraction, seed).to(self.labels.device))

    def class_counts(self, num_classes: int) -> list[int]:
        return torch.bincount(self.labels.cpu(), minlength=num_classes).tolist()

    def to(self, device: torch.device | str) -> Split:
        return Split(self.images.to(device), self.labels.to(device))


@dataclass(frozen=True)
class Dataset:
    """A named dataset: both splits, class names, per-channel statistics of its training split."""

    name: str
    train: Split
    test: Split
    classes: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    source: str

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.train.images.shape[1:])

    def to(self, device: torch.device | str) -> Dataset:
        return replace(self, train=self.train.to(device), test=self.test.to(device))


@dataclass(frozen=True)
class _Source:
    """One way a dataset can be found under a data root."""

    label: str                                   # what the error says was looked for
    present: Callable[[Path], list[Path] | None]  # source files when found, else None
    read: Callable[[Path], tuple[dict, dict]]


def _idx(tv_name: str) -> list[_Source]:
    def present(root: Path) -> list[Path] | None:
        files = sources.idx_files(root, tv_name)
        return files if all(p.exists() for p in files) else None

    return [_Source(f"{tv_name}/raw/*-ubyte (torchvision's {tv_name})", present,
                    lambda root: sources.read_idx_set(root, tv_name))]


def _cifar() -> list[_Source]:
    def tarball(root: Path) -> Path:
        return root / "cifar10-jpeg.tar.gz"

    return [
        _Source("cifar-10-batches-py/ (torchvision's CIFAR10 pickles)",
                lambda root: [root / "cifar-10-batches-py"] if (root / "cifar-10-batches-py").is_dir() else None,
                sources.read_cifar_pickles),
        _Source("cifar10-jpeg.tar.gz (JPEG ImageFolder tarball)",
                lambda root: [tarball(root)] if tarball(root).is_file() else None,
                lambda root: sources.read_image_tree(sources.unpack_tarball(tarball(root), "cifar10-jpeg"))),
        _Source("cifar10/train and cifar10/test (ImageFolder tree)",
                lambda root: [root / "cifar10"] if (root / "cifar10" / "train").is_dir() else None,
                lambda root: sources.read_image_tree(root / "cifar10")),
    ]


# name -> (ways to find it, the torchvision dataset class that can download it)
_SOURCES: dict[str, tuple[list[_Source], str]] = {
    "mnist": (_idx("MNIST"), "MNIST"),
    "fashion-mnist": (_idx("FashionMNIST"), "FashionMNIST"),
    "cifar10": (_cifar(), "CIFAR10"),
}
RGB_OF = {"mnist-rgb": "mnist", "fashion-mnist-rgb": "fashion-mnist"}
DATASET_NAMES = [*_SOURCES, *RGB_OF, "imagefolder:PATH"]


def find_source(name: str, root: Path) -> tuple[_Source, list[Path]] | None:
    """The first way `name` is present under `root`, with its source files."""
    for src in _SOURCES[name][0]:
        if (files := src.present(root)) is not None:
            return src, files
    return None


def _download(name: str, root: Path) -> None:
    cls = sources.torchvision_dataset(_SOURCES[name][1])
    try:
        for train in (True, False):
            cls(str(root), train=train, download=True)
    except Exception as e:  # network errors come in many types; all mean the same here
        raise DataError(f"downloading {name} into {root} failed ({type(e).__name__}: {e}); "
                        f"copy the files there by hand or set --data-dir / VTK_DATA_DIR") from None


def _missing(name: str, root: Path) -> DataError:
    looked = "; ".join(s.label for s in _SOURCES[name][0])
    return DataError(f"{name} not found under {root} (looked for: {looked}); pass --download to fetch it "
                     f"with torchvision, or point --data-dir / VTK_DATA_DIR at a folder that holds it")


def load_dataset(name: str, data_dir: str | Path | None = None, download: bool = False) -> Dataset:
    """Load `name` from the data root, decoding only what the tensor cache cannot serve."""
    if name in RGB_OF:
        grey = load_dataset(RGB_OF[name], data_dir, download)
        rgb = lambda s: Split(s.images.expand(-1, 3, -1, -1).contiguous(), s.labels)  # noqa: E731
        return replace(grey, name=name, train=rgb(grey.train), test=rgb(grey.test),
                       mean=grey.mean * 3, std=grey.std * 3)
    if name.startswith("imagefolder:"):
        root = Path(name.split(":", 1)[1]).expanduser().resolve()
        if not root.is_dir():
            raise DataError(f"image tree {root} does not exist; give imagefolder:PATH a folder of "
                            f"<class>/ folders (or train/ and test/ holding them)")
        return _finish(name, str(root), *cached(name, [root], lambda: _with_stats(sources.read_image_tree(root))))
    if name not in _SOURCES:
        raise UnknownNameError("dataset", name, DATASET_NAMES)
    root = data_root(data_dir)
    found = find_source(name, root)
    if found is None and download:
        _download(name, root)
        found = find_source(name, root)
    if found is None:
        raise _missing(name, root)
    src, files = found
    return _finish(name, str(files[0].parent if len(files) > 1 else files[0]),
                   *cached(name, files, lambda: _with_stats(src.read(root))))


def _with_stats(decoded: tuple[dict[str, torch.Tensor], dict]) -> tuple[dict[str, torch.Tensor], dict]:
    """Add per-channel mean and std of the training split: computed once, cached with the tensors."""
    t, info = decoded
    x = t["train_x"].double().div_(255)
    return t, info | {"mean": x.mean((0, 2, 3)).tolist(), "std": x.std((0, 2, 3)).tolist()}


def _finish(name: str, source: str, t: dict[str, torch.Tensor], info: dict) -> Dataset:
    return Dataset(name, Split(t["train_x"], t["train_y"]), Split(t["test_x"], t["test_y"]),
                   tuple(info["classes"]), tuple(info["mean"]), tuple(info["std"]), source)
