"""Spatial shape arithmetic, so sizes are checked before any forward pass.

A model describes its spatial path as a list of stages; `trace` walks it and
says where a kernel would exceed its feature map, in the words a user needs,
instead of PyTorch's "Kernel size can't be greater than actual input size".
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["Conv", "Pool", "trace", "checker"]


@dataclass(frozen=True)
class Conv:
    kernel: int
    padding: int = 0


@dataclass(frozen=True)
class Pool:
    kernel: int = 2
    ceil: bool = False


def trace(size: int, stages: list[Conv | Pool]) -> tuple[int, str | None]:
    """Final side length after `stages`, or the reason the input is too small."""
    for i, st in enumerate(stages):
        if isinstance(st, Conv):
            if size + 2 * st.padding < st.kernel:
                return size, f"the {st.kernel}x{st.kernel} kernel of layer {i + 1} would exceed its {size}x{size} feature map"
            size = size + 2 * st.padding - st.kernel + 1
        else:
            if size < st.kernel and not (st.ceil and size >= 1):
                return size, f"the {st.kernel}x{st.kernel} pooling of layer {i + 1} would exceed its {size}x{size} feature map"
            size = math.ceil(size / st.kernel) if st.ceil else size // st.kernel
        if size < 1:
            return size, f"layer {i + 1} would leave an empty feature map"
    return size, None


def checker(stages_for):
    """A registry `check_size` from a function mapping input size to its stages."""
    return lambda size: trace(size, stages_for(size))[1]
