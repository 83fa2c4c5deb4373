"""Reduced precision on real data: int8 and fp16 artifacts land only through the accuracy gate, and their
numbers are the ones an outside runtime reproduces from the file alone."""

from __future__ import annotations

import json
import shutil

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from click.testing import CliRunner

from vtk_vision.cli import cli
from vtk_vision.core.errors import ProviderError
from vtk_vision.exporters.precision import calibration_sample


@pytest.fixture(scope="module")
def run_copy(trained_run, tmp_path_factory):
    """The shared run, copied so that its exports/ here do not change what other tests see."""
    run = tmp_path_factory.mktemp("precision") / trained_run.name
    shutil.copytree(trained_run, run)
    return run


def _export(run, shared_data, *args):
    return CliRunner(env={"VTK_DATA_DIR": str(shared_data)}).invoke(cli, ["export", str(run), *args], obj={})


def _outside_accuracy(path, inputs: np.ndarray, labels: np.ndarray) -> int:
    """Correct predictions of a plain ONNX Runtime session on the file: nothing of vtk's in the loop."""
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    return sum(int((sess.run(None, {name: inputs[i:i + 512]})[0].argmax(1) == labels[i:i + 512]).sum())
               for i in range(0, len(inputs), 512))


@pytest.mark.parametrize("precision,bake", [("int8", False), ("fp16", True)])
def test_reduced_precision_is_validated_on_the_whole_test_split(run_copy, shared_data, precision, bake):
    from vtk_vision.core.cpu import has_vnni
    from vtk_vision.data import load_dataset
    from vtk_vision.runs.folder import load_run

    res = _export(run_copy, shared_data, "--precision", precision, *(["--bake-preprocess"] if bake else []))
    assert res.exit_code == 0, res.output
    name = f"model{'.raw' if bake else ''}.{precision}.onnx"
    row = json.loads((run_copy / "exports" / "export.json").read_text())["artifacts"][name]
    assert row["passed"] and row["precision"] == precision and row["checks"][0]["images"] == 10_000
    assert -row["accuracy_delta"] * 100 <= 0.5 and row["worst_class"]["name"]
    assert f"{precision}: {100 * row['accuracy']:.2f}% against" in res.output  # the loss is printed, not just kept
    if precision == "int8":
        assert row["reduction"]["reduce_range"] is (not has_vnni()) and row["reduction"]["calibration_images"] == 512
    path = run_copy / "exports" / name
    meta = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert meta["precision"] == precision and json.loads(meta["validation"])["flipped"] == row["flipped"]
    # the file alone, in a runtime nobody here wrote, reproduces the recorded accuracy to the image
    ds, run = load_dataset("fashion-mnist", shared_data), load_run(run_copy)
    x = ds.test.images.numpy()[:, 0] if bake else run.preprocess(ds.test.images).numpy()
    assert _outside_accuracy(path, x, ds.test.labels.numpy()) == round(row["accuracy"] * 10_000)


def test_int8_is_at_most_half_the_size_and_openvino_agrees_with_ort(run_copy, shared_data):
    from vtk_vision.bench.run import BenchOptions, bench_run
    from vtk_vision.runs.folder import load_run

    opts = BenchOptions(runtimes=("onnx", "openvino"), precisions=("fp32", "int8"), batch_sizes=(1, 64),
                        warmup_s=0, min_iters=2, min_s=0, threads=1)
    report = bench_run(load_run(run_copy), opts, str(shared_data))
    rows = {(r["runtime"], r["precision"], r["batch"]): r for r in report["rows"]}
    assert set(rows) == {(rt, p, b) for rt in ("onnx", "openvino") for p in ("fp32", "int8") for b in (1, 64)}
    assert all(r["status"] == "ok" for r in rows.values()), [r["reason"] for r in rows.values()]
    assert rows[("onnx", "int8", 1)]["size_bytes"] * 2 <= rows[("onnx", "fp32", 1)]["size_bytes"]
    assert rows[("onnx", "fp32", 1)]["correct"] == rows[("openvino", "fp32", 64)]["correct"] == report["eager_cpu_correct"]
    # int8 arithmetic differs between runtimes; on this data they agree within 0.1 pt
    assert abs(rows[("onnx", "int8", 64)]["correct"] - rows[("openvino", "int8", 64)]["correct"]) <= 10
    assert rows[("openvino", "int8", 1)]["correct"] == rows[("openvino", "int8", 64)]["correct"]


