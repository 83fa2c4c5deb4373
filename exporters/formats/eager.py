"""Eager PyTorch: the reference every artifact is checked against, and a bench runtime without a file."""

from __future__ import annotations

import copy

from torch import nn

from vtk_vision.exporters.formats import Format
from vtk_vision.exporters.runner import Runner, require_cuda, torch_runner


def load(model: nn.Module, provider: str = "cpu", threads: int = 1) -> Runner:
    if provider == "cuda":
        require_cuda("eager PyTorch on cuda")
    # a copy: moving it to CUDA must not move the run's own model
    return torch_runner("eager", copy.deepcopy(model).to("cuda" if provider == "cuda" else "cpu").eval(), provider)


FORMAT = Format("eager", order=0, description="eager PyTorch (no file)", providers=("cpu", "cuda"), load=load)
