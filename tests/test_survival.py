"""Training survives its deaths: real signals sent to a real `vtk train` process, then resumed.

SIGTERM and SIGINT come from this (Python) parent, so the child does not
ignore SIGINT as a background job of a non-interactive shell would; kill -9
cannot be caught at all, so what it tests is the checkpoint on disk and the
run folder's lock.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import time

import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import load_file

from vtk_vision.cli import cli
from vtk_vision.runs.folder import RunFolder
from vtk_vision.runs.listing import list_runs

ARGS = ["lenet5", "--input-size", "28", "--subset", "0.02", "--epochs", "10", "--batch-size", "64", "--lr", "3e-3",
        "--device", "cpu"]


def _default_sigint(then=None):
    """In the child: SIGINT back to its default, so that Python turns it into KeyboardInterrupt. A child
    inherits an ignored SIGINT (pytest run from a non-interactive shell, a pty wrapper), and Python keeps
    an inherited SIG_IGN, as a user who started vtk that way would want."""
    def setup():
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        if then is not None:
            then()
    return setup


def _vtk(runs, shared_data, *args, preexec_fn=None, **popen) -> subprocess.Popen:
    env = os.environ | {"VTK_DATA_DIR": str(shared_data), "VTK_RUNS_DIR": str(runs)}
    return subprocess.Popen([sys.executable, "-m", "vtk_vision.cli", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, preexec_fn=_default_sigint(preexec_fn), **popen)


def _epochs(run) -> int:
    try:
        return len(json.loads((run / "run.json").read_text())["history"])
    except (OSError, ValueError, KeyError):
        return 0


def _signal_after_an_epoch(proc, run, sig) -> tuple[int, str]:
    """Send `sig` as soon as one more epoch than before is on disk; the exit code and output."""
    before, deadline = _epochs(run), time.monotonic() + 120
    while _epochs(run) <= before and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert proc.poll() is None, "the run ended before the signal could be sent: " + proc.stdout.read()
    proc.send_signal(sig)
    out, _ = proc.communicate(timeout=120)
    return proc.returncode, out


def test_sigterm_kill9_and_ctrl_c_each_resume_to_the_weights_of_an_uninterrupted_run(shared_data, tmp_path):
    straight = _vtk(tmp_path / "a", shared_data, "train", *ARGS)
    assert straight.wait(timeout=300) == 0, straight.stdout.read()
    expected = load_file(tmp_path / "a" / "lenet5-fashion-mnist-1" / "model.safetensors")

    runs = tmp_path / "b"
    run = runs / "lenet5-fashion-mnist-1"
    proc = _vtk(runs, shared_data, "train", *ARGS)
    code, out = _signal_after_an_epoch(proc, run, signal.SIGTERM)
    assert code == 143 and "stopped by SIGTERM" in out and "Resume with: vtk train --resume" in out, out
    assert "Traceback" not in out and json.loads((run / "run.json").read_text())["status"] == "interrupted"

    code, out = _signal_after_an_epoch(_vtk(runs, shared_data, "train", "--resume", str(run)), run, signal.SIGKILL)
    assert code == -signal.SIGKILL
    (listed,) = list_runs(runs)
    assert listed.status == "died" and listed.resumable and not listed.latest
    res = CliRunner(env={"VTK_RUNS_DIR": str(runs)}).invoke(cli, ["export", str(run)], obj={})
    assert res.exit_code == 1 and "its process died" in res.output  # an unfinished run's weights are not its result

    code, out = _signal_after_an_epoch(_vtk(runs, shared_data, "train", "--resume", str(run)), run, signal.SIGINT)
    assert code == 130 and "interrupted;" in out and "Aborted" not in out, out

    last = _vtk(runs, shared_data, "train", "--resume", str(run))
    assert last.wait(timeout=300) == 0, last.stdout.read()
    record = json.loads((run / "run.json").read_text())
    assert record["status"] == "complete" and [h["epoch"] for h in record["history"]] == list(range(1, 11))
    final = load_file(run / "model.safetensors")
    assert all(torch.equal(final[k], expected[k]) for k in expected)  # the same weights, to the bit
    assert not (run / "checkpoint.pt").exists() and (runs / "latest").read_text().strip() == run.name


def test_a_live_run_cannot_be_resumed_twice(shared_data, tmp_path):
    runs = tmp_path / "runs"
    proc = _vtk(runs, shared_data, "train", *ARGS)
    run = runs / "lenet5-fashion-mnist-1"
    deadline = time.monotonic() + 120
    while _epochs(run) < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    res = CliRunner(env={"VTK_RUNS_DIR": str(runs)}).invoke(cli, ["train", "--resume", str(run)], obj={})
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=120)
    assert res.exit_code == 1 and "is being trained by process" in res.output


def _limit_file_size():
    resource.setrlimit(resource.RLIMIT_FSIZE, (300_000, 300_000))  # SIGXFSZ is ignored by Python: writes fail
                                                                    # with EFBIG, as on a full disk


def test_a_write_that_fails_keeps_the_last_good_checkpoint(shared_data, tmp_path):
    """No file may grow past 300 KB: the checkpoint before the first epoch fits, the one after it (with
    optimizer moments and best weights) does not. One line naming the file; the run resumes elsewhere."""
    runs = tmp_path / "runs"
    run = runs / "lenet5-fashion-mnist-1"
    proc = _vtk(runs, shared_data, "train", *ARGS, preexec_fn=_limit_file_size)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 1 and "Traceback" not in out, out
    error = [line for line in out.splitlines() if line.startswith("Error:")]
    assert len(error) == 1 and "checkpoint.pt" in error[0] and "File too large" in error[0]
    assert "last good checkpoint is kept" in error[0]
    assert RunFolder(run).load_checkpoint()["state"]["epoch"] == 0  # the epoch-0 checkpoint, whole
    assert not list(run.glob(".checkpoint.pt.vtk*"))  # no half-written temporary left behind
    last = _vtk(runs, shared_data, "train", "--resume", str(run))
    assert last.wait(timeout=300) == 0, last.stdout.read()


def test_interrupted_while_writing_final_results_resumes_to_a_complete_run(shared_data, tmp_path, monkeypatch):
    from vtk_vision.present import plots
    from vtk_vision.runs.config import TrainConfig
    from vtk_vision.training.trainer import TrainingInterrupted, fit

    cfg = TrainConfig(model="lenet5", input_size=28, subset=0.02, epochs=2, batch_size=64, device="cpu",
                      data_dir=str(shared_data), runs_dir=str(tmp_path / "runs"))

    def ctrl_c(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(plots, "curves", ctrl_c)  # Ctrl-C while the curves are drawn, after the last epoch
    with pytest.raises(TrainingInterrupted, match="2 epoch\\(s\\) are saved"):
        fit(cfg)
    run = tmp_path / "runs" / "lenet5-fashion-mnist-1"
    assert json.loads((run / "run.json").read_text())["status"] == "interrupted"
    assert not (tmp_path / "runs" / "latest").exists()
    monkeypatch.undo()
    done = fit(cfg, resume=RunFolder(run))
    assert done.record.status == "complete" and done.record.epochs_run == 2 and (run / "curves.png").is_file()


def test_interrupted_export_exits_130_and_leaves_no_file(trained_run, shared_data, tmp_path, monkeypatch):
    import shutil

    from vtk_vision.exporters import export as export_module

    run = tmp_path / trained_run.name
    shutil.copytree(trained_run, run, ignore=shutil.ignore_patterns("exports"))

    def ctrl_c(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(export_module, "validate", ctrl_c)  # mid-export: the artifact is written, not checked
    res = CliRunner(env={"VTK_DATA_DIR": str(shared_data)}).invoke(cli, ["export", str(run)], obj={})
    assert res.exit_code == 130 and res.output.strip().startswith("interrupted") and "Aborted" not in res.output
    assert not (run / "exports").exists() or not any((run / "exports").iterdir())


def test_a_sweep_survives_a_failing_combination(shared_data, tmp_path):
    runs = tmp_path / "runs"
    res = CliRunner(env={"VTK_DATA_DIR": str(shared_data), "VTK_RUNS_DIR": str(runs)}).invoke(
        cli, ["sweep", "lenet5", "--subset", "0.02", "--epochs", "1", "--input-size", "16,28", "--device", "cpu"],
        obj={})
    assert res.exit_code == 0, res.output
    assert "failed: lenet5 cannot take 16x16 input" in res.output and "1 of 2 combinations failed" in res.output
    assert (runs / "latest").read_text().strip() == "lenet5-fashion-mnist-1"  # the 28x28 run, the only one made