def test_an_artifact_that_misses_the_gate_exits_1_and_leaves_no_file(run_copy, shared_data, tmp_path):
    """fp16 overflow, the classic silent failure: weights scaled past fp16's 65504 leave fp32 predictions as
    they were (argmax ignores the scale) and break fp16 ones (the converter clips the weights to the fp16
    range). The gate must refuse the file, print its numbers and leave nothing behind."""
    from vtk_vision.runs.folder import load_run

    run = tmp_path / run_copy.name
    shutil.copytree(run_copy, run, ignore=shutil.ignore_patterns("exports"))
    loaded = load_run(run)
    last = [m for m in loaded.model.modules() if isinstance(m, torch.nn.Linear)][-1]
    with torch.no_grad():
        last.weight *= 1e6
        last.bias *= 1e6
    loaded.folder.save_weights(loaded.model)
    res = _export(run, shared_data, "--precision", "fp16")
    assert res.exit_code == 1
    assert len(res.output.strip().splitlines()) == 1 and "Traceback" not in res.output
    assert "loses more than --max-accuracy-drop 0.5 pt" in res.output or "non-finite logits" in res.output
    assert "predictions flipped" in res.output and "nothing was written" in res.output
    assert not (run / "exports").exists()  # not even an empty folder


def test_nonsense_pairs_are_one_line_before_any_work(run_copy, shared_data):
    runner = CliRunner(env={"VTK_DATA_DIR": str(shared_data)})
    res = runner.invoke(cli, ["export", str(run_copy), "--format", "torchscript", "--precision", "int8"], obj={})
    assert res.exit_code == 1 and "applies to --format onnx" in res.output and len(res.output.splitlines()) == 1
    res = runner.invoke(cli, ["export", str(run_copy), "--calibration-size", "64"], obj={})
    assert res.exit_code == 2 and "--precision int8 only" in res.output
    res = runner.invoke(cli, ["export", str(run_copy), "--max-accuracy-drop", "1"], obj={})
    assert res.exit_code == 2 and "applies to --precision fp16 or int8" in res.output
    res = runner.invoke(cli, ["bench", str(run_copy), "--runtime", "eager", "--precision", "int8"], obj={})
    assert res.exit_code == 1 and "runs on onnx, openvino" in res.output and len(res.output.splitlines()) == 1
    assert runner.invoke(cli, ["bench", str(run_copy), "--precision", "int4"], obj={}).exit_code == 2


def test_calibration_sample_is_seeded_and_class_balanced():
    labels = torch.tensor([0] * 900 + [1] * 90 + [2] * 10)
    images = torch.arange(1000)
    picked = calibration_sample(images, labels, 30)
    assert torch.equal(picked, calibration_sample(images, labels, 30))
    assert torch.bincount(labels[picked]).tolist() == [10, 10, 10]
    assert torch.bincount(labels[calibration_sample(images, labels, 60)]).tolist() == [25, 25, 10]  # class 2 has 10


def test_cpu_features_are_named_with_what_is_missing():
    from vtk_vision.core.cpu import describe_features

    assert describe_features({"AVX2": True, "AVX-512": False, "VNNI": False, "AVX512-BF16": False,
                              "AMX": False}) == "AVX2, no AVX-512/VNNI/AMX"
    assert describe_features(dict.fromkeys(["AVX2", "VNNI"])).startswith("CPU features unknown")


