"""`vtk show`: what a dataset looks like, as a grid of samples with their class names."""

from __future__ import annotations

from pathlib import Path

import torch

from vtk_vision.data import load_dataset
from vtk_vision.present.plots import image_grid

__all__ = ["sample_grid"]


def sample_grid(name: str, split: str, n: int, seed: int, out: Path, data_dir: str | Path | None = None,
                download: bool = False) -> Path:
    """`vtk show`: a PNG grid of `n` random samples of one split, titled with their class names."""
    ds = load_dataset(name, data_dir, download)
    part = getattr(ds, split)
    idx = torch.randperm(len(part), generator=torch.Generator().manual_seed(seed))[:n]
    return image_grid(part.images[idx], [ds.classes[i] for i in part.labels[idx].tolist()], out,
                      suptitle=f"{ds.name} ({split}, {len(idx)} of {len(part):,})")
