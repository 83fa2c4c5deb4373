"""A loaded model in one runtime on one provider: what validation and the bench both call.

Each runner takes normalised float inputs on the CPU and, before any clock
starts, places a batch where its runtime wants it (a CUDA tensor, an ORT I/O
binding). `logits` is the checked path (validation, accuracy); `bind` returns
the zero-argument call the bench times.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from vtk_vision.core.errors import ProviderError
from vtk_vision.core.providers import PROVIDERS

__all__ = ["Runner", "torch_runner", "cuda_problem", "require_cuda", "PROVIDERS"]


def cuda_problem() -> str | None:
    """Why CUDA cannot be used here, or None when a GPU is usable."""
    if torch.cuda.is_available():
        return None
    return (f"no usable NVIDIA GPU (torch {torch.__version__} sees {torch.cuda.device_count()} CUDA devices; "
            f"check the driver with nvidia-smi)")


def require_cuda(what: str) -> None:
    if (why := cuda_problem()) is not None:
        raise ProviderError(f"{what}: {why}")


@dataclass
class Runner:
    """A loaded model in one runtime on one provider."""

    runtime: str
    provider: str
    bind: Callable[[torch.Tensor], Callable[[], object]]  # input batch -> zero-argument call, input pre-placed
    logits: Callable[[torch.Tensor], torch.Tensor]        # input batch -> CPU float logits
    sync: Callable[[], None]
    cuda_events: bool                                     # time with CUDA events (PyTorch on CUDA)
    active: list[str]                                     # what really runs it
    # stops a call in flight from another thread (core/stoppable.py); None: the runtime has no way to
    cancel: Callable[[], None] | None = None
    # a runtime with its own clock (a browser page's performance.now()): (batch, warmup_s, min_iters, min_s)
    # -> per-call ns under the bench's sample rules. None: vtk's clock times `bind`'s call
    samples: Callable[[torch.Tensor, float, int, float], list[int]] | None = None
    # (inputs, batch) -> top-1 class per image, decided inside the runtime in one transfer (a browser page
    # scoring the whole split itself). None: the bench takes the argmax of `logits`
    predict: Callable[[torch.Tensor, int], torch.Tensor] | None = None
    elsewhere: str | None = None  # where it runs when not in this process: its memory is not vtk's to measure


def torch_runner(runtime: str, module: Callable[[torch.Tensor], torch.Tensor], provider: str) -> Runner:
    """A Runner for anything PyTorch calls: an eager module, a TorchScript module, an ExportedProgram's module."""
    device = torch.device("cuda" if provider == "cuda" else "cpu")

    def bind(x: torch.Tensor):
        xd = x.to(device)

        def call():
            with torch.inference_mode():
                return module(xd)
        return call

    def logits(x: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return module(x.to(device)).float().cpu()

    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    return Runner(runtime, provider, bind, logits, sync, device.type == "cuda", [f"torch:{device.type}"])
