"""The device formats (OpenVINO IR, ExecuTorch): written, checked, benched, and read back by a runtime vtk did not
write, on a tiny LeNet-5 with random weights and random images; and the formats vtk does not offer, refused."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from tests.conftest import provenance
from vtk_vision.bench.rows import Inputs, Target, Timing, time_runtime
from vtk_vision.cli import cli
from vtk_vision.core.errors import ArtifactError, ExportError, ValidationError
from vtk_vision.core.preprocess import Preprocess
from vtk_vision.exporters import FORMATS, ExportOptions, export_model, read_artifact_metadata
from vtk_vision.exporters.formats import all_formats, default_runtimes
from vtk_vision.models import create_model

EDGE = ["openvino-ir", "executorch"]


def _setup(n: int = 64, seed: int = 0):
    """A random LeNet-5, its images, and labels that are its own predictions (so eager accuracy is 100%)."""
    torch.manual_seed(seed)
    model = create_model("lenet5").eval()
    prep = Preprocess((0.3,), (0.3,), (1, 32, 32), (1, 32, 32))
    images = torch.randint(0, 256, (n, 1, 32, 32), dtype=torch.uint8)
    with torch.no_grad():
        labels = model(prep(images)).argmax(1)
    return model, prep, images, labels, provenance(model, prep)


def _export(fmt, tmp_path, opts=ExportOptions(), n=64):
    model, prep, images, labels, info = _setup(n)
    calibration = images if opts.precision == "int8" else None
    result = export_model(model, prep, fmt, tmp_path, images, labels, info, opts, calibration)
    return result, Path(result.path), model, prep(images), labels


def _one_line(res) -> str:
    lines = res.output.strip().splitlines()
    assert len(lines) == 1, res.output
    return lines[0]


def test_device_formats_are_asked_for_by_name():
    """`--format all` and the bench's default runtimes stay the desktop formats: each device format costs an
    export of its own."""
    assert not set(EDGE) & set(all_formats()) and not set(EDGE) & set(default_runtimes())
    assert {"onnx", "torchscript", "pt2"} <= set(all_formats())


@pytest.fixture(scope="module")
def fp32(tmp_path_factory):
    """fmt -> (result, path, model, inputs, labels) of one fp32 export per format, made once for the module."""
    made = {}

    def get(fmt):
        if fmt not in made:
            made[fmt] = _export(fmt, tmp_path_factory.mktemp(fmt))
        return made[fmt]
    return get


@pytest.mark.parametrize("fmt", EDGE)
def test_fp32_export_matches_eager_and_carries_its_metadata(fmt, fp32):
    result, path, *_ = fp32(fmt)
    tmp_path = path.parent
    assert result.passed and result.agreement == 1.0 and result.max_abs_diff <= 1e-4
    assert result.accuracy == result.eager_accuracy == 1.0
    assert [c["batch"] for c in result.checks] == [256, 1, 7]
    meta = read_artifact_metadata(path)
    assert meta["model"] == "lenet5" and meta["precision"] == "fp32"
    assert json.loads(meta["validation"])["passed"] is True
    spec = FORMATS[fmt]
    assert {p.name for p in tmp_path.iterdir()} == {path.name, *(s.name for s in spec.sidecars(path))}
    assert result.size_bytes == spec.size_bytes(path) > 0.9 * 61_990 * 4  # fp32 weights of LeNet-5


# ------------------------------------------------------------------ OpenVINO IR
def test_openvino_ir_weights_are_a_sidecar_counted_in_the_size(tmp_path):
    result, xml, *_ = _export("openvino-ir", tmp_path)
    weights = xml.with_suffix(".bin")
    assert result.sidecars == [weights.name]
    assert result.size_bytes == xml.stat().st_size + weights.stat().st_size
    assert weights.stat().st_size > 0.9 * 61_990 * 4  # fp32 weights: OpenVINO's fp16 default was not taken


def test_plain_openvino_reproduces_the_ir_accuracy(tmp_path):
    """OpenVINO's own Core, as a deployer would call it, gets vtk's predictions from the .xml alone."""
    import openvino as ov

    result, xml, _, x, labels = _export("openvino-ir", tmp_path)
    compiled = ov.Core().compile_model(str(xml), "CPU")
    logits = compiled(x.numpy())[0]
    assert (logits.argmax(1) == labels.numpy()).mean() == result.accuracy
    rt = ov.Core().read_model(str(xml)).get_rt_info(["vtk", "model"])
    assert rt.astype(str) == "lenet5"


def test_openvino_ir_fp16_is_gated_and_half_the_weights(tmp_path):
    fp32, xml32, *_ = _export("openvino-ir", tmp_path)
    fp16, xml16, *_ = _export("openvino-ir", tmp_path, ExportOptions(precision="fp16"))
    assert fp16.passed and xml16.name == "model.fp16.xml" and fp16.accuracy_delta is not None
    assert xml16.with_suffix(".bin").stat().st_size < 0.6 * xml32.with_suffix(".bin").stat().st_size
    assert read_artifact_metadata(xml16)["precision"] == "fp16" and fp16.max_abs_diff > fp32.max_abs_diff


def test_openvino_ir_bench_row_names_its_file_and_counts_the_weights(tmp_path):
    result, xml, _, x, labels = _export("openvino-ir", tmp_path)
    rows = time_runtime(Target("openvino-ir", "fp32", "cpu", 1, xml, xml), Inputs(x, labels, 1.0), (1,),
                        Timing(warmup_s=0, min_iters=2, min_s=0, max_rounds=1))
    assert rows[0].status == "ok", rows[0].reason
    assert rows[0].size_bytes == result.size_bytes and rows[0].accuracy == 1.0
    assert f"IR {xml.name}" in rows[0].active_providers


def test_a_handed_ir_with_entities_is_one_line_and_never_expanded(tmp_path):
    laughs = "".join(f'<!ENTITY l{i} "{f"&l{i - 1};" * 10}">' for i in range(1, 10))
    bad = tmp_path / "model.xml"
    bad.write_text(f'<?xml version="1.0"?><!DOCTYPE net [<!ENTITY l0 "ha">{laughs}]><net>&l9;</net>')
    bad.with_suffix(".bin").write_bytes(b"")
    res = CliRunner().invoke(cli, ["bench", str(bad), "--batch-sizes", "1", "--threads", "1"], obj={})
    assert res.exit_code == 1 and "declares a DTD or entities" in _one_line(res), res.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.bin", "model.xml"]


# ------------------------------------------------------------------ ExecuTorch
@pytest.fixture
def pte(fp32):
    return fp32("executorch")


def test_executorch_runtime_called_directly_reproduces_the_accuracy(pte):
    """ExecuTorch's own Python runtime, as a deployer would call it, on the .pte alone."""
    from executorch.runtime import Runtime

    result, path, _, x, labels = pte
    method = Runtime.get().load_program(path).load_method("forward")
    logits = torch.cat([method.execute([x[i:i + 32]])[0] for i in range(0, len(x), 32)])
    assert (logits.argmax(1) == labels).double().mean().item() == result.accuracy == 1.0
    assert result.lowering["portable_ops"] == {} and result.lowering["delegated_nodes"] >= 10
    assert result.lowering["compute_nodes"] == result.lowering["delegated_nodes"]
    assert json.loads(path.with_name(path.name + ".json").read_text())["model"] == "lenet5"


