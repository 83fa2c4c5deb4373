"""Does vtk's LoadGen harness see queueing? An M/D/1 check against Pollaczek-Khinchine.

    .venv/bin/python scripts/bench_load.py            # 500/s Poisson, 1 ms fixed service, 5 s
    .venv/bin/python scripts/bench_load.py --qps 800 --seconds 10

A stub runner that takes a fixed 1 ms per query, driven by LoadGen's server
scenario (Poisson arrivals at 500/s, one worker), is an M/D/1 queue at
utilisation rho = 0.5. Pollaczek-Khinchine gives its mean time in system:

    W = S + rho * S / (2 * (1 - rho)) = 1.0 + 0.5 = 1.5 ms

A closed loop (one call after another) would say 1.0 ms: the queue is what it
cannot see. The check passes when LoadGen's mean is within 15% of W. On a busy
host the stub's own service stretches and varies (an M/G/1 queue then), so the
script also prints W from the service times really taken, E[S] + lambda E[S^2]
/ (2 (1 - rho)), which tells a busy host from a wrong harness. The service
waits in `time.sleep` without spinning: a spin holds the GIL that LoadGen's
issuing thread needs to hand over the next query, and made the issue delay
worse here. This is a script, not a test: its figures depend on how busy the
machine is, and it prints LoadGen's own issue delay so a busy host shows as such.
"""

from __future__ import annotations

import argparse
import statistics
import time

from vtk_vision.bench.loadgen_sut import run_test, test_settings


def stub(service_ms: float, taken: list[float]):
    """A runner that takes `service_ms` per batch and records what it really took."""
    def service(idx: list[int]) -> None:
        t0 = time.perf_counter()
        time.sleep(max(0.0, service_ms / 1e3 - 5e-5))  # a sleep overshoots by ~50 us on Linux
        taken.append((time.perf_counter() - t0) * 1e3)
    return service


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--qps", type=float, default=500.0)
    ap.add_argument("--service-ms", type=float, default=1.0)
    ap.add_argument("--seconds", type=float, default=5.0)
    args = ap.parse_args()
    taken: list[float] = []
    settings = test_settings("server", min_duration_s=args.seconds, min_queries=662, max_duration_s=10 * args.seconds,
                             qps=args.qps, target_latency_ms=100.0)
    r = run_test([stub(args.service_ms, taken)], 1024, settings)
    s = statistics.fmean(taken)
    rho = args.qps * s / 1e3
    # Pollaczek-Khinchine for M/G/1 from the service the stub really took: W = E[S] + lambda E[S^2] / (2 (1 - rho))
    measured = s + (args.qps / 1e3) * statistics.fmean(t * t for t in taken) / (2 * (1 - rho)) if rho < 1 else None
    nominal_rho = args.qps * args.service_ms / 1e3
    predicted = args.service_ms * (1 + nominal_rho / (2 * (1 - nominal_rho)))  # M/D/1 at the nominal service
    mean = r.latency_ms["mean"]
    off = mean / predicted - 1
    print(f"LoadGen server, {args.qps:g}/s Poisson, one worker, stub service {args.service_ms:g} ms, "
          f"{r.queries:,} queries, verdict {r.validity}")
    print(f"  service the stub really took: mean {s:.4f} ms (rho {rho:.3f})")
    print(f"  mean latency from the scheduled time: {mean:.4f} ms; p50 {r.latency_ms['p50']:.4f}, "
          f"p99 {r.latency_ms['p99']:.4f} ms")
    print(f"  M/D/1 (Pollaczek-Khinchine) at {args.service_ms:g} ms: {predicted:.4f} ms; M/G/1 from the service "
          f"really taken: {'overloaded' if measured is None else f'{measured:.4f} ms'}; a closed loop would say "
          f"{s:.4f} ms")
    print(f"  LoadGen's issue delay (its own lateness): p50 {r.lateness_ms['p50']:.4f}, "
          f"p99 {r.lateness_ms['p99']:.4f}, max {r.lateness_ms['max']:.4f} ms")
    floor = run_test([stub(0.0, [])], 1024, settings)  # the same schedule through a stub that takes no time
    print(f"  the harness's own floor (a stub taking no time, same schedule): mean {floor.latency_ms['mean']:.4f}, "
          f"p50 {floor.latency_ms['p50']:.4f} ms")
    print(f"  mean / M/D/1 = {mean / predicted:.3f}: {'within' if abs(off) <= 0.15 else 'OUTSIDE'} 15%"
          + ("" if measured is None else f"; mean / M/G/1 from the service really taken = {mean / measured:.3f}"))


if __name__ == "__main__":
    main()
