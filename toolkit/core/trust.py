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

import fcntl
import json
import logging
from pathlib import Path

from vtk_vision.core.atomic import write_json
from vtk_vision.core.digest import file_sha256
from vtk_vision.core.errors import ArtifactError
from vtk_vision.core.paths import state_root
from vtk_vision.core.text import printable

__all__ = ["remember", "is_known", "require_trusted"]

log = logging.getLogger("vtk")


def _store() -> Path:
    return state_root() / "trusted-artifacts.json"


def _known() -> dict[str, str]:
    try:
        data = json.loads(_store().read_text())
        return {k: v for k, v in data.get("sha256", {}).items() if isinstance(v, str)}
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, AttributeError) as e:
        log.warning("%s is unreadable (%s); no artifact counts as written here until it is rewritten", _store(), e)
        return {}


def remember(path: Path) -> None:
    """Record that this user's vtk wrote `path` (as it is now). Under a lock: two vtk processes recording at
    once must not drop each other's entry (the loser's own files would then read as foreign)."""
    _store().parent.mkdir(parents=True, exist_ok=True)
    with open(_store().with_suffix(".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        known = _known()
        known[file_sha256(path)] = str(Path(path).resolve())
        write_json(_store(), {"sha256": known})


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
