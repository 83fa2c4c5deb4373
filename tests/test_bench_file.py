"""`vtk bench FILE`: files vtk never wrote, timed on synthetic inputs, accuracy only where labels are known."""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner

from vtk_vision.cli import cli

FAST = ["--min-s", "0.01", "--min-iters", "3", "--warmup-s", "0", "--threads", "1"]


class Small(torch.nn.Module):
    def __init__(self, flat: bool = False):
        super().__init__()
        self.flat = flat
        self.conv = torch.nn.Conv2d(1, 4, 3, padding=1)
        self.head = torch.nn.Linear(4, 10)

    def forward(self, x):
        if self.flat:  # a rank-2 input: (batch, 784)
            x = x.view(-1, 1, 28, 28)
        return self.head(torch.relu(self.conv(x)).mean((2, 3)))


class TwoInputs(torch.nn.Module):
    def forward(self, a, b):
        return a + b


def _onnx(model, path, *example, dynamic=None):
    torch.onnx.export(model.eval(), example, str(path), dynamic_shapes=dynamic, external_data=False)
    return path


@pytest.fixture(scope="module")
def foreign(tmp_path_factory):
    """ONNX files made here with torch.onnx.export, the way someone else would: no vtk metadata."""
    d = tmp_path_factory.mktemp("foreign")
    batch, side = torch.export.Dim("batch"), torch.export.Dim("side", min=8, max=64)
    return {"free": _onnx(Small(), d / "free.onnx", torch.randn(2, 1, 28, 28),
                          dynamic={"x": {0: batch, 2: side, 3: side}}),
            "flat": _onnx(Small(flat=True), d / "flat.onnx", torch.randn(2, 784), dynamic={"x": {0: batch}}),
            "two": _onnx(TwoInputs(), d / "two.onnx", torch.randn(2, 3), torch.randn(2, 3)),
            "corrupt": d / "corrupt.onnx"}


def _bench(tmp_path, *args, env=None):
    return CliRunner(env=env or {}).invoke(cli, ["bench", *args, *FAST, "--json", str(tmp_path / "b.json")],
                                           obj={})


def test_a_foreign_onnx_is_timed_and_no_accuracy_is_invented(foreign, tmp_path):
    res = _bench(tmp_path, str(foreign["free"]), "--input-size", "28", "--batch-sizes", "1,4", "--runtime", "onnx")
    assert res.exit_code == 0, res.output
    assert "accuracy not measured" in res.output
    report = json.loads((tmp_path / "b.json").read_text())
    assert report["accuracy_measured"] is False and report["input"]["fed"] == ["batch", 1, 28, 28]
    assert [(r["batch"], r["status"]) for r in report["rows"]] == [(1, "ok"), (4, "ok")]
    assert all(r["accuracy"] is None and r["correct"] is None and r["latency_ms"]["p50"] > 0 for r in report["rows"])


def test_a_foreign_onnx_is_scored_with_dataset_mean_and_std(foreign, tmp_path, shared_data):
    res = _bench(tmp_path, str(foreign["free"]), "--input-size", "28", "--batch-sizes", "64", "--runtime", "onnx",
                 "--dataset", "fashion-mnist", "--mean", "0.286", "--std", "0.353",
                 env={"VTK_DATA_DIR": str(shared_data)})
    assert res.exit_code == 0, res.output
    [row] = json.loads((tmp_path / "b.json").read_text())["rows"]
    assert row["correct"] == round(row["accuracy"] * 10_000) and 0 <= row["accuracy"] <= 1


def _refused(res, *needles):
    assert res.exit_code != 0 and "Traceback" not in res.output, res.output
    assert len(res.output.strip().splitlines()) == 1, res.output
    for needle in needles:
        assert needle in res.output, res.output


