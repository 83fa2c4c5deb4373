"""Raw uint8 pixels to the normalised float tensor a model takes: one module, used everywhere.

The trainer, `vtk eval` / `predict`, the exporters' `--bake-preprocess` graphs
and the bench all go through `Preprocess`, so a model never sees inputs
prepared two different ways. Images smaller than the model's input are
zero-padded (raw pixels, before normalisation, as LeNet-5's 28 -> 32 padding);
larger ones are refused, never silently stretched.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from vtk_vision.core.errors import DataError

__all__ = ["Preprocess", "PreprocessSpec"]


@dataclass(frozen=True)
class PreprocessSpec:
    """The numbers that define a `Preprocess`: what run.json and every artifact's metadata record."""

    mean: tuple[float, ...]
    std: tuple[float, ...]
    image_shape: tuple[int, int, int]   # (C, H, W) of the raw images
    model_shape: tuple[int, int, int]   # (C, H, W) the model takes

    def to_dict(self) -> dict:
        return {"mean": list(self.mean), "std": list(self.std), "image_shape": list(self.image_shape),
                "model_shape": list(self.model_shape)}


class Preprocess(nn.Module):
    """uint8 (N, C, H, W) -> float (N, C, H', W'): scale to [0, 1], zero-pad, normalise."""

    def __init__(self, mean: tuple[float, ...], std: tuple[float, ...],
                 image_shape: tuple[int, int, int], model_shape: tuple[int, int, int]):
        super().__init__()
        (c, h, w), (mc, mh, mw) = image_shape, model_shape
        if c != mc:
            hint = " (use the dataset's -rgb variant)" if c == 1 and mc == 3 else ""
            raise DataError(f"the model takes {mc}-channel images but the data has {c}{hint}")
        if h > mh or w > mw or (mh - h) % 2 or (mw - w) % 2:
            raise DataError(f"{h}x{w} images do not fit a {mh}x{mw} model input by symmetric zero-padding; "
                            f"choose --input-size {h} or larger by an even number of pixels (vtk never "
                            f"stretches images)")
        top, left = (mh - h) // 2, (mw - w) // 2
        self.pads = (left, mw - w - left, top, mh - h - top)
        self.image_shape, self.model_shape = tuple(image_shape), tuple(model_shape)
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def pad(self, x: torch.Tensor) -> torch.Tensor:
        """Zero-pad raw images to the model's size (any dtype)."""
        return F.pad(x, self.pads) if any(self.pads) else x

    def normalise(self, x: torch.Tensor) -> torch.Tensor:
        """Float pixels in [0, 1] at model size -> normalised."""
        return (x - self.mean) / self.std

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.normalise(self.pad(x.float() / 255.0))

    @property
    def spec(self) -> PreprocessSpec:
        return PreprocessSpec(tuple(self.mean.flatten().tolist()), tuple(self.std.flatten().tolist()),
                              self.image_shape, self.model_shape)

    @classmethod
    def from_spec(cls, spec: PreprocessSpec) -> Preprocess:
        return cls(spec.mean, spec.std, spec.image_shape, spec.model_shape)
