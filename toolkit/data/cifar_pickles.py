"""CIFAR-10's python batches (`cifar-10-batches-py`), read without running what they hold.

The batches are pickles, and `pickle.load` (which torchvision's CIFAR10 class calls) runs any
callable a file names: a data folder somebody hands over could run code. The real batches need
only numpy's array reconstruction, so the unpickler here resolves exactly those names and refuses
every other one. It also needs no torchvision, which the CPU-only install leaves out.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from vtk_vision.core.errors import DataError
from vtk_vision.core.text import printable

__all__ = ["read_batches", "read_class_names", "TRAIN_BATCHES", "TEST_BATCH"]

TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"
_SIDE, _CLASSES = 32, 10


def _reconstruct():
    from numpy._core.multiarray import _reconstruct

    return _reconstruct


def _latin1():
    def encode(text: str, encoding: str = "utf-8") -> bytes:
        if encoding not in ("latin1", "latin-1"):
            raise pickle.UnpicklingError(f"it encodes text as {encoding}, which a CIFAR-10 batch never does")
        return text.encode("latin1")

    return encode


# What numpy arrays pickled by numpy 1 (as the published batches are) or numpy 2 refer to; Python 3's
# protocol 2 writes bytes as `_codecs.encode(text, "latin1")`.
_ALLOWED = {("_codecs", "encode"): _latin1,
            ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
            ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
            ("numpy", "ndarray"): lambda: np.ndarray,
            ("numpy", "dtype"): lambda: np.dtype}


class _ArraysOnly(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) in _ALLOWED:
            return _ALLOWED[(module, name)]()
        raise pickle.UnpicklingError(f"it names {module}.{name}, which a CIFAR-10 batch never does")


def _load(path: Path):
    with open(path, "rb") as f:
        return _ArraysOnly(f, encoding="latin1").load()


def _batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        d = _load(path)
        data, labels = d["data"], np.asarray(d["labels"], dtype=np.int64)
        ok = (isinstance(data, np.ndarray) and data.dtype == np.uint8 and data.ndim == 2
              and data.shape[1] == 3 * _SIDE * _SIDE and labels.shape == (len(data),)
              and (len(labels) == 0 or 0 <= labels.min() <= labels.max() < _CLASSES))
    except (OSError, EOFError, pickle.UnpicklingError, KeyError, TypeError, ValueError, AttributeError,
            IndexError) as e:
        raise DataError(f"{printable(path)} is not a CIFAR-10 batch ({printable(e)}); delete the folder and use "
                        f"--download, or point --data-dir elsewhere") from None
    if not ok:
        raise DataError(f"{printable(path)} is not a CIFAR-10 batch (expected uint8 rows of 3x32x32 pixels and one "
                        f"label 0-9 per row); delete the folder and use --download, or point --data-dir elsewhere")
    return data.reshape(-1, 3, _SIDE, _SIDE), labels


def read_batches(folder: Path, names: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """The images (N, 3, 32, 32) uint8 and labels (N,) of the named batches, concatenated."""
    parts = [_batch(folder / name) for name in names]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def read_class_names(folder: Path) -> list[str]:
    """The class names `batches.meta` lists, in label order."""
    path = folder / "batches.meta"
    try:
        names = [str(n) for n in _load(path)["label_names"]]
    except (OSError, EOFError, pickle.UnpicklingError, KeyError, TypeError, ValueError) as e:
        raise DataError(f"{printable(path)} is not CIFAR-10's batches.meta ({printable(e)}); delete the folder and "
                        f"use --download, or point --data-dir elsewhere") from None
    return names