def test_bad_foreign_files_are_one_line(foreign, tmp_path):
    foreign["corrupt"].write_bytes(b"\x08\x07not a protobuf at all")
    _refused(_bench(tmp_path, str(foreign["corrupt"])), "is not a readable ONNX model")
    _refused(_bench(tmp_path, str(foreign["two"])), "takes 2 inputs")
    _refused(_bench(tmp_path, str(foreign["flat"]), "--input-size", "28"), "rank-2 input", "--input-shape")
    _refused(_bench(tmp_path, str(foreign["free"])), "free dimensions", "--input-size")
    _refused(_bench(tmp_path, str(foreign["free"]), "--input-shape", "1,28"), "--input-shape gives 2 dimensions")
    assert not (tmp_path / "b.json").exists()


def test_an_untrusted_torchscript_file_is_refused_before_it_loads(tmp_path):
    torch.jit.save(torch.jit.script(torch.nn.Linear(4, 2)), str(tmp_path / "lin.torchscript"))
    _refused(_bench(tmp_path, str(tmp_path / "lin.torchscript"), "--input-shape", "4"), "--trust-code")
    res = _bench(tmp_path, str(tmp_path / "lin.torchscript"), "--input-shape", "4", "--trust-code",
                 "--batch-sizes", "2")
    assert res.exit_code == 0, res.output


def test_an_input_shape_with_equal_sides_is_fed_as_given(foreign, tmp_path):
    res = _bench(tmp_path, str(foreign["free"]), "--input-shape", "1,28,28", "--batch-sizes", "2", "--runtime", "onnx")
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "b.json").read_text())["input"]["fed"] == ["batch", 1, 28, 28]


def test_a_file_with_a_fixed_batch_is_timed_at_that_batch(tmp_path):
    """Its first call is at its own batch (a one-image call would fail it); other batches are skipped."""
    path = _onnx(Small(), tmp_path / "fixed.onnx", torch.randn(3, 1, 28, 28))  # batch fixed at 3
    torch.export.save(torch.export.export(Small().eval(), (torch.randn(3, 1, 28, 28),)), tmp_path / "fixed.pt2")
    for file in (path, tmp_path / "fixed.pt2"):
        res = _bench(tmp_path, str(file), "--batch-sizes", "1,3")
        assert res.exit_code == 0, res.output
        rows = json.loads((tmp_path / "b.json").read_text())["rows"]
        assert [(r["batch"], r["status"]) for r in rows] == [(3, "ok")] * len(rows) and rows, rows
        assert f"batch 1 skipped: {file.name} fixes its batch at 3" in res.output


def test_a_file_runs_under_loadgen_as_a_run_does(foreign, tmp_path):
    """--scenario on a FILE: the same LoadGen rows as a run's, on the file's synthetic inputs; the row's shape,
    not its speed."""
    res = _bench(tmp_path, str(foreign["free"]), "--input-size", "28", "--batch-sizes", "1", "--runtime", "onnx",
                 "--scenario", "server", "--qps", "500", "--load-s", "0.1")
    assert res.exit_code == 0, res.output
    assert "LoadGen server" in res.output and "VALID" in res.output
    report = json.loads((tmp_path / "b.json").read_text())
    (row,) = report["load"]["rows"]
    assert row["status"] == "ok" and row["precision"] == "file" and row["target_qps"] == 500
    assert row["queries"] == len(row["latencies_ms"]) >= 662 and row["accuracy"] is None
    assert row["size_bytes"] == report["rows"][0]["size_bytes"]


def test_a_fixed_batch_file_under_loadgen_is_one_line(tmp_path):
    one = _onnx(Small(), tmp_path / "one.onnx", torch.randn(1, 1, 28, 28))  # batch fixed at 1
    three = _onnx(Small(), tmp_path / "three.onnx", torch.randn(3, 1, 28, 28))
    _refused(_bench(tmp_path, str(one), "--scenario", "offline"), "fixes its batch at 1", "--max-batch 1")
    _refused(_bench(tmp_path, str(three), "--scenario", "server"), "fixes its batch at 3")
    assert not (tmp_path / "b.json").exists()
    res = _bench(tmp_path, str(one), "--runtime", "onnx", "--scenario", "single-stream", "--load-s", "0.1")
    assert res.exit_code == 0, res.output
    (row,) = json.loads((tmp_path / "b.json").read_text())["load"]["rows"]
    assert row["status"] == "ok" and row["max_batch"] == 1 and row["queries"] >= 64
