"""IDX header checks, so a damaged MNIST-style file is named before torchvision reads it.

torchvision's reader asserts on a bad header and silently mis-shapes a
truncated body; these checks turn both into a `DataError` naming the file.
Format: 2 zero bytes, a type byte (0x08 = uint8), the number of dimensions,
then one big-endian uint32 per dimension, then the body.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from vtk_vision.core.errors import DataError

__all__ = ["idx_shape", "read_idx", "check_pair"]

_HINT = "replace it with a good copy (or delete it and use --download)"


def idx_shape(path: Path, ndim: int) -> tuple[int, ...]:
    """Dimensions of a uint8 IDX file with `ndim` dimensions, after checking its length."""
    try:
        with open(path, "rb") as f:
            head = f.read(4 + 4 * ndim)
    except OSError as e:
        raise DataError(f"cannot read {path}: {e.strerror}") from None
    if len(head) < 4 or head[0] != 0 or head[1] != 0 or head[2] != 0x08 or head[3] != ndim:
        raise DataError(f"{path} is not a uint8 IDX file with {ndim} dimensions "
                        f"(magic number {head[:4].hex() or 'missing'}, expected 000008{ndim:02x}); {_HINT}")
    if len(head) < 4 + 4 * ndim:
        raise DataError(f"{path} is truncated inside its header; {_HINT}")
    dims = tuple(int.from_bytes(head[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    body = path.stat().st_size - len(head)
    if body != math.prod(dims):
        raise DataError(f"{path} is truncated or padded: its header promises {math.prod(dims):,} bytes "
                        f"of data ({' x '.join(map(str, dims))}) but it holds {body:,}; {_HINT}")
    return dims


def read_idx(path: Path, ndim: int) -> np.ndarray:
    """The body of a checked uint8 IDX file as an array of its dimensions."""
    dims = idx_shape(path, ndim)
    with open(path, "rb") as f:
        f.seek(4 + 4 * ndim)
        return np.frombuffer(f.read(), dtype=np.uint8).reshape(dims)


def check_pair(images: Path, labels: Path) -> None:
    """Both files well formed, with one label per image."""
    n_images = idx_shape(images, 3)[0]
    n_labels = idx_shape(labels, 1)[0]
    if n_images != n_labels:
        raise DataError(f"{labels} holds {n_labels:,} labels but {images} holds {n_images:,} images; "
                        f"they must come from the same release")
