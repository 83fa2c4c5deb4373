"""A model that learnt nothing is named at train, export and bench, kept in their records and in the report."""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner

from vtk_vision.cli import cli
from vtk_vision.inspection.sanity import input_size_warning, prediction_warnings

CONSTANT = '''
import torch
from torch import nn


class Constant(nn.Module):
    """Looks at its input only to keep it in the graph: every image gets the same answer."""

    def __init__(self, num_classes=10, in_channels=1):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(num_classes))

    def forward(self, x):
        return self.bias + 0 * x.flatten(1)[:, :1]
'''

FAST_BENCH = ["--min-s", "0.01", "--min-iters", "3", "--warmup-s", "0", "--batch-sizes", "1", "--threads", "1"]


def _balanced(n: int = 1000, k: int = 10) -> torch.Tensor:
    return torch.arange(n) % k


def test_collapse_and_chance_are_named():
    labels = _balanced()
    lines = prediction_warnings(torch.zeros(1000, dtype=torch.long), labels, 10, tuple("abcdefghij"))
    assert [line.split(":")[0] for line in lines] == ["predictions collapsed", "accuracy at chance"]
    assert "100.0% of the 1,000 test images are predicted as 'a'" in lines[0]


def test_two_classes_taking_nine_tenths_is_collapse_but_a_good_model_is_not():
    labels = _balanced()
    two = torch.where(torch.arange(1000) < 950, labels % 2, labels)  # 95% in classes 0 and 1
    assert prediction_warnings(two, labels, 10)[0].startswith("predictions collapsed")
    right = labels.clone()
    right[:300] = 0  # 73% accurate, spread over every class
    assert prediction_warnings(right, labels, 10) == []


def test_a_lopsided_test_set_or_few_classes_is_not_collapse():
    labels = torch.cat([torch.zeros(900), torch.arange(100) % 10]).long()  # 91% of the labels are class 0
    assert not any("collapsed" in line for line in prediction_warnings(labels.clone(), labels, 10))
    assert prediction_warnings(torch.zeros(100).long(), torch.arange(100) % 2, 2)[0].startswith("accuracy at chance")


def test_chance_uses_a_binomial_margin():
    labels = _balanced(10_000)
    at = labels.clone()
    at[1050:] = (labels[1050:] + 1) % 10  # 10.5%: within 3 standard errors (0.9 pt) of 10%
    above = labels.clone()
    above[1200:] = (labels[1200:] + 1) % 10  # 12%: clearly better than guessing
    assert any("chance" in line for line in prediction_warnings(at, labels, 10))
    assert not any("chance" in line for line in prediction_warnings(above, labels, 10))


def test_input_far_below_a_torchvision_models_design():
    assert "32x32 is far below the 224x224" in input_size_warning("torchvision:mobilenet_v3_small", (3, 32, 32))
    assert input_size_warning("torchvision:resnet18", (3, 96, 96)) is None
    assert input_size_warning("lenet5", (1, 32, 32)) is None  # vtk's own models are made for small images


@pytest.fixture(scope="module")
def constant_run(shared_data, tmp_path_factory):
    base = tmp_path_factory.mktemp("constant")
    (base / "constant.py").write_text(CONSTANT)
    env = {"VTK_DATA_DIR": str(shared_data), "VTK_RUNS_DIR": str(base / "runs")}
    res = CliRunner(env=env).invoke(cli, ["train", f"{base / 'constant.py'}:Constant", "--dataset", "mnist",
                                          "--subset", "0.02", "--epochs", "1", "--device", "cpu"], obj={})
    assert res.exit_code == 0, res.output
    return env, base / "runs" / (base / "runs" / "latest").read_text().strip(), res.output


def test_a_collapsed_model_is_warned_at_train_export_bench_and_in_the_report(constant_run):
    env, run, trained = constant_run
    warned = [line for line in trained.splitlines() if line.startswith("warning: ")]
    assert [w.split(":")[1].strip() for w in warned] == ["predictions collapsed", "accuracy at chance"]
    assert json.loads((run / "run.json").read_text())["warnings"] == [w.removeprefix("warning: ") for w in warned]
    res = CliRunner(env=env).invoke(cli, ["export", str(run), "--format", "onnx"], obj={})
    assert res.exit_code == 0 and "warning: predictions collapsed" in res.output, res.output
    artifact = json.loads((run / "exports" / "export.json").read_text())["artifacts"]["model.onnx"]
    assert len(artifact["warnings"]) == 2
    from vtk_vision.exporters import read_artifact_metadata

    embedded = json.loads(read_artifact_metadata(run / "exports" / "model.onnx")["validation"])
    assert embedded["warnings"] == artifact["warnings"]  # the file itself says so, wherever it goes
    res = CliRunner(env=env).invoke(cli, ["bench", str(run), "--runtime", "eager,onnx", *FAST_BENCH], obj={})
    assert res.exit_code == 0 and "warning: accuracy at chance" in res.output, res.output
    assert len(json.loads((run / "bench.json").read_text())["warnings"]) == 2
    res = CliRunner(env=env).invoke(cli, ["report", str(run)], obj={})
    assert res.exit_code == 0, res.output
    page = (run / "report.html").read_text()
    assert 'id="warnings"' in page and "predictions collapsed" in page
    assert "(training, export model.onnx, bench)" in page


def test_a_healthy_run_has_no_warnings(trained_run):
    assert json.loads((trained_run / "run.json").read_text())["warnings"] == []
