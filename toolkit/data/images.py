"""Image files into uint8 arrays, safely: the one decoder for image trees and `vtk predict`.

Why not PIL's defaults: a 16-bit PNG converted to "L" is clipped, not scaled
(99.5% of an image turned white); a 30000x30000 PNG is a decompression bomb;
and decoding a folder at full size before resizing made 1.2 MB of PNGs take
2 GB of memory. Here the header is read first (size and mode, no pixels), an
image over `MAX_PIXELS` is refused, 16-bit data is scaled to 8 bits, and each
image is resized as it is decoded (JPEGs are even decoded at a reduced scale),
so memory follows the output size.

Trees skip hidden files and folders (`.ipynb_checkpoints/`, `.DS_Store`), and
a class folder whose name is not UTF-8 is refused: class names travel into
run.json and every artifact's metadata.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from vtk_vision.core.errors import DataError
from vtk_vision.core.text import printable

__all__ = ["MAX_PIXELS", "probe", "decode", "list_tree", "GREY_MODES"]

MAX_PIXELS = 40_000_000                      # ~6300x6300: far beyond what a small vision model takes
GREY_MODES = ("L", "1", "I;16", "I;16L", "I;16B", "I")
_SIXTEEN_BIT = ("I;16", "I;16L", "I;16B", "I")


def _bad(path: Path | str, why: str) -> DataError:
    return DataError(f"{printable(path)} {why}; remove it from the tree or replace it")


def probe(path: Path | str) -> tuple[str, tuple[int, int]]:
    """(mode, (width, height)) from the header alone; refuses unreadable files and oversized images."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # vtk's own limit decides
            with Image.open(path) as img:
                mode, size = img.mode, img.size
    except Image.DecompressionBombError:
        raise _bad(path, f"is larger than {MAX_PIXELS:,} pixels (a decompression bomb?)") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise _bad(path, f"is not a readable image ({type(e).__name__}: {printable(e)})") from None
    if size[0] * size[1] > MAX_PIXELS:
        raise _bad(path, f"has {size[0]}x{size[1]} pixels, more than vtk's limit of {MAX_PIXELS:,}")
    return mode, size


def _eight_bit(img: Image.Image, grey: bool) -> Image.Image:
    if img.mode in _SIXTEEN_BIT:  # 16-bit grey: scale to 8 bits, never clip
        a = np.asarray(img, dtype=np.uint32)
        img = Image.fromarray((np.minimum(a, 65535) >> 8).astype(np.uint8), "L")
    return img.convert("L" if grey else "RGB")


def decode(path: Path | str, size: tuple[int, int], grey: bool, probed: bool = False) -> np.ndarray:
    """The image at `path` as uint8 (H, W) when grey, else (H, W, 3), resized to `size` = (width, height).
    `probed`: the caller already ran `probe` on it (a tree reads every header first)."""
    if not probed:
        probe(path)
    try:
        with Image.open(path) as img:
            if img.format == "JPEG":
                img.draft("L" if grey else "RGB", size)  # decode at the smallest scale >= size
            img = _eight_bit(img, grey)
            if img.size != size:
                img = img.resize(size, Image.BILINEAR)
            return np.asarray(img).copy()
    except DataError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise _bad(path, f"is not a readable image ({type(e).__name__}: {printable(e)})") from None


def _visible(name: str) -> bool:
    return not name.startswith(".")


def list_tree(folder: Path) -> tuple[list[str], list[tuple[Path, int]]]:
    """(class names, [(file, class index)]) of an ImageFolder-style tree `folder/<class>/**/<file>`."""
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError as e:
        raise DataError(f"cannot read image tree {printable(folder)}: {e.strerror}") from None
    classes = [e.name for e in entries if _visible(e.name) and e.is_dir()]
    for name in classes:
        try:
            name.encode("utf-8")
        except UnicodeEncodeError:
            raise DataError(f"class folder {printable(folder / name)} has a name that is not valid UTF-8; "
                            f"rename it (class names go into run.json and every export)") from None
    samples = []
    for index, name in enumerate(classes):
        found = []
        for root, dirs, files in os.walk(folder / name):  # symlinked sub-folders are not followed: no loops
            dirs[:] = sorted(d for d in dirs if _visible(d))
            found += [Path(root) / f for f in sorted(files) if _visible(f)]
        if not found:
            raise DataError(f"class folder {printable(folder / name)} holds no images; every class needs at least "
                            f"one (hidden files do not count)")
        samples += [(f, index) for f in found]
    if not classes:
        raise DataError(f"{printable(folder)} holds no class folders; give a tree of <class>/ folders of images "
                        f"(or train/ and test/ holding them)")
    return classes, samples
