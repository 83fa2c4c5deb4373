"""A user model's source inside its run folder: kept at training, and run again only when that is safe.

`vtk train mynet.py:Net` copies mynet.py into the run folder and records its
SHA-256, so export, bench, eval and predict rebuild the model from the copy
after the original moved or changed (a changed original is named in a
warning, never used instead). The copy is code: it runs without asking only
when this user's vtk made it (its hash is in core/trust.py's record, written
at training); a run folder from someone else needs `--trust-code`.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

from vtk_vision.core.digest import file_sha256
from vtk_vision.core.errors import RunError
from vtk_vision.core.text import printable
from vtk_vision.core.trust import remember, require_trusted
from vtk_vision.models import ModelInfo
from vtk_vision.models.external import Source
from vtk_vision.runs.folder import RECORD, RunFolder

__all__ = ["keep_model_source", "build_arguments"]

log = logging.getLogger("vtk")


def keep_model_source(folder: RunFolder, info: ModelInfo, text: str | None = None) -> ModelInfo:
    """Copy the source of an external model (or `text`, a class's own source from a notebook) into the run
    folder and trust the copy here; the zoo and torchvision need nothing kept."""
    if not info.source or info.source.get("kind") not in ("file", "module"):
        return info
    source = Source.from_dict(info.source)
    if text is not None:
        relative = folder.keep_source(f"{source.attr}.py", text.encode())
    else:
        relative = folder.keep_source(Path(source.origin).name, Path(source.origin).read_bytes())
    copy = folder.path / relative
    if file_sha256(copy) != source.sha256:  # edited between the import and now: record what was copied
        log.warning("%s changed while the run started; the run keeps the version it copied", printable(source.origin))
    remember(copy)
    return replace(info, source=source.to_dict() | {"copy": relative, "sha256": file_sha256(copy)})


def build_arguments(folder: RunFolder, info: ModelInfo, trust_code: bool = False) -> dict[str, Any]:
    """What `create_model(info.name, **info.kwargs, **these)` needs to rebuild a run's model from its own
    copy of the source, after checking that the copy may run."""
    if not info.source or info.source.get("kind") in ("torchvision", None):
        return {}
    source = Source.from_dict(info.source)
    if source.kind == "object" or not source.copy:
        raise RunError(f"{printable(folder.path)} was trained from a model object with no source file vtk could "
                       f"keep; pass the model again (vtk_vision.export(run, model=...)) to export, bench, eval or "
                       f"predict it")
    copy = folder.source_file(source.copy)
    require_trusted(copy, trust_code, what=f"the model source of {printable(folder.path.name)}",
                    otherwise="or rebuild the model from your own copy of it")
    if file_sha256(copy) != source.sha256:
        raise RunError(f"{printable(copy)} is not the source {printable(folder.path / RECORD)} recorded (its SHA-256 "
                       f"differs); restore it or train the run again")
    origin = Path(source.origin) if source.origin else None
    if origin is not None and origin.is_file() and file_sha256(origin) != source.sha256:
        log.warning("%s changed since %s was trained; using the run's own copy, %s", printable(origin),
                    printable(folder.path.name), printable(source.copy))
    return {"source": source, "run_copy": copy}
