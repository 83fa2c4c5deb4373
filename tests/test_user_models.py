"""A user's own model (a file this test writes, not the zoo), torchvision by name, and weights from elsewhere."""

from __future__ import annotations

import json
import shutil
import sys

import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import save_file

from vtk_vision.cli import cli

BLOCKS = '''
import torch
from torch import nn


def conv_block(cin, cout):
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU())
'''

NET = '''
import torch
from torch import nn

from blocks import conv_block  # a helper module beside the model's file


class PlainNet(nn.Module):
    """Not in the zoo: written by the test."""

    def __init__(self, num_classes=10, in_channels=1, width=6):
        super().__init__()
        self.conv = conv_block(in_channels, width)
        self.pool = nn.AdaptiveAvgPool2d(4)
        self.head = nn.Linear(width * 16, num_classes)

    def forward(self, x):
        return self.head(self.pool(self.conv(x)).flatten(1))


def plain(num_classes):
    return PlainNet(num_classes=num_classes)
'''

FAST_BENCH = ["--min-s", "0.01", "--min-iters", "3", "--warmup-s", "0", "--batch-sizes", "1,8", "--threads", "1"]


def vtk(env: dict, *args: str):
    return CliRunner(env=env).invoke(cli, list(args), obj={})


@pytest.fixture(scope="module")
def user_run(shared_data, tmp_path_factory):
    """PlainNet trained for one epoch on 5% of Fashion-MNIST through `vtk train nets/plain.py:PlainNet`."""
    base = tmp_path_factory.mktemp("user-model")
    (base / "nets").mkdir()
    (base / "nets" / "plain.py").write_text(NET)
    (base / "nets" / "blocks.py").write_text(BLOCKS)
    env = {"VTK_DATA_DIR": str(shared_data), "VTK_RUNS_DIR": str(base / "runs")}
    res = vtk(env, "train", str(base / "nets" / "plain.py") + ":PlainNet", "--subset", "0.05", "--epochs", "1",
              "--device", "cpu", "--model-arg", "width=5")
    assert res.exit_code == 0, res.output
    run = base / "runs" / (base / "runs" / "latest").read_text().strip()
    return base, env, run


def test_user_model_trains_exports_and_benches(user_run):
    base, env, run = user_run
    record = json.loads((run / "run.json").read_text())
    assert record["model"]["source"]["kind"] == "file" and record["model"]["kwargs"]["width"] == 5
    assert (run / "model_source" / "plain.py").read_text() == NET
    assert (run / "model_source" / "blocks.py").read_text() == BLOCKS  # the helper it imported, kept too
    assert list(record["model"]["source"]["helpers"]) == ["blocks.py"]
    res = vtk(env, "export", str(run), "--format", "all")
    assert res.exit_code == 0, res.output
    exports = json.loads((run / "exports" / "export.json").read_text())["artifacts"]
    assert {a["format"] for a in exports.values() if a["passed"]} == {"onnx", "torchscript", "pt2"}
    assert all(a["accuracy"] == pytest.approx(record["accuracy"]["test"]) for a in exports.values())
    res = vtk(env, "bench", str(run), "--runtime", "eager,onnx", *FAST_BENCH)
    assert res.exit_code == 0, res.output
    rows = json.loads((run / "bench.json").read_text())["rows"]
    assert {(r["runtime"], r["batch"]) for r in rows if r["status"] == "ok"} == {(r, b) for r in ("eager", "onnx")
                                                                               for b in (1, 8)}


