"""Latency under load: the percentile bound, cold calls after an idle gap, and MLPerf LoadGen's scenarios.

No timing is judged here: the M/D/1 check of the load generator is scripts/bench_load.py, which prints
figures. Validity and the percentile rule are checked on latencies the tests inject.
"""

from __future__ import annotations

import pytest
from vtk_vision.bench.percentiles import min_samples, shown, trusted


def _binomial_tail(n: int, q: float) -> float:
    """P(at most one of n calls above the q percentile), summed term by term, not by the module's formula."""
    from math import comb

    return sum(comb(n, k) * (1 - q) ** k * q ** (n - k) for k in (0, 1))


@pytest.mark.parametrize(("q", "loadgen"), [(0.9, 64), (0.99, 662), (0.999, 6636)])
def test_the_bound_is_loadgens_early_stopping_minimum(q, loadgen):
    # the figures LoadGen prints: "Need to process at least 662 queries for early stopping"
    assert min_samples(q) == loadgen
    n = min_samples(q)
    assert _binomial_tail(n, q) <= 0.01 < _binomial_tail(n - 1, q)  # the smallest such count


def test_a_percentile_from_too_few_calls_is_no_figure():
    assert shown(0.0312, 662, 0.99) == "0.0312" and shown(0.0312, 661, 0.99) == "n<662"
    assert shown(1.5, 63, 0.9, ".2f") == "n<64" and shown(1.5, 64, 0.9, ".2f") == "1.50"
    assert shown(None, 10_000, 0.99) == "-" and shown(1.0, None, 0.5) == "n?"  # not measured; count unknown
    assert not trusted(True, 0.5) and not trusted("700", 0.99)  # a damaged count is no count
    with pytest.raises(ValueError):
        min_samples(1.0)


def test_bench_tables_compare_and_the_report_hide_untrusted_percentiles():
    from vtk_vision.bench.compare import change_rows, compare_reports
    from vtk_vision.bench.report import table_rows
    from vtk_vision.inspection.report_bench import _lookup

    def row(n):
        samples = [0.01 * (1 + i % 7) for i in range(n)]
        ordered = sorted(samples)
        lat = {"n": n, "p50": ordered[(n - 1) // 2], "p90": ordered[-(-9 * n // 10) - 1],
               "p99": ordered[-(-99 * n // 100) - 1], "spread": 1.4}
        return {"runtime": "onnx", "provider": "cpu", "batch": 1, "threads": 1, "status": "ok", "reason": None,
                "size_bytes": 1000, "accuracy": None, "latency_ms": lat, "images_per_s": 1.0, "samples_ms": samples}

    few, many = row(80), row(700)
    report = {"environment": {"threads": [1]}, "rows": [few, many]}
    cells = table_rows(report)
    assert cells[0][8:11] == [f"{few['latency_ms']['p50']:.4f}", "1.40", "n<662"]
    assert cells[1][10] == f"{many['latency_ms']['p99']:.4f}"
    assert _lookup(few, "latency", "p99") == "n<662" and _lookup(many, "latency", "p99") == many["latency_ms"]["p99"]
    tiny = row(5)
    changed = change_rows(compare_reports({"rows": [tiny]}, {"rows": [many]}))[0]
    assert changed[4] == "n<11" and changed[5] == f"{many['latency_ms']['p50']:.4f}"


def test_min_iters_defaults_to_the_p90_bound():
    from vtk_vision.bench.rows import Timing
    from vtk_vision.bench.run import BenchOptions

    assert BenchOptions().min_iters == Timing().min_iters == min_samples(0.9) == 64


def test_every_closed_loop_row_times_the_first_call_after_each_idle_gap(monkeypatch):
    import time

    from tests.test_bench import _fake_runtime, _time
    from vtk_vision.bench.report import cold_line, table_rows

    idle: list[float] = []  # the idle time before each call, seen from inside the runtime
    last = [time.perf_counter()]

    def call():
        now = time.perf_counter()
        idle.append(now - last[0])
        last[0] = now

    _fake_runtime(monkeypatch, "idle", lambda: call)
    (row,) = [r.to_dict() for r in _time("idle", max_spread=100, cold_gaps_s=(0.01, 0.05), cold_repeats=2)]
    assert set(row["cold_ms"]) == {"after_10ms", "after_50ms"}
    assert sorted(idle)[-4:-2] >= [0.01, 0.01] and sorted(idle)[-2:] >= [0.05, 0.05]  # 2 calls after each gap
    ratio = row["cold_ms"]["after_50ms"] / row["latency_ms"]["p50"]
    report = {"environment": {"threads": [1]}, "rows": [row | {"cold_ms": row["cold_ms"] | {"after_100ms": 1.0}}]}
    assert table_rows(report)[0][-1] == f"{1.0 / row['latency_ms']['p50']:.1f}x"
    assert f"after 50ms idle {ratio:.1f}-{ratio:.1f}x" in cold_line(report)
    (quiet,) = [r.to_dict() for r in _time("idle", max_spread=100, cold_repeats=0)]
    assert quiet["cold_ms"] is None and table_rows({"rows": [quiet]})[0][-1] == "-"
