"""vtk bench: timing statistics, provider truth, accuracy parity, outputs."""

from __future__ import annotations

import json
import time

import onnxruntime as ort
import pytest
import torch
from click.testing import CliRunner

from vtk_vision.bench.run import BenchOptions, bench_run, resolve_providers
from vtk_vision.exporters.formats import get_format
from tests.conftest import provenance
from vtk_vision.bench.timing import Latency, measure
from vtk_vision.cli import cli
from vtk_vision.core.errors import ProviderError
from vtk_vision.runs.folder import load_run

NO_GPU = not torch.cuda.is_available()


def test_percentiles_from_raw_samples():
    lat = Latency.from_samples([i * 1_000_000 for i in range(1, 101)])  # 1..100 ms
    assert (lat.p50, lat.p90, lat.p99, lat.n) == (50.0, 90.0, 99.0, 100)
    assert lat.mean == pytest.approx(50.5) and lat.cv == pytest.approx(lat.std / lat.mean)


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
    from vtk_vision.exporters import export_model
    from vtk_vision.models import create_model
    from vtk_vision.core.preprocess import Preprocess

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


FAST = BenchOptions(batch_sizes=(1, 7), warmup_s=0.01, min_iters=3, min_s=0.02, threads=2)


def test_bench_every_runtime_matches_eager_and_an_independent_client(run_dir, shared_data):
    report = bench_run(load_run(run_dir), FAST, str(shared_data))
    rows = report["rows"]
    assert [(r["runtime"], r["batch"]) for r in rows] == [
        (rt, b) for rt in ("eager", "onnx", "torchscript", "pt2", "openvino") for b in (1, 7)]
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
    assert env["threads"] == 2 and env["versions"]["onnxruntime"] == ort.__version__ and env["cpu"]
    assert set(env["cpu_features"]) >= {"AVX2", "AVX-512", "VNNI", "AMX"}


@pytest.mark.skipif(not NO_GPU, reason="checks the no-GPU path")
def test_provider_all_keeps_going_and_labels_failures(run_dir, shared_data):
    opts = BenchOptions(providers=("cpu", "cuda", "tensorrt"), runtimes=("eager", "onnx"), batch_sizes=(1,),
                        warmup_s=0.01, min_iters=2, min_s=0.0)
    rows = {(r["runtime"], r["provider"]): r for r in bench_run(load_run(run_dir), opts, str(shared_data))["rows"]}
    assert rows[("onnx", "cpu")]["status"] == "ok" and rows[("eager", "cpu")]["status"] == "ok"
    for key in [("eager", "cuda"), ("onnx", "cuda"), ("onnx", "tensorrt")]:
        assert rows[key]["status"] == "failed" and "GPU" in rows[key]["reason"]
        assert rows[key]["latency_ms"] is None  # never a CPU figure in a GPU row
    assert rows[("eager", "tensorrt")]["status"] == "n/a"


def test_bench_command_outputs(run_dir, shared_data, tmp_path):
    env = {"VTK_DATA_DIR": str(shared_data), "VTK_RUNS_DIR": str(run_dir.parent)}
    args = ["bench", "--batch-sizes", "1,4", "--runtime", "eager,onnx", "--warmup-s", "0", "--min-iters", "3",
            "--min-s", "0", "--threads", "1"]
    out = {k: tmp_path / f"b.{k}" for k in ("json", "csv", "md", "png")}
    res = CliRunner(env=env).invoke(cli, [*args, "--json", str(out["json"]), "--csv", str(out["csv"]),
                                          "--md", str(out["md"]), "--plot", str(out["png"])], obj={})
    assert res.exit_code == 0, res.output
    assert "onnx" in res.output and "p50 ms" in res.output and "images/s" in res.output
    report = json.loads(out["json"].read_text())
    assert len(report["rows"]) == 4 and report["environment"]["threads"] == 1
    assert out["csv"].read_text().count("\n") == 5 and "| onnx | cpu | 4 | ok |" in out["md"].read_text()
    assert out["png"].read_bytes()[:4] == b"\x89PNG"
    res = CliRunner(env=env).invoke(cli, [*args, "--compare", str(out["json"])], obj={})
    assert res.exit_code == 0 and "changes against" in res.output and "onnx/cpu/4" in res.output


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
    assert runner.invoke(cli, ["bench", "--runtime", "tflite"], obj={}).exit_code == 2
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
    from dataclasses import replace

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
    """In an 80-column terminal nothing is cut to `…`: optional columns go first; --wide keeps them."""
    from vtk_vision.cli import app

    monkeypatch.setattr(app.SafeConsole, "is_terminal", property(lambda self: True))  # CliRunner: no tty
    monkeypatch.setattr(app.console, "width", 80)
    args = ["bench", str(run_dir), "--runtime", "eager,onnx", "--batch-sizes", "1,256", "--warmup-s", "0",
            "--min-iters", "2", "--min-s", "0", "--json", str(run_dir.parent / "b80.json")]
    narrow = CliRunner(env={"VTK_DATA_DIR": str(shared_data)}).invoke(cli, args, obj={})
    assert narrow.exit_code == 0, narrow.output
    table = [line for line in narrow.output.splitlines() if line[:1] in "┏┃┡│└"]
    assert table and max(len(line) for line in table) <= 80 and "…" not in narrow.output
    assert "p99 ms" not in narrow.output and "images/s" in narrow.output and "provider cpu" in narrow.output
    wide = CliRunner(env={"VTK_DATA_DIR": str(shared_data)}).invoke(cli, [*args, "--wide"], obj={})
    assert wide.exit_code == 0 and "p99" in wide.output and "…" not in wide.output  # folded, never cut