def test_run_rebuilds_from_its_copy_after_the_original_moved_or_changed(user_run, caplog):
    base, env, run = user_run
    original = base / "nets" / "plain.py"
    original.write_text(NET.replace("width * 16", "width * 16 + 0"))  # changed, same tensors
    res = vtk(env, "eval", str(run))
    assert res.exit_code == 0, res.output
    assert any("changed since" in r.getMessage() and "model_source/plain.py" in r.getMessage()
               for r in caplog.records)
    (base / "nets").rename(base / "moved")  # the model's file and its helper, both gone
    try:
        res = vtk(env, "eval", str(run), "--json")
        assert res.exit_code == 0, res.output
        assert json.loads(res.output)["accuracy"] == pytest.approx(json.loads(
            (run / "run.json").read_text())["accuracy"]["test"])
    finally:
        (base / "moved").rename(base / "nets")
        original.write_text(NET)


def test_a_run_from_someone_else_runs_its_source_only_with_trust_code(user_run, tmp_path):
    base, env, run = user_run
    theirs = env | {"VTK_STATE_DIR": str(tmp_path / "another-user")}  # nothing trusted there
    res = vtk(theirs, "eval", str(run))
    assert res.exit_code == 1
    assert "model code" in res.output and "--trust-code" in res.output and "Traceback" not in res.output
    assert vtk(theirs, "eval", str(run), "--trust-code").exit_code == 0
    res = vtk(theirs, "report", str(run), "--out", str(tmp_path / "theirs.html"))  # reads files: runs no code
    assert res.exit_code == 0 and "not counted" in (tmp_path / "theirs.html").read_text(), res.output
    res = vtk(theirs, "bench", str(run), "--trust-code", "--runtime", "eager", *FAST_BENCH,
              "--json", str(tmp_path / "theirs.json"))
    assert res.exit_code == 0, res.output
    tampered = tmp_path / "tampered"
    shutil.copytree(run, tampered)
    (tampered / "model_source" / "plain.py").write_text(NET + "\nprint('pwned')\n")
    res = vtk(env, "eval", str(tampered))  # even this user's vtk never made this file
    assert res.exit_code == 1 and "pwned" not in res.output and "--trust-code" in res.output


PAYLOAD = "open({marker!r}, 'w').write('ran')\n"


@pytest.mark.parametrize("craft", ["source dropped from run.json", "source relabelled torchvision",
                                   "an unrecorded module beside the copy", "a helper rewritten",
                                   "a crafted __pycache__"])
def test_a_crafted_run_folder_runs_none_of_its_code(user_run, tmp_path, craft):
    """Code in a run folder runs only when run.json accounts for every file and the trust record knows it."""
    base, env, run = user_run
    evil = tmp_path / "evil"
    shutil.copytree(run, evil)
    marker = tmp_path / "ran"
    record = json.loads((evil / "run.json").read_text())
    source = evil / "model_source"
    if craft == "source dropped from run.json":
        (source / "plain.py").write_text(PAYLOAD.format(marker=str(marker)) + NET)
        record["model"].pop("source")
    elif craft == "source relabelled torchvision":
        (source / "plain.py").write_text(PAYLOAD.format(marker=str(marker)) + NET)
        record["model"]["source"] = {"kind": "torchvision", "spec": record["model"]["name"], "attr": "PlainNet"}
    elif craft == "an unrecorded module beside the copy":
        (source / "torch_helpers.py").write_text(PAYLOAD.format(marker=str(marker)))
    elif craft == "a helper rewritten":
        (source / "blocks.py").write_text(PAYLOAD.format(marker=str(marker)) + BLOCKS)
    else:
        (source / "__pycache__").mkdir()
        (source / "__pycache__" / "blocks.cpython-311.pyc").write_bytes(b"crafted")
    (evil / "run.json").write_text(json.dumps(record))
    res = vtk(env, "eval", str(evil))  # env: the trust record of the user who trained `run`
    assert res.exit_code == 1 and "Traceback" not in res.output, res.output
    assert not marker.exists()


def test_torchvision_resnet18_has_torchvisions_parameter_count():
    res = CliRunner().invoke(cli, ["summary", "torchvision:resnet18", "--json", "--depth", "1"], obj={})
    assert res.exit_code == 0, res.output
    info = json.loads(res.output)[0]
    assert info["params"] == 11_689_512 and info["input_shape"] == [3, 224, 224]


