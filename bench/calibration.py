"""A fixed workload timed at the end of every bench, so that `vtk compare` can tell the machine's drift from
a change in the model or its runtime.

On a shared machine two benches of an unchanged file 15 minutes apart differed by more than the gate's
tolerance, and `vtk compare` called the file slower. The workload below does not depend on the model, the
data or any artifact: when it too got slower, the machine did. `vtk compare` then divides every row's
new/old by the calibration's new/old and says so (bench/compare.py).
"""

from __future__ import annotations

import time

import torch

__all__ = ["WORKLOAD", "measure"]

WORKLOAD = "128x128 float32 matmul, 20 in a row, on 1 PyTorch thread"
_SAMPLES = 30  # ~0.2 s on the shared 2-core EPYC


def measure(samples: int = _SAMPLES) -> dict:
    """{"workload", "samples_ms", "p50_ms"}: the workload timed `samples` times after one warm-up call."""
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    a = torch.randn(128, 128, generator=torch.Generator().manual_seed(0))
    try:
        def once() -> None:
            x = a
            for _ in range(20):
                x = torch.tanh(x @ a)  # tanh: values stay finite however long the chain
        once()
        times = []
        for _ in range(samples):
            t0 = time.perf_counter_ns()
            once()
            times.append(round((time.perf_counter_ns() - t0) / 1e6, 6))
    finally:
        torch.set_num_threads(saved)
    ordered = sorted(times)
    return {"workload": WORKLOAD, "samples_ms": times, "p50_ms": ordered[(len(ordered) - 1) // 2]}
