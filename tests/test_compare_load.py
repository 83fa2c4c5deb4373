"""vtk compare on the LoadGen sections of hand-made bench files: peak rates, percentiles and verdicts of both
files side by side, the honest-percentile rule, and damaged sections. Nothing is timed."""

from __future__ import annotations

import json

import pytest

from tests.test_compare import _compare, _report, _row, _samples, _write


def _load_row(runtime, peak, p99, *, queries=1000, validity="VALID", threads=1, budget=1.0, checks=None,
              status="ok"):
    """A server row of `vtk bench --scenario server --slo p99=<budget>ms` as bench.json holds it."""
    if status != "ok":
        return {"runtime": runtime, "precision": "fp32", "provider": "cpu", "threads": threads,
                "scenario": "server", "workers": 1, "max_batch": 1, "status": status,
                "reason": "ProviderError: no GPU"}
    return {"runtime": runtime, "precision": "fp32", "provider": "cpu", "threads": threads, "scenario": "server",
            "workers": 1, "max_batch": 1, "batch_timeout_ms": 1.0, "status": "ok", "validity": validity,
            "checks": checks or {"min duration": True, "min queries": True, "early stopping": True,
                                 "latency constraint": validity == "VALID"},
            "queries": queries, "target_qps": peak or 10.0, "completed_qps": peak or 10.0,
            "latency_ms": {"n": queries, "mean": p99 / 2, "p50": p99 / 3, "p99": p99},
            "lateness_ms": {"n": queries, "p50": 0.01, "p99": 0.05, "max": 0.1},
            "slo": {"percentile": 0.99, "budget_ms": budget, "peak_qps": peak, "probes": []},
            "latencies_ms": None, "issue_delays_ms": None}


def _bench(tmp_path, name, load_rows, *, min_s=1.0):
    report = _report([_row(samples=_samples(1))])
    if load_rows is not None:
        report["load"] = {"scenario": "server", "options": {"min_duration_s": min_s}, "rows": load_rows}
    return _write(tmp_path / name, report)


def _table(output):
    return [line for line in output.splitlines() if line[:1] in "┏┃┡│└"]


def _cells(output):
    return [[c.strip() for c in line.split("│")[1:-1]] for line in output.splitlines() if line.startswith("│")]


def test_peak_rates_percentiles_and_verdicts_sit_side_by_side(tmp_path):
    old = _bench(tmp_path, "old.json", [_load_row("onnx", 2000.0, 0.8), _load_row("openvino", 1500.0, 0.9),
                                        _load_row("eager", None, 3.0, validity="INVALID")])
    new = _bench(tmp_path, "new.json", [_load_row("onnx", 2500.0, 0.7), _load_row("openvino", 1400.0, 0.95,
                                                                                      queries=300),
                                        _load_row("eager", 100.0, 0.99)])
    res = _compare(old, new, "--wide")
    assert res.exit_code == 0, res.output
    assert "LoadGen server, old then new: peak rate with p99 <= 1 ms" in res.output
    cells = {(c[0], c[4]): c[5:] for c in _cells(res.output) if len(c) == 10}  # the load table's rows
    assert cells[("onnx", "old")] == ["2,000", "", "0.267", "0.800", "VALID"]
    assert cells[("onnx", "new")] == ["2,500", "1.25", "0.233", "0.700", "VALID"]
    assert cells[("openvino", "new")] == ["1,400", "0.93", "0.317", "n<662", "VALID"]  # 300 queries: no p99
    assert cells[("eager", "old")] == ["-", "", "1.000", "3.000", "INVALID"]  # no rate met the budget
    assert cells[("eager", "new")][:2] == ["100", ""]  # no old peak: no ratio
    assert ("eager/cpu/t1/server w1 b1, old: INVALID (latency constraint not met); no rate met p99 <= 1 ms; its "
            "figures are at 10/s, the slowest rate tried") in res.output
    assert "inside the search's step" in res.output and "n<662 where a row has too few queries" in res.output

    data = json.loads(_compare(old, new, "--json").output)["load"]
    rows = {r["key"]: r for r in data["rows"]}
    assert rows["onnx/cpu/t1/server w1 b1"]["peak_ratio"] == pytest.approx(1.25)
    assert rows["onnx/cpu/t1/server w1 b1"]["new"]["p99_ms"] == 0.7
    assert rows["openvino/cpu/t1/server w1 b1"]["new"]["p99_ms"] is None  # below the bound: no figure
    assert rows["openvino/cpu/t1/server w1 b1"]["new"]["p50_ms"] == pytest.approx(0.95 / 3)  # 300 >= 11
    assert rows["eager/cpu/t1/server w1 b1"]["old"]["validity"] == "INVALID"
    assert rows["eager/cpu/t1/server w1 b1"]["peak_ratio"] is None