def test_torchvision_model_takes_grey_images_and_the_datasets_classes():
    from vtk_vision.models import create_model

    model = create_model("torchvision:resnet18", input_size=28, in_channels=1, num_classes=10).eval()
    assert model(torch.zeros(2, 1, 28, 28)).shape == (2, 10)
    assert model.vtk_info.source["kind"] == "torchvision"


@pytest.fixture
def weights(tmp_path, monkeypatch):
    import importlib.util

    (tmp_path / "plain.py").write_text(NET)
    (tmp_path / "blocks.py").write_text(BLOCKS)
    monkeypatch.syspath_prepend(str(tmp_path))
    spec = importlib.util.spec_from_file_location("plain_for_weights", tmp_path / "plain.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # so that torch.save can pickle the whole model below
    spec.loader.exec_module(module)
    torch.manual_seed(0)
    net = module.PlainNet()
    save_file(net.state_dict(), tmp_path / "plain.safetensors")
    torch.save({"state_dict": net.state_dict()}, tmp_path / "plain.pth")
    torch.save(module.PlainNet(num_classes=7).state_dict(), tmp_path / "seven.pt")
    torch.save(net, tmp_path / "pickled-model.pt")  # a whole pickled object: needs the unrestricted unpickler
    return tmp_path


def test_weights_from_elsewhere_export_with_and_without_data(weights, shared_data, tmp_path):
    env = {"VTK_DATA_DIR": str(shared_data), "VTK_RUNS_DIR": str(tmp_path / "runs")}
    spec = f"{weights / 'plain.py'}:PlainNet"
    res = vtk(env, "export", "--model", spec, "--weights", str(weights / "plain.safetensors"),
              "--dataset", "fashion-mnist", "--json")
    assert res.exit_code == 0, res.output
    [onnx] = json.loads(res.output[res.output.index("["):])
    assert onnx["passed"] and 0 <= onnx["accuracy"] <= 1
    res = vtk(env, "export", "--model", spec, "--weights", str(weights / "plain.pth"), "--format", "pt2")
    assert res.exit_code == 0, res.output
    assert "not measured" in res.output and "random inputs" in res.output
    run = next(p for p in (tmp_path / "runs").iterdir() if p.name.startswith("PlainNet-weights"))
    [pt2] = json.loads((run / "exports" / "export.json").read_text())["artifacts"].values()
    assert pt2["passed"] and pt2["accuracy"] is None and pt2["eager_accuracy"] is None
    assert json.loads((run / "run.json").read_text())["status"] == "imported"


def _one_line_refusal(res, *needles: str) -> None:
    assert res.exit_code != 0, res.output
    assert "Traceback" not in res.output and len(res.output.strip().splitlines()) == 1, res.output
    for needle in needles:
        assert needle in res.output, res.output


BAD_FILES = {
    "no such NAME": ("PlainNet = None\nclass Other(__import__('torch').nn.Module):\n    pass\n", "Missing",
                     ["has no 'Missing'", "Other"]),
    "not a module or factory": ("NUMBER = 3\n", "NUMBER", ["is an int, not an nn.Module class or a function"]),
    "factory that raises": ("def broken(num_classes):\n    raise ValueError('no such width')\n", "broken",
                            ["broken(num_classes=10) failed (ValueError: no such width)"]),
    "syntax error": ("def broken(:\n    pass\n", "broken", ["line 1: SyntaxError"]),
    "several inputs": (NET + "\nclass TwoInputs(PlainNet):\n    def forward(self, x, mask):\n        return x\n",
                       "TwoInputs", ["forward takes 2 inputs (x, mask)"]),
    "a tuple while training": (NET.replace("from blocks import conv_block", "conv_block = lambda a, b: "
                                           "__import__('torch').nn.Conv2d(a, b, 3, padding=1)")
                               + "\nclass Aux(PlainNet):\n    def forward(self, x):\n        y = super().forward(x)"
                               "\n        return (y, y) if self.training else y\n", "Aux",
                               ["returns a tuple in training mode"]),
    "sys.exit at import": ("import sys\nsys.exit(3)\n", "Net", ["called sys.exit(3)", "__name__"]),
    "a class that needs an argument": ("from torch import nn\nclass Needs(nn.Module):\n    def __init__(self, "
                                       "num_classes, width):\n        super().__init__()\n", "Needs",
                                       ["missing 1 required positional argument: 'width'", "--model-arg"]),
    "fails at the data's shape": ("from torch import nn\ndef flat(num_classes):\n    return nn.Sequential("
                                  "nn.Flatten(), nn.Linear(1024, num_classes))\n", "flat",
                                  ["fails on a 1x28x28 input", "RuntimeError"]),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_bad_model_files_are_refused_in_one_line_before_any_run_folder(case, tmp_path, shared_data):
    text, name, needles = BAD_FILES[case]
    (tmp_path / "bad.py").write_text(text)
    (tmp_path / "blocks.py").write_text(BLOCKS)
    env = {"VTK_DATA_DIR": str(shared_data), "VTK_RUNS_DIR": str(tmp_path / "runs")}
    _one_line_refusal(vtk(env, "train", f"{tmp_path / 'bad.py'}:{name}", "--subset", "0.01", "--epochs", "1"),
                      *needles)
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


@pytest.mark.parametrize("file, needles", [
    ("seven.pt", ["tensor 'head.weight' is [7, 96] in the file but [10, 96]"]),
    ("pickled-model.pt", ["needs an unrestricted unpickler", "PlainNet", "state_dict"]),
])
def test_bad_weights_are_refused_in_one_line_and_leave_no_folder(weights, tmp_path, file, needles):
    env = {"VTK_RUNS_DIR": str(tmp_path / "runs")}
    res = vtk(env, "export", "--model", f"{weights / 'plain.py'}:PlainNet", "--weights", str(weights / file))
    _one_line_refusal(res, *needles)
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_model_args_vtk_sets_are_refused_in_one_line(tmp_path):
    res = vtk({"VTK_RUNS_DIR": str(tmp_path)}, "train", "torchvision:resnet18", "--model-arg", "num_classes=5")
    assert res.exit_code == 2 and "num_classes is vtk's to set" in res.output and "Traceback" not in res.output


def test_a_factory_with_positional_only_parameters_is_built():
    from vtk_vision.models.external import instantiate

    def net(num_classes, in_channels, /):
        return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(in_channels * 4, num_classes))

    assert instantiate(net, "net", 3, 2, 2, {})(torch.zeros(1, 2, 2, 2)).shape == (1, 3)


def test_a_reduced_precision_import_without_data_is_refused_before_any_folder(weights, tmp_path):
    res = vtk({"VTK_RUNS_DIR": str(tmp_path / "runs")}, "export", "--model", f"{weights / 'plain.py'}:PlainNet",
              "--weights", str(weights / "plain.safetensors"), "--precision", "int8")
    assert res.exit_code == 2 and "give --dataset" in res.output
    assert not (tmp_path / "runs").exists()


class Scaled(torch.nn.Module):
    """A notebook-style class whose constructor takes an argument vtk cannot know."""

    def __init__(self, num_classes=10, in_channels=1, scale=1.0):
        super().__init__()
        self.scale = scale
        self.head = torch.nn.Linear(in_channels * 64, num_classes)

    def forward(self, x):
        return self.head(x.flatten(1)) * self.scale


def test_an_object_rebuilds_from_source_only_when_that_computes_the_same():
    from vtk_vision.models import adopt_model

    assert adopt_model(Scaled(), (1, 8, 8), 10).vtk_info.source["kind"] == "file"
    other = adopt_model(Scaled(scale=5.0), (1, 8, 8), 10)  # same tensors, another model
    assert other.vtk_info.source["kind"] == "object"
