"""Decoded splits cached on disk as safetensors, keyed by their source files.

A cache entry records size, mtime, ctime and inode of every source file: a
replaced file changes at least its ctime and inode, which no copy tool can
set back. When one changes, the entry is stale: it is never served, the file
that changed is named in a warning, and the split is decoded again. A damaged
cache file is treated the same way. Loading a good entry is a memory map, well
under a second even for CIFAR-10's 60,000 images.

The cache is used only where this user alone can write: a cache folder owned
by someone else, or writable by others, could be planted with data that is
then served as the real thing, so it is ignored with a warning and data is
decoded afresh. A cache that cannot be written (a full disk) is a warning too:
the data is still good.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable, Iterable
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file
from vtk_vision.core.atomic import save_tensors
from vtk_vision.core.errors import DataError, VtkError
from vtk_vision.core.ownership import why_not_private
from vtk_vision.core.paths import cache_root
from vtk_vision.core.text import printable

__all__ = ["cached", "cached_shapes", "fingerprint", "private_cache_dir"]

log = logging.getLogger("vtk")
FORMAT = "2"  # bump when the layout of cached tensors or their fingerprint changes


_warned: set[str] = set()


def private_cache_dir(sub: str) -> Path | None:
    """cache_root()/sub, created if needed, when only this user can write it and the cache root; else None."""
    root = cache_root()
    folder = root / sub
    try:
        folder.mkdir(parents=True, exist_ok=True)
        why = why_not_private(root, folder)
        if why is None:
            return folder
    except OSError as e:
        why = f"{printable(folder)} cannot be used ({e.strerror})"
    if str(folder) not in _warned:
        _warned.add(str(folder))
        log.warning("cache folder %s: %s; not using it (set VTK_CACHE_DIR to a folder of your own)",
                    printable(folder), why)
    return None


def _walk_files(root: Path) -> list[Path]:
    """Every visible file under `root`, following symlinked folders (the tree reader reads them) once each."""
    seen, found = set(), []
    for d, dirs, fs in os.walk(root, followlinks=True):
        real = os.path.realpath(d)
        if real in seen:
            dirs[:] = []
            continue
        seen.add(real)
        dirs[:] = [x for x in dirs if not x.startswith(".")]
        found += [Path(d) / f for f in fs if not f.startswith(".")]
    return sorted(found)


def fingerprint(paths: Iterable[Path]) -> dict[str, str]:
    """{path: "size:mtime_ns:ctime_ns:inode"} for every file under `paths` (folders walked, hidden skipped)."""
    out: dict[str, str] = {}
    for p in paths:
        files = [p] if p.is_file() else _walk_files(p)
        for f in files:
            try:
                st = f.stat()
            except OSError as e:  # a dangling link, a link loop, a file removed under us
                raise DataError(f"cannot read {printable(f)}: {e.strerror}; remove or fix it") from None
            out[str(f)] = f"{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}:{st.st_ino}"
    return out


def _changed(old: dict[str, str], new: dict[str, str]) -> str | None:
    for path in sorted(set(old) | set(new)):
        if old.get(path) != new.get(path):
            what = "added" if path not in old else "removed" if path not in new else "modified"
            return f"{path} ({what})"
    return None


def _entry_path(key: str, sources: list[Path]) -> Path | None:
    """Where the cache keeps `key` decoded from `sources`; None when there is no private cache folder."""
    digest = hashlib.sha1(f"{FORMAT}|{key}|{'|'.join(map(str, sources))}".encode()).hexdigest()[:12]
    folder = private_cache_dir("tensors")
    return None if folder is None else folder / f"{key.replace(':', '_').replace('/', '_')[:60]}-{digest}.safetensors"


def cached_shapes(key: str, sources: list[Path]) -> dict | None:
    """{"train_x": shape, ..., "info": info} of a fresh cache entry, read from its header alone (no tensor
    is loaded); None when there is none, or it is stale or unreadable. Lets `vtk datasets` list without
    decoding."""
    path = _entry_path(key, sources)
    if path is None or not path.exists():
        return None
    try:
        with safe_open(path, "pt") as f:
            meta = json.loads(f.metadata()["vtk"])
            shapes = {k: list(f.get_slice(k).get_shape()) for k in f.keys()}  # noqa: SIM118 (safe_open is no dict)
        if _changed(meta["fingerprint"], fingerprint(sources)) is not None:
            return None
        return shapes | {"info": meta["info"]}
    except (SafetensorError, OSError, KeyError, ValueError, TypeError, DataError, MemoryError, RuntimeError):
        return None  # listing only: sizes shown as not known, as for an entry never decoded


def _mapped(key: str, path: Path) -> tuple[dict[str, torch.Tensor], dict]:
    """The entry's tensors, memory-mapped, and its metadata. Under a memory limit (ulimit -v) the map itself
    fails (safetensors says MemoryError, PyTorch's storage RuntimeError "unable to mmap"). Reading the file
    instead needs the same memory and more (safetensors then aborts the process), and decoding again more
    still, so the user is told in one line what to change."""
    try:
        tensors = load_file(path)
        with safe_open(path, "pt") as f:
            return tensors, json.loads(f.metadata()["vtk"])
    except (MemoryError, RuntimeError) as e:
        if isinstance(e, RuntimeError) and "allocate memory" not in str(e):
            raise
        raise DataError(f"not enough memory to map the cached {key} ({path.stat().st_size / 1e6:,.0f} MB at "
                        f"{printable(path)}); raise the memory limit (ulimit -v) or run where more memory is "
                        f"free") from None


def cached(key: str, sources: list[Path], build: Callable[[], tuple[dict[str, torch.Tensor], dict]]
           ) -> tuple[dict[str, torch.Tensor], dict]:
    """Tensors and JSON metadata for `key`, decoded by `build()` only when the cache cannot serve them."""
    current = fingerprint(sources)
    path = _entry_path(key, sources)
    if path is None:
        return build()
    if path.exists():
        try:
            tensors, meta = _mapped(key, path)
            changed = _changed(meta["fingerprint"], current)
            if changed is None:
                return tensors, meta["info"]
            log.warning("cached %s is stale: %s changed since it was decoded; decoding again", key, changed)
        except (SafetensorError, OSError, KeyError, ValueError) as e:
            log.warning("cached %s at %s is unreadable (%s); decoding again", key, path, e)
    tensors, info = build()
    meta = json.dumps({"fingerprint": current, "info": info})
    try:
        save_tensors(path, {k: v.contiguous() for k, v in tensors.items()}, {"vtk": meta})
    except VtkError as e:  # a full disk or a read-only cache: the data is still good, only not cached
        log.warning("could not cache %s (%s); it will be decoded again next time", key, printable(e))
    return tensors, info
