"""What every exporter shares: the module that gets exported, its metadata, its result.

`Exportable` wraps a model (and, with --bake-preprocess, the run's
`Preprocess`) behind one input named `images`, so every format has the same
signature and the same eager reference to be checked against.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn

from vtk_vision.core.preprocess import Preprocess

__all__ = ["Exportable", "ExportOptions", "ExportResult", "input_spec"]


class Exportable(nn.Module):
    """model(images), or model(preprocess(raw uint8 images)) when preprocessing is baked in."""

    def __init__(self, model: nn.Module, preprocess: Preprocess | None = None):
        super().__init__()
        self.model, self.preprocess = model, preprocess
        self.grey_raw = preprocess is not None and preprocess.image_shape[0] == 1

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if self.preprocess is not None:
            x = images.unsqueeze(1) if self.grey_raw else images  # (N, H, W) -> (N, 1, H, W)
            return self.model(self.preprocess(x))
        return self.model(images)


def input_spec(model: nn.Module, preprocess: Preprocess, baked: bool) -> tuple[tuple[int, ...], torch.dtype]:
    """Per-image input shape and dtype of the artifact: raw pixels when baked, else model input."""
    if not baked:
        return tuple(model.vtk_info.input_shape), torch.float32
    c, h, w = preprocess.image_shape
    return ((h, w) if c == 1 else (c, h, w)), torch.uint8


@dataclass(frozen=True)
class ExportOptions:
    dynamic_batch: bool = True
    batch_size: int = 1          # the fixed batch of a static export
    opset: int | None = None     # ONNX only; None: the exporter's default
    bake_preprocess: bool = False
    atol: float = 1e-4
    rtol: float = 1e-3


@dataclass
class ExportResult:
    """One artifact and the evidence that it matches eager PyTorch."""

    format: str
    path: str
    size_bytes: int = 0
    input_shape: list = field(default_factory=list)
    input_dtype: str = ""
    max_abs_diff: float = float("nan")
    max_rel_diff: float = float("nan")
    agreement: float = float("nan")
    accuracy: float | None = None
    eager_accuracy: float | None = None
    checks: list[dict] = field(default_factory=list)
    passed: bool = False
    seconds: float = 0.0
    error: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    def summary_json(self) -> str:
        """The validation results that go inside the artifact's own metadata."""
        keep = ("max_abs_diff", "max_rel_diff", "agreement", "accuracy", "eager_accuracy", "checks", "passed")
        return json.dumps({k: getattr(self, k) for k in keep})


def file_size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0
