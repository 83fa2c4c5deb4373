"""Named datasets as cached uint8 tensors with their class names and statistics.

    ds = load_dataset("fashion-mnist")          # decoded once, then memory-mapped
    train, val = ds.train.split(1 / 6, seed=0)  # stratified, reproducible

Names: mnist, fashion-mnist, cifar10, imagefolder:PATH and the RGB versions
mnist-rgb and fashion-mnist-rgb (the grey image in three channels, for models
that take three).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import torch
from vtk_vision.core.errors import DataError, UnknownNameError
from vtk_vision.core.install import require_torchvision
from vtk_vision.core.paths import data_root
from vtk_vision.core.text import printable
from vtk_vision.data import sources
from vtk_vision.data.cache import cached
from vtk_vision.data.entries import DATASETS, IMAGEFOLDER, DatasetEntry, dataset_names
from vtk_vision.data.splits import stratified_indices

__all__ = ["Dataset", "Split", "find_source", "load_dataset", "missing_error", "source_label"]


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
    entry: DatasetEntry   # the table's facts: flips, translation, how it was found

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.train.images.shape[1:])

    def to(self, device: torch.device | str) -> Dataset:
        return replace(self, train=self.train.to(device), test=self.test.to(device))


def find_source(entry: DatasetEntry, root: Path):
    """The first way `entry` is present under `root`, with its source files."""
    for src in entry.sources:
        if (files := src.present(root)) is not None:
            return src, files
    return None


def source_label(files: list[Path]) -> str:
    """Where a dataset was found, as `Dataset.source` and `vtk datasets` name it: the one file or folder,
    or the folder that holds its several files."""
    return str(files[0].parent if len(files) > 1 else files[0])


def missing_error(entry: DatasetEntry, root: Path) -> DataError:
    """The error for `entry` not found under `root`: what was looked for, and how to get it."""
    looked = "; ".join(s.label for s in entry.sources)
    return DataError(f"{entry.name} not found under {root} (looked for: {looked}); pass --download to fetch it "
                     f"with torchvision, or point --data-dir / VTK_DATA_DIR at a folder that holds it")


def _download(entry: DatasetEntry, root: Path) -> None:
    name = entry.name
    if entry.download_as is None:
        raise DataError(f"{name} cannot be downloaded; copy its files under {root}")
    require_torchvision("--download")
    cls = sources.torchvision_dataset(entry.download_as)
    try:
        for train in (True, False):
            cls(str(root), train=train, download=True)
    except Exception as e:  # noqa: BLE001 (network errors come in many types; all mean the same here)
        raise DataError(f"downloading {name} into {root} failed ({type(e).__name__}: {e}); "
                        f"copy the files there by hand or set --data-dir / VTK_DATA_DIR") from None


def load_dataset(name: str, data_dir: str | Path | None = None, download: bool = False) -> Dataset:
    """Load `name` from the data root, decoding only what the tensor cache cannot serve."""
    entry = DATASETS.get(name)
    if entry is not None and entry.rgb_of is not None:
        grey = load_dataset(entry.rgb_of, data_dir, download)
        rgb = lambda s: Split(s.images.expand(-1, 3, -1, -1).contiguous(), s.labels)
        return replace(grey, name=name, train=rgb(grey.train), test=rgb(grey.test),
                       mean=grey.mean * 3, std=grey.std * 3, entry=entry)
    if name.startswith("imagefolder:"):
        root = Path(name.split(":", 1)[1]).expanduser().resolve()
        if not root.is_dir():
            raise DataError(f"image tree {root} does not exist; give imagefolder:PATH a folder of "
                            f"<class>/ folders (or train/ and test/ holding them)")
        entry = replace(IMAGEFOLDER, name=name)
        return _finish(entry, str(root), *cached(name, [root], lambda: _checked(name, str(root),
                                                                                sources.read_image_tree(root))))
    if entry is None:
        raise UnknownNameError("dataset", name, dataset_names())
    root = data_root(data_dir)
    found = find_source(entry, root)
    if found is None and download:
        _download(entry, root)
        found = find_source(entry, root)
    if found is None:
        raise missing_error(entry, root)
    src, files = found
    where = source_label(files)
    return _finish(entry, where, *cached(name, files, lambda: _checked(name, where, src.read(root))))


def _checked(name: str, source: str, decoded: tuple[dict[str, torch.Tensor], dict]
             ) -> tuple[dict[str, torch.Tensor], dict]:
    """Refuse decoded data that would train or score wrongly (labels outside the class list, empty splits),
    then add its statistics. Runs before caching, so bad data never reaches the cache."""
    t, info = decoded
    k = len(info["classes"])
    for split in ("train", "test"):
        y = t[f"{split}_y"]
        if len(y) == 0:
            raise DataError(f"{name} ({printable(source)}): the {split} split holds no images")
        low, high = int(y.min()), int(y.max())
        if low < 0 or high >= k:
            raise DataError(f"{name} ({printable(source)}): {split} labels run from {low} to {high}, but there "
                            f"are {k} classes; the labels file is damaged or from another dataset")
    return _with_stats(decoded)


def _with_stats(decoded: tuple[dict[str, torch.Tensor], dict]) -> tuple[dict[str, torch.Tensor], dict]:
    """Add per-channel mean and std of the training split: computed once, cached with the tensors."""
    t, info = decoded
    x = t["train_x"].double().div_(255)
    std = x.std((0, 2, 3)).tolist()
    flat = [c for c, v in enumerate(std) if v < 1e-6]  # far below one grey level (1/255): rounding noise only
    if flat:
        raise DataError(f"every training image has the same value in channel {flat[0]}: there is nothing to "
                        f"learn from (and normalising would divide by zero); check the images")
    return t, info | {"mean": x.mean((0, 2, 3)).tolist(), "std": std}


def _finish(entry: DatasetEntry, source: str, t: dict[str, torch.Tensor], info: dict) -> Dataset:
    """The Dataset, after checking that what was read is what the entry says the dataset is."""
    channels = t["train_x"].shape[1]
    if entry.channels and channels != entry.channels:
        raise DataError(f"{entry.name} at {printable(source)} has {channels}-channel images, but {entry.name} has "
                        f"{entry.channels}; the files are from another dataset")
    if entry.classes is not None and tuple(info["classes"]) != entry.classes:
        raise DataError(f"{entry.name} at {printable(source)} has classes {list(info['classes'])[:4]}..., not "
                        f"{entry.name}'s {list(entry.classes)[:4]}...; the files are from another dataset")
    return Dataset(entry.name, Split(t["train_x"], t["train_y"]), Split(t["test_x"], t["test_y"]),
                   tuple(info["classes"]), tuple(info["mean"]), tuple(info["std"]), source, entry)