def test_executorch_bench_row_honours_threads_and_names_its_plan(pte):
    result, path, _, x, labels = pte
    rows = time_runtime(Target("executorch", "fp32", "cpu", 1, path, path), Inputs(x, labels, 1.0), (1, 8),
                        Timing(warmup_s=0, min_iters=2, min_s=0, max_rounds=1))
    assert [r.status for r in rows] == ["ok", "ok"], rows[0].reason
    assert rows[0].size_bytes == result.size_bytes and rows[1].accuracy == 1.0
    assert rows[0].active_providers[0] == "executorch:xnnpack, 1 pool threads"
    assert FORMATS["executorch"].load(path, "cpu", 1).cancel is None  # no cancel: a runaway call ends vtk (stoppable)


def test_executorch_int8_is_calibrated_gated_and_a_third_of_the_size(pte, tmp_path):
    # random weights leave near ties that int8 may flip: the gate is loosened here, and tested below
    result, path, *_ = _export("executorch", tmp_path, ExportOptions(precision="int8", calibration_size=64,
                                                                      max_accuracy_drop=5))
    assert result.passed and path.name == "model.int8.pte" and result.accuracy_delta is not None
    assert result.reduction["calibration_images"] == 64 and result.reduction["per_channel"] is True
    assert result.lowering["portable_ops"] == {}
    assert result.size_bytes < 0.4 * pte[0].size_bytes


