"""Exporters: every model x every format with random weights, then a trained run end to end."""

from __future__ import annotations

import json
import warnings

import numpy as np
import onnxruntime as ort
import pytest
import torch
from click.testing import CliRunner

from vtk_vision.exporters import FORMATS, ExportOptions, export_model, read_artifact_metadata
from vtk_vision.exporters.formats import all_formats, onnx_format
from tests.conftest import provenance
from vtk_vision.models import create_model, list_models
from vtk_vision.cli import cli
from vtk_vision.core.errors import ExportError, ValidationError
from vtk_vision.core.preprocess import Preprocess


def _setup(name: str, n: int = 40):
    torch.manual_seed(0)
    model = create_model(name).eval()
    c, h, w = model.vtk_info.input_shape
    prep = Preprocess((0.3,) * c, (0.3,) * c, (c, h, w), (c, h, w))
    images = torch.randint(0, 256, (n, c, h, w), dtype=torch.uint8)
    return model, prep, images, provenance(model, prep)


@pytest.mark.parametrize("fmt", all_formats())  # the device formats: tests/test_edge_formats.py
@pytest.mark.parametrize("name", list_models())
def test_every_model_every_format(name, fmt, tmp_path):
    model, prep, images, info = _setup(name)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a leaking TorchScript deprecation warning (or any other) fails here
        result = export_model(model, prep, fmt, tmp_path, images, None, info)
    assert result.passed and result.agreement == 1.0 and result.max_abs_diff <= 1e-4
    assert [c["batch"] for c in result.checks] == [256, 1, 7]
    meta = read_artifact_metadata(tmp_path / f"model{FORMATS[fmt].suffix}")
    assert meta["model"] == name and json.loads(meta["classes"])[3] == "c3"
    assert json.loads(meta["input_shape"]) == ["batch", *model.vtk_info.input_shape]
    assert json.loads(meta["validation"])["passed"] is True
    artifact = tmp_path / f"model{FORMATS[fmt].suffix}"
    assert {p.name for p in tmp_path.iterdir()} == {artifact.name, *(s.name for s in FORMATS[fmt].sidecars(artifact))}


def test_onnx_is_one_file_with_a_named_batch(tmp_path):
    model, prep, images, info = _setup("lenet5")
    export_model(model, prep, "onnx", tmp_path, images, None, info)
    import onnx
    proto = onnx.load(str(tmp_path / "model.onnx"))
    assert proto.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    assert not any(n.op_type == "Dropout" for n in proto.graph.node), "exported from eval mode"
    assert [p.name for p in tmp_path.iterdir()] == ["model.onnx"]  # no .onnx.data sidecar


@pytest.mark.parametrize("fmt", ["onnx", "torchscript", "pt2"])
def test_bake_preprocess_takes_raw_pixels(fmt, tmp_path):
    torch.manual_seed(0)
    model = create_model("lenet5").eval()  # 32x32 model fed 28x28 raw pixels: padding inside the graph
    prep = Preprocess((0.286,), (0.353,), (1, 28, 28), (1, 32, 32))
    images = torch.randint(0, 256, (30, 1, 28, 28), dtype=torch.uint8)
    info = provenance(model, prep, list("abcdefghij"))
    result = export_model(model, prep, fmt, tmp_path, images, None, info, ExportOptions(bake_preprocess=True))
    assert result.passed and result.input_shape == ["batch", 28, 28] and result.input_dtype == "uint8"
    if fmt == "onnx":  # a deployer's client: raw pixels in, same logits as vtk's own path
        sess = ort.InferenceSession(str(tmp_path / "model.raw.onnx"), providers=["CPUExecutionProvider"])
        got = sess.run(None, {"images": images[:, 0].numpy()})[0]
        want = model(prep(images)).detach().numpy()
        np.testing.assert_allclose(got, want, atol=1e-4, rtol=1e-3)


def test_static_batch(tmp_path):
    model, prep, images, info = _setup("mlp", n=12)
    result = export_model(model, prep, "onnx", tmp_path, images, None, info,
                          ExportOptions(dynamic_batch=False, batch_size=4))
    assert result.passed and result.input_shape[0] == 4 and result.checks[0]["images"] == 12
    assert [p.name for p in tmp_path.iterdir()] == ["model.b4.onnx"]  # never the dynamic model.onnx's name
    sess = ort.InferenceSession(str(tmp_path / "model.b4.onnx"), providers=["CPUExecutionProvider"])
    assert sess.get_inputs()[0].shape[0] == 4


