"""What every exporter shares: the module that gets exported, its metadata, its result.

The result of an export is `vtk_vision.runs.schema.ExportResult`: the same
record export.json keeps. `Exportable` wraps a model (and, with --bake-preprocess, the run's
`Preprocess`) behind one input named `images`, so every format has the same
signature and the same eager reference to be checked against.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from vtk_vision.core.limits import EXPORT_LIMITS, choice, number
from vtk_vision.core.preprocess import Preprocess
from vtk_vision.core.providers import CALIBRATION_METHODS, PRECISIONS

__all__ = ["Exportable", "ExportOptions", "input_spec", "file_size"]


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
    precision: str = "fp32"          # fp32 | fp16 | int8 (exporters/precision.py)
    calibration_size: int = 512      # int8: training images its activation ranges come from
    calibration_method: str = "minmax"
    max_accuracy_drop: float = 0.5   # reduced precision: points of test accuracy it may lose against fp32 eager
    allow_portable: bool = False     # ExecuTorch: land a program whose compute XNNPACK did not all take

    def __post_init__(self):
        """`vtk export`'s limits (core/limits.py), checked at once and named as Python spells them."""
        choice("precision", self.precision, PRECISIONS)
        choice("calibration_method", self.calibration_method, CALIBRATION_METHODS)
        for name, limit in EXPORT_LIMITS.items():
            if getattr(self, name) is not None or name != "opset":
                number(name, getattr(self, name), limit)

    def to_dict(self) -> dict:
        return asdict(self)


def file_size(path: Path) -> int:
    """Bytes of a file, or of every file in a folder artifact (what a user copies to ship it)."""
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())
    return path.stat().st_size if path.exists() else 0
