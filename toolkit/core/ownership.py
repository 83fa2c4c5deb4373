"""Whether a file or folder is this user's alone: vtk believes what it finds only in such places.

The tensor cache serves decoded data as the real thing and the trust store
(core/trust.py) decides which code runs without `--trust-code`. A folder that
another user owns, or that its group or everyone may write (a shared 1777
folder in /tmp), could be planted with either, so all three (the cache, the
state folder and the store file in it) pass this one check before vtk reads
them. Root is no exception: root's vtk trusts only root's files.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from vtk_vision.core.text import printable

__all__ = ["why_not_private"]


def _why(path: Path) -> str | None:
    st = path.stat()
    if st.st_uid != os.getuid():
        return f"{printable(path)} is owned by uid {st.st_uid}, not by you (uid {os.getuid()})"
    if st.st_mode & stat.S_IWOTH:
        return f"{printable(path)} is writable by others (mode {stat.S_IMODE(st.st_mode):04o})"
    if st.st_mode & stat.S_IWGRP:
        return f"{printable(path)} is writable by its group (mode {stat.S_IMODE(st.st_mode):04o})"
    return None


def why_not_private(*paths: Path) -> str | None:
    """Why the first of `paths` that is not this user's alone fails (owned by someone else, writable by group
    or others); None when every one passes. A path that cannot be examined fails too (OSError propagates)."""
    for path in paths:
        if (why := _why(Path(path))) is not None:
            return why
    return None