def test_failed_validation_leaves_nothing(tmp_path, monkeypatch):
    model, prep, images, info = _setup("lenet5")
    from dataclasses import replace

    from vtk_vision.exporters import formats

    real = onnx_format.load

    def off_by_a_bit(path, provider, threads):
        runner = real(path, provider, threads)
        return replace(runner, logits=lambda x: runner.logits(x) + 1e-2)
    monkeypatch.setitem(formats.FORMATS, "onnx", replace(formats.FORMATS["onnx"], load=off_by_a_bit))
    with pytest.raises(ValidationError, match="max abs diff 0.01.*nothing was written"):
        export_model(model, prep, "onnx", tmp_path, images, None, info)
    assert list(tmp_path.iterdir()) == []


def test_unsupported_opset(tmp_path):
    model, prep, images, info = _setup("linear")
    with pytest.raises(ExportError, match="cannot produce ONNX opset 13"):
        export_model(model, prep, "onnx", tmp_path, images, None, info, ExportOptions(opset=13))
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------- a trained run, through the CLI
@pytest.fixture
def trained(trained_run):
    """The runs folder of the session's shared trained run."""
    return trained_run.parent


def _vtk(runs, shared_data, *args):
    env = {"VTK_DATA_DIR": str(shared_data), "VTK_RUNS_DIR": str(runs)}
    return CliRunner(env=env).invoke(cli, list(args), obj={})


def test_trained_run_all_formats_keep_accuracy(trained, shared_data):
    res = _vtk(trained, shared_data, "export", "--format", "all", "--json")
    assert res.exit_code == 0, res.output
    results = {r["format"]: r for r in json.loads(res.output)}
    assert set(results) == set(all_formats())
    eager = {r["eager_accuracy"] for r in results.values()}
    assert len(eager) == 1 and all(r["accuracy"] == r["eager_accuracy"] for r in results.values())
    run_dir = trained / (trained / "latest").read_text().strip()
    record = json.loads((run_dir / "exports" / "export.json").read_text())
    assert set(record["artifacts"]) == {"model.onnx", "model.torchscript", "model.pt2"}
    # an independent ONNX Runtime client, fed as the metadata says, gets the same accuracy
    from vtk_vision.data import load_dataset
    meta = onnx_format.read_metadata(run_dir / "exports" / "model.onnx")
    pre = json.loads(meta["vtk"])["preprocess"]
    ds = load_dataset("fashion-mnist", shared_data)
    x = torch.nn.functional.pad(ds.test.images.float() / 255, (2, 2, 2, 2))
    x = ((x - pre["mean"][0]) / pre["std"][0]).numpy()
    sess = ort.InferenceSession(str(run_dir / "exports" / "model.onnx"), providers=["CPUExecutionProvider"])
    acc = (sess.run(None, {"images": x})[0].argmax(1) == ds.test.labels.numpy()).mean()
    assert acc == pytest.approx(results["onnx"]["accuracy"], abs=1e-12)


def test_export_table_and_default_format(trained, shared_data):
    res = _vtk(trained, shared_data, "export")
    assert res.exit_code == 0, res.output
    assert "model.onnx" in res.output and "100.00%" in res.output and "export.json" in res.output


@pytest.mark.parametrize("damage,needle", [
    (lambda d: (d / "model.safetensors").unlink(), "model.safetensors is missing"),
    (lambda d: (d / "model.safetensors").write_bytes(b"garbage"), "is corrupt"),
    (lambda d: (d / "run.json").write_text("{"), "run.json is unreadable or not JSON"),
])
def test_broken_run_is_one_line(trained, shared_data, tmp_path, damage, needle):
    import shutil
    src = trained / (trained / "latest").read_text().strip()
    broken = tmp_path / "broken"
    shutil.copytree(src, broken)
    damage(broken)
    res = _vtk(trained, shared_data, "export", str(broken), "--out", str(tmp_path / "out"))
    assert res.exit_code == 1 and needle in res.output and "Traceback" not in res.output
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_bad_export_options(trained, shared_data, tmp_path):
    assert _vtk(trained, shared_data, "export", "--format", "savedmodel").exit_code == 2
    assert _vtk(trained, shared_data, "export", "--format", "coreml").exit_code == 1  # not offered: says why
    res = _vtk(trained, shared_data, "export", "--opset", "13", "--out", str(tmp_path / "o"))
    assert res.exit_code == 1 and "cannot produce ONNX opset 13" in res.output
    assert not any((tmp_path / "o").glob("model*"))
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("")  # unwritable even for root, unlike chmod
    res = _vtk(trained, shared_data, "export", "--out", str(not_a_dir / "sub"))
    assert res.exit_code == 1 and "cannot" in res.output and len(res.output.strip().splitlines()) == 1
