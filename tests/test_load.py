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


# ------------------------------------------------ LoadGen's verdict on stub services whose latency is injected
def _stub_test(scenario: str, service_s: float, **settings):
    import time

    from vtk_vision.bench.loadgen_sut import run_test, test_settings

    kw = {"min_duration_s": 0.2, "min_queries": 100, "max_duration_s": 20.0} | settings
    return run_test([lambda idx: time.sleep(service_s)], 64, test_settings(scenario, **kw))


def test_a_generous_budget_is_valid_and_every_query_latency_is_kept():
    r = _stub_test("server", 0.0, qps=200, target_latency_ms=1000, min_queries=662)
    assert r.validity == "VALID" and all(r.checks[k] for k in ("min duration", "min queries", "early stopping"))
    assert r.queries == len(r.latencies_ms) == len(r.issue_delays_ms) >= 662
    assert r.latency_ms["p99"] <= 1000 and r.target_latency_ms == 1000 and r.target_percentile == 0.99
    assert r.lateness_ms["n"] == r.queries and 0 <= r.lateness_ms["p50"] <= r.lateness_ms["max"]


def test_queries_slower_than_the_budget_are_invalid_for_the_latency_constraint():
    r = _stub_test("server", 0.02, qps=20, target_latency_ms=5, min_queries=30)  # every query at least 20 ms
    assert r.validity == "INVALID" and r.checks["latency constraint"] is False and r.checks["early stopping"] is False
    assert min(r.latencies_ms) >= 20 and r.latency_ms["p50"] >= 20  # from the scheduled time: at least the service


def test_too_few_queries_for_early_stopping_are_invalid():
    r = _stub_test("single-stream", 0.002, min_queries=10, max_duration_s=0.05, min_duration_s=0.01)
    assert r.queries <= 25 and r.validity == "INVALID" and r.checks["early stopping"] is False  # 64 needed
    assert "64 queries" in r.early_stopping  # LoadGen's own words: "Need to process at least 64 queries"
    multi = _stub_test("multi-stream", 0.0, min_queries=100, min_duration_s=0.05, samples_per_query=4)
    assert multi.queries < 662 and multi.checks["early stopping"] is False and multi.validity == "INVALID"


def test_the_peak_search_brackets_the_edge_within_five_percent():
    from vtk_vision.bench.loadgen_scenarios import search_peak
    from vtk_vision.bench.loadgen_sut import LoadResult

    def fake(edge):
        def probe(qps):
            return LoadResult("VALID" if qps <= edge else "INVALID", {}, "", 1, qps, qps, {"p99": 1.0}, 1.0, 0.99,
                              {"p99": 0.0})
        return probe

    for start in (100.0, 5_000.0, 1234.0):
        peak, result, probes = search_peak(fake(1234.0), start, floor_qps=10)
        failing = min(p["qps"] for p in probes if p["validity"] == "INVALID")
        assert peak <= 1234 < failing <= peak * 1.05 + 1e-3 and result.validity == "VALID" and len(probes) <= 16
    peak, result, probes = search_peak(fake(5.0), 1000.0, floor_qps=10)  # nothing at or above the floor passes
    assert peak is None and result.validity == "INVALID" and min(p["qps"] for p in probes) >= 10


def test_load_options_refuse_what_does_not_fit():
    from vtk_vision.bench.loadgen_scenarios import LoadOptions
    from vtk_vision.core.errors import VtkError

    with pytest.raises(VtkError, match="--scenario server"):
        LoadOptions("offline", slo_ms=1.0)
    assert LoadOptions("multi-stream").batch == 8 and LoadOptions("server").min_queries == 662
    assert LoadOptions("single-stream").min_queries == 64 and LoadOptions("offline", max_batch=4).batch == 4


@pytest.mark.parametrize(("args", "says"), [
    (["--slo", "p99=1ms"], "go with --scenario"),
    (["--scenario", "offline", "--slo", "p99=1ms"], "go with --scenario server"),
    (["--scenario", "server", "--slo", "p99=1ms", "--qps", "5"], "not both"),
    (["--scenario", "server", "--slo", "99=1ms"], "not a budget like p99=1ms"),
    (["--scenario", "server", "--batch-timeout", "soon"], "not a time"),
])
def test_bad_load_options_are_one_line_and_exit_2(args, says, tmp_path):
    from click.testing import CliRunner
    from vtk_vision.cli import cli

    res = CliRunner().invoke(cli, ["bench", str(tmp_path / "no-run"), *args], obj={})
    assert res.exit_code == 2 and says in res.output and "Traceback" not in res.output
    assert list(tmp_path.iterdir()) == []


def test_a_real_server_row_on_lenet5(trained_run, shared_data, tmp_path, monkeypatch):
    """LeNet-5 through ONNX Runtime under LoadGen's server scenario, short: the row's shape, not its speed."""
    import json
    import shutil

    from click.testing import CliRunner
    from vtk_vision.cli import cli

    monkeypatch.setenv("VTK_DATA_DIR", str(shared_data))
    run = tmp_path / trained_run.name
    shutil.copytree(trained_run, run)
    res = CliRunner().invoke(cli, ["bench", str(run), "--runtime", "onnx", "--threads", "1", "--batch-sizes", "1",
                                   "--min-s", "0.05", "--warmup-s", "0", "--scenario", "server", "--qps", "1000",
                                   "--load-s", "0.2", "--max-batch", "4"], obj={})
    assert res.exit_code == 0, res.output
    assert "LoadGen server" in res.output and ("VALID" in res.output)
    report = json.loads((run / "bench.json").read_text())
    (row,) = report["load"]["rows"]
    assert row["status"] == "ok" and row["validity"] in ("VALID", "INVALID") and row["target_qps"] == 1000
    assert row["max_batch"] == 4 and row["queries"] == len(row["latencies_ms"]) >= 662
    assert row["accuracy"] == report["rows"][0]["accuracy"] and row["size_bytes"] == report["rows"][0]["size_bytes"]
    assert report["rows"][0]["cold_ms"]["after_100ms"] > 0
    assert not list(tmp_path.glob("mlperf_log*")) and not list(run.glob("mlperf_log*"))  # logs went to a temp dir


