"""Decoded splits cached on disk as safetensors, keyed by their source files.

A cache entry records size and mtime of every source file. When one changes,
the entry is stale: it is never served, the file that changed is named in a
warning, and the split is decoded again. A damaged cache file is treated the
same way. Loading a good entry is a memory map, well under a second even for
CIFAR-10's 60,000 images.
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
from safetensors.torch import load_file, save_file

from vtk_vision.core.atomic import save_with
from vtk_vision.core.paths import cache_root

__all__ = ["fingerprint", "cached"]

log = logging.getLogger("vtk")
FORMAT = "1"  # bump when the layout of cached tensors changes


def fingerprint(paths: Iterable[Path]) -> dict[str, str]:
    """{path: "size:mtime_ns"} for every file under `paths` (folders walked, hidden files skipped)."""
    out: dict[str, str] = {}
    for p in paths:
        files = [p] if p.is_file() else sorted(
            Path(d) / f for d, dirs, fs in os.walk(p) for f in fs if not f.startswith("."))
        for f in files:
            st = f.stat()
            out[str(f)] = f"{st.st_size}:{st.st_mtime_ns}"
    return out


def _changed(old: dict[str, str], new: dict[str, str]) -> str | None:
    for path in sorted(set(old) | set(new)):
        if old.get(path) != new.get(path):
            what = "added" if path not in old else "removed" if path not in new else "modified"
            return f"{path} ({what})"
    return None


def cached(key: str, sources: list[Path], build: Callable[[], tuple[dict[str, torch.Tensor], dict]]
           ) -> tuple[dict[str, torch.Tensor], dict]:
    """Tensors and JSON metadata for `key`, decoded by `build()` only when the cache cannot serve them."""
    digest = hashlib.sha1(f"{FORMAT}|{key}|{'|'.join(map(str, sources))}".encode()).hexdigest()[:12]
    path = cache_root() / "tensors" / f"{key.replace(':', '_').replace('/', '_')[:60]}-{digest}.safetensors"
    current = fingerprint(sources)
    if path.exists():
        try:
            tensors = load_file(path)
            with safe_open(path, "pt") as f:
                meta = json.loads(f.metadata()["vtk"])
            changed = _changed(meta["fingerprint"], current)
            if changed is None:
                return tensors, meta["info"]
            log.warning("cached %s is stale: %s changed since it was decoded; decoding again", key, changed)
        except (SafetensorError, OSError, KeyError, ValueError) as e:
            log.warning("cached %s at %s is unreadable (%s); decoding again", key, path, e)
    tensors, info = build()
    meta = json.dumps({"fingerprint": current, "info": info})
    save_with(path, lambda tmp: save_file({k: v.contiguous() for k, v in tensors.items()}, tmp,
                                          metadata={"vtk": meta}))
    return tensors, info
