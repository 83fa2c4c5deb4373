"""Which code-carrying files this user's vtk wrote, so only those run without asking.

A TorchScript file is a program, and so is the copy of a user's model source
a run folder keeps (`model_source/`): loading either runs whatever its author
put in it. vtk runs one without asking only when this machine's vtk wrote it:
its SHA-256 is recorded here, outside any run folder, when `vtk export` puts
an artifact in place or `vtk train` copies a model's source. A run folder
someone hands you carries its own records, so nothing inside it can vouch for
itself; for such a file the user passes `--trust-code`. ONNX files are data
and pt2 files are loaded with pickling refused, so neither needs this.
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import tempfile
from pathlib import Path

from vtk_vision.core.atomic import write_json
from vtk_vision.core.digest import file_sha256
from vtk_vision.core.errors import ArtifactError, VtkError
from vtk_vision.core.ownership import why_not_private
from vtk_vision.core.paths import state_root
from vtk_vision.core.text import printable

__all__ = ["remember", "is_known", "require_trusted", "require_state_folder"]

log = logging.getLogger("vtk")
_MAX_STORE = 64 << 20  # bytes: one line per file vtk wrote; a store larger than this is not one vtk wrote
_warned: set[str] = set()


def _store() -> Path:
    return state_root() / "trusted-artifacts.json"


def _distrusted(why: str) -> dict[str, str]:
    if why not in _warned:
        _warned.add(why)
        log.warning("%s; no file counts as written by this user's vtk (set VTK_STATE_DIR to a folder of your "
                    "own, or pass --trust-code for files you trust)", why)
    return {}


def _known() -> dict[str, str]:
    """The store's records, believed only when the state folder and the store are this user's alone:
    another user who can write either could vouch for any file."""
    store = _store()
    try:
        why = why_not_private(store.parent, store)
        if why is not None:
            return _distrusted(f"the trust store is not yours alone: {why}")
        with open(store, "rb") as f:
            raw = f.read(_MAX_STORE + 1)
        if len(raw) > _MAX_STORE:
            raise ValueError(f"larger than {_MAX_STORE >> 20} MiB")
        data = json.loads(raw)
        return {k: v for k, v in data.get("sha256", {}).items() if isinstance(k, str) and isinstance(v, str)}
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, AttributeError) as e:
        return _distrusted(f"{printable(store)} is unreadable ({printable(e)}); it is rewritten by the next "
                           f"vtk export or train")


def require_state_folder(error: type[VtkError] = VtkError) -> Path:
    """The state folder, created if needed, when vtk can keep its trust record there; else one `error` saying
    why. Called before work whose code would otherwise be recorded nowhere (a run folder made for a user
    model, a TorchScript export), so a failure leaves nothing half-made."""
    folder = state_root()
    try:
        if folder.exists() and not folder.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, "it is a file, not a folder")
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        why = why_not_private(folder, *[p for p in (_store(),) if p.exists()])
    except OSError as e:
        why = f"{printable(folder)} cannot be created or read ({e.strerror or e})"
    if why is None:
        try:
            with tempfile.TemporaryFile(dir=folder):  # a read-only file system refuses even root
                pass
        except OSError as e:
            why = f"{printable(folder)} is not writable ({e.strerror or e})"
    if why is not None:
        raise error(f"vtk's state folder cannot keep its record of the code it writes: {why}; set "
                       f"VTK_STATE_DIR to a folder of your own")
    return folder


def remember(path: Path) -> None:
    """Record that this user's vtk wrote `path` (as it is now). Under a lock: two vtk processes recording at
    once must not drop each other's entry (the loser's own files would then read as foreign)."""
    require_state_folder()
    with open(_store().with_suffix(".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        known = _known()
        known[file_sha256(path)] = str(Path(path).resolve())
        write_json(_store(), {"sha256": known})
        os.chmod(_store(), 0o600)  # written with the umask's mode: a group-writable store would not be believed


def is_known(path: Path) -> bool:
    return file_sha256(path) in _known()


def require_trusted(path: Path, consent: bool, what: str = "TorchScript",
                    otherwise: str = "or leave it out (--runtime eager,onnx,pt2)", digest: str | None = None) -> None:
    """Refuse a code-carrying file this user's vtk did not write, unless the user consented. `digest`: the
    SHA-256 of the bytes that will run, when the caller has read them already (no second read to race)."""
    if consent or (digest or file_sha256(path)) in _known():
        return
    raise ArtifactError(
        f"{printable(path)} is {what}, which is code, and vtk did not write it on this machine (its SHA-256 is not "
        f"in {printable(_store())}); pass --trust-code if you trust whoever made it, {otherwise}")