def test_tensorrt_asks_for_the_artifact_precision_and_refuses_cpu_int8(run_copy, shared_data):
    """Written from ONNX Runtime's TensorRT provider options; no GPU is needed to check what is asked for."""
    from vtk_vision.exporters.formats.onnx_format import _tensorrt_options

    exports = run_copy / "exports"
    for precision in ("int8", "fp16"):
        if not (exports / f"model.{precision}.onnx").exists():
            assert _export(run_copy, shared_data, "--precision", precision).exit_code == 0
    assert _tensorrt_options(exports / "model.fp16.onnx") == {"trt_fp16_enable": "True"}
    with pytest.raises(ProviderError, match="QUInt8"):
        _tensorrt_options(exports / "model.int8.onnx")


def test_static_batch_int8_calibrates_in_its_own_batch_and_checks_every_image(run_copy, shared_data):
    res = _export(run_copy, shared_data, "--precision", "int8", "--static-batch", "--batch-size", "3",
                  "--calibration-size", "100")
    assert res.exit_code == 0, res.output
    row = json.loads((run_copy / "exports" / "export.json").read_text())["artifacts"]["model.b3.int8.onnx"]
    assert row["checks"][0]["images"] == 10_000  # 10,000 is no multiple of 3: the last batch is filled up
    res = _export(run_copy, shared_data, "--precision", "int8", "--static-batch", "--batch-size", "64",
                  "--calibration-size", "10")
    assert res.exit_code == 1 and "smaller than the static batch of 64" in res.output


def test_calibration_methods_differ_and_leave_nothing_in_exports(run_copy, shared_data, tmp_path):
    """What differs is the point here; how much int8 may lose is test_reduced_precision_... 's (the default
    0.5 pt gate). The shared run is one epoch on 5% of the data: an ill-conditioned model whose int8 loss
    per method moves with the CPU (ORT's reduce_range follows VNNI): one method lost 0.61 pt on an Intel
    AVX-512 VNNI CPU and under 0.5 on the AMD AVX2 one. So each method passes a 2 pt gate, over three times
    the largest loss seen on either, which a broken calibration (tens of points lost) still fails; and a
    failure prints vtk's own message, not `assert 1 == 0`."""
    scales = {}
    for method in ("minmax", "entropy", "percentile"):
        out = tmp_path / method
        res = _export(run_copy, shared_data, "--precision", "int8", "--calibration-method", method,
                      "--max-accuracy-drop", "2", "--out", str(out))
        assert res.exit_code == 0, f"{method}: {res.output}"
        row = json.loads((out / "export.json").read_text())["artifacts"]["model.int8.onnx"]
        assert row["passed"] and -2 <= 100 * row["accuracy_delta"], f"{method}: {res.output}"
        graph = onnx.load(str(out / "model.int8.onnx")).graph
        scales[method] = {i.name: onnx.numpy_helper.to_array(i).tolist() for i in graph.initializer
                          if i.name.endswith("_scale") and "relu" in i.name}
        assert sorted(p.name for p in out.iterdir()) == ["export.json", "model.int8.onnx"]
    assert scales["minmax"] != scales["percentile"] and scales["minmax"] != scales["entropy"]


def test_a_drop_of_exactly_the_limit_passes():
    from vtk_vision.exporters.base import ExportOptions
    from vtk_vision.exporters.validate import verdict
    from vtk_vision.runs.schema import ExportResult

    r = ExportResult("onnx", "m.int8.onnx", accuracy=0.7639 - 0.005, eager_accuracy=0.7639,
                     accuracy_delta=(0.7639 - 0.005) - 0.7639, flipped=80, max_abs_diff=1.0,
                     worst_class={"class": 0, "delta": -0.01, "images": 1000},
                     checks=[{"batch": 256, "images": 10_000, "finite": True, "agreement": 0.99}])
    assert verdict(r, ExportOptions(precision="int8", max_accuracy_drop=0.5)) is None
    assert "loses more than" in verdict(r, ExportOptions(precision="int8", max_accuracy_drop=0.49))