def test_the_report_shows_the_load_rows_and_survives_a_damaged_section():
    from vtk_vision.inspection.report_bench import _load

    row = {"runtime": "onnx", "precision": "fp32", "provider": "cpu", "threads": 1, "scenario": "server",
           "workers": 1, "max_batch": 8, "status": "ok", "validity": "VALID", "checks": {"early stopping": True},
           "queries": 700, "target_qps": 1052.4, "completed_qps": 1037.0, "latency_ms": {"p50": 3.1, "p99": 11.7},
           "lateness_ms": {"p99": 9.7}, "slo": {"percentile": 0.99, "budget_ms": 20.0, "peak_qps": 1052.4}}
    page = _load({"scenario": "server", "settings_note": "short runs", "rows": [row, row | {"queries": 80}]})
    assert "LoadGen server: peak rate with p99 &lt;= 20 ms" in page and "1,052" in page and "11.700" in page
    assert "n&lt;662" in page and "the generator was late" in page  # 80 queries: no p99; 9.7 of 11.7 ms late
    assert _load(None) == "" and "unreadable" in _load({"rows": [{"runtime": "onnx"}]})


def test_the_python_api_refuses_a_load_that_is_not_load_options():
    from vtk_vision.bench.run import BenchOptions
    from vtk_vision.core.errors import VtkError

    with pytest.raises(VtkError, match="load must be a LoadOptions"):
        BenchOptions(load={"scenario": "server"})


@pytest.mark.skipif(not __import__("sys").platform.startswith("linux"), reason="timer slack is Linux's")
def test_loadgen_and_the_workers_sleep_with_a_fine_timer_and_the_thread_gets_its_own_back():
    import ctypes
    import threading

    from vtk_vision.bench.loadgen_sut import PR_GET_TIMERSLACK, fine_timers

    libc = ctypes.CDLL(None)
    slack = lambda: libc.prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0)  # noqa: E731
    before, seen = slack(), []
    with fine_timers():
        inside = slack()
        t = threading.Thread(target=lambda: seen.append(slack()))  # LoadGen's threads start inside StartTest
        t.start()
        t.join()
    assert inside == 1 and seen == [1] and slack() == before


def test_dynamic_batching_runs_queued_queries_together_up_to_max_batch():
    from vtk_vision.bench.loadgen_sut import run_test, test_settings

    sizes: list[int] = []
    settings = test_settings("offline", min_duration_s=0.05, min_queries=1, max_duration_s=5.0, qps=2000)
    r = run_test([lambda idx: sizes.append(len(idx))], 64, settings, max_batch=8, batch_timeout_s=0.001)
    # offline: one query of 1.1 x 0.05 s x 2,000/s = 110 samples, all queued at once (here: 13 batches of 8, then 6)
    assert r.queries == 1 and sum(sizes) == 110 and max(sizes) == 8 and len(sizes) < 110 // 4


def test_the_load_table_keeps_the_verdict_to_a_word_and_says_the_rest_under_it():
    from vtk_vision.bench.load_report import load_table, verdict_notes

    ok = {"runtime": "onnx", "precision": "fp32", "provider": "cpu", "threads": 1, "scenario": "server", "workers": 1,
          "max_batch": 1, "status": "ok", "validity": "VALID", "checks": {"early stopping": True}, "queries": 700,
          "target_qps": 900.0, "completed_qps": 890.0, "latency_ms": {"p50": 0.5, "p99": 0.9},
          "lateness_ms": {"p99": 0.1}, "slo": {"percentile": 0.99, "budget_ms": 1.0, "peak_qps": 900.0,
                                               "probes": [{"qps": 900.0}]}}
    missed = ok | {"runtime": "eager", "validity": "INVALID", "target_qps": 22.1,
                   "checks": {"early stopping": False, "latency constraint": False, "min duration": True},
                   "slo": {"percentile": 0.99, "budget_ms": 1.0, "peak_qps": None,
                           "probes": [{"qps": 3600.0}, {"qps": 45.0}, {"qps": 22.1}]}}
    failed = {"runtime": "openvino", "precision": "int8", "provider": "cpu", "threads": 1, "scenario": "server",
              "workers": 1, "max_batch": 1, "status": "failed", "reason": "RuntimeError: no plugin"}
    _, columns, cells, _ = load_table({"scenario": "server", "rows": [ok, missed, failed]})
    assert [c[columns.index("verdict")] for c in cells] == ["VALID", "INVALID", "failed"]
    assert verdict_notes({"rows": [ok, missed, failed]}) == [
        "eager, 1 thr: INVALID (early stopping, latency constraint not met); no rate from 3,600/s down to 22/s met "
        "p99 <= 1 ms (3 LoadGen tests)",
        "openvino int8, 1 thr: failed: RuntimeError: no plugin"]
