"""The format table: every artifact format, and eager PyTorch as a runtime without a file.

Each module in this folder defines `FORMAT`, one `Format`: how to write an
artifact, load it into a `Runner` for a provider and thread count, and read
and write the metadata embedded in it (plus any sidecar files). Export,
validation, bench and the command line's choices all come from `FORMATS`, so
adding a format or a runtime is one new module here plus its tests.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vtk_vision.core.errors import UnknownNameError
from vtk_vision.exporters.runner import Runner

__all__ = ["Format", "FORMATS", "NOT_OFFERED", "refuse_not_offered", "artifact_formats", "all_formats", "runtimes", "default_runtimes", "get_format",
           "format_of_file"]


@dataclass(frozen=True)
class Format:
    """One row of the table. A runtime without a file (eager) has no suffix and no writer."""

    name: str                      # the CLI name, in --format and --runtime
    order: int                     # position in listings and default runs
    description: str
    providers: tuple[str, ...]     # where it can run: cpu, cuda, tensorrt
    # (model or artifact path, provider, threads) -> Runner
    load: Callable[[Any, str, int], Runner]
    suffix: str | None = None
    # (module, example input, path, ExportOptions, metadata) -> None, or a dict of how it was lowered (export.json's
    # `lowering`): writes the artifact at path
    write: Callable[..., None] | None = None
    embed: Callable[[Path, dict[str, str]], None] | None = None       # (re)write the embedded metadata
    read_metadata: Callable[[Path], dict[str, str]] | None = None
    metadata_sidecar: bool = False  # also write the metadata beside the artifact as <file>.json
    reads: str | None = None        # a runtime with no writer of its own loads this format's file (e.g. "onnx")
    executes_code: bool = False     # loading runs code from the file: only trusted files load (core/trust.py)
    vet: Callable[[Path], None] | None = None  # raises ArtifactError for a file vtk must not load, before any work
    # (fp32 artifact path, precision, ExportOptions, calibration inputs or None) -> settings; rewrites the file
    # in place at the reduced precision. Formats without it are fp32 only.
    reduce: Callable[..., dict] | None = None
    reduced: tuple[str, ...] = ()   # the precisions `reduce` makes
    folder: bool = False            # the artifact is a folder (written and replaced whole), not one file
    # `reduce` also takes module= and example= (the eager module and its example input): quantizers that work on
    # the PyTorch graph (PT2E) make the reduced artifact from the module, not from the fp32 file
    reduce_from_module: bool = False
    # files the writer itself puts beside the artifact, named as it with this suffix (OpenVINO IR's .bin
    # weights): they move into place with it, and count in its size
    companions: tuple[str, ...] = ()
    # part of `--format all` and of the bench's default runtimes; the others are asked for by name: the device
    # formats (ExecuTorch, OpenVINO IR) each cost an export of their own (ExecuTorch's takes ~30 s for LeNet-5
    # here), and the web page needs more than vtk's Python packages (a browser)
    in_all: bool = True
    # the artifact always has this batch: asked for a dynamic batch, the writer makes a program of this batch
    # (LiteRT programs converted from PyTorch have a fixed batch); `--static-batch --batch-size N` still asks
    # for another
    fixed_batch: int | None = None

    @property
    def artifact_format(self) -> str | None:
        """The format whose file this runtime loads: its own, another's (`reads`), or None (eager)."""
        return self.name if self.write is not None else self.reads

    @property
    def precisions(self) -> tuple[str, ...]:
        """What this runtime can run: its artifact format's precisions (eager and other fp32 formats: fp32)."""
        fmt = FORMATS.get(self.artifact_format or "", self)
        return ("fp32", *fmt.reduced)

    @property
    def has_file(self) -> bool:
        return self.artifact_format is not None

    def sidecars(self, path: Path) -> list[Path]:
        """Files that belong to the artifact at `path` and travel with it."""
        return [*self.companion_files(path), *filter(None, [self.metadata_file(path)])]

    def metadata_file(self, path: Path) -> Path | None:
        """<file>.json, where the format keeps its metadata beside the artifact too."""
        return path.with_name(path.name + ".json") if self.metadata_sidecar else None

    def companion_files(self, path: Path) -> list[Path]:
        return [path.with_suffix(s) for s in self.companions]

    def size_bytes(self, path: Path) -> int:
        """What a deployer ships: the artifact (every file of a folder artifact) and its companions (IR weights),
        not the metadata sidecar."""
        from vtk_vision.exporters.base import file_size

        return sum(file_size(p) for p in (path, *self.companion_files(path)))


def _discover() -> dict[str, Format]:
    found = []
    for info in pkgutil.iter_modules(__path__):
        fmt = getattr(importlib.import_module(f"{__name__}.{info.name}"), "FORMAT", None)
        if isinstance(fmt, Format):
            found.append(fmt)
    for f in found:
        if f.write is not None and (f.suffix is None or f.embed is None or f.read_metadata is None):
            raise RuntimeError(f"format {f.name!r} writes files, so it needs a suffix, embed and read_metadata")
    names = [f.name for f in found]
    if len(set(names)) != len(names):
        raise RuntimeError(f"format names registered twice: {sorted(names)}")
    return {f.name: f for f in sorted(found, key=lambda f: f.order)}


FORMATS: dict[str, Format] = _discover()

# Formats people ask for that vtk does not write, and why: `vtk export --format NAME` says so in one line.
NOT_OFFERED: dict[str, str] = {
    "coreml": "Core ML models run only on Apple's runtimes (macOS, iOS), so vtk could not check one on the whole test "
              "split here; for iPhones export --format executorch (ExecuTorch runs on iOS) or onnx",
    "tensorrt": "TensorRT engines need an NVIDIA GPU, and torch-tensorrt requires torch<2.15 (vtk runs torch 2.15); "
                "time TensorRT on the ONNX export instead: vtk bench --runtime onnx --provider tensorrt",
    "triton": "Triton is a server, not a file format, and its in-process Python server is built for NGC "
              "containers only; serve the ONNX export with Triton's onnxruntime backend",
}


def refuse_not_offered(name: str) -> None:
    """One line saying why vtk does not write `name`, for the formats of NOT_OFFERED."""
    if name in NOT_OFFERED:
        from vtk_vision.core.errors import ExportError

        raise ExportError(f"--format {name} is not offered: {NOT_OFFERED[name]}")


def artifact_formats() -> list[str]:
    """Every format vtk can export: the choices of `vtk export --format`."""
    return [f.name for f in FORMATS.values() if f.write is not None]


def all_formats() -> list[str]:
    """What `--format all` exports."""
    return [f for f in artifact_formats() if FORMATS[f].in_all]


def runtimes() -> list[str]:
    """Everything the bench can time: the choices of `vtk bench --runtime`."""
    return list(FORMATS)


def default_runtimes() -> list[str]:
    """What `vtk bench` times when no --runtime is given."""
    return [f.name for f in FORMATS.values() if f.in_all]


def get_format(name: str) -> Format:
    try:
        return FORMATS[name]
    except KeyError:
        raise UnknownNameError("format", name, list(FORMATS)) from None


def format_of_file(path: Path) -> Format:
    """The format whose suffix `path` ends with."""
    for f in FORMATS.values():
        if f.suffix and path.name.endswith(f.suffix):
            return f
    raise UnknownNameError("artifact format", path.suffix or path.name,
                           [f.suffix for f in FORMATS.values() if f.suffix])
