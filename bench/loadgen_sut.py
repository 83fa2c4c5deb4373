"""One MLPerf LoadGen test against vtk's runners: the system under test, the settings, what LoadGen logged.

    result = run_test(services, samples=10_000, settings=test_settings("server", qps=500, ...))

LoadGen (`mlcommons-loadgen`, imported as `mlperf_loadgen`) decides when each
query is issued (a Poisson schedule in the server scenario, the next query
when the last one is done in single-stream) and times every query from the
moment it was *scheduled*, not from when our code picked it up, so a busy
system cannot hide its queue (no coordinated omission). The system under test
here is a queue and `len(services)` worker threads; a worker takes the first
query waiting, then up to `max_batch` samples in all, waiting at most
`batch_timeout_s` for more (dynamic batching, as a serving system does), and
runs them as one batch. Each worker has its own loaded runner, so runtimes
whose sessions are not thread-safe still run in parallel.

The harness's own share of each query's latency is kept small: LoadGen's
issuing thread (the one calling StartTest) and the workers run with a 1 ns
timer slack instead of Linux's 50 us default (`fine_timers`), so a
sleep_until or a batch timeout ends when it should; the worker loop touches
nothing per query beyond the queue, the service and QuerySamplesComplete
(which releases the GIL while LoadGen records the completion). What is left,
measured with a stub that takes no time at 500/s on the shared 2-core EPYC,
is about 0.1 ms at the median: LoadGen waking on its schedule (~27 us), its
call into Python taking the GIL (~25 us), and the hand-off through the queue
to a sleeping worker thread (~40 us). scripts/bench_load.py prints it.

LoadGen writes its logs (summary, detail, a trace of every sample) into a
temporary folder that is read and removed before `run_test` returns: the
per-query latencies and each query's issue delay (how late LoadGen's own
issuing thread was against its schedule) come from the trace.
"""

from __future__ import annotations

import ctypes
import json
import queue
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from vtk_vision.core.errors import VtkError

__all__ = ["LoadResult", "SCENARIOS", "fine_timers", "loadgen", "run_test", "test_settings"]

# CLI name -> LoadGen's TestScenario member
SCENARIOS = {"single-stream": "SingleStream", "multi-stream": "MultiStream", "server": "Server", "offline": "Offline"}
Service = Callable[[list[int]], object]  # runs one batch of sample indices, blocking until done


def loadgen():
    """The LoadGen module, or one line saying how to get it."""
    try:
        import mlperf_loadgen
    except ImportError:
        raise VtkError("--scenario needs MLPerf LoadGen: pip install mlcommons-loadgen==6.0.17") from None
    return mlperf_loadgen


@dataclass
class LoadResult:
    """What LoadGen measured in one test; latencies in ms, from each query's scheduled time."""

    validity: str                      # LoadGen's verdict: VALID | INVALID
    checks: dict                       # min duration, min queries, early stopping, latency constraint: met or not
    early_stopping: str                # LoadGen's own explanation
    queries: int
    scheduled_qps: float | None
    completed_qps: float | None
    latency_ms: dict                   # n, mean, min, max and LoadGen's percentiles (p50 .. p99.9)
    target_latency_ms: float | None
    target_percentile: float | None
    lateness_ms: dict                  # how late LoadGen issued queries against its schedule: p50, p99, max
    latencies_ms: list[float] = field(default_factory=list)  # every sample's latency, in issue order
    issue_delays_ms: list[float] = field(default_factory=list)


PR_SET_TIMERSLACK, PR_GET_TIMERSLACK = 29, 30  # linux/prctl.h


@contextmanager
def fine_timers():
    """The calling thread's timer slack at 1 ns while inside, then as it was (Linux; elsewhere nothing).
    Linux lets a sleeping thread wake up to 50 us late so that wake-ups can be merged; LoadGen sleeps until
    each query's scheduled time, so that slack was most of its median issue delay here (78 us, 27 us
    without). Threads started inside inherit it."""
    libc = _libc()
    before = libc.prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0) if libc else -1
    if before > 0:
        libc.prctl(PR_SET_TIMERSLACK, ctypes.c_ulong(1), 0, 0, 0)
    try:
        yield
    finally:
        if before > 0:
            libc.prctl(PR_SET_TIMERSLACK, ctypes.c_ulong(before), 0, 0, 0)