def test_rows_on_one_side_a_missing_section_and_a_changed_budget_are_said(tmp_path):
    old = _bench(tmp_path, "old.json", [_load_row("onnx", 2000.0, 0.8), _load_row("eager", 50.0, 0.9)])
    new = _bench(tmp_path, "new.json", [_load_row("onnx", 2100.0, 1.6, budget=2.0, threads=1),
                                        _load_row("openvino", None, 0.1, status="failed")], min_s=0.5)
    res = _compare(old, new)
    assert res.exit_code == 0, res.output
    assert "LoadGen rows only in the old file: eager/cpu/t1/server w1 b1" in res.output
    assert "LoadGen rows only in the new file: openvino/cpu/t1/server w1 b1" in res.output
    assert "the latency budget differs: p99 <= 1 ms in the old file, p99 <= 2 ms in the new" in res.output
    assert "LoadGen's shortest test differs: 1 s in the old file, 0.5 s in the new" in res.output
    closed = _bench(tmp_path, "closed.json", None)
    res = _compare(closed, new)
    assert res.exit_code == 0 and "only the new file has LoadGen rows" in res.output
    assert "LoadGen server" not in res.output  # nothing to set side by side: no table
    res = _compare(closed, closed)
    assert res.exit_code == 0 and "LoadGen" not in res.output
    assert json.loads(_compare(closed, closed, "--json").output)["load"] is None


def test_a_fixed_rate_row_compares_its_rate_and_a_row_that_did_not_run_says_why(tmp_path):
    plain = _load_row("onnx", 500.0, 0.5)
    plain["slo"] = None
    old = _bench(tmp_path, "old.json", [plain, _load_row("openvino", 800.0, 0.5)])
    new = _bench(tmp_path, "new.json", [plain | {"latency_ms": {"p50": 0.2, "p99": 0.6}},
                                        _load_row("openvino", None, 0.1, status="failed")])
    res = _compare(old, new, "--wide")
    assert res.exit_code == 0, res.output
    assert "openvino/cpu/t1/server w1 b1, new: failed: ProviderError: no GPU" in res.output
    assert "peak/s" in res.output  # the openvino row searched a peak in the old file
    assert "onnx/cpu/t1/server w1 b1, old: ran at 500/s as asked; no peak searched (no --slo)" in res.output


@pytest.mark.parametrize("damage", [
    lambda load: load.update(rows="none"),
    lambda load: load["rows"].append({"runtime": "onnx"}),
    lambda load: load["rows"][0]["latency_ms"].update(p99="fast"),
    lambda load: load["rows"][0]["slo"].update(peak_qps=-3),
    lambda load: load["rows"][0].update(checks=["early stopping"]),
])
def test_a_damaged_load_section_is_one_line(tmp_path, damage):
    good = _bench(tmp_path, "good.json", [_load_row("onnx", 2000.0, 0.8)])
    report = json.loads((tmp_path / "good.json").read_text())
    damage(report["load"])
    bad = _write(tmp_path / "bad.json", report)
    res = _compare(good, bad)
    assert res.exit_code == 1 and "Traceback" not in res.output and len(res.output.strip().splitlines()) == 1
    assert "bad.json" in res.output and "give a file `vtk bench` wrote" in res.output


def test_the_load_table_fits_80_columns(tmp_path, monkeypatch):
    from vtk_vision.cli import app

    monkeypatch.setattr(app.SafeConsole, "is_terminal", property(lambda self: True))  # CliRunner: no tty
    monkeypatch.setattr(app.console, "width", 80)
    rows = [_load_row(rt, 12345.0, 0.8, threads=t) for rt in ("torchscript", "openvino") for t in (1, 2)]
    old = _bench(tmp_path, "old.json", rows)
    new = _bench(tmp_path, "new.json", [r | {"runtime": r["runtime"], "precision": "int8"} for r in rows] + rows)
    res = _compare(old, new)
    assert res.exit_code == 0, res.output
    table = _table(res.output)
    assert table and max(len(line) for line in table) <= 80 and "…" not in res.output
