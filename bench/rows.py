"""The row-timing core: one runtime at one provider and thread count, timed at each batch size.

    rows = time_runtime(Target("onnx", "fp32", "cpu", 2, path, path), Inputs(x), Timing())

Nothing here knows about run folders: labels and a reference accuracy are
optional, and without them the accuracy fields stay None ("not measured"),
so a file vtk never wrote can be timed the same way. A runtime that cannot
load gets failed rows with the reason; the caller goes on with the others.
"""

from __future__ import annotations

import re
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from vtk_vision.bench.keys import runtime_label, thread_label
from vtk_vision.bench.memory import MemoryWindow
from vtk_vision.bench.percentiles import min_samples
from vtk_vision.bench.timing import Latency, measure_samples
from vtk_vision.core.errors import ArtifactError, ProviderError
from vtk_vision.core.stoppable import CallTimeout, Watch, run_stoppable
from vtk_vision.exporters import get_format
from vtk_vision.exporters.runner import Runner, cuda_problem

__all__ = ["SKIPPED", "Inputs", "Row", "Target", "Timing", "measure_accuracy", "time_runtime"]


@dataclass(frozen=True)
class Timing:
    """How long each row is timed, and when a row counts as too noisy to trust."""

    warmup_s: float = 0.3
    min_iters: int = min_samples(0.9)  # the p90 behind max_spread needs 64 calls (bench/percentiles.py)
    min_s: float = 1.0
    # p90 / p50 above this: timed again. Calls under 0.1 ms on the shared 2-core EPYC held 1.29-1.31 in three
    # rounds running (ONNX Runtime, LeNet-5, batch 1): 1.25 would re-time them without ever settling.
    max_spread: float = 1.5
    max_rounds: int = 3       # rounds at most per row, the first included
    keep_samples: bool = True  # raw per-call samples in the row (bench.json grows by ~10 bytes a call)
    # one call (a load, or one batch) longer than this is stopped and its rows fail (core/stoppable.py);
    # None: no limit. The slowest call in docs/bench.md's tables (vgg3, batch 256, one thread) took 0.19 s.
    call_timeout_s: float | None = 60.0
    # after the warm samples: the first call after each idle gap, `cold_repeats` times (median kept). A service
    # with sparse traffic sees this one: ONNX Runtime ran LeNet-5 in 0.027 ms warm, 0.236 ms after 10 ms idle.
    cold_gaps_s: tuple[float, ...] = (0.01, 0.1)
    cold_repeats: int = 3     # 3 x (10 ms + 100 ms): about a third of a second more per row
    deadline: float | None = None  # time.monotonic() past which no further row starts (`vtk bench --max-time`)

    def out_of_time(self) -> bool:
        return self.deadline is not None and time.monotonic() > self.deadline

    def after(self, rows: list[Row]) -> Timing:
        """This timing for the next group of rows; without its deadline until a row has been measured, so that
        --max-time shorter than loading the data still leaves a result (the first runtime's rows)."""
        return self if any(r.status == "ok" for r in rows) else replace(self, deadline=None)


SKIPPED = "skipped"  # a row --max-time left unmeasured: its figures stay empty, never estimated


def _skipped(batch_sizes, base: dict) -> list[Row]:
    return [Row(batch=b, status=SKIPPED, reason="--max-time was spent before this row started", **base)
            for b in batch_sizes]


@dataclass(frozen=True)
class Target:
    """What one group of rows times: a runtime, at a precision, on a provider, with a thread count."""

    runtime: str
    precision: str
    provider: str
    threads: int
    source: Any                 # what the runtime's loader takes: an nn.Module (eager) or an artifact path
    artifact: Path | None = None


@dataclass(frozen=True)
class Inputs:
    """Prepared images; labels and the reference accuracy are optional (None: accuracy not measured)."""

    x: torch.Tensor
    y: torch.Tensor | None = None
    reference: float | None = None


@dataclass
class Row:
    runtime: str
    provider: str
    batch: int
    precision: str = "fp32"
    threads: int | None = None     # None only in files written before thread scaling
    status: str = "ok"            # ok | failed | n/a | skipped (--max-time)
    reason: str | None = None
    artifact: str | None = None
    size_bytes: int | None = None
    accuracy: float | None = None        # None: not measured (no labels)
    accuracy_delta: float | None = None  # against the reference (eager PyTorch on CPU for a run)
    correct: int | None = None
    latency_ms: dict | None = None
    images_per_s: float | None = None  # batch / p50 latency: the median, which one stall cannot drag
    unstable: bool = False             # p90/p50 stayed above the threshold in every round
    round_spreads: list[float] = field(default_factory=list)  # p90/p50 of each round; the steadiest is kept
    samples_ms: list[float] | None = None  # the kept round's raw per-call times, in call order
    cold_ms: dict | None = None  # {"after_10ms": ms, "after_100ms": ms}: the first call after an idle gap
    session_s: float | None = None
    first_inference_s: float | None = None
    runtime_memory_mb: float | None = None  # this runtime's own host memory at its peak (bench/memory.py)
    memory_reason: str | None = None        # why runtime_memory_mb is None
    gpu_peak_mb: float | None = None   # PyTorch allocator peak (CUDA, PyTorch runtimes)
    active_providers: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def _reason(e: Exception) -> str:
    """One line for a failed row. TorchScript's first line is always "The following operation failed in the
    TorchScript interpreter."; what failed is on its last line, so that one is taken."""
    lines = [line.strip() for line in str(e).strip().splitlines() if line.strip()]
    if not lines:
        return f"{type(e).__name__}: no message"
    line = lines[-1] if "TorchScript interpreter" in lines[0] else lines[0]
    return line[:200] if re.match(r"^\w+(Error|Exception):", line) else f"{type(e).__name__}: {line[:200]}"