def _libc():
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None


class _Sut:
    """The queue and workers LoadGen issues into."""

    def __init__(self, services: Sequence[Service], max_batch: int, batch_timeout_s: float):
        self.lg, self.max_batch, self.timeout = loadgen(), max_batch, batch_timeout_s
        self.waiting: queue.SimpleQueue = queue.SimpleQueue()
        self.error: BaseException | None = None
        self.workers = [threading.Thread(target=self._work, args=(s,), daemon=True) for s in services]
        for w in self.workers:
            w.start()

    def issue(self, samples) -> None:  # LoadGen's issuing thread: hand over and return at once
        for s in samples:
            self.waiting.put(s)

    def _batch(self, first) -> list:
        """`first` and what else is queued, up to max_batch, waiting at most batch_timeout_s for more."""
        batch = [first]
        deadline = time.perf_counter() + self.timeout
        while len(batch) < self.max_batch:
            try:  # what is already queued is taken at once; then wait for more until the deadline
                item = self.waiting.get(timeout=max(0.0, deadline - time.perf_counter()))
            except queue.Empty:
                break
            if item is None:
                self.waiting.put(None)  # the stop is for every worker
                break
            batch.append(item)
        return batch

    def _work(self, service: Service) -> None:
        # per query: one blocking get, the service, one call to complete (it releases the GIL); names bound once
        get, done, response = self.waiting.get, self.lg.QuerySamplesComplete, self.lg.QuerySampleResponse
        batched = self.max_batch > 1
        with fine_timers():
            while (first := get()) is not None:
                batch = self._batch(first) if batched else (first,)
                try:
                    service([s.index for s in batch])
                except BaseException as e:  # noqa: BLE001  (reported after the test; LoadGen must still get answers)
                    self.error = self.error or e
                done([response(s.id, 0, 0) for s in batch])

    def stop(self) -> None:
        for _ in self.workers:
            self.waiting.put(None)
        for w in self.workers:
            w.join()


def test_settings(scenario: str, *, min_duration_s: float, min_queries: int, max_duration_s: float,
                  qps: float | None = None, target_latency_ms: float | None = None, percentile: float = 0.99,
                  expected_latency_ms: float | None = None, samples_per_query: int = 8):
    """LoadGen's TestSettings for one performance test; seeds left at LoadGen's (0): the same schedule each run."""
    lg = loadgen()
    s = lg.TestSettings()
    s.scenario = getattr(lg.TestScenario, SCENARIOS[scenario])
    s.mode = lg.TestMode.PerformanceOnly
    s.min_duration_ms, s.max_duration_ms = int(min_duration_s * 1e3), int(max_duration_s * 1e3)
    s.min_query_count = min_queries
    if scenario == "server":
        s.server_target_qps = qps
        if target_latency_ms is not None:
            s.server_target_latency_ns = int(target_latency_ms * 1e6)
        s.server_target_latency_percentile = percentile
    elif scenario == "offline":
        s.offline_expected_qps = qps
    elif scenario == "multi-stream":
        s.multi_stream_samples_per_query = samples_per_query
        s.multi_stream_target_latency_percentile = percentile
        if expected_latency_ms:
            s.multi_stream_expected_latency_ns = int(expected_latency_ms * 1e6)
    elif expected_latency_ms:
        s.single_stream_expected_latency_ns = int(expected_latency_ms * 1e6)
    return s


