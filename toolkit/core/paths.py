"""Where vtk reads and writes: data root, tensor cache, runs directory.

Each has a flag, then an environment variable, then a per-user default, so the
same commands work on a laptop, on CI (which points VTK_DATA_DIR at the shared
data sets) and in tests (which point everything at temporary folders).
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

__all__ = ["data_root", "cache_root", "runs_root", "state_root"]


def _pick(flag: str | os.PathLike | None, env: str, default: Path) -> Path:
    if flag:
        return Path(flag).expanduser()
    if os.environ.get(env):
        return Path(os.environ[env]).expanduser()
    return default


def data_root(flag: str | os.PathLike | None = None) -> Path:
    """--data-dir, else $VTK_DATA_DIR, else the per-user cache's datasets folder."""
    return _pick(flag, "VTK_DATA_DIR", Path(platformdirs.user_cache_dir("vtk")) / "datasets")


def cache_root() -> Path:
    """$VTK_CACHE_DIR, else the per-user cache: decoded tensors and unpacked archives."""
    return _pick(None, "VTK_CACHE_DIR", Path(platformdirs.user_cache_dir("vtk")))


def runs_root(flag: str | os.PathLike | None = None) -> Path:
    """--runs-dir, else $VTK_RUNS_DIR, else ./runs."""
    return _pick(flag, "VTK_RUNS_DIR", Path("runs"))


def state_root() -> Path:
    """$VTK_STATE_DIR, else the per-user state folder: what this user's vtk remembers (trusted artifacts)."""
    return _pick(None, "VTK_STATE_DIR", Path(platformdirs.user_state_dir("vtk")))