def measure_accuracy(runner: Runner, inputs: Inputs, batch: int, keep_predictions: bool = False) -> dict:
    """accuracy, its delta and the count of correct images; all None without labels. `keep_predictions`
    adds "predictions" (class indices), for the sanity checks (inspection/sanity.py)."""
    if inputs.y is None:
        return {}
    x, y, correct, predicted = inputs.x, inputs.y, 0, []
    if runner.predict is not None:  # the runtime scores the whole split itself (a browser page)
        predicted.append(torch.as_tensor(runner.predict(x, batch)))
        correct = int((predicted[-1] == y).sum())
    else:
        for i in range(0, len(x), batch):
            predicted.append(torch.as_tensor(runner.logits(x[i:i + batch])).argmax(1))
            correct += int((predicted[-1] == y[i:i + batch]).sum())
    acc = correct / len(x)
    return {"accuracy": acc, "correct": correct,
            "accuracy_delta": None if inputs.reference is None else acc - inputs.reference} | (
        {"predictions": torch.cat(predicted)} if keep_predictions else {})


def _steady(x: torch.Tensor, call: Callable[[], object], runner: Runner, timing: Timing
            ) -> tuple[list[int], list[float]]:
    """Samples of the steadiest round, and every round's spread: a row over `max_spread` is timed again,
    up to `max_rounds` in all, so a moment of contention does not decide its figure. A runtime with its own
    clock (a browser page) takes the same rules and is read on it."""
    rounds = []
    for _ in range(timing.max_rounds):
        if runner.samples is not None:
            samples = runner.samples(x, timing.warmup_s, timing.min_iters, timing.min_s)
        else:
            samples = measure_samples(call, runner.sync, warmup_s=timing.warmup_s, min_iters=timing.min_iters,
                                      min_s=timing.min_s, cuda_events=runner.cuda_events)
        rounds.append((Latency.from_samples(samples).spread, samples))
        if rounds[-1][0] <= timing.max_spread:
            break
    _, samples = min(rounds, key=lambda r: r[0])
    return samples, [s for s, _ in rounds]


def _cold(call: Callable[[], object], sync: Callable[[], None], timing: Timing) -> dict | None:
    """The median of `cold_repeats` first calls after each idle gap, in ms: caches and thread pools gone
    cold, which back-to-back timing never sees."""
    out = {}
    for gap in timing.cold_gaps_s:
        times = []
        for _ in range(timing.cold_repeats):
            time.sleep(gap)
            t0 = time.perf_counter_ns()
            call()
            sync()
            times.append((time.perf_counter_ns() - t0) / 1e6)
        out[f"after_{gap * 1e3:g}ms"] = round(statistics.median(times), 6)
    return out or None


