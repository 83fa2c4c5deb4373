"""Library versions for run.json and bench reports, read from package metadata.

Importing torchvision, onnx and ONNX Runtime just to ask their versions would
add ~3 s to every command.
"""

from __future__ import annotations

import platform
from importlib import metadata

import torch

from vtk_vision import __version__

__all__ = ["library_versions"]


def _installed(*distributions: str) -> str:
    for name in distributions:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return "not installed"


def library_versions() -> dict[str, str]:
    return {"vtk": __version__, "python": platform.python_version(), "torch": torch.__version__,
            "torchvision": _installed("torchvision"), "onnx": _installed("onnx"),
            "onnxruntime": _installed("onnxruntime-gpu", "onnxruntime"), "openvino": _installed("openvino"),
            "cuda": str(torch.version.cuda)}
