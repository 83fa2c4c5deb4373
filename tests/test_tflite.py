"""LiteRT (.tflite): converted in the converter environment, checked, benched, read back by LiteRT's own
interpreter called as a device app would, and refused in one line when handed something else.

These tests need the converter environment (`vtk setup tflite`, which the README's test command runs: it
installs from the registry, and tests download nothing). Without it they skip, saying so.
"""

from __future__ import annotations

import json
import os
import re

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from tests.test_edge_formats import _export, _one_line, _setup, bench_a_handed_copy
from vtk_vision.bench.rows import Inputs, Target, Timing, time_runtime
from vtk_vision.cli import cli
from vtk_vision.core.errors import ArtifactError
from vtk_vision.exporters import FORMATS, ExportOptions, export_model, read_artifact_metadata
from vtk_vision.exporters.converter_env import LITERT, converter_dir, is_ready

pytestmark = pytest.mark.skipif(not is_ready(LITERT), reason="the LiteRT converter environment is not built: run "
                                "`vtk setup tflite` (the README's test command does)")


@pytest.fixture(scope="module")
def fp32(tmp_path_factory):
    return _export("tflite", tmp_path_factory.mktemp("tflite"))


@pytest.fixture(scope="module")
def int8(tmp_path_factory):
    # random weights leave near ties that int8 may flip: the gate is loosened here (ExecuTorch's test does the same)
    return _export("tflite", tmp_path_factory.mktemp("tflite-int8"),
                   ExportOptions(precision="int8", calibration_size=64, max_accuracy_drop=5))


def test_fp32_matches_eager_as_a_batch_1_program_with_its_metadata(fp32):
    result, path, *_ = fp32
    assert result.passed and path.name == "model.tflite" and result.input_shape == [1, 1, 32, 32]
    assert result.agreement == 1.0 and result.max_abs_diff <= 1e-4 and result.accuracy == result.eager_accuracy == 1.0
    assert [c["batch"] for c in result.checks] == [1]  # every image, one at a time: the program's batch
    assert result.lowering["litert_torch"] == "0.10.0" and result.lowering["torch"].startswith("2.13.0")
    meta = read_artifact_metadata(path)
    assert meta["model"] == "lenet5" and json.loads(meta["input_shape"]) == [1, 1, 32, 32]
    assert json.loads(meta["validation"])["passed"] is True
    assert {p.name for p in path.parent.iterdir()} == {"model.tflite", "model.tflite.json"}
    assert result.size_bytes == path.stat().st_size > 0.9 * 61_990 * 4  # fp32 weights


def test_int8_is_gated_a_third_of_the_size_and_says_how_to_feed_it(int8, fp32):
    result, path, *_ = int8
    assert result.passed and path.name == "model.int8.tflite" and result.accuracy_delta is not None
    assert result.reduction["calibration_images"] == 64 and result.reduction["per_channel"] is True
    assert result.lowering["input"]["dtype"] == result.lowering["output"]["dtype"] == "int8"
    assert result.size_bytes < 0.4 * fp32[0].size_bytes
    meta = read_artifact_metadata(path)
    assert meta["input_quantization"].startswith("q = clip(round(x / ") and meta["precision"] == "int8"


def _scale_zero(formula: str) -> tuple[float, int]:
    """The scale and zero point a device app would read from the metadata's formula."""
    scale, zero = re.search(r"x / ([0-9.e-]+)\) \+ (-?\d+)", formula).groups()
    return float(scale), int(zero)


def test_litert_called_directly_with_the_metadatas_scales_reproduces_the_accuracy(int8):
    """LiteRT's own interpreter, fed as the metadata tells a device app (no vtk runner), gets vtk's accuracy."""
    from ai_edge_litert.interpreter import Interpreter

    result, path, _, x, labels = int8
    meta = read_artifact_metadata(path)
    scale, zero = _scale_zero(meta["input_quantization"])
    interpreter = Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    inp, out = interpreter.get_input_details()[0]["index"], interpreter.get_output_details()[0]["index"]
    predictions = []
    for image in x.numpy():
        interpreter.set_tensor(inp, np.clip(np.rint(image[None] / scale) + zero, -128, 127).astype(np.int8))
        interpreter.invoke()
        predictions.append(int(interpreter.get_tensor(out).argmax()))  # argmax of int8 = of the dequantized
    assert (torch.tensor(predictions) == labels).double().mean().item() == result.accuracy


def test_bench_row_runs_the_programs_batch_and_says_why_not_another(fp32):
    result, path, _, x, labels = fp32
    rows = time_runtime(Target("tflite", "fp32", "cpu", 1, path, path), Inputs(x, labels, 1.0), (1, 8),
                        Timing(warmup_s=0, min_iters=2, min_s=0, max_rounds=1))
    assert rows[0].status == "ok" and rows[0].accuracy == 1.0 and rows[0].size_bytes == result.size_bytes
    assert rows[0].active_providers[0] == "litert:xnnpack, 1 threads"
    assert rows[1].status != "ok" and "fixed batch" in rows[1].reason and "--static-batch" in rows[1].reason


def test_vtk_bench_times_a_handed_tflite_from_its_metadata(fp32, tmp_path):
    _, path, *_ = fp32
    row = bench_a_handed_copy("tflite", path, tmp_path)
    assert row["runtime"] == "tflite" and row["status"] == "ok"


def test_a_handed_file_that_is_no_litert_model_is_one_line_before_litert_sees_it(tmp_path):
    bad = tmp_path / "model.tflite"
    bad.write_bytes(b"\x7fELF" + os.urandom(200))
    res = CliRunner().invoke(cli, ["bench", str(bad), "--batch-sizes", "1", "--threads", "1"], obj={})
    assert res.exit_code == 1 and "is not a LiteRT model" in _one_line(res), res.output
    bad.write_bytes(b"\x10\x00\x00\x00TFL3" + b"\xff" * 200)  # the identifier, then offsets out of bounds
    with pytest.raises(ArtifactError, match="is a damaged LiteRT flatbuffer"):
        FORMATS["tflite"].load(bad, "cpu", 1)


def test_a_converter_environment_that_cannot_be_built_is_one_line_and_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("VTK_CONVERTER_DIR", str(tmp_path / "conv"))
    monkeypatch.setenv("PIP_NO_INDEX", "1")  # no registry: what an offline machine sees
    monkeypatch.setenv("PIP_FIND_LINKS", "")
    model, prep, images, labels, info = _setup(8)
    (tmp_path / "out").mkdir()
    with pytest.raises(Exception, match="could not build the converter environment .* needs that registry") as e:
        export_model(model, prep, "tflite", tmp_path / "out", images, labels, info)
    assert "\n" not in str(e.value)
    assert not converter_dir(LITERT).exists() and list((tmp_path / "conv").iterdir()) == []
    assert list((tmp_path / "out").iterdir()) == []
