"""Atomic writes: a killed process never leaves a half-written file in place.

Everything vtk writes goes to a temporary name in the same folder and is
renamed over the target only once complete (rename is atomic on POSIX within a
file system).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from vtk_vision.core.errors import VtkError

__all__ = ["atomic_path", "write_text", "write_json", "save_with", "atomic_dir"]


def _writable_parent(path: Path) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise VtkError(f"cannot create folder {path.parent}: {e.strerror}; choose a writable location") from None
    if not os.access(path.parent, os.W_OK):
        raise VtkError(f"cannot write to {path.parent}: permission denied; choose a writable location")


@contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it over `path` if the block succeeds."""
    path = Path(path)
    _writable_parent(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix or path.suffix or ".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        if tmp.exists():
            os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; outputs get the usual permissions
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path: str | os.PathLike, data) -> None:
    """Strict JSON: NaN or infinity anywhere is a bug in vtk, raised here rather than written as invalid JSON."""
    write_text(path, json.dumps(data, indent=2, default=str, allow_nan=False) + "\n")


def save_with(path: str | os.PathLike, save: Callable[[Path], None]) -> None:
    """Call `save(tmp)` and move the result into place: for libraries that write files themselves."""
    with atomic_path(path) as tmp:
        save(tmp)


@contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary folder beside `path`; it becomes `path` only if the block succeeds."""
    path = Path(path)
    _writable_parent(path)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        yield tmp
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
