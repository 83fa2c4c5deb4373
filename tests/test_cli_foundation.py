"""`vtk models`, `vtk summary` and the error contract, through click's runner."""

import json

import pytest
from click.testing import CliRunner

from vtk_vision.cli import cli


@pytest.fixture
def run():
    def _run(*args):
        return CliRunner().invoke(cli, list(args), obj={})
    return _run


def test_version_and_help(run):
    assert run("--version").output.startswith("vtk, version ")
    assert "summary" in run("--help").output


def test_models_lists_every_model(run):
    res = run("models", "--json")
    assert res.exit_code == 0
    rows = {r["name"]: r for r in json.loads(res.output)}
    assert rows["lenet5"]["params"] == 61_990 and rows["lenet5"]["input_shape"] == [1, 32, 32]
    assert rows["mlp"]["default_dataset"] == "fashion-mnist"


def test_summary_showcase(run):
    res = run("summary", "lenet5", "--input-size", "28", "--input-size", "32")
    assert res.exit_code == 0, res.output
    assert "29,638" in res.output and "61,990" in res.output
    assert "Units.MEGABYTES" not in res.output
    rows = json.loads(run("summary", "lenet5", "--input-size", "28", "--input-size", "32", "--json").output)
    assert [r["params"] for r in rows] == [29_638, 61_990]
    assert rows[1]["mult_adds"] > rows[0]["mult_adds"] > 0


@pytest.mark.parametrize("args,needle", [
    (("summary", "lenet5", "--input-size", "16"), "smallest size it accepts is 22x22"),
    (("summary", "nope"), "valid models:"),
    (("summary", "lenet5", "--input-size", "21"), "smallest size it accepts is 22x22"),
])
def test_user_errors_are_one_line(run, args, needle):
    res = run(*args)
    assert res.exit_code == 1
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and needle in lines[0]
    assert "Traceback" not in res.output and "Kernel size" not in res.output


def test_bad_option_exits_2(run):
    assert run("summary", "lenet5", "--depth", "0").exit_code == 2
