"""Atomic writes: a killed process never leaves a half-written file in place.

Everything vtk writes goes to a temporary name in the same folder and is
renamed over the target only once complete (rename is atomic on POSIX within a
file system). The temporary name carries the writer's process id
(`.model.onnx.vtk1234-x8f2.onnx`): a leftover of a process that was killed
is recognised by the next write to the same target, and removed. A write
that fails (a full disk, a read-only folder) is one line naming the target,
and so is a target that is not a regular file (a device, a FIFO, a socket, a
folder, a symbolic link), which the rename would replace.
"""

from __future__ import annotations

import glob
import json
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from vtk_vision.core.errors import VtkError
from vtk_vision.core.text import printable

__all__ = ["atomic_path", "write_text", "write_json", "save_with", "atomic_dir", "remove_leftovers", "save_tensors", "save_torch"]


def _writable_parent(path: Path) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise VtkError(f"cannot create folder {path.parent}: {e.strerror}; choose a writable location") from None
    if not os.access(path.parent, os.W_OK):
        raise VtkError(f"cannot write to {path.parent}: permission denied; choose a writable location")


_KINDS = ((stat.S_ISLNK, "a symbolic link"), (stat.S_ISDIR, "a folder"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISSOCK, "a socket"),
          (stat.S_ISREG, "a regular file"))


def _refuse_odd_target(path: Path, folder: bool = False) -> None:
    """Refuse to rename over anything but what vtk writes: a regular file (`folder`: a real folder), or
    nothing. A rename replaces whatever has the name: as root, `--out /dev/full` turned the device into a
    file. A symbolic link is refused too, not written through: where it points is not what was named."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    except OSError as e:
        raise VtkError(f"cannot write {printable(path)}: {e.strerror}; choose another location") from None
    if stat.S_ISDIR(mode) if folder else stat.S_ISREG(mode):
        return
    kind = next((k for test, k in _KINDS if test(mode)), "of an unknown kind")
    raise VtkError(f"{printable(path)} is {kind}; vtk writes only over {'a folder' if folder else 'a regular file'} "
                   f"it can replace: give another name, or remove it first")


_LEFTOVER = re.compile(r"\.vtk(\d+)-")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def remove_leftovers(path: Path) -> None:
    """Remove temporaries of `path` left by vtk processes that no longer run (killed mid-write)."""
    for p in path.parent.glob(f".{glob.escape(path.name)}.vtk*"):
        m = _LEFTOVER.search(p.name[len(path.name) + 1:])
        if m and not _alive(int(m.group(1))):
            shutil.rmtree(p, ignore_errors=True) if p.is_dir() and not p.is_symlink() else p.unlink(missing_ok=True)


def _prefix(path: Path) -> str:
    return f".{path.name}.vtk{os.getpid()}-"


def _cannot_write(path: Path, e: OSError) -> VtkError:
    return VtkError(f"cannot write {printable(path)}: {e.strerror or e}; free some space or choose another location")


@contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it over `path` if the block succeeds."""
    path = Path(path)
    _refuse_odd_target(path)
    _writable_parent(path)
    remove_leftovers(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=_prefix(path), suffix=suffix or path.suffix or ".tmp", dir=path.parent)
        os.close(fd)
    except OSError as e:
        raise _cannot_write(path, e) from None
    tmp = Path(tmp)
    try:
        yield tmp
        if tmp.is_file():
            os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; outputs get the usual permissions
            _fsync(tmp)  # on disk before the rename: a power cut leaves the old file or the new, never an empty one
        _refuse_odd_target(path)  # again: the block may have run for minutes
        os.replace(tmp, path)
    except OSError as e:
        raise _cannot_write(path, e) from None
    finally:
        tmp.unlink(missing_ok=True)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_json(path: str | os.PathLike, data) -> None:
    """Strict JSON: NaN or infinity anywhere is a bug in vtk, raised here rather than written as invalid JSON."""
    write_text(path, json.dumps(data, indent=2, default=str, allow_nan=False) + "\n")


def save_tensors(path: str | os.PathLike, tensors: dict, metadata: dict[str, str] | None = None) -> None:
    """Tensors as safetensors; its Rust writer reports a full disk as SafetensorError, made an OSError here."""
    from safetensors import SafetensorError
    from safetensors.torch import save_file

    with atomic_path(path) as tmp:
        try:
            save_file(tensors, tmp, metadata=metadata)
        except SafetensorError as e:
            raise OSError(str(e)) from None


def save_torch(path: str | os.PathLike, obj) -> None:
    """torch.save through memory: a full disk is then Python's OSError, not an abort in PyTorch's C++ writer."""
    import io

    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    with atomic_path(path) as tmp:
        tmp.write_bytes(buf.getvalue())


def save_with(path: str | os.PathLike, save: Callable[[Path], None]) -> None:
    """Call `save(tmp)` and move the result into place: for libraries that write files themselves."""
    with atomic_path(path) as tmp:
        save(tmp)


@contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary folder beside `path`; it becomes `path` only if the block succeeds."""
    path = Path(path)
    _refuse_odd_target(path, folder=True)
    _writable_parent(path)
    remove_leftovers(path)
    try:
        tmp = Path(tempfile.mkdtemp(prefix=_prefix(path), dir=path.parent))
    except OSError as e:
        raise _cannot_write(path, e) from None
    try:
        yield tmp
        _refuse_odd_target(path, folder=True)
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
