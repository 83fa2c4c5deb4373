"""Batched inference over a whole split: the one path from uint8 images to logits.

Training (validation and final accuracy), `vtk eval` and `vtk predict` all go
through `logits_of`, so every accuracy vtk reports was computed the same way.
"""

from __future__ import annotations

import torch
from torch import nn

from vtk_vision.core.fastpath import fast_kernels
from vtk_vision.core.preprocess import Preprocess

__all__ = ["logits_of", "random_images"]


@torch.no_grad()
def logits_of(model: nn.Module, prep: Preprocess, images: torch.Tensor, batch_size: int = 1000,
              memory_format: torch.memory_format = torch.contiguous_format) -> torch.Tensor:
    """fp32 logits for uint8 images, in eval mode, batch by batch on the images' device."""
    was_training = model.training
    model.eval()
    try:
        with fast_kernels(model, enabled=images.device.type == "cpu"):
            return torch.cat([model(prep(images[i:i + batch_size]).contiguous(memory_format=memory_format)).float()
                              for i in range(0, len(images), batch_size)])
    finally:
        model.train(was_training)


def random_images(shape: tuple[int, ...], n: int = 256, seed: int = 0) -> torch.Tensor:
    """Seeded random uint8 images (N, C, H, W): what a model with no dataset is checked on, the same every run."""
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, *shape), generator=gen, dtype=torch.uint8)
