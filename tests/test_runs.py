"""The run folder's schema: today's records round-trip, the layout before version 2 still loads,
and a damaged or foreign run.json is one line naming the file and the field."""

from __future__ import annotations

import json
import shutil

import pytest
from click.testing import CliRunner

from vtk_vision.cli import cli
from vtk_vision.core.errors import RunError
from vtk_vision.runs.folder import RunFolder, load_run
from vtk_vision.runs.schema import SCHEMA_VERSION, parse_run


@pytest.fixture
def run_copy(trained_run, tmp_path):
    dest = tmp_path / "runs" / trained_run.name
    shutil.copytree(trained_run, dest)
    return dest


def _edit(run_dir, change):
    data = json.loads((run_dir / "run.json").read_text())
    change(data)
    (run_dir / "run.json").write_text(json.dumps(data))


def test_record_round_trips(run_copy):
    folder = RunFolder(run_copy)
    record = folder.read()
    assert record.schema == SCHEMA_VERSION and record.status == "complete"
    assert record.model.name == "lenet5" and record.data.classes[0] == "T-shirt/top"
    assert parse_run(json.loads(json.dumps(record.to_json())), "x") == record


def test_layout_before_the_schema_number_still_loads(run_copy):
    """vtk before schema 2 wrote no `schema` key and a `run_dir` field; such folders load as they are."""
    _edit(run_copy, lambda d: (d.pop("schema"), d.__setitem__("run_dir", str(run_copy))))
    run = load_run(run_copy)
    assert run.record.model.input_shape == (1, 32, 32) and len(run.classes) == 10


@pytest.mark.parametrize("change,needle", [
    (lambda d: d.__setitem__("schema", SCHEMA_VERSION + 1), "written by a newer vtk"),
    (lambda d: d["model"].__setitem__("kwargs", [1, 2]), "field 'model.kwargs' should be an object, not list"),
    (lambda d: d["data"]["preprocess"].__setitem__("mean", [0.1, 0.2]), "field 'data.preprocess.mean' should be a list of 1"),
    (lambda d: d["data"]["preprocess"].__setitem__("std", [0.0]), "positive finite numbers"),
    (lambda d: d["data"].__setitem__("classes", ["a", "b"]), "should be 10 names, one per model output, got 2"),
    (lambda d: d["data"].__setitem__("image_shape", [1, 30, 30]), "do not match the data"),
    (lambda d: d.__setitem__("status", "done"), "'status' should be one of"),
    (lambda d: d.pop("model"), "field 'model' is missing"),
    (lambda d: d["config"].__setitem__("class_weights", []), "class_weights should be an object"),
    (lambda d: d["config"].__setitem__("lr", float("nan")), "lr must be a finite number"),
    (lambda d: d["config"].__setitem__("optimizer", "rmsprop"), "optimizer must be one of"),
    (lambda d: d["model"].__setitem__("input_shape", [1, 32.5, 32]), "three positive whole numbers"),
    (lambda d: d.pop("accuracy"), "says the run is complete but holds no"),
    (lambda d: d["accuracy"].__setitem__("test", 7), "should be a number from 0 to 1"),
])
def test_bad_run_json_is_one_line(run_copy, change, needle):
    _edit(run_copy, change)
    with pytest.raises(RunError, match="run.json") as e:
        load_run(run_copy)
    assert needle in str(e.value) and "\n" not in str(e.value)
    res = CliRunner().invoke(cli, ["eval", str(run_copy)], obj={})
    assert res.exit_code == 1 and len(res.output.strip().splitlines()) == 1 and needle in res.output


def test_top_level_list_is_refused(run_copy):
    (run_copy / "run.json").write_text("[1, 2]")
    with pytest.raises(RunError, match="should be a JSON object, not list"):
        load_run(run_copy)


def test_status_transitions_follow_the_life_of_a_run(run_copy):
    record = RunFolder(run_copy).read()
    with pytest.raises(RuntimeError, match="from 'complete' to 'running'"):
        record.moved_to("running")
    running = record.__class__(**{**record.__dict__, "status": "running"})
    assert running.moved_to("interrupted").moved_to("running").status == "running"


def test_artifacts_exported_by_bench_are_recorded(run_copy, shared_data):
    """Whoever exports into exports/, export.json lists it."""
    from vtk_vision.bench.run import BenchOptions, bench_run

    shutil.rmtree(run_copy / "exports", ignore_errors=True)
    opts = BenchOptions(runtimes=("onnx",), batch_sizes=(1,), warmup_s=0, min_iters=1, min_s=0, threads=1)
    bench_run(load_run(run_copy), opts, str(shared_data))
    record = RunFolder(run_copy).read_exports()
    assert set(record.artifacts) == {"model.onnx"}
    assert record.artifacts["model.onnx"].written_by == "vtk bench" and record.artifacts["model.onnx"].passed


def test_malformed_export_json_is_one_line(run_copy, shared_data):
    (run_copy / "exports").mkdir(exist_ok=True)
    (run_copy / "exports" / "export.json").write_text('{"artifacts": {"model.onnx": {"format": 3}}}')
    before = {p.name: p.stat().st_mtime_ns for p in (run_copy / "exports").iterdir()}
    res = CliRunner(env={"VTK_DATA_DIR": str(shared_data)}).invoke(cli, ["export", str(run_copy)], obj={})
    assert res.exit_code == 1 and len(res.output.strip().splitlines()) == 1
    assert "export.json: field 'artifacts.model.onnx.format' should be text" in res.output
    assert {p.name: p.stat().st_mtime_ns for p in (run_copy / "exports").iterdir()} == before  # nothing written