def _batch(x: torch.Tensor, b: int) -> torch.Tensor:
    """b images: a batch larger than the inputs repeats them."""
    return x[:b] if b <= len(x) else x.repeat(-(-b // len(x)), *[1] * (x.dim() - 1))[:b]


def _time_batch(runner: Runner, inputs: Inputs, b: int, timing: Timing) -> dict:
    if runner.cuda_events:
        torch.cuda.reset_peak_memory_stats()
    accuracy = measure_accuracy(runner, inputs, b)
    x = _batch(inputs.x, b)
    call = runner.bind(x)  # bound once: the steady rounds and the cold calls time the same call
    samples, spreads = _steady(x, call, runner, timing)
    lat = Latency.from_samples(samples)
    return accuracy | {"cold_ms": _cold(call, runner.sync, timing)  # a page keeps its own clock: not from here
                       if timing.cold_repeats and runner.samples is None else None,
        "latency_ms": lat.to_dict(), "images_per_s": b / (lat.p50 / 1e3), "round_spreads": spreads,
        "unstable": lat.spread > timing.max_spread,
        "samples_ms": [round(s / 1e6, 6) for s in samples] if timing.keep_samples else None,
        "gpu_peak_mb": torch.cuda.max_memory_allocated() / 2**20 if runner.cuda_events else None}


def _unrunnable(target: Target) -> tuple[str, str] | None:
    """(status, reason) for rows that cannot run here, decided before anything loads."""
    fmt = get_format(target.runtime)
    if target.provider not in fmt.providers:
        return "n/a", f"{target.runtime} runs on {', '.join(fmt.providers)}, not {target.provider}"
    if target.provider != "cpu" and (why := cuda_problem()) is not None:
        return "failed", f"{target.runtime} on {target.provider}: {why}"  # the same tidy line for every runtime
    return None


def time_runtime(target: Target, inputs: Inputs, batch_sizes: tuple[int, ...], timing: Timing,
                 progress: Callable[[int, str], None] = lambda i, msg: None) -> list[Row]:
    """One row per batch size; `progress(i, what)` before the i-th batch is timed. The runtime runs where
    Ctrl-C, SIGTERM and `timing.call_timeout_s` can stop it (core/stoppable.py): a call past the limit fails
    its batch and the ones after it, and the bench goes on with the next runtime."""
    base = {"runtime": target.runtime, "precision": target.precision, "provider": target.provider,
            "threads": target.threads, "artifact": str(target.artifact) if target.artifact else None,
            "size_bytes": get_format(target.runtime).size_bytes(target.artifact) if target.artifact else None}
    if (refusal := _unrunnable(target)) is not None:
        return [Row(batch=b, status=refusal[0], reason=refusal[1], **base) for b in batch_sizes]
    if timing.out_of_time():
        return _skipped(batch_sizes, base)
    saved = torch.get_num_threads()
    watch, rows = Watch(timing.call_timeout_s, target.runtime), []

    def work() -> None:
        torch.set_num_threads(target.threads)  # eager, TorchScript and pt2 run on PyTorch's own pool
        _time_loaded(target, inputs, batch_sizes, timing, progress, base, watch, rows)

    try:
        run_stoppable(work, watch)
    except CallTimeout as e:
        rows += [Row(batch=b, status="failed", reason=str(e), **base) for b in batch_sizes[len(rows):]]
    else:
        rows += _skipped(batch_sizes[len(rows):], base)  # _time_loaded stopped at the deadline
    finally:
        torch.set_num_threads(saved)
    return rows


def _time_loaded(target: Target, inputs: Inputs, batch_sizes: tuple[int, ...], timing: Timing,
                 progress: Callable[[int, str], None], base: dict, watch: Watch, rows: list[Row]) -> None:
    """Appends one row per batch to `rows`; stops, leaving the rest to the caller, once `watch` is halted."""
    label = runtime_label(base)
    announce = lambda i: progress(i, f"{label} on {target.provider}, batch {batch_sizes[i]}, "  # noqa: E731
                                     f"{thread_label(target.threads)}")
    announce(0)  # before the load: a runtime that hangs in it or in its first call is named on screen
    window = MemoryWindow.start()
    try:
        t0 = time.perf_counter()
        runner = watch.guard(get_format(target.runtime).load)(target.source, target.provider, target.threads)
        session_s = time.perf_counter() - t0
        watch.cancel = runner.cancel
        runner = replace(runner, bind=lambda x, bind=runner.bind: watch.guard(bind(x)),
                         logits=watch.guard(runner.logits),
                         samples=runner.samples and watch.guard(runner.samples),
                         predict=runner.predict and watch.guard(runner.predict))
        call = runner.bind(_batch(inputs.x, batch_sizes[0]))  # a fixed-batch file takes its batch only
        t0 = time.perf_counter()
        call()
        runner.sync()
        loaded = {"session_s": session_s, "first_inference_s": time.perf_counter() - t0,
                  "active_providers": runner.active}
    except ArtifactError:
        raise  # a file vtk refuses to load (untrusted code, pickled objects) stops the bench: one line, exit 1
    except ProviderError as e:
        rows += [Row(batch=b, status="failed", reason=str(e), **base) for b in batch_sizes]
        return
    except Exception as e:  # noqa: BLE001  (a runtime that cannot load must not stop the others; its rows say why)
        if not watch.halted:
            rows += [Row(batch=b, status="failed", reason=_reason(e), **base) for b in batch_sizes]
        return
    for i, b in enumerate(batch_sizes):
        if i and timing.out_of_time():
            return  # the caller marks this batch and the rest skipped
        if i:
            announce(i)
        window.reset_peak()  # an earlier, larger batch must not lend this one its peak
        try:
            measured = _time_batch(runner, inputs, b, timing)
        except Exception as e:  # noqa: BLE001  (one failing batch must not stop the others; the row says why)
            if watch.halted:  # stopped from outside: the caller writes this batch's row and the rest
                return
            rows.append(Row(batch=b, status="failed", reason=_reason(e), **base))
            continue
        memory, why = window.peak_mb()  # what the loaded runtime holds plus this batch's own peak
        if runner.elsewhere:
            memory, why = None, f"runs in {runner.elsewhere}, not in vtk's process"
        rows.append(Row(batch=b, **base, **loaded, **measured, runtime_memory_mb=memory, memory_reason=why))
