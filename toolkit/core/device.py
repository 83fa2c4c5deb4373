"""Which device a run uses, decided once and recorded in the run.

`--device cuda` on a machine without a usable GPU is an error, never a silent
CPU run labelled CUDA. Precision, kernels, threads and memory layout are not
decided here from CPU flags: training measures them (training/tuning.py).
"""

from __future__ import annotations

import torch

from vtk_vision.core.errors import ProviderError

__all__ = ["resolve_device"]


def resolve_device(name: str) -> torch.device:
    """auto -> cuda when a GPU is usable, else cpu; cuda without one is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ProviderError("--device cuda asked for, but PyTorch sees no usable CUDA GPU "
                            f"(torch {torch.__version__}, CUDA build {torch.version.cuda}); use --device cpu")
    return torch.device(name)
