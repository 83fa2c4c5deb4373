"""Tiny fake data sets written into a temporary folder, in the real on-disk formats."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def write_idx(path: Path, array: np.ndarray) -> Path:
    """A uint8 IDX file (the MNIST format) holding `array`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    head = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    path.write_bytes(head + array.astype(np.uint8).tobytes())
    return path


def fake_mnist(root: Path, folder: str = "MNIST", n_train: int = 60, n_test: int = 20, seed: int = 0) -> Path:
    """A torchvision-layout MNIST with 10 classes of random 28x28 digits."""
    rng = np.random.default_rng(seed)
    raw = root / folder / "raw"
    for split, n in (("train", n_train), ("t10k", n_test)):
        write_idx(raw / f"{split}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28)))
        write_idx(raw / f"{split}-labels-idx1-ubyte", np.arange(n) % 10)
    return root


def fake_tree(root: Path, classes=("cat", "dog"), per_class: int = 6, size=(12, 10), mode: str = "RGB") -> Path:
    """An ImageFolder tree `root/<class>/<i>.png` of random images."""
    rng = np.random.default_rng(0)
    for c in classes:
        (root / c).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            shape = (size[1], size[0], 3) if mode == "RGB" else (size[1], size[0])
            Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode).save(root / c / f"{i}.png")
    return root
