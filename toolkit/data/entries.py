"""The dataset table: every dataset vtk knows by name, with the facts training needs about it.

Adding a dataset is one `DatasetEntry` here: where its files can be found
(first match wins), how many channels it has, whether a mirrored image keeps
its class (flips are right for photos, wrong for digits, letters and
clothes), how far translation may shift it, and which torchvision class can
download it. `vtk datasets` lists this table; the trainer's augmentation
reads its facts, never the dataset's name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from vtk_vision.data import sources
from vtk_vision.data.idx import idx_shape

__all__ = ["DATASETS", "IMAGEFOLDER", "DatasetEntry", "dataset_names"]


@dataclass(frozen=True)
class _Source:
    """One way a dataset can be found under a data root."""

    label: str                                   # what the error says was looked for
    present: Callable[[Path], list[Path] | None]  # source files when found, else None
    read: Callable[[Path], tuple[dict, dict]]
    # split sizes and image shape from file headers alone, where the format has them (IDX does; a
    # tarball or pickles must be decoded to know): lets `vtk datasets` list without decoding
    peek: Callable[[Path], dict] | None = None


def _idx(tv_name: str, classes: tuple[str, ...] | None = None) -> list[_Source]:
    def present(root: Path) -> list[Path] | None:
        files = sources.idx_files(root, tv_name)
        return files if all(p.exists() for p in files) else None

    def peek(root: Path) -> dict:
        train, _, test, _ = (idx_shape(f, 3 if "images" in f.name else 1) for f in sources.idx_files(root, tv_name))
        return {"train": train[0], "test": test[0], "shape": [1, *train[1:]]}

    return [_Source(f"{tv_name}/raw/*-ubyte (torchvision's {tv_name})", present,
                    lambda root: sources.read_idx_set(root, tv_name, classes), peek)]


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


@dataclass(frozen=True)
class DatasetEntry:
    """One named dataset and its facts."""

    name: str
    description: str
    channels: int                        # 0: whatever the files hold (image trees)
    flips: bool                          # does a left-right mirrored image keep its class?
    max_shift: int = 2                   # random translation, in pixels, when --augment is on
    sources: tuple[_Source, ...] = ()    # ways to find it under a data root; the first match wins
    download_as: str | None = None       # torchvision dataset class that can fetch it
    rgb_of: str | None = None            # this entry is the grey entry `rgb_of` in three channels
    classes: tuple[str, ...] | None = None  # the class names, in label order; None: read from the files


MNIST_CLASSES = ("0 - zero", "1 - one", "2 - two", "3 - three", "4 - four", "5 - five", "6 - six", "7 - seven",
                 "8 - eight", "9 - nine")
FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                   "Ankle boot")

IMAGEFOLDER = DatasetEntry(
    "imagefolder:PATH", "your own tree: PATH/<class>/* split 80/20, or PATH/train/<class>/* and PATH/test/...",
    channels=0, flips=False)  # vtk cannot know that a mirrored image keeps its class: `vtk train --flip` says so

DATASETS: dict[str, DatasetEntry] = {e.name: e for e in (
    DatasetEntry("mnist", "handwritten digits 0-9 (LeCun et al.)", 1, flips=False,
                 sources=tuple(_idx("MNIST", MNIST_CLASSES)), download_as="MNIST", classes=MNIST_CLASSES),
    DatasetEntry("fashion-mnist", "Zalando's clothes and shoes, 10 classes", 1, flips=False,
                 sources=tuple(_idx("FashionMNIST", FASHION_CLASSES)), download_as="FashionMNIST",
                 classes=FASHION_CLASSES),
    DatasetEntry("cifar10", "32x32 colour photos, 10 classes (Krizhevsky)", 3, flips=True,
                 sources=tuple(_cifar()), download_as="CIFAR10",
                 classes=("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")),
    DatasetEntry("mnist-rgb", "mnist as three identical channels", 3, flips=False, rgb_of="mnist"),
    DatasetEntry("fashion-mnist-rgb", "fashion-mnist as three identical channels", 3, flips=False,
                 rgb_of="fashion-mnist"),
)}


def dataset_names() -> list[str]:
    """Every name `load_dataset` takes, as users write them."""
    return [*DATASETS, IMAGEFOLDER.name]