def run_test(services: Sequence[Service], samples: int, settings, *, max_batch: int = 1,
             batch_timeout_s: float = 0.0, performance_samples: int = 1024) -> LoadResult:
    """One LoadGen test of `services` (one per worker) over sample indices 0 .. samples-1."""
    lg = loadgen()
    sut = _Sut(services, max_batch, batch_timeout_s)
    handle = lg.ConstructSUT(sut.issue, lambda: None)
    qsl = lg.ConstructQSL(samples, min(samples, performance_samples), lambda s: None, lambda s: None)
    try:
        with tempfile.TemporaryDirectory(prefix="vtk-loadgen-") as tmp:
            log = lg.LogSettings()
            log.log_output.outdir = tmp
            log.log_output.copy_summary_to_stdout = False
            log.enable_trace = True  # the per-sample latencies and issue delays are in the trace only
            with fine_timers():  # LoadGen issues from this thread: its sleeps until each scheduled time
                lg.StartTestWithLogSettings(handle, qsl, settings, log)
            result = _read_logs(Path(tmp))
    finally:
        sut.stop()
        lg.DestroyQSL(qsl)
        lg.DestroySUT(handle)
    if sut.error is not None:
        raise sut.error
    return result


def _detail(path: Path) -> dict:
    """LoadGen's detail log (':::MLLOG {json}' lines) as key -> value."""
    out = {}
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith(":::MLLOG "):
            entry = json.loads(line.removeprefix(":::MLLOG "))
            out[entry.get("key")] = entry.get("value")
    return out


def _trace(path: Path) -> tuple[list[float], list[float]]:
    """Every query's latency from its scheduled time (its slowest sample's: a multi-stream query is done when
    all its samples are) and its issue delay, in ms, in issue order, from the trace's 'Sample' begin events
    (one JSON object a line)."""
    queries: dict[int, list[float]] = {}
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith('{"name":"Sample"') and '"ph":"b"' in line:
            args = json.loads(line.rstrip(",")).get("args", {})
            done, late = queries.setdefault(args["query_seq"], [0.0, args["issue_start_ns"] / 1e6])
            queries[args["query_seq"]][0] = max(done, args["complete_ns"] / 1e6)
    ordered = [queries[k] for k in sorted(queries)]
    return [done for done, _ in ordered], [late for _, late in ordered]


def _summary_ms(values: list[float]) -> dict:
    ms = sorted(values)
    pick = lambda q: ms[min(len(ms) - 1, int(q * len(ms)))] if ms else None  # noqa: E731  (LoadGen's own rank)
    return {"n": len(ms), "p50": pick(0.5), "p99": pick(0.99), "max": ms[-1] if ms else None}


def _read_logs(folder: Path) -> LoadResult:
    d = _detail(folder / "mlperf_log_detail.txt")
    latencies, delays = _trace(folder / "mlperf_log_trace.json")
    ns = lambda key: None if d.get(key) is None else d[key] / 1e6  # noqa: E731
    latency = {"n": d.get("result_query_count"), "mean": ns("result_mean_latency_ns"),
               "min": ns("result_min_latency_ns"), "max": ns("result_max_latency_ns")}
    for key, value in d.items():  # result_99.90_percentile_latency_ns -> p99.9
        if key.startswith("result_") and key.endswith("_percentile_latency_ns"):
            latency["p" + f"{float(key.split('_')[1]):g}"] = value / 1e6
    checks = {name: d.get(key) for name, key in (
        ("min duration", "result_min_duration_met"), ("min queries", "result_min_queries_met"),
        ("early stopping", "early_stopping_met"), ("latency constraint", "result_perf_constraints_met"))}
    target = d.get("effective_target_latency_ns")
    return LoadResult(
        validity=str(d.get("result_validity", "INVALID")), checks=checks,
        early_stopping=" ".join(str(d.get("early_stopping_result", "")).split()),
        queries=int(d.get("result_query_count") or 0),
        scheduled_qps=d.get("result_scheduled_samples_per_sec"),
        completed_qps=next((d[k] for k in ("result_completed_samples_per_sec", "result_samples_per_second",
                                           "result_qps_with_loadgen_overhead") if d.get(k) is not None), None),
        latency_ms=latency, target_latency_ms=None if target is None else target / 1e6,
        target_percentile=d.get("effective_target_latency_percentile"),
        lateness_ms=_summary_ms(delays), latencies_ms=[round(v, 6) for v in latencies],
        issue_delays_ms=[round(v, 6) for v in delays])
