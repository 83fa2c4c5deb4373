"""torchinfo summaries and the per-input-size comparison `vtk summary` prints.

torchinfo 1.8.0 labels its mult-adds total "(Units.MEGABYTES)"; the numbers
shown in comparisons are read from its result object instead of its text.
"""

from __future__ import annotations

from dataclasses import dataclass

import torchinfo
from vtk_vision.models import create_model

__all__ = ["SizeSummary", "summarize"]


@dataclass(frozen=True)
class SizeSummary:
    model: str
    input_shape: tuple[int, int, int]
    params: int
    trainable_params: int
    mult_adds: int
    params_bytes: int
    forward_bytes: int  # activations of one image, forward and backward
    input_bytes: int    # the one input image
    table: str

    @property
    def estimated_mb(self) -> float:
        """torchinfo's "Estimated Total Size": input + forward/backward activations + parameters, so that
        the comparison line and the table above it show the same number."""
        return (self.input_bytes + self.params_bytes + self.forward_bytes) / 1e6

    def to_dict(self) -> dict:
        d = dict(self.__dict__)
        d.pop("table")
        return d | {"input_shape": list(self.input_shape), "estimated_mb": round(self.estimated_mb, 3)}


# torchinfo's layer column is 40 wide; with its 25-wide columns the full table needs 116 characters. A
# narrower terminal gets output shape and parameters in 16-wide columns (76 characters): mult-adds stay in
# the totals below the table and in the comparison.
FULL_WIDTH = 40 + 3 * (25 + 1)


def summarize(name: str, input_size: int | None = None, depth: int = 3, width: int | None = None,
              **kwargs) -> SizeSummary:
    """Build `name` at `input_size` (checked first) and summarise one image through it; the table fits
    `width` characters when it is under FULL_WIDTH (None: every column)."""
    model = create_model(name, input_size=input_size, **kwargs)
    shape = model.vtk_info.input_shape
    narrow = width is not None and width < FULL_WIDTH
    stats = torchinfo.summary(model, input_size=(1, *shape), depth=depth, verbose=0, mode="eval",
                              col_names=("output_size", "num_params") if narrow else
                              ("output_size", "num_params", "mult_adds"), col_width=16 if narrow else 25)
    table = str(stats).replace("(Units.MEGABYTES)", "(M)")
    return SizeSummary(name, shape, stats.total_params, stats.trainable_params, stats.total_mult_adds,
                       stats.total_param_bytes, stats.total_output_bytes, stats.total_input, table)
