"""A user model's code inside its run folder: kept at training, and run again only when that is safe.

`vtk train mynet.py:Net` copies mynet.py (and the modules it imports from
its own folder) into the run folder and records their SHA-256, so export,
bench, eval and predict rebuild the model from the copy after the original
moved or changed (a changed original is named in a warning, never used
instead). The copy is code: it runs without asking only when this user's vtk
made it (core/trust.py's record, written at training); a run folder from
someone else needs `--trust-code`. A run folder must account for every byte
of code it runs: a model name whose code the run does not keep, or a file in
`model_source/` that run.json does not record, is refused.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

from vtk_vision.core.digest import file_sha256
from vtk_vision.core.errors import RunError
from vtk_vision.core.text import printable
from vtk_vision.core.trust import remember, require_state_folder, require_trusted
from vtk_vision.models import ModelInfo
from vtk_vision.models.external import KeptCode, Source, helper_module_name, is_external
from vtk_vision.runs.folder import RECORD, SOURCE_DIR, RunFolder

__all__ = ["build_arguments", "keep_model_source", "ready_to_keep"]

log = logging.getLogger("vtk")


def _keeps_code(info: ModelInfo) -> bool:
    return bool(info.source) and info.source.get("kind") in ("file", "module")


def ready_to_keep(info: ModelInfo) -> None:
    """Before the run folder is made: a model whose code the run will keep needs a state folder that can
    record it as this user's (else the run could never rebuild it without --trust-code). Refused here, no
    folder is left half-made and no run number is used up."""
    if _keeps_code(info):
        require_state_folder()


def keep_model_source(folder: RunFolder, info: ModelInfo, text: str | None = None) -> ModelInfo:
    """Copy an external model's code (or `text`, a class's own source from a notebook) into the run folder
    and trust the copies here; the zoo and torchvision need nothing kept. A file spec's helper modules are
    kept beside it; a package's are only hashed (it stays installed)."""
    if not _keeps_code(info):
        return info
    source = Source.from_dict(info.source)
    data = text.encode() if text is not None else Path(source.origin).read_bytes()
    relative = folder.keep_source(f"{source.attr}.py" if text is not None else Path(source.origin).name, data)
    remember(folder.path / relative)
    digest = hashlib.sha256(data).hexdigest()
    if digest != source.sha256:  # edited between the import and now
        log.warning("%s changed while the run started; the run keeps the version it copied", printable(source.origin))
    helpers = dict(source.helpers)
    if source.kind == "file" and text is None:
        root = Path(source.origin).parent
        for rel in source.helpers:
            kept = folder.keep_source(rel, (root / rel).read_bytes())
            remember(folder.path / kept)
            helpers[rel] = file_sha256(folder.path / kept)
    return replace(info, source=source.to_dict() | {"copy": relative, "sha256": digest,
                                                    "helpers": helpers})


def _refuse(folder: RunFolder, what: str) -> RunError:
    return RunError(f"{printable(folder.path / RECORD)}: {what}; vtk runs no code a run folder does not account "
                    f"for. Train the run again")


def _checked(folder: RunFolder, relative: str, sha: str, trust_code: bool) -> tuple[Path, bytes]:
    """One kept file's bytes, after checking them against run.json and the trust record."""
    path = folder.source_file(relative)
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    require_trusted(path, trust_code, what=f"model code kept in {printable(folder.path.name)}",
                    otherwise="or rebuild the model from your own copy of it", digest=digest)
    if digest != sha:
        raise RunError(f"{printable(path)} is not the code {printable(folder.path / RECORD)} recorded (its SHA-256 "
                       f"differs); restore it or train the run again")
    return path, data


def _account(folder: RunFolder, expected: set[str]) -> None:
    """Everything under model_source/ must be a file run.json records (or a folder holding one)."""
    folders = {f"{SOURCE_DIR}/"} | {str(Path(e).parent.as_posix()) + "/" for e in expected}
    for found in folder.source_files():
        if found not in expected and found not in folders:
            raise _refuse(folder, f"{found} is not code run.json records")


def _warn_changed(source: Source, folder: RunFolder) -> None:
    """Name every original that differs from what the run kept or recorded; the run's own copy is used."""
    origin = Path(source.origin) if source.origin else None
    if origin is not None and origin.is_file() and file_sha256(origin) != source.sha256:
        log.warning("%s changed since %s was trained; using the run's own copy, %s", printable(origin),
                    printable(folder.path.name), printable(source.copy))
    if source.kind == "module" and source.helpers:  # a package's other modules come from the installed package
        spec = importlib.util.find_spec(source.package.split(".")[0]) if source.package else None
        root = Path(spec.submodule_search_locations[0]) if spec and spec.submodule_search_locations else None
        for rel, sha in source.helpers.items():
            if root is not None and (root / rel).is_file() and file_sha256(root / rel) != sha:
                log.warning("%s changed since %s was trained, and vtk keeps only %s: the installed version is used",
                            printable(root / rel), printable(folder.path.name), printable(source.copy))


def build_arguments(folder: RunFolder, info: ModelInfo, trust_code: bool = False) -> dict[str, Any]:
    """What `create_model(info.name, **info.kwargs, **these)` needs to rebuild a run's model from its own
    kept code, after checking that the code is all accounted for and may run."""
    kind = (info.source or {}).get("kind")
    if not is_external(info.name) or info.name.startswith("torchvision:"):
        if info.source and kind != "torchvision":
            raise _refuse(folder, f"model {printable(info.name)!r} carries kept code of kind {kind!r}")
        return {}
    if kind == "object":
        raise RunError(f"{printable(folder.path)} was trained from a model object with no source file vtk could "
                       f"keep; pass the model again (vtk_vision.load(run, model=...)) to export, bench, eval or "
                       f"predict it")
    source = Source.from_dict(info.source or {})
    if kind not in ("file", "module") or not source.copy:
        raise _refuse(folder, f"model {printable(info.name)!r} is code the run does not keep")
    helpers = source.helpers if kind == "file" else {}
    kept = {f"{SOURCE_DIR}/{rel}": sha for rel, sha in helpers.items()}
    _account(folder, {source.copy, *kept})
    path, data = _checked(folder, source.copy, source.sha256, trust_code)
    modules = {}
    for rel, sha in kept.items():
        name = helper_module_name(rel.removeprefix(f"{SOURCE_DIR}/"))
        if name is None:
            raise _refuse(folder, f"{rel} is not a module path")
        modules[name] = _checked(folder, rel, sha, trust_code)
    _warn_changed(source, folder)
    return {"source": source, "kept": KeptCode(path, data, modules)}
