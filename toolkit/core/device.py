"""Device and precision choices, made once and recorded in the run.

`--device cuda` on a machine without a usable GPU is an error, never a silent
CPU run labelled CUDA.
"""

from __future__ import annotations

import torch

from vtk_vision.core.errors import ProviderError

__all__ = ["resolve_device", "autocast_dtype", "memory_format_for"]


def resolve_device(name: str) -> torch.device:
    """auto -> cuda when a GPU is usable, else cpu; cuda without one is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ProviderError("--device cuda asked for, but PyTorch sees no usable CUDA GPU "
                            f"(torch {torch.__version__}, CUDA build {torch.version.cuda}); use --device cpu")
    return torch.device(name)


def _cpu_has_bf16() -> bool:
    # Without native bf16 instructions (AVX512-BF16 / AMX) autocast emulates bf16.
    flags = getattr(torch.backends.cpu, "get_cpu_capability", lambda: "")()
    return "AVX512" in flags.upper() and torch.ops.mkldnn._is_mkldnn_bf16_supported()


def autocast_dtype(mode: str, device: torch.device, conv: bool) -> torch.dtype | None:
    """The autocast dtype for training, or None for plain fp32.

    auto: bf16 on CUDA (fp16 where the GPU lacks bf16). On CPU, bf16 only for
    conv nets on CPUs with native bf16: on this project's 2-core AVX2 machines
    (AMD EPYC, no AVX512-BF16) bf16 autocast made a LeNet-5 step 4-7x slower
    than fp32 (scripts/bench_train.py measures it), so there it stays fp32.
    """
    if mode == "off":
        return None
    if mode == "bf16":
        return torch.bfloat16
    if mode == "fp16":
        if device.type != "cuda":
            raise ProviderError("--amp fp16 needs a CUDA device; on CPU use --amp bf16 or --amp off")
        return torch.float16
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16 if conv and _cpu_has_bf16() else None


def memory_format_for(device: torch.device, conv: bool) -> torch.memory_format:
    """channels_last for conv nets on CUDA (tensor-core friendly); on CPU it measured ~10% slower here."""
    return torch.channels_last if conv and device.type == "cuda" else torch.contiguous_format
