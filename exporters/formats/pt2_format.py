"""`torch.export` ExportedProgram (.pt2): the forward-looking PyTorch format.

Metadata goes both inside the archive (extra files) and beside it as
`<file>.json`, so a deployer can read it without loading the program.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from vtk_vision.core.errors import ExportError
from vtk_vision.exporters.base import ExportOptions
from vtk_vision.exporters.formats import Format
from vtk_vision.exporters.runner import Runner, require_cuda, torch_runner

__all__ = ["FORMAT"]

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


def load(path: Path, provider: str = "cpu", threads: int = 1) -> Runner:
    program = torch.export.load(str(path))
    if provider == "cuda":  # an ExportedProgram's module cannot simply be .to()-ed: its constants are lifted
        require_cuda("torch.export on cuda")
        program = torch.export.passes.move_to_device_pass(program, "cuda")
    return torch_runner("pt2", program.module(), provider)


def read_metadata(path: Path) -> dict:
    extra = {EXTRA: ""}
    torch.export.load(str(path), extra_files=extra)
    return json.loads(extra[EXTRA])


FORMAT = Format("pt2", order=3, description="torch.export ExportedProgram", providers=("cpu", "cuda"), load=load,
                suffix=".pt2", write=write, embed=embed, read_metadata=read_metadata,
                metadata_sidecar=True)  # <file>.json: metadata a deployer can read without loading the program
