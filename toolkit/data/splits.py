"""Stratified, seeded index selection: validation splits and class-balanced subsets.

Every class contributes the same fraction, so a 1/6 validation split of MNIST
keeps its label proportions, and the same seed always picks the same images.
"""

from __future__ import annotations

import torch

__all__ = ["stratified_indices"]


def stratified_indices(labels: torch.Tensor, fraction: float, seed: int) -> torch.Tensor:
    """Sorted indices holding round(fraction * n_c) images of each class c."""
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"fraction must be in (0, 1), got {fraction}")
    g = torch.Generator().manual_seed(seed)
    picked = []
    for c in torch.unique(labels):
        idx = torch.nonzero(labels == c).flatten()
        k = int(round(fraction * len(idx)))
        picked.append(idx[torch.randperm(len(idx), generator=g)[:k]])
    return torch.cat(picked).sort().values
