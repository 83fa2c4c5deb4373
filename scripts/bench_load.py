"""Does vtk's LoadGen harness see queueing? An M/D/1 check against Pollaczek-Khinchine.

    .venv/bin/python scripts/bench_load.py            # 500/s Poisson, 1 ms fixed service, 5 s
    .venv/bin/python scripts/bench_load.py --qps 800 --seconds 10 --runs 3

A stub runner that takes a fixed 1 ms per query, driven by LoadGen's server
scenario (Poisson arrivals at 500/s, one worker), is an M/D/1 queue at
utilisation rho = 0.5. Pollaczek-Khinchine gives its mean time in system:

    W = S + rho * S / (2 * (1 - rho)) = 1.0 + 0.5 = 1.5 ms

A closed loop (one call after another) would say 1.0 ms: the queue is what it
cannot see. The check passes when LoadGen's mean is within 15% of W. Nothing
is subtracted from LoadGen's mean: what the harness adds is measured apart and
printed beside it, never taken off.

The stub sleeps (a spin would hold the GIL that LoadGen's issuing thread needs
to hand over the next query) towards an absolute deadline, shortened by the
median oversleep measured on this host before the test (a sleep ends late by
the time the kernel takes to wake the thread), and records the service it
really took: on a busy host that service stretches and varies (an M/G/1 queue
then), so the script also prints W from the service times really taken,
E[S] + lambda E[S^2] / (2 (1 - rho)).

The harness's own floor is the same schedule through a stub that takes no
time, split into its stages from timestamps taken around vtk's SUT (a
perf_counter call per query, in this script only): LoadGen waking on its
schedule (its issue delay), LoadGen's call into Python (taking the GIL,
converting the query) plus the completion call back, and the hand-off through
the queue to the sleeping worker thread. The load average is printed with
every run: the machine may be shared, and a busy host shows in every figure.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import vtk_vision.bench.loadgen_sut as sut_module
from vtk_vision.bench.loadgen_sut import fine_timers, run_test, test_settings


def oversleep_s(n: int = 200, request_s: float = 1e-3) -> float:
    """The median time a sleep of `request_s` ends late here, with the harness's fine timers."""
    late = []
    with fine_timers():
        for _ in range(n):
            t0 = time.perf_counter()
            time.sleep(request_s)
            late.append(time.perf_counter() - t0 - request_s)
    return max(0.0, statistics.median(late))


def stub(service_ms: float, early_s: float, taken: list[float]):
    """A runner that takes `service_ms` per batch (sleeping to a deadline) and records what it really took."""
    def service(idx: list[int]) -> None:
        t0 = time.perf_counter()
        left = t0 + service_ms / 1e3 - early_s - time.perf_counter()
        if left > 0:
            time.sleep(left)
        taken.append((time.perf_counter() - t0) * 1e3)
    return service


class _Timed(sut_module._Sut):
    """vtk's SUT with a timestamp when LoadGen's call reaches Python (the script's instrumentation only)."""

    entered: list[int] = []

    def issue(self, samples) -> None:
        _Timed.entered.append(time.perf_counter_ns())
        super().issue(samples)


def floor_breakdown(settings) -> tuple:
    """The same schedule through a stub that takes no time: (result, entry+complete us, hand-off us), per query."""
    picked: list[int] = []
    _Timed.entered = []
    plain, sut_module._Sut = sut_module._Sut, _Timed
    try:
        r = run_test([lambda idx: picked.append(time.perf_counter_ns())], 1024, settings)
    finally:
        sut_module._Sut = plain
    # one worker, one sample a query: the i-th pickup is the i-th query's, the i-th entry too (FIFO)
    hand = [(p - e) / 1e3 for e, p in zip(_Timed.entered, picked)]
    entry = [(lat - late) * 1e3 - h for lat, late, h in zip(r.latencies_ms, r.issue_delays_ms, hand)]
    return r, entry, hand


def _q(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def one_run(args, early_s: float) -> float:
    taken: list[float] = []
    settings = test_settings("server", min_duration_s=args.seconds, min_queries=662, max_duration_s=10 * args.seconds,
                             qps=args.qps, target_latency_ms=100.0)
    load_before = os.getloadavg()[0]
    r = run_test([stub(args.service_ms, early_s, taken)], 1024, settings)
    s = statistics.fmean(taken)
    rho = args.qps * s / 1e3
    # Pollaczek-Khinchine for M/G/1 from the service the stub really took: W = E[S] + lambda E[S^2] / (2 (1 - rho))
    measured = s + (args.qps / 1e3) * statistics.fmean(t * t for t in taken) / (2 * (1 - rho)) if rho < 1 else None
    nominal_rho = args.qps * args.service_ms / 1e3
    predicted = args.service_ms * (1 + nominal_rho / (2 * (1 - nominal_rho)))  # M/D/1 at the nominal service
    mean = r.latency_ms["mean"]
    floor, entry, hand = floor_breakdown(settings)
    print(f"LoadGen server, {args.qps:g}/s Poisson, one worker, stub service {args.service_ms:g} ms, "
          f"{r.queries:,} queries, verdict {r.validity}; load average {load_before:.2f} before, "
          f"{os.getloadavg()[0]:.2f} after ({os.cpu_count()} CPUs)")
    print(f"  service the stub really took: mean {s:.4f} ms, sd {statistics.pstdev(taken):.4f} (rho {rho:.3f}); "
          f"it slept {early_s * 1e3:.3f} ms short of each deadline for the oversleep measured first")
    print(f"  mean latency from the scheduled time: {mean:.4f} ms; p50 {r.latency_ms['p50']:.4f}, "
          f"p99 {r.latency_ms['p99']:.4f} ms")
    print(f"  M/D/1 (Pollaczek-Khinchine) at {args.service_ms:g} ms: {predicted:.4f} ms; M/G/1 from the service "
          f"really taken: {'overloaded' if measured is None else f'{measured:.4f} ms'}; a closed loop would say "
          f"{s:.4f} ms")
    print(f"  LoadGen's issue delay (its own lateness): p50 {r.lateness_ms['p50']:.4f}, "
          f"p99 {r.lateness_ms['p99']:.4f}, max {r.lateness_ms['max']:.4f} ms")
    print(f"  the harness's own floor (a stub taking no time, same schedule): mean {floor.latency_ms['mean']:.4f}, "
          f"p50 {floor.latency_ms['p50']:.4f} ms; p50 of its stages: LoadGen's wake-up "
          f"{floor.lateness_ms['p50'] * 1e3:.0f} us, its call into Python and the completion {_q(entry, 0.5):.0f} us, "
          f"hand-off to the worker {_q(hand, 0.5):.0f} us")
    print(f"  mean / M/D/1 = {mean / predicted:.3f}: {'within' if abs(mean / predicted - 1) <= 0.15 else 'OUTSIDE'} "
          f"15%" + ("" if measured is None else f"; mean / M/G/1 from the service really taken = {mean / measured:.3f}"))
    return mean / predicted


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--qps", type=float, default=500.0)
    ap.add_argument("--service-ms", type=float, default=1.0)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--runs", type=int, default=1)
    args = ap.parse_args()
    early_s = min(oversleep_s(), args.service_ms / 2e3)
    ratios = [one_run(args, early_s) for _ in range(args.runs)]
    if len(ratios) > 1:
        print(f"mean / M/D/1 over {len(ratios)} runs: {', '.join(f'{x:.3f}' for x in ratios)}")


if __name__ == "__main__":
    main()
