"""The CPU features that decide reduced-precision speed, read once from the kernel.

An int8 or bf16 figure means little without them: without VNNI, x86 int8
matrix products saturate unless weights use 7 bits (ONNX Runtime's
`reduce_range`), and run no faster than fp32; AMX and AVX-512 BF16 are what
make bf16 fast. Bench headers and the int8 exporter both read them here.

They describe the machine; they never decide training speed. Training measures
its precision, kernels and threads instead (training/tuning.py): the same flags
made bf16 2.6x slower on one AVX-512 CPU and the right choice on another.
"""

from __future__ import annotations

import functools
import platform

__all__ = ["cpu_features", "describe_features", "has_vnni", "cpu_name", "cpu_identity"]

# feature name -> the /proc/cpuinfo flags that provide it (any one is enough)
_FEATURES = {
    "AVX2": ("avx2",),
    "AVX-512": ("avx512f",),
    "VNNI": ("avx512_vnni", "avx_vnni"),
    "AVX512-BF16": ("avx512_bf16",),
    "AMX": ("amx_tile", "amx_int8", "amx_bf16"),
}


@functools.cache
def _cpuinfo_field(prefixes: tuple[str, ...]) -> str | None:
    """The first /proc/cpuinfo line's value starting with one of `prefixes`; None where there is none."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith(prefixes):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def _flags() -> frozenset[str] | None:
    line = _cpuinfo_field(("flags", "Features"))
    return None if line is None else frozenset(line.split())  # None: not Linux, or no flags line; never guessed


def cpu_name() -> str:
    """'AMD EPYC', as /proc/cpuinfo names the CPU; the platform's word for it elsewhere."""
    return _cpuinfo_field(("model name",)) or platform.processor() or platform.machine()


def cpu_identity() -> str:
    """The CPU's name and every flag it reports, as one text: what a measured answer is valid for."""
    flags = _flags()
    return f"{cpu_name()} [{' '.join(sorted(flags)) if flags is not None else 'flags unknown'}]"


def cpu_features() -> dict[str, bool | None]:
    """{feature: present}; every value is None where the flags cannot be read."""
    flags = _flags()
    return {name: (None if flags is None else any(f in flags for f in needs)) for name, needs in _FEATURES.items()}


def describe_features(features: dict[str, bool | None] | None = None) -> str:
    """'AVX2, no AVX-512/VNNI/AMX': what a reader needs next to a CPU figure."""
    features = cpu_features() if features is None else features
    if all(v is None for v in features.values()):
        return f"CPU features unknown ({platform.machine()})"
    has = [k for k, v in features.items() if v]
    lacks = [k for k, v in features.items() if v is False and k != "AVX512-BF16"]
    return ", ".join(has + ([f"no {'/'.join(lacks)}"] if lacks else []))


def has_vnni() -> bool:
    return bool(cpu_features()["VNNI"])
