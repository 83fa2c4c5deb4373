"""One timing function for every runtime: warm-up, then raw per-call samples.

Calls run until both a minimum count and a minimum time are met; statistics
come from the raw samples. `sync` is called inside each timed call, so the
clock is read only after the device has finished (a CUDA synchronise, an ORT
I/O binding's output sync); on CPU it is a no-op.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

__all__ = ["Latency", "measure", "measure_samples"]


@dataclass(frozen=True)
class Latency:
    """Per-call latency statistics in milliseconds."""

    n: int
    p50: float
    p90: float
    p99: float
    mean: float
    std: float
    cv: float  # std / mean: how steady the machine was
    spread: float = 1.0  # p90 / p50: the dispersion the bench judges a row by (one stall cannot move it)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_samples(cls, samples_ns: list[int]) -> Latency:
        ms = sorted(s / 1e6 for s in samples_ns)

        def pct(q: float) -> float:  # nearest-rank percentile on the raw samples
            return ms[max(0, math.ceil(q / 100 * len(ms)) - 1)]

        mean = statistics.fmean(ms)
        std = statistics.pstdev(ms)
        p50, p90 = pct(50), pct(90)
        return cls(len(ms), p50, p90, pct(99), mean, std, std / mean if mean else 0.0, p90 / p50 if p50 else 1.0)


def _cuda_event_timer(call: Callable[[], object]) -> Callable[[], int]:
    """Per-call GPU time from CUDA events around the call (PyTorch on CUDA)."""
    import torch

    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)

    def timed() -> int:
        start.record()
        call()
        end.record()
        end.synchronize()
        return int(start.elapsed_time(end) * 1e6)
    return timed


def measure(call: Callable[[], object], sync: Callable[[], None] = lambda: None, **timing) -> Latency:
    """Statistics of `measure_samples(call, sync, **timing)`."""
    return Latency.from_samples(measure_samples(call, sync, **timing))


def measure_samples(call: Callable[[], object], sync: Callable[[], None] = lambda: None, *,
                    warmup_s: float = 0.3, min_iters: int = 50, min_s: float = 1.0,
                    max_iters: int = 1_000_000, cuda_events: bool = False) -> list[int]:
    """Per-call times in ns of `call` (then `sync`) after `warmup_s` of warm-up calls.

    With `cuda_events`, each sample is the GPU time between CUDA events
    recorded around the call, read after the end event has completed.
    """
    clock = time.perf_counter_ns
    event_timed = _cuda_event_timer(call) if cuda_events else None
    end = clock() + int(warmup_s * 1e9)
    while True:
        call()
        sync()
        if clock() >= end:
            break
    samples: list[int] = []
    start = clock()
    floor = int(min_s * 1e9)
    while len(samples) < max_iters and (len(samples) < min_iters or clock() - start < floor):
        if event_timed is not None:
            samples.append(event_timed())
            continue
        t0 = clock()
        call()
        sync()
        samples.append(clock() - t0)
    return samples

