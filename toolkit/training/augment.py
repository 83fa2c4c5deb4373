"""Augmentation applied to a whole batch on its device: no per-sample Python.

Random translation suits every built-in set (they are centred, but not
perfectly); horizontal flips only suit images whose class survives a mirror
(a flipped 7 or shoe is a different thing). Which applies is a fact of the
dataset's entry (toolkit/data/entries.py), never guessed from its name.
Colour jitter varies per-channel gain and only applies to 3-channel data.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from vtk_vision.data import Dataset

__all__ = ["Augment", "translate", "hflip", "color_jitter"]


def translate(x: torch.Tensor, max_shift: int, g: torch.Generator) -> torch.Tensor:
    """Shift each image by up to `max_shift` pixels in x and y, filling with zeros: one gather."""
    n, c, h, w = x.shape
    dy, dx = torch.randint(-max_shift, max_shift + 1, (2, n), generator=g).to(x.device)
    xp = F.pad(x, (max_shift,) * 4)                                          # (N, C, H+2s, W+2s)
    rows = torch.arange(h, device=x.device)[None, :] + max_shift - dy[:, None]  # (N, H)
    cols = torch.arange(w, device=x.device)[None, :] + max_shift - dx[:, None]  # (N, W)
    flat = (rows[:, :, None] * (w + 2 * max_shift) + cols[:, None, :]).view(n, 1, h * w).expand(n, c, h * w)
    return xp.flatten(2).gather(2, flat).view(n, c, h, w)


def hflip(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Mirror a random half of the batch left to right."""
    flip = (torch.rand(len(x), generator=g) < 0.5).to(x.device)
    return torch.where(flip[:, None, None, None], x.flip(3), x)


def color_jitter(x: torch.Tensor, strength: float, g: torch.Generator) -> torch.Tensor:
    """Scale each channel of each float image by a random gain in [1 - s, 1 + s]."""
    gain = 1 + strength * (2 * torch.rand(len(x), x.shape[1], 1, 1, generator=g, device=g.device) - 1)
    return (x * gain.to(x.device)).clamp_(0, 1)


@dataclass(frozen=True)
class Augment:
    """Which augmentations a dataset gets; `pixels` on uint8, `floats` after scaling to [0, 1]."""

    max_shift: int = 0
    flip: bool = False
    jitter: float = 0.0

    def pixels(self, x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        if self.max_shift:
            x = translate(x, self.max_shift, g)
        return hflip(x, g) if self.flip else x

    def floats(self, x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        return color_jitter(x, self.jitter, g) if self.jitter else x

    @classmethod
    def for_dataset(cls, ds: Dataset, jitter: float = 0.0, flip: bool | None = None) -> Augment:
        """The dataset entry's translation and flips (`flip` overrides the entry), jitter for RGB data."""
        return cls(max_shift=ds.entry.max_shift, flip=ds.entry.flips if flip is None else flip,
                   jitter=jitter if ds.shape[0] == 3 else 0.0)
