"""vtk bench: timing statistics, provider truth, accuracy parity, outputs."""

from __future__ import annotations

import json
import time
from dataclasses import replace

import onnxruntime as ort
import pytest
import torch
from click.testing import CliRunner
from vtk_vision.bench.run import BenchOptions, bench_run, resolve_providers
from vtk_vision.bench.timing import Latency, measure
from vtk_vision.cli import cli
from vtk_vision.core.errors import ProviderError
from vtk_vision.exporters.formats import get_format
from vtk_vision.runs.folder import load_run

from tests.conftest import provenance

NO_GPU = not torch.cuda.is_available()


def test_percentiles_from_raw_samples():
    lat = Latency.from_samples([i * 1_000_000 for i in range(1, 101)])  # 1..100 ms
    assert (lat.p50, lat.p90, lat.p99, lat.n) == (50.0, 90.0, 99.0, 100)
    assert lat.mean == pytest.approx(50.5) and lat.cv == pytest.approx(lat.std / lat.mean)
    assert lat.spread == pytest.approx(90 / 50)  # the dispersion a row is judged by


def test_measure_meets_both_minimums():
    calls = []
    lat = measure(lambda: calls.append(time.sleep(0.001)), warmup_s=0.01, min_iters=5, min_s=0.05)
    assert lat.n >= 5 and lat.n * lat.mean >= 50 * 0.9 and lat.p50 >= 1.0
    assert len(calls) > lat.n  # warm-up calls were not timed
    assert measure(lambda: None, warmup_s=0, min_iters=200, min_s=0).n == 200


@pytest.mark.skipif(not NO_GPU, reason="checks the no-GPU path")
@pytest.mark.parametrize("provider", ["cuda", "tensorrt"])
def test_gpu_provider_without_gpu_is_refused_up_front(provider):
    with pytest.raises(ProviderError, match="no usable NVIDIA GPU"):
        resolve_providers(provider)
    assert resolve_providers(None) == ("cpu",)


@pytest.mark.skipif(not NO_GPU, reason="checks the no-GPU path")
def test_ort_cuda_session_never_falls_back_to_cpu(tmp_path, monkeypatch):
    """Even past vtk's own GPU check, ORT's CUDA session must raise rather than run on CPU."""
    from vtk_vision.core.preprocess import Preprocess
    from vtk_vision.exporters import export_model
    from vtk_vision.models import create_model

    model = create_model("linear").eval()
    prep = Preprocess((0.5,), (0.5,), (1, 28, 28), (1, 28, 28))
    export_model(model, prep, "onnx", tmp_path, torch.randint(0, 255, (8, 1, 28, 28), dtype=torch.uint8),
                 None, provenance(model, prep))
    assert "CUDAExecutionProvider" in ort.get_available_providers()  # listed though there is no GPU
    monkeypatch.setattr("vtk_vision.exporters.formats.onnx_format.cuda_problem", lambda: None)
    with pytest.raises(ProviderError, match="CUDAExecutionProvider"):
        get_format("onnx").load(tmp_path / "model.onnx", "cuda", 1)


@pytest.fixture
def run_dir(trained_run):
    return trained_run


# batch 7: odd, where shape bugs hide; not batch 1, whose accuracy pass costs 10,000 calls per runtime
FAST = BenchOptions(batch_sizes=(7, 64), warmup_s=0.01, min_iters=3, min_s=0.02, threads=2)