def test_executorch_int8_calibrated_on_blank_images_misses_the_gate_and_leaves_nothing(tmp_path):
    model, prep, images, labels, info = _setup()
    blank = torch.zeros_like(images)  # activation ranges from blank images clip every real one
    with pytest.raises(ValidationError, match="loses more than --max-accuracy-drop"):
        export_model(model, prep, "executorch", tmp_path, images, labels, info,
                     ExportOptions(precision="int8", calibration_size=64), blank)
    assert list(tmp_path.iterdir()) == []


class _WithCumsum(torch.nn.Module):
    """A model with one operator XNNPACK does not take (cumsum)."""

    def __init__(self, inner: torch.nn.Module):
        super().__init__()
        self.inner, self.vtk_info = inner, inner.vtk_info

    def forward(self, x):
        return self.inner(x).cumsum(1)


def test_executorch_refuses_a_partly_delegated_program_unless_allowed(tmp_path):
    torch.manual_seed(0)
    model = _WithCumsum(create_model("linear")).eval()
    c, h, w = model.vtk_info.input_shape
    prep = Preprocess((0.3,) * c, (0.3,) * c, (c, h, w), (c, h, w))
    images, info = torch.randint(0, 256, (16, c, h, w), dtype=torch.uint8), provenance(model, prep)
    with pytest.raises(ExportError, match=r"XNNPACK took \d+ of \d+ compute nodes; aten_cumsum_default x1 would run "
                                          r"on ExecuTorch's portable kernels.*--allow-portable") as e:
        export_model(model, prep, "executorch", tmp_path, images, None, info)
    assert "\n" not in str(e.value) and list(tmp_path.iterdir()) == []
    result = export_model(model, prep, "executorch", tmp_path, images, None, info, ExportOptions(allow_portable=True))
    assert result.passed and result.lowering["portable_ops"] == {"aten_cumsum_default": 1}


def test_a_handed_file_that_is_no_program_is_one_line(tmp_path):
    bad = tmp_path / "model.pte"
    bad.write_bytes(b"\x00" * 64)
    res = CliRunner().invoke(cli, ["bench", str(bad), "--batch-sizes", "1", "--threads", "1"], obj={})
    assert res.exit_code == 1 and "is not an ExecuTorch program" in _one_line(res), res.output
    bad.write_bytes(b"\x10\x00\x00\x00ET12" + os.urandom(200))  # the identifier, then no program
    with pytest.raises(ArtifactError, match="is not a loadable ExecuTorch program") as e:
        FORMATS["executorch"].load(bad, "cpu", 1)
    assert "\n" not in str(e.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pte"]


def test_allow_portable_is_for_executorch_only():
    res = CliRunner().invoke(cli, ["export", "--format", "onnx", "--allow-portable"], obj={})
    assert res.exit_code == 2 and "--allow-portable applies to --format executorch only" in res.output


@pytest.mark.parametrize("fmt, why", [("coreml", "macOS"), ("tensorrt", "torch<2.15"), ("triton", "NGC containers")])
def test_formats_not_offered_say_why_in_one_line(fmt, why):
    res = CliRunner().invoke(cli, ["export", "--format", fmt], obj={})
    assert res.exit_code == 1, res.output
    assert _one_line(res).startswith(f"Error: --format {fmt} is not offered: ") and why in res.output


def bench_a_handed_copy(fmt: str, path: Path, tmp_path: Path) -> dict:
    """`vtk bench` on a copy of the artifact (and its sidecars) alone, as someone might hand it over: its row."""
    import shutil

    for p in (path, *FORMATS[fmt].sidecars(path)):
        shutil.copy(p, tmp_path / p.name)
    res = CliRunner().invoke(cli, ["bench", str(tmp_path / path.name), "--batch-sizes", "1", "--threads", "1",
                                   "--warmup-s", "0", "--min-iters", "2", "--min-s", "0",
                                   "--json", str(tmp_path / "bench.json")], obj={})
    assert res.exit_code == 0, res.output
    return json.loads((tmp_path / "bench.json").read_text())["rows"][0]


@pytest.mark.parametrize("fmt", EDGE)
def test_vtk_bench_times_a_handed_device_file_from_its_metadata(fmt, fp32, tmp_path):
    _, path, *_ = fp32(fmt)
    row = bench_a_handed_copy(fmt, path, tmp_path)
    assert row["runtime"] == fmt and row["status"] == "ok" and row["accuracy"] is None  # random data: not measured


def test_the_python_api_refuses_them_alike():
    import vtk_vision

    with pytest.raises(ExportError, match="--format coreml is not offered: .*macOS"):
        vtk_vision.export(formats=["onnx", "coreml"])
