"""TorchScript: traced (scripted if tracing fails), frozen, metadata as extra files.

A TorchScript file is code (PyTorch documents `torch.jit.load` as safe for
trusted files only): the bench loads one only when this user's vtk wrote it
or the user passed --trust-code (vtk_vision.core.trust).

TorchScript is deprecated upstream and every `torch.jit` call raises a
FutureWarning saying so. vtk keeps the format working and silences exactly
those deprecation warnings (matched by message) around its own calls;
tests/test_exporters.py fails if any other warning leaks or the format breaks.
"""

from __future__ import annotations

import io
import json
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

from vtk_vision.core.artifact_metadata import archive_metadata
from vtk_vision.core.errors import ExportError
from vtk_vision.exporters.base import ExportOptions
from vtk_vision.exporters.formats import Format
from vtk_vision.exporters.runner import Runner, require_cuda, torch_runner

__all__ = ["FORMAT", "quiet_jit"]

EXTRA = "vtk.json"


@contextmanager
def quiet_jit() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"`torch\.jit\.\w+` is deprecated", category=FutureWarning)
        yield


def _compile(module: torch.nn.Module, example: torch.Tensor) -> torch.jit.ScriptModule:
    with quiet_jit(), torch.no_grad():
        try:
            scripted = torch.jit.trace(module, example, check_trace=False)
        except Exception as trace_error:  # tracing fails on data-dependent Python control flow
            try:
                scripted = torch.jit.script(module)
            except Exception as e:
                raise ExportError(f"TorchScript could neither trace ({trace_error}) nor script ({e}) "
                                  f"the model") from None
        return torch.jit.freeze(scripted.eval())


def write(module: torch.nn.Module, example: torch.Tensor, path: Path, opts: ExportOptions,
          metadata: dict[str, str]) -> None:
    _save(_compile(module, example), path, metadata)


def _save(module: torch.jit.ScriptModule, path: Path, metadata: dict[str, str]) -> None:
    # Through memory, so that a full disk is Python's OSError (caught and named by the atomic writer)
    # rather than an exception inside PyTorch's C++ archive writer, which aborts the process.
    buf = io.BytesIO()
    with quiet_jit():
        torch.jit.save(module, buf, _extra_files={EXTRA: json.dumps(metadata)})
    path.write_bytes(buf.getvalue())


def embed(path: Path, metadata: dict[str, str]) -> None:
    _save(_load(path), path, metadata)


def load(path: Path, provider: str = "cpu", threads: int = 1) -> Runner:
    if provider == "cuda":
        require_cuda("TorchScript on cuda")
    # map_location moves frozen constants too, which .to() would not
    return torch_runner("torchscript", _load(path, map_location="cuda" if provider == "cuda" else "cpu"), provider)


def _load(path: Path, extra: dict | None = None, map_location: str = "cpu") -> torch.jit.ScriptModule:
    with quiet_jit():
        return torch.jit.load(str(path), map_location=map_location, _extra_files=extra if extra is not None else {})


def read_metadata(path: Path) -> dict:
    """Straight from the zip archive, without loading (and so running) the program."""
    return archive_metadata(path, f"extra/{EXTRA}")


FORMAT = Format("torchscript", order=2, description="TorchScript (traced, frozen)", providers=("cpu", "cuda"),
                load=load, suffix=".torchscript", write=write, embed=embed, read_metadata=read_metadata,
                executes_code=True)  # a TorchScript file is a program: see vtk_vision.core.trust
