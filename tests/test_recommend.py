"""vtk recommend on hand-made bench files: constraints, ties, the Pareto front, nothing fits, figures not
measured, bad input. Nothing is timed: every figure is written by the test."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from vtk_vision.cli import cli

REFERENCE = 0.90


def _row(runtime, p50, *, n=1000, size=100_000, accuracy=0.90, batch=1, threads=1, precision="fp32", spread=0.02,
         seed=0, samples=True):
    """A closed-loop row whose raw samples have median `p50` (ms) and a p99 near p50 * 1.5."""
    rng = np.random.default_rng(seed)
    ms = np.sort(p50 * (1 + spread * rng.standard_normal(n)))
    ms[-max(1, n // 100):] = p50 * 1.5
    ms = np.sort(ms)
    med = float(ms[(n - 1) // 2])
    return {"runtime": runtime, "provider": "cpu", "batch": batch, "precision": precision, "threads": threads,
            "status": "ok", "reason": None, "size_bytes": size, "accuracy": accuracy,
            "accuracy_delta": None if accuracy is None else accuracy - REFERENCE,
            "correct": None if accuracy is None else int(accuracy * 10_000),
            "latency_ms": {"n": n, "p50": med, "p90": float(ms[int(0.9 * n) - 1]),
                           "p99": float(ms[-(-99 * n // 100) - 1])},
            "images_per_s": batch / med * 1e3, "samples_ms": [float(v) for v in ms] if samples else None}


def _bench(tmp_path, rows, name="bench.json", load=None):
    report = {"model": {"name": "lenet5"}, "dataset": "fashion-mnist", "test_images": 10_000,
              "eager_cpu_accuracy": REFERENCE, "environment": {"threads": [1]}, "rows": rows}
    if load is not None:
        report["load"] = {"scenario": "server", "rows": load}
    path = tmp_path / name
    path.write_text(json.dumps(report))
    return path


def _vtk(*args):
    return CliRunner().invoke(cli, ["recommend", *map(str, args)], obj={})


def test_rows_missing_a_constraint_are_rejected_with_it_and_the_fastest_fit_is_shipped(tmp_path):
    path = _bench(tmp_path, [
        _row("onnx", 0.05, size=270_000),                        # too big
        _row("onnx", 0.07, precision="int8", size=90_000, accuracy=0.893, seed=1),  # loses 0.7 points
        _row("openvino", 0.10, size=150_000, seed=2),            # fits
        _row("torchscript", 0.20, size=150_000, accuracy=0.905, seed=3),  # fits, slower, more accurate
        _row("eager", 0.03, size=None, seed=4),                  # no file: size not measured
    ])
    res = _vtk(path, "--max-p99", "1ms", "--max-accuracy-drop", "0.3", "--max-size", "200KB")
    assert res.exit_code == 0, res.output
    assert "rejected onnx/cpu/b1/t1: size 270 KB > 200 KB" in res.output
    assert "rejected onnx int8/cpu/b1/t1: accuracy drop 0.70 pts > 0.3" in res.output
    assert "rejected eager/cpu/b1/t1: size not measured (no artifact file)" in res.output
    assert "ship openvino/cpu/b1/t1: of 2 rows meeting every constraint, the fastest" in res.output
    rec = json.loads(_vtk(path, "--max-p99", "1ms", "--max-accuracy-drop", "0.3", "--max-size", "200KB",
                          "--json").output)
    assert rec["pick"]["name"] == "openvino/cpu/b1/t1" and {r["row"] for r in rec["rejected"]} == {
        "onnx/cpu/b1/t1", "onnx int8/cpu/b1/t1", "eager/cpu/b1/t1"}
    # the slower, more accurate row is not beaten on every axis: it stays on the front
    assert [c["name"] for c in rec["front"]] == ["openvino/cpu/b1/t1", "torchscript/cpu/b1/t1"]


def test_the_pareto_front_drops_rows_beaten_on_every_axis(tmp_path):
    path = _bench(tmp_path, [_row("onnx", 0.05, size=100_000, accuracy=0.90),
                             _row("openvino", 0.09, size=120_000, accuracy=0.89, seed=1),   # beaten everywhere
                             _row("tflite", 0.12, size=50_000, accuracy=0.89, seed=2)])     # smallest: stays
    rec = json.loads(_vtk(path, "--json").output)
    assert [c["name"] for c in rec["front"]] == ["onnx/cpu/b1/t1", "tflite/cpu/b1/t1"]
    assert rec["pick"]["name"] == "onnx/cpu/b1/t1" and rec["rejected"] == []


def test_rows_the_same_speed_within_noise_tie_and_the_smaller_file_wins(tmp_path):
    path = _bench(tmp_path, [_row("onnx", 0.0500, size=270_000, seed=1),
                             _row("openvino", 0.0502, size=150_000, seed=2),       # same within noise, smaller
                             _row("torchscript", 0.0800, size=10_000, seed=3)])     # clearly slower
    res = _vtk(path)
    assert res.exit_code == 0 and "ship openvino/cpu/b1/t1: ties on speed with 1 other row" in res.output
    assert "smallest file (150 KB)" in res.output
    rec = json.loads(_vtk(path, "--json").output)
    assert set(rec["ties"]) == {"onnx/cpu/b1/t1", "openvino/cpu/b1/t1"}
    same_size = _bench(tmp_path, [_row("onnx", 0.0500, size=150_000, accuracy=0.89, seed=1),
                                  _row("openvino", 0.0502, size=150_000, accuracy=0.90, seed=2)], "same.json")
    assert json.loads(_vtk(same_size, "--json").output)["pick"]["name"] == "openvino/cpu/b1/t1"  # then accuracy


def test_nothing_fits_exits_1_naming_the_closest_row(tmp_path):
    near = _row("onnx", 0.5, size=270_000)
    path = _bench(tmp_path, [near, _row("openvino", 0.9, size=900_000, seed=1)])
    res = _vtk(path, "--max-p99", "0.5ms", "--max-size", "200KB")
    assert res.exit_code == 1
    last = res.output.strip().splitlines()[-1]
    assert last == (f"Error: nothing meets every constraint; closest: onnx/cpu/b1/t1 (p99 "
                    f"{near['latency_ms']['p99']:.3g} ms > 0.5 ms; size 270 KB > 200 KB)")
    assert "rejected openvino/cpu/b1/t1" in res.output and "Traceback" not in res.output


def test_figures_not_measured_are_one_sided(tmp_path):
    few = _bench(tmp_path, [_row("onnx", 0.05, n=200), _row("openvino", 0.06, accuracy=None, seed=1)], "few.json")
    res = _vtk(few, "--max-p99", "1ms")  # 200 calls: no p99 to hold against the budget
    assert res.exit_code == 0 and "rejected onnx/cpu/b1/t1: p99 not measured (n<662)" in res.output
    assert "ship openvino/cpu/b1/t1" in res.output
    res = _vtk(few, "--max-accuracy-drop", "0.3")
    assert "rejected openvino/cpu/b1/t1: accuracy not measured" in res.output and "ship onnx/cpu/b1/t1" in res.output
    # no constraint on accuracy: the unmeasured one cannot win on it, but it is not rejected either
    rec = json.loads(_vtk(few, "--json").output)
    assert rec["rejected"] == [] and rec["pick"]["name"] == "onnx/cpu/b1/t1"


def _server_row(runtime, peak, p99, *, size=100_000, accuracy=0.90, validity="VALID", queries=1000):
    return {"runtime": runtime, "precision": "fp32", "provider": "cpu", "threads": 1, "scenario": "server",
            "workers": 1, "max_batch": 1, "status": "ok", "validity": validity, "queries": queries,
            "target_qps": peak, "latency_ms": {"p50": p99 / 3, "p99": p99}, "accuracy": accuracy,
            "accuracy_delta": accuracy - REFERENCE, "size_bytes": size, "lateness_ms": {"p99": 0.1},
            "slo": {"percentile": 0.99, "budget_ms": 2.0, "peak_qps": peak, "probes": []}, "latencies_ms": None}


def test_the_server_scenario_chooses_by_peak_rate_and_min_qps(tmp_path):
    path = _bench(tmp_path, [_row("onnx", 0.05)], load=[
        _server_row("onnx", 900.0, 1.8), _server_row("openvino", 880.0, 1.5, size=50_000),  # within 5%: tie
        _server_row("eager", 400.0, 1.0, size=None), _server_row("torchscript", None, 9.0, validity="INVALID")])
    res = _vtk(path, "--scenario", "server", "--min-qps", "500", "--max-p99", "2ms")
    assert res.exit_code == 0, res.output
    assert "rejected eager/cpu/t1/server w1 b1: peak 400/s < 500/s" in res.output
    assert "rejected torchscript/cpu/t1/server w1 b1: p99 9 ms from a run LoadGen called INVALID; no rate met " \
        "p99 <= 2.0 ms" in res.output
    assert "ship openvino/cpu/t1/server w1 b1: ties on speed" in res.output and "peak rates within 5%" in res.output
    res = _vtk(_bench(tmp_path, [_row("onnx", 0.05)], "closed.json"), "--scenario", "server")
    assert res.exit_code == 1 and "holds no measured server rows; run `vtk bench --scenario server` first" in res.output


@pytest.mark.parametrize(("args", "code", "says"), [
    (["--min-qps", "500"], 2, "--min-qps goes with --scenario server"),
    (["--max-size", "big"], 2, "not a size"),
    (["--max-p99", "-1ms"], 2, "not a time"),
])
def test_bad_options_are_one_line_exit_2(tmp_path, args, code, says):
    res = _vtk(_bench(tmp_path, [_row("onnx", 0.05)]), *args)
    assert res.exit_code == code and says in res.output and "Traceback" not in res.output


@pytest.mark.parametrize("damage", [
    lambda r: r["rows"][0]["latency_ms"].update(p99="fast"),
    lambda r: r["rows"][0].update(size_bytes=-5),
    lambda r: r.update(load={"rows": "none"}),
    lambda r: r.update(load={"rows": [{"runtime": "onnx"}]}),
    lambda r: r.update(load={"rows": [_server_row("onnx", 900.0, 1.0) | {"latency_ms": {"p99": float("nan")}}]}),
])
def test_a_damaged_bench_file_is_one_line_exit_1_and_the_next_command_works(tmp_path, damage):
    good = _bench(tmp_path, [_row("onnx", 0.05)])
    report = json.loads(good.read_text())
    damage(report)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(report).replace("NaN", "1e999"))
    before = sorted(p.name for p in tmp_path.iterdir())
    res = _vtk(bad)
    assert res.exit_code == 1 and len(res.output.strip().splitlines()) == 1 and "bad.json" in res.output
    assert sorted(p.name for p in tmp_path.iterdir()) == before and _vtk(good).exit_code == 0


def test_a_run_without_a_bench_says_what_to_run(tmp_path):
    res = _vtk(tmp_path / "runs" / "nothing-here", "--runs-dir", tmp_path / "runs")
    assert res.exit_code == 1 and "Traceback" not in res.output and len(res.output.strip().splitlines()) == 1


def test_the_python_api_returns_the_same_record(tmp_path):
    import vtk_vision as vtk

    path = _bench(tmp_path, [_row("onnx", 0.05, size=270_000), _row("openvino", 0.10, size=150_000, seed=2)])
    rec = vtk.recommend(path, max_size_bytes=200_000)
    assert rec.pick.name == "openvino/cpu/b1/t1" and rec.rejected[0][1] == ["size 270 KB > 200 KB"]
    assert rec.to_dict() == json.loads(_vtk(path, "--max-size", "200KB", "--json").output)
    assert vtk.recommend([path], max_size_bytes=1).pick is None


def test_the_report_shows_the_front_the_pick_and_a_plot_or_says_why_not(tmp_path):
    from vtk_vision.inspection.report_recommend import recommend_section

    path = _bench(tmp_path, [_row("onnx", 0.05, size=100_000), _row("tflite", 0.12, size=50_000, seed=2),
                             _row("openvino", 0.09, size=120_000, accuracy=0.89, seed=1)])
    page = recommend_section(path)
    assert "ship onnx/cpu/b1/t1" in page and "Pareto front" in page and "data:image/png" in page
    assert "tflite/cpu/b1/t1" in page and "openvino/cpu/b1/t1" not in page.split("<img")[0]  # beaten: off the front
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    assert "no recommendation" in recommend_section(bad) and "bad.json" in recommend_section(bad)


def test_a_run_name_means_its_bench_json_and_no_torch_is_imported(tmp_path):
    import subprocess
    import sys

    run = tmp_path / "runs" / "lenet5-x"
    run.mkdir(parents=True)
    (run / "run.json").write_text("{}")
    (tmp_path / "runs" / "latest").write_text("lenet5-x")
    _bench(run, [_row("onnx", 0.05)])
    code = ("import sys; from vtk_vision.cli import cli; "
            "sys.argv = ['vtk', 'recommend', '--runs-dir', sys.argv[1]]\n"
            "try:\n    cli(obj={})\nexcept SystemExit as e:\n    print('torch' in sys.modules, e.code)")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "runs")], capture_output=True, text=True)
    assert "ship onnx/cpu/b1/t1" in out.stdout and out.stdout.strip().endswith("False 0"), out.stdout + out.stderr


def test_a_row_name_from_a_file_is_never_markup_or_control_characters(tmp_path):
    path = _bench(tmp_path, [_row("[bold red]onnx\x1b[2J", 0.05), _row("openvino", 0.9, seed=1)])
    res = _vtk(path, "--max-p99", "1.2ms")
    assert res.exit_code == 0 and "[bold red]onnx\\x1b[2J" in res.output and "\x1b" not in res.output
