"""`vtk bench --scenario`: MLPerf LoadGen's scenarios with vtk's runners as the system under test.

    load = LoadOptions("server", slo_ms=1.0, workers=1, max_batch=8, batch_timeout_ms=1.0)
    section = load_section(targets, inputs, load, closed_rows)   # -> report["load"]

One row per runtime x precision x provider x thread count (the closed loop's
targets): LoadGen's verdict (VALID | INVALID, with the checks behind it), its
latency percentiles from each query's scheduled time, the raw per-query
latencies (dropped with `keep_latencies=False`) and LoadGen's own issue delay,
so that "the generator was late" is never read as "the model was slow".

With a latency budget (`--slo p99=1ms`) the server scenario searches the
highest request rate LoadGen calls VALID (VALID in the server scenario means
the p99 met the budget, early stopping included): a doubling or halving from
a quick capacity estimate, then a geometric bisection until the passing and
failing rates are within 5%. LoadGen's own FindPeakPerformance mode does a
similar search but runs every probe at full settings and reports only the end.

Runs are short on purpose: at least 1 s and enough queries for the percentile
(662 for a p99, bench/percentiles.py) per test, where an MLPerf submission
runs 600 s. VALID here means LoadGen's rules held at these settings.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch
from vtk_vision.bench.loadgen_sut import SCENARIOS, LoadResult, loadgen, run_test, test_settings
from vtk_vision.bench.percentiles import min_samples
from vtk_vision.core.errors import VtkError
from vtk_vision.exporters import get_format

__all__ = ["LoadOptions", "SCENARIOS", "load_section", "search_peak"]

SEARCH_PRECISION = 0.05  # the peak is bracketed to within 5%
MAX_PROBES = 16
MIN_QPS = 1.0


@dataclass(frozen=True)
class LoadOptions:
    """How one LoadGen scenario runs against each runtime."""

    scenario: str
    slo_ms: float | None = None          # latency budget at `percentile`; server: search the peak rate meeting it
    percentile: float = 0.99
    qps: float | None = None             # server without a budget / offline: the rate; None: from a quick estimate
    workers: int = 1                     # server: threads taking queries, each with its own loaded runtime
    max_batch: int | None = None         # None: 1, multi-stream's query size, or 64 offline
    batch_timeout_ms: float = 1.0        # how long a worker waits to fill a batch
    min_duration_s: float = 1.0          # per LoadGen test (MLPerf submissions: 600 s)
    max_duration_s: float = 30.0
    samples_per_query: int = 8           # multi-stream
    keep_latencies: bool = True          # the raw per-query latencies and issue delays in bench.json

    def __post_init__(self):
        if self.scenario not in SCENARIOS:
            raise VtkError(f"unknown scenario {self.scenario}; choose from {', '.join(SCENARIOS)}")
        if self.slo_ms is not None and self.scenario != "server":
            raise VtkError("a latency budget (--slo) searches a request rate: it goes with --scenario server")
        if not 0 < self.percentile < 1 or self.workers < 1 or (self.max_batch or 1) < 1:
            raise VtkError("the percentile is a fraction below 1; workers and the batch are at least 1")

    @property
    def batch(self) -> int:
        return self.max_batch or {"multi-stream": self.samples_per_query, "offline": 64}.get(self.scenario, 1)

    @property
    def min_queries(self) -> int:
        """Enough queries for LoadGen's early stopping at the scenario's percentile with one query over it."""
        if self.scenario == "offline":
            return 1
        return min_samples(0.9 if self.scenario == "single-stream" else self.percentile)


def _services(target, x: torch.Tensor, workers: int) -> list[Callable[[list[int]], object]]:
    """One loaded runner per worker; each service runs the images at the given indices as one batch."""
    fmt = get_format(target.runtime)
    torch.set_num_threads(target.threads)  # eager and TorchScript run on PyTorch's own pool
    runners = [fmt.load(target.source, target.provider, target.threads) for _ in range(workers)]
    return [lambda idx, r=r: r.logits(x[idx]) for r in runners]


def _service_ms(service: Callable[[list[int]], object], batch: int, budget_s: float = 0.3) -> float:
    """A quick median time of one batch, for LoadGen's expected latency and the search's first rate."""
    times, end = [], time.perf_counter() + budget_s
    idx = list(range(batch))
    while time.perf_counter() < end or len(times) < 5:
        t0 = time.perf_counter()
        service(idx)
        times.append(time.perf_counter() - t0)
    return sorted(times)[len(times) // 2] * 1e3


def _test(services, samples: int, opts: LoadOptions, qps: float | None, service_ms: float) -> LoadResult:
    settings = test_settings(opts.scenario, min_duration_s=opts.min_duration_s, min_queries=opts.min_queries,
                             max_duration_s=opts.max_duration_s, qps=qps, target_latency_ms=opts.slo_ms,
                             percentile=opts.percentile, expected_latency_ms=service_ms,
                             samples_per_query=opts.samples_per_query)
    return run_test(services, samples, settings, max_batch=opts.batch, batch_timeout_s=opts.batch_timeout_ms / 1e3)


def search_peak(probe: Callable[[float], LoadResult], start_qps: float, floor_qps: float = MIN_QPS,
                precision: float = SEARCH_PRECISION, max_probes: int = MAX_PROBES
                ) -> tuple[float | None, LoadResult | None, list[dict]]:
    """The highest rate `probe` calls VALID, bracketed to within `precision`: (rate, its result, every probe).
    Where nothing passed: (None, the slowest rate's result, every probe). A probe's verdict is one test's, so a
    rate near the edge can go either way; the probes are all kept to show it."""
    probes: list[dict] = []
    results: dict[float, LoadResult] = {}

    def ok(qps: float) -> bool:
        r = results[qps] = probe(qps)
        probes.append({"qps": round(qps, 3), "validity": r.validity, "p99_ms": r.latency_ms.get("p99"),
                       "completed_qps": r.completed_qps, "issue_delay_p99_ms": r.lateness_ms.get("p99")})
        return r.validity == "VALID"

    low, high = None, None
    qps = start_qps
    if ok(qps):
        low = qps
        while len(probes) < max_probes // 2 and ok(qps := qps * 2):
            low = qps
        high = qps if low != qps else None
    else:
        high = qps
        while qps / 2 >= floor_qps and len(probes) < max_probes and not ok(qps := qps / 2):
            high = qps
        low = qps if results[qps].validity == "VALID" else None
    while low is not None and high is not None and high / low > 1 + precision and len(probes) < max_probes:
        mid = math.sqrt(low * high)
        low, high = (mid, high) if ok(mid) else (low, mid)
    return low, results[low if low is not None else min(results)], probes


def _record(result: LoadResult, keep: bool) -> dict:
    out = asdict(result)
    if not keep:
        out["latencies_ms"] = out["issue_delays_ms"] = None
    return out


def _measured(target, closed_rows: list[dict]) -> dict:
    """Accuracy and size of the same target from the closed loop (any batch: the same file and runtime)."""
    for r in closed_rows:
        if (r["status"] == "ok" and (r["runtime"], r["precision"], r["provider"], r["threads"])
                == (target.runtime, target.precision, target.provider, target.threads)):
            return {k: r.get(k) for k in ("accuracy", "accuracy_delta", "correct", "size_bytes", "artifact")}
    return {}


def _one(target, x: torch.Tensor, opts: LoadOptions, closed_rows: list[dict]) -> dict:
    head = {"runtime": target.runtime, "precision": target.precision, "provider": target.provider,
            "threads": target.threads, "scenario": opts.scenario, "workers": opts.workers, "max_batch": opts.batch,
            "batch_timeout_ms": opts.batch_timeout_ms} | _measured(target, closed_rows)
    services = _services(target, x, opts.workers if opts.scenario in ("server", "offline") else 1)
    service_ms = _service_ms(services[0], 1 if opts.scenario in ("single-stream", "server") else opts.batch)
    capacity = len(services) * 1e3 / service_ms * (opts.batch if opts.scenario == "offline" else 1)
    if opts.scenario == "server" and opts.slo_ms is not None:
        # the first rate: a quarter of what one call's time allows (Python's share and a busy machine take the
        # rest; LeNet-5 on ONNX Runtime estimated 14,500/s and completed 2,600/s here). The floor: the slowest
        # rate that issues its queries within max_duration_s; below it no test could be VALID.
        floor = max(MIN_QPS, opts.min_queries / opts.max_duration_s)
        peak, result, probes = search_peak(lambda q: _test(services, len(x), opts, q, service_ms),
                                           max(floor, capacity / 4), floor)
        head["slo"] = {"percentile": opts.percentile, "budget_ms": opts.slo_ms,
                       "peak_qps": None if peak is None else round(peak, 3), "probes": probes}
        # nothing met the budget: the row holds the slowest rate tried, INVALID, and peak_qps None
        qps = peak if peak is not None else min(p["qps"] for p in probes)
        return head | {"status": "ok", "target_qps": round(qps, 3), **_record(result, opts.keep_latencies)}
    # server: a quarter of the estimate, as the search starts (half of it already overloaded LeNet-5 on ONNX
    # Runtime here); offline: twice it, since LoadGen issues 1.1 x duration x this rate in samples and a run that
    # ends early fails its min duration (4,661/s estimated, 6,859/s done here)
    qps = opts.qps or (capacity / 4 if opts.scenario == "server" else 2 * capacity)
    result = _test(services, len(x), opts, qps if opts.scenario in ("server", "offline") else None, service_ms)
    return head | {"status": "ok", "target_qps": round(qps, 3) if opts.scenario in ("server", "offline") else None,
                   **_record(result, opts.keep_latencies)}


def load_section(targets: list, x: torch.Tensor, opts: LoadOptions, closed_rows: list[dict],
                 progress: Callable[[str], None] = lambda msg: None) -> dict:
    """report["load"]: one row per target under LoadGen's `opts.scenario`; a runtime that fails gets a row
    with the reason, and the others go on."""
    from vtk_vision.bench.keys import runtime_label, thread_label
    from vtk_vision.bench.rows import _reason, _unrunnable

    loadgen()  # a missing LoadGen is one line before any work
    rows, saved = [], torch.get_num_threads()
    try:
        for i, target in enumerate(targets):
            base = {"runtime": target.runtime, "precision": target.precision, "provider": target.provider,
                    "threads": target.threads, "scenario": opts.scenario, "workers": opts.workers,
                    "max_batch": opts.batch}  # keys.load_key: a row that did not run matches one that did
            if (refusal := _unrunnable(target)) is not None:
                rows.append(base | {"status": refusal[0], "reason": refusal[1]})
                continue
            if not _measured(target, closed_rows):  # LoadGen's calls have no time limit: a runtime whose closed
                # loop failed or was skipped (a call past --call-timeout, --max-time) is not run again here
                rows.append(base | {"status": "skipped", "reason": "its closed-loop rows did not run"})
                continue
            progress(f"{opts.scenario} {i + 1} of {len(targets)}: {runtime_label(base)} on {target.provider}, "
                     f"{thread_label(target.threads)}" + (" (searching the peak rate)" if opts.slo_ms else ""))
            try:
                rows.append(_one(target, x, opts, closed_rows))
            except VtkError:
                raise
            except Exception as e:  # noqa: BLE001  (one runtime failing must not stop the others)
                rows.append(base | {"status": "failed", "reason": _reason(e)})
    finally:
        torch.set_num_threads(saved)
    return {"scenario": opts.scenario, "options": asdict(opts), "loadgen": _version(),
            "settings_note": f"LoadGen {opts.scenario}: at least {opts.min_duration_s:g} s "
                             + ("in one query of every sample" if opts.scenario == "offline" else
                                f"and {opts.min_queries} queries") + " per test (MLPerf submissions run 600 s); "
                             "latency from each query's scheduled time; logs written to a temporary folder and removed",
            "rows": rows}


def _version() -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("mlcommons-loadgen")
    except PackageNotFoundError:
        return None
