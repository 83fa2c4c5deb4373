"""Data-parallel training for real: two gloo processes on this CPU through `vtk train --nproc 2`
(torch.distributed.run underneath), stopped by SIGTERM after an epoch and resumed."""

from __future__ import annotations

import json
import signal
import time

from tests.test_survival import _epochs, _vtk

ARGS = ["lenet5", "--input-size", "28", "--subset", "0.05", "--epochs", "4", "--device", "cpu"]


def test_two_processes_train_one_run_and_resume_after_sigterm(shared_data, tmp_path):
    single = _vtk(tmp_path / "one", shared_data, "train", *ARGS)
    assert single.wait(timeout=300) == 0, single.stdout.read()
    one = json.loads(next((tmp_path / "one").glob("*/run.json")).read_text())

    runs = tmp_path / "two"
    run = runs / "lenet5-fashion-mnist-1"
    proc = _vtk(runs, shared_data, "train", *ARGS, "--nproc", "2")
    deadline = time.monotonic() + 180
    while _epochs(run) < 1 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert proc.poll() is None, proc.stdout.read()
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 143 and "Traceback" not in out, out
    assert out.count("stopped by SIGTERM") == 1 and f"--resume {run} --nproc 2" in out  # rank 0 speaks for the run
    assert json.loads((run / "run.json").read_text())["status"] == "interrupted"

    again = _vtk(runs, shared_data, "train", "--resume", str(run), "--nproc", "2")
    out, _ = again.communicate(timeout=300)
    assert again.returncode == 0, out
    record = json.loads((run / "run.json").read_text())
    assert sorted(p.name for p in runs.iterdir() if not p.name.startswith(".")) == ["latest", run.name]
    assert record["status"] == "complete" and [h["epoch"] for h in record["history"]] == [1, 2, 3, 4]
    assert record["distributed"] == {"world_size": 2, "per_rank_batch": 128, "backend": "gloo", "nodes": 1}
    assert abs(record["accuracy"]["test"] - one["accuracy"]["test"]) < 0.05  # the single-process band
    assert out.count("test accuracy") == 1  # one report, from rank 0
    assert not list(runs.glob(".torchrun-*"))  # the restart pointer goes once the run is complete


def test_torchrun_restarts_a_killed_worker_and_the_run_resumes(shared_data, tmp_path, monkeypatch):
    """kill -9 of one worker mid-run: with --max-restarts 1 torchrun starts the job again, and the job finds
    its run folder and continues from the last checkpoint instead of starting a new run. torchrun's log
    folders of both attempts are gone from the temp folder afterwards."""
    import psutil

    (tmp_path / "tmp").mkdir()
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    runs = tmp_path / "runs"
    run = runs / "lenet5-fashion-mnist-1"
    proc = _vtk(runs, shared_data, "train", *ARGS, "--nproc", "2", "--max-restarts", "1")
    deadline = time.monotonic() + 180
    while _epochs(run) < 1 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    workers = [p for p in psutil.Process(proc.pid).children(recursive=True)
               if "vtk_vision.cli" in " ".join(p.cmdline()) and p.environ().get("LOCAL_RANK") == "1"]
    assert len(workers) == 1
    workers[0].kill()
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out
    record = json.loads((run / "run.json").read_text())
    assert record["status"] == "complete" and [h["epoch"] for h in record["history"]] == [1, 2, 3, 4]
    assert sorted(p.name for p in runs.iterdir() if not p.name.startswith(".")) == ["latest", run.name]
    assert not [p for p in (tmp_path / "tmp").iterdir() if p.name.startswith(("torchelastic_", "vtk-torchrun-"))]


def test_a_bad_option_under_nproc_is_said_once_and_leaves_no_torchrun_folder(shared_data, tmp_path, monkeypatch):
    """Every rank meets the same unknown dataset: one line, no torchrun log line, and torchrun's log folder
    (a `torchelastic_*` folder in the temp folder by default) gone when the launcher ends."""
    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setenv("TMPDIR", str(temp))  # the launcher's and torchrun's temp folder
    proc = _vtk(tmp_path / "runs", shared_data, "train", *ARGS, "--nproc", "2", "--dataset", "nope")
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 1 and out.strip().splitlines() == [out.strip()], out
    assert out.startswith("Error: unknown dataset 'nope'") and "torch/distributed" not in out
    assert list(temp.iterdir()) == []
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
