"""Smaller frictions of a first hour (issue 26): a fast `vtk export --help`, no "+0.00 pt" worst class,
`vtk runs` saying what each run holds, a report from a bench kept elsewhere, a Python API that speaks."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

from click.testing import CliRunner
from vtk_vision.cli import cli


def test_export_help_lists_the_formats_without_importing_torch():
    from vtk_vision.cli.options import written_formats
    from vtk_vision.exporters.formats import artifact_formats

    assert written_formats() == artifact_formats()  # read from the table's source, the same names
    code = ("import sys; from vtk_vision.cli import cli\n"
            "try:\n    cli(['export', '--help'], obj={})\nexcept SystemExit:\n    pass\n"
            "print('TORCH' if 'torch' in sys.modules else 'NO TORCH')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120).stdout
    listed = "".join(out.split())  # the choice list may wrap
    assert f"[{'|'.join([*artifact_formats(), 'all'])}]" in listed and out.strip().endswith("NO TORCH"), out


def test_runs_says_what_each_run_holds_and_report_takes_a_bench_kept_elsewhere(exported_run, tmp_path, shared_data):
    run = shutil.copytree(exported_run, tmp_path / "runs" / exported_run.name)
    env = {"VTK_DATA_DIR": str(shared_data)}
    listed = json.loads(CliRunner().invoke(cli, ["runs", "--runs-dir", str(run.parent), "--json"], obj={}).output)
    assert listed[0]["made"] == ["3 exports"]
    kept = tmp_path / "elsewhere.json"
    res = CliRunner(env=env).invoke(cli, ["bench", str(run), "--runtime", "onnx", "--batch-sizes", "8", "--threads",
                                          "1", "--warmup-s", "0", "--min-iters", "2", "--min-s", "0", "--json",
                                          str(kept)], obj={})
    assert res.exit_code == 0 and not (run / "bench.json").exists(), res.output
    res = CliRunner().invoke(cli, ["report", str(run), "--bench", str(kept)], obj={})
    assert res.exit_code == 0 and "not in it yet: vtk bench" not in res.output, res.output
    page = (run / "report.html").read_text()
    assert "onnx" in page and str(kept) in page
    assert "ONNX Runtime providers" in page and "CPU features" in page  # the environment in words,
    assert not any(raw in page for raw in ("cpu_features_text", "ort_providers_available", "samples_ms"))  # no keys
    listed = json.loads(CliRunner().invoke(cli, ["runs", "--runs-dir", str(run.parent), "--json"], obj={}).output)
    assert listed[0]["made"] == ["3 exports", "report"]
    (tmp_path / "notbench.json").write_text("[1, 2]")
    res = CliRunner().invoke(cli, ["report", str(run), "--bench", str(tmp_path / "notbench.json")], obj={})
    assert res.exit_code == 1 and len(res.output.strip().splitlines()) == 1


def test_the_python_api_says_what_it_does_unless_quiet(shared_data, tmp_path, capfd):
    import vtk_vision as vtk

    vtk.train("lenet5", "mnist", runs_dir=tmp_path, data_dir=shared_data, subset=0.02, epochs=1, device="cpu")
    err = capfd.readouterr().err
    assert "vtk: training lenet5 on mnist" in err and "vtk: epoch 1/1: train loss" in err
    seen = []
    vtk.train("lenet5", "mnist", runs_dir=tmp_path, data_dir=shared_data, subset=0.02, epochs=1, device="cpu",
              quiet=True, on_epoch=seen.append)
    assert "vtk:" not in capfd.readouterr().err and len(seen) == 1