def test_bench_every_runtime_matches_eager_and_an_independent_client(run_dir, shared_data):
    report = bench_run(load_run(run_dir), FAST, str(shared_data))
    rows = report["rows"]
    assert [(r["runtime"], r["batch"]) for r in rows] == [
        (rt, b) for rt in ("eager", "onnx", "torchscript", "pt2", "openvino") for b in (7, 64)]
    assert all(r["status"] == "ok" and r["provider"] == "cpu" for r in rows)
    assert {r["correct"] for r in rows} == {report["eager_cpu_correct"]}  # OpenVINO too, to the image
    assert all(r["latency_ms"]["n"] >= 3 and r["images_per_s"] > 0 for r in rows)
    onnx_row = next(r for r in rows if r["runtime"] == "onnx")
    assert onnx_row["active_providers"][0] == "CPUExecutionProvider" and onnx_row["size_bytes"] > 0
    # an independent ONNX Runtime client on the same test split, to the last image
    from vtk_vision.data import load_dataset
    run = load_run(run_dir)
    ds = load_dataset("fashion-mnist", shared_data)
    x = run.preprocess(ds.test.images).numpy()
    sess = ort.InferenceSession(onnx_row["artifact"], providers=["CPUExecutionProvider"])
    correct = int((sess.run(None, {"images": x})[0].argmax(1) == ds.test.labels.numpy()).sum())
    assert correct == onnx_row["correct"]
    openvino = next(r for r in rows if r["runtime"] == "openvino")
    assert openvino["active_providers"][0] == "openvino:CPU" and openvino["artifact"] == onnx_row["artifact"]
    env = report["environment"]
    assert env["threads"] == [2] and env["versions"]["onnxruntime"] == ort.__version__ and env["cpu"]
    # raw samples are kept, and they are the samples the statistics came from
    assert all(len(r["samples_ms"]) == r["latency_ms"]["n"] for r in rows)
    assert all(sorted(r["samples_ms"])[-(-len(r["samples_ms"]) // 2) - 1] == pytest.approx(r["latency_ms"]["p50"],
                                                                                        abs=1e-6) for r in rows)
    assert "VmHWM" in report["memory_measure"] and all(r["runtime_memory_mb"] is not None for r in rows)
    assert set(env["cpu_features"]) >= {"AVX2", "AVX-512", "VNNI", "AMX"}


@pytest.mark.skipif(not NO_GPU, reason="checks the no-GPU path")
def test_provider_all_keeps_going_and_labels_failures(run_dir, shared_data):
    opts = BenchOptions(providers=("cpu", "cuda", "tensorrt"), runtimes=("eager", "onnx"), batch_sizes=(64,),
                        warmup_s=0.01, min_iters=2, min_s=0.0)
    rows = {(r["runtime"], r["provider"]): r for r in bench_run(load_run(run_dir), opts, str(shared_data))["rows"]}
    assert rows[("onnx", "cpu")]["status"] == "ok" and rows[("eager", "cpu")]["status"] == "ok"
    for key in [("eager", "cuda"), ("onnx", "cuda"), ("onnx", "tensorrt")]:
        assert rows[key]["status"] == "failed" and "GPU" in rows[key]["reason"]
        assert rows[key]["latency_ms"] is None  # never a CPU figure in a GPU row
    # the same tidy reason for PyTorch's CUDA row as for ONNX Runtime's, never a raw RuntimeError
    assert rows[("eager", "cuda")]["reason"].split(": ", 1)[1] == rows[("onnx", "cuda")]["reason"].split(": ", 1)[1]
    assert "RuntimeError" not in rows[("eager", "cuda")]["reason"]
    assert rows[("eager", "tensorrt")]["status"] == "n/a"


def test_rows_that_did_not_run_are_one_line_per_reason_under_the_table():
    from vtk_vision.bench.report import not_run_lines

    gpu = "no usable NVIDIA GPU (details)"
    rows = [{"runtime": r, "precision": "fp32", "provider": p, "status": "failed", "reason": f"{r} on {p}: {gpu}"}
            for r in ("eager", "onnx") for p in ("cuda", "tensorrt")]
    rows[1] = rows[1] | {"status": "n/a", "reason": "eager runs on cpu, cuda, not tensorrt"}
    assert not_run_lines({"rows": rows}) == [f"failed: eager on cuda, onnx on cuda, onnx on tensorrt: {gpu}",
                                             "n/a: eager on tensorrt: eager runs on cpu, cuda, not tensorrt"]


def test_bench_command_outputs(run_dir, shared_data, tmp_path):
    env = {"VTK_DATA_DIR": str(shared_data), "VTK_RUNS_DIR": str(run_dir.parent)}
    args = ["bench", "--batch-sizes", "8,16", "--runtime", "eager,onnx", "--warmup-s", "0", "--min-iters", "3",
            "--min-s", "0", "--threads", "1"]
    out = {k: tmp_path / f"b.{k}" for k in ("json", "csv", "md", "png")}
    res = CliRunner(env=env).invoke(cli, [*args, "--json", str(out["json"]), "--csv", str(out["csv"]),
                                          "--md", str(out["md"]), "--plot", str(out["png"])], obj={})
    assert res.exit_code == 0, res.output
    assert "onnx" in res.output and "p50 ms" in res.output and "images/s" in res.output
    assert "row 1 of 4: eager on cpu, batch 8, 1 thread" in res.stderr and "row 4 of 4: onnx" in res.stderr
    report = json.loads(out["json"].read_text())
    assert len(report["rows"]) == 4 and report["environment"]["threads"] == [1]
    assert out["csv"].read_text().count("\n") == 5 and "| onnx | cpu | 16 | 1 | " in out["md"].read_text()
    assert out["png"].read_bytes()[:4] == b"\x89PNG"
    assert out["json"].read_text().count("\n") < 400  # samples one line a row, not one line a sample
    res = CliRunner(env=env).invoke(cli, [*args, "--no-samples", "--json", str(tmp_path / "again.json"),
                                          "--compare", str(out["json"])], obj={})
    assert res.exit_code == 0 and "changes against" in res.output and "no samples" in res.output
    assert all(r["samples_ms"] is None for r in json.loads((tmp_path / "again.json").read_text())["rows"])


@pytest.mark.skipif(not NO_GPU, reason="checks the no-GPU path")
def test_provider_cuda_without_gpu_is_one_line_before_any_work(tmp_path):
    res = CliRunner(env={"VTK_RUNS_DIR": str(tmp_path / "nothing-here")}).invoke(
        cli, ["bench", "--provider", "cuda"], obj={})
    assert res.exit_code == 1 and len(res.output.strip().splitlines()) == 1
    assert "no usable NVIDIA GPU" in res.output  # not "no finished run": the GPU check came first
    assert not (tmp_path / "nothing-here").exists()


def test_bad_bench_options(run_dir):
    runner = CliRunner(env={"VTK_RUNS_DIR": str(run_dir.parent)})
    assert runner.invoke(cli, ["bench", "--batch-sizes", "1,x"], obj={}).exit_code == 2
    assert runner.invoke(cli, ["bench", "--runtime", "tensorflow"], obj={}).exit_code == 2
    assert runner.invoke(cli, ["bench", "--batch-sizes", "0"], obj={}).exit_code == 2


@pytest.mark.cuda
def test_cuda_rows_are_cuda(run_dir, shared_data):
    opts = BenchOptions(providers=("cuda",), batch_sizes=(1, 64), warmup_s=0.05, min_iters=10, min_s=0.1)
    rows = bench_run(load_run(run_dir), opts, str(shared_data))["rows"]
    assert all(r["status"] == "ok" for r in rows), [r["reason"] for r in rows]
    onnx = [r for r in rows if r["runtime"] == "onnx"]
    assert all(r["active_providers"][0] == "CUDAExecutionProvider" for r in onnx)
    assert all(r["gpu_peak_mb"] is not None for r in rows if r["runtime"] == "eager")


def test_a_new_runtime_is_one_table_entry(run_dir, shared_data, monkeypatch):
    """A runtime that reads another format's file (as OpenVINO reads ONNX) needs only its table entry."""
    from vtk_vision.exporters import formats

    onnx = formats.FORMATS["onnx"]
    loaded = []

    def load(path, provider, threads):
        loaded.append(path.name)
        return replace(onnx.load(path, provider, threads), runtime="ort-again")

    monkeypatch.setitem(formats.FORMATS, "ort-again", formats.Format(
        "ort-again", order=9, description="ORT, a second time", providers=("cpu",), load=load, reads="onnx"))
    assert "ort-again" in formats.runtimes() and "ort-again" not in formats.artifact_formats()
    opts = BenchOptions(runtimes=("ort-again",), batch_sizes=(1,), warmup_s=0, min_iters=2, min_s=0, threads=1)
    (row,) = bench_run(load_run(run_dir), opts, str(shared_data))["rows"]
    assert row["status"] == "ok" and loaded == ["model.onnx"] and row["artifact"].endswith("model.onnx")


def test_the_table_fits_80_columns_and_wide_keeps_every_column(run_dir, shared_data, monkeypatch):
    """In an 80-column terminal nothing is cut to `…`: optional columns go first; --wide keeps them. The
    thread-scaling summary and the --compare table fit too."""
    from vtk_vision.cli import app

    monkeypatch.setattr(app.SafeConsole, "is_terminal", property(lambda self: True))  # CliRunner: no tty
    monkeypatch.setattr(app.console, "width", 80)
    first = run_dir.parent / "b80-first.json"
    args = ["bench", str(run_dir), "--runtime", "eager,onnx", "--batch-sizes", "64,256", "--threads", "1,2",
            "--warmup-s", "0", "--min-iters", "2", "--min-s", "0"]
    runner = CliRunner(env={"VTK_DATA_DIR": str(shared_data)})
    assert runner.invoke(cli, [*args[:3], "onnx", *args[4:], "--json", str(first)], obj={}).exit_code == 0
    narrow = runner.invoke(cli, [*args, "--json", str(run_dir.parent / "b80.json"), "--compare", str(first)], obj={})
    assert narrow.exit_code == 0, narrow.output
    table = [line for line in narrow.stdout.splitlines() if line[:1] in "┏┃┡│└"]
    assert table and max(len(line) for line in table) <= 80 and "…" not in narrow.output
    header = next(line for line in table if line.startswith("┃"))
    assert "p99 ms" not in header and "images/s" in header and "provider cpu" in narrow.output
    below = [line for line in narrow.stdout.splitlines() if line[:1] not in "┏┃┡│└"]
    assert any("p99 ms" in line for line in below)  # moved below the table (here `n<662` for every row), not dropped
    assert "p90/p50" in narrow.output and "fastest thread count" in narrow.output
    assert "changes against" in narrow.output and len([line for line in table if line.startswith("┏")]) == 3
    wide = runner.invoke(cli, [*args[:3], "onnx", *args[4:], "--json", str(first), "--wide"], obj={})
    assert wide.exit_code == 0 and "p99" in wide.output and "…" not in wide.output  # folded, never cut


# ------------------------------------------------ the row-timing core, with fake runtimes (no run folder)
def _fake_runtime(monkeypatch, name: str, make_call, threads_seen: list | None = None, on_load=None):
    """Register a runtime whose timed call is `make_call()`; it records PyTorch's thread count when called."""
    from vtk_vision.exporters import formats
    from vtk_vision.exporters.runner import Runner

    def load(source, provider, threads):
        held = on_load() if on_load else None
        call = make_call()

        def bind(x):
            def timed():
                if threads_seen is not None:
                    threads_seen.append(torch.get_num_threads())
                held  # noqa: B018  (the runner holds what it loaded, as a real one holds its weights)
                return call()
            return timed
        return Runner(name, provider, bind, lambda x: torch.zeros(len(x), 10), lambda: None, False, [name])

    monkeypatch.setitem(formats.FORMATS, name, formats.Format(name, order=20, description=name,
                                                              providers=("cpu",), load=load))


def _time(name: str, threads: int = 1, batch_sizes=(1,), **timing):
    from vtk_vision.bench.rows import Inputs, Target, Timing, time_runtime

    settings = Timing(**{"warmup_s": 0, "min_iters": 10, "min_s": 0} | timing)
    return time_runtime(Target(name, "fp32", "cpu", threads, None), Inputs(torch.zeros(4, 1, 8, 8)), batch_sizes,
                        settings)


def test_a_noisy_row_is_timed_again_and_flagged_when_it_stays_noisy(monkeypatch):
    calls = iter(range(10**6))

    def jittery():  # every third call sleeps 3 ms: p90/p50 far above any threshold, round after round; not every
        # other call, where one fast call the scheduler held up for 3 ms (a loaded machine) made p50 slow
        return lambda: time.sleep(0.003 if next(calls) % 3 == 0 else 0.0)

    _fake_runtime(monkeypatch, "jittery", jittery)
    (row,) = [r.to_dict() for r in _time("jittery", max_rounds=3)]
    assert row["unstable"] and len(row["round_spreads"]) == 3 and min(row["round_spreads"]) > 1.5
    assert row["latency_ms"]["spread"] == min(row["round_spreads"])  # the steadiest round is the one kept

    settle = iter(range(10**6))

    def settling():  # noisy for the first round (first inference, 1 warm-up and 10 timed calls), steady after;
        # 20 ms calls, so that a loaded machine's few ms of scheduling jitter cannot make the steady round noisy
        return lambda: time.sleep(0.08 if (n := next(settle)) < 12 and n % 2 else 0.02)

    _fake_runtime(monkeypatch, "settling", settling)
    (row,) = [r.to_dict() for r in _time("settling", max_rounds=3)]
    assert not row["unstable"] and len(row["round_spreads"]) == 2 and row["round_spreads"][0] > 1.25
    assert row["latency_ms"]["p50"] >= 20.0 and row["status"] == "ok"


def test_the_core_without_labels_leaves_accuracy_unmeasured_and_tables_say_so(monkeypatch, tmp_path):
    from vtk_vision.bench.report import table_rows, to_csv, to_markdown

    _fake_runtime(monkeypatch, "quick", lambda: (lambda: None))
    rows = [r.to_dict() for r in _time("quick", batch_sizes=(1, 3), max_spread=100)]  # judged elsewhere
    assert all(r["accuracy"] is None and r["correct"] is None and r["accuracy_delta"] is None for r in rows)
    report = {"model": {"name": "m"}, "dataset": "files", "time_includes": "x", "rows": rows,
              "environment": {"cpu": "cpu", "threads": [1], "gpu": None, "versions": {"torch": "t", "onnxruntime": "o"},
                              "date": "d"}}
    cells = table_rows(report)
    assert cells[0][6:8] == ["-", "-"] and cells[0][4] == "ok"  # accuracy and Δ eager: not measured
    to_markdown(report, tmp_path / "b.md")
    to_csv(report, tmp_path / "b.csv")
    assert "| quick | cpu | 1 | 1 | ok | - | - | - |" in (tmp_path / "b.md").read_text()


def test_each_thread_count_really_runs_at_that_count(monkeypatch):
    seen: list[int] = []
    _fake_runtime(monkeypatch, "counting", lambda: (lambda: None), threads_seen=seen)
    before = torch.get_num_threads()
    for threads in (1, 2):
        seen.clear()
        (row,) = _time("counting", threads=threads)
        assert row.threads == threads and set(seen) == {threads}
    assert torch.get_num_threads() == before  # the bench leaves PyTorch's pool as it found it


def test_a_later_runtime_does_not_inherit_an_earlier_larger_peak(monkeypatch):
    _fake_runtime(monkeypatch, "big", lambda: (lambda: None), on_load=lambda: torch.ones(64 * 2**20 // 4))
    _fake_runtime(monkeypatch, "small", lambda: (lambda: None))
    (big,) = _time("big")
    (small,) = _time("small")
    assert big.runtime_memory_mb > 50 and small.runtime_memory_mb < 16, (big.runtime_memory_mb,
                                                                          small.runtime_memory_mb)


def test_memory_is_none_with_a_reason_where_the_kernel_cannot_reset_the_peak(monkeypatch, tmp_path):
    from vtk_vision.bench import memory

    monkeypatch.setattr(memory, "_CLEAR", tmp_path / "no-such-dir" / "clear_refs")
    _fake_runtime(monkeypatch, "quick", lambda: (lambda: None))
    (row,) = _time("quick")
    assert row.runtime_memory_mb is None and "clear_refs" in row.memory_reason and row.status == "ok"


def test_thread_counts_give_rows_each_and_a_fastest_summary(run_dir, shared_data, monkeypatch):
    from vtk_vision.exporters import formats

    loads = []
    for name in ("eager", "onnx"):
        fmt = formats.FORMATS[name]
        monkeypatch.setitem(formats.FORMATS, name, replace(fmt, load=lambda s, p, t, _load=fmt.load, _n=name: (
            loads.append((_n, t)), _load(s, p, t))[1]))
    opts = BenchOptions(runtimes=("eager", "onnx"), batch_sizes=(64, 256), warmup_s=0, min_iters=3, min_s=0,
                        threads=(1, 2))  # large batches: the accuracy pass over the test split stays short
    report = bench_run(load_run(run_dir), opts, str(shared_data))
    rows = report["rows"]
    assert [(r["runtime"], r["threads"], r["batch"]) for r in rows] == [
        (rt, t, b) for rt in ("eager", "onnx") for t in (1, 2) for b in (64, 256)]
    assert ("onnx", 1) in loads and ("onnx", 2) in loads  # ORT's intra-op count is the row's
    assert report["environment"]["threads"] == [1, 2]
    best = {(f["runtime"], f["batch"]): f for f in report["fastest"]}
    assert set(best) == {(rt, b) for rt in ("eager", "onnx") for b in (64, 256)}
    for (rt, b), f in best.items():
        p50 = {r["threads"]: r["latency_ms"]["p50"] for r in rows if (r["runtime"], r["batch"]) == (rt, b)}
        assert f["p50_ms"] == min(p50.values()) and p50[f["threads"]] == f["p50_ms"]


def test_row_keys_carry_threads_and_old_files_take_their_single_count():
    from vtk_vision.bench.keys import report_threads, row_key
    from vtk_vision.bench.report import table_rows

    new = {"runtime": "onnx", "precision": "int8", "provider": "cpu", "batch": 64, "threads": 2}
    old_report = {"environment": {"threads": 2}, "rows": [{"runtime": "onnx", "precision": "int8", "provider": "cpu",
                                                           "batch": 64, "status": "ok", "size_bytes": 10,
                                                           "accuracy": 0.9, "accuracy_delta": 0.0,
                                                           "latency_ms": {"p50": 1.0, "p90": 1.5, "p99": 2.0},
                                                           "images_per_s": 64_000.0}]}
    assert row_key(new) == "onnx int8/cpu/b64/t2" == row_key(old_report["rows"][0], report_threads(old_report))
    assert row_key(new | {"threads": 1}) != row_key(new)
    assert report_threads({"environment": {"threads": [1, 2]}}) is None
    cells = table_rows(old_report)[0]  # an old file (no threads, spread, memory) still renders
    assert cells[3] == "2" and cells[9] == "n?" and cells[-1] == "-"  # p90/p50 from an unknown count: no figure


def test_the_plot_labels_batch_sizes_and_has_one_legend_from_p50(monkeypatch, tmp_path):
    from vtk_vision.bench import report as report_module
    from vtk_vision.present import plots

    figures = []
    monkeypatch.setattr(plots, "save_figure", lambda fig, path: figures.append(fig))
    rows = [{"runtime": "onnx", "provider": "cpu", "batch": b, "threads": 1, "status": "ok",
             "latency_ms": {"p50": p50}, "images_per_s": 1.0}  # a stale images/s must not reach the plot
            for b, p50 in ((1, 0.5), (8, 1.0), (256, 8.0))]
    report_module.plot({"model": {"name": "m"}, "rows": rows,
                        "environment": {"cpu": "cpu", "threads": [1], "gpu": None}}, tmp_path / "p.png")
    (fig,) = figures
    ax_lat, ax_tput = fig.axes
    for ax in (ax_lat, ax_tput):
        assert [t.get_text() for t in ax.get_xticklabels()] == ["1", "8", "256"]
        assert ax.get_legend() is None
    assert len(fig.legends) == 1 and [t.get_text() for t in fig.legends[0].get_texts()] == ["onnx"]
    assert list(ax_tput.lines[0].get_ydata()) == pytest.approx([1 / 0.5e-3, 8 / 1e-3, 256 / 8e-3])


def test_the_plot_tells_many_series_apart(monkeypatch, tmp_path):
    """18 series: colour per runtime, line style per precision and threads; every line its own pair."""
    from vtk_vision.bench import report as report_module
    from vtk_vision.present import plots

    figures = []
    monkeypatch.setattr(plots, "save_figure", lambda fig, path: figures.append(fig))
    combos = [(rt, p, t) for rt in ("eager", "onnx", "torchscript", "pt2", "openvino") for p in ("fp32", "int8")
              for t in (1, 2) if p == "fp32" or rt in ("onnx", "openvino")]
    rows = [{"runtime": rt, "precision": p, "provider": "cpu", "batch": b, "threads": t, "status": "ok",
             "latency_ms": {"p50": 0.1 * b * (i + 1)}} for i, (rt, p, t) in enumerate(combos) for b in (1, 8)]
    report_module.plot({"model": {"name": "m"}, "rows": rows,
                        "environment": {"cpu": "cpu", "threads": [1, 2], "gpu": None}}, tmp_path / "p.png")
    (fig,) = figures
    lines = fig.axes[0].lines
    styles = {(ln.get_color(), str(ln.get_linestyle())) for ln in lines}
    assert len(lines) == len(combos) == len(styles) == 14
    assert len({ln.get_color() for ln in lines}) == 5  # one colour a runtime
    assert [leg.get_title().get_text() for leg in fig.legends] == ["runtime", "precision, threads"]
