"""`torch.export` ExportedProgram (.pt2): the forward-looking PyTorch format.

Metadata goes both inside the archive (extra files) and beside it as
`<file>.json`, so a deployer can read it without loading the program.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from vtk_vision.exporters.base import ExportOptions
from vtk_vision.core.atomic import write_text
from vtk_vision.core.errors import ExportError

__all__ = ["write", "load", "embed", "read_metadata"]

EXTRA = "vtk.json"


def write(module: torch.nn.Module, example: torch.Tensor, path: Path, opts: ExportOptions,
          metadata: dict[str, str]) -> None:
    dynamic = {"images": {0: torch.export.Dim("batch", min=1, max=1 << 20)}} if opts.dynamic_batch else None
    try:
        program = torch.export.export(module, (example,), dynamic_shapes=dynamic)
    except Exception as e:  # export raises many types; all are an export failure to the user
        raise ExportError(f"torch.export failed: {type(e).__name__}: {str(e).splitlines()[0]}") from None
    torch.export.save(program, str(path), extra_files={EXTRA: json.dumps(metadata)})


def embed(path: Path, metadata: dict[str, str]) -> None:
    program = torch.export.load(str(path))
    torch.export.save(program, str(path), extra_files={EXTRA: json.dumps(metadata)})


def sidecar(final_path: Path, metadata: dict[str, str]) -> None:
    write_text(final_path.with_name(final_path.name + ".json"), json.dumps(metadata, indent=2) + "\n")


def load(path: Path):
    module = torch.export.load(str(path)).module()
    return lambda x: module(x)


def read_metadata(path: Path) -> dict:
    extra = {EXTRA: ""}
    torch.export.load(str(path), extra_files=extra)
    return json.loads(extra[EXTRA])
