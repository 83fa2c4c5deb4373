"""Files someone hands you: none of them can make vtk run code it was not asked to run.

Every crafted input is made here, in the test."""

from __future__ import annotations

import io
import os
import shutil
import zipfile

import pytest
import torch
from click.testing import CliRunner

from vtk_vision.cli import cli

MARKER = "VTK-PAYLOAD-RAN"


class _Payload:
    """Unpickling this calls os.mkdir(marker): visible proof that code ran."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def _swap_member(src, dst, endswith: str, data: bytes) -> None:
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_STORED) as zout:
        for item in zin.infolist():
            zout.writestr(item, data if item.filename.endswith(endswith) else zin.read(item.filename))


@pytest.fixture
def handed_run(trained_run, tmp_path, shared_data, monkeypatch):
    """A copy of a trained run, exported in every format by vtk, as someone might hand it over."""
    monkeypatch.setenv("VTK_DATA_DIR", str(shared_data))
    runs = tmp_path / "runs"
    shutil.copytree(trained_run, runs / trained_run.name)
    run = runs / trained_run.name
    res = CliRunner(env={"VTK_DATA_DIR": str(shared_data)}).invoke(cli, ["export", str(run), "--format", "all"], obj={})
    assert res.exit_code == 0, res.output
    return run


def _snapshot(path):
    return path.read_bytes() if path.exists() else None


def _bench(run, *args):
    return CliRunner().invoke(cli, ["bench", str(run), "--batch-sizes", "1", "--warmup-s", "0", "--min-iters", "1",
                                    "--min-s", "0", "--threads", "1", *args], obj={})


def test_crafted_pt2_is_refused_and_its_payload_never_runs(handed_run, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    pt2 = handed_run / "exports" / "model.pt2"
    buf = io.BytesIO()
    torch.save(_Payload(str(tmp_path / MARKER)), buf)
    _swap_member(pt2, tmp_path / "evil.pt2", "sample_inputs/model.pt", buf.getvalue())
    shutil.copy(tmp_path / "evil.pt2", pt2)
    before = _snapshot(handed_run / "bench.json")
    res = _bench(handed_run, "--runtime", "eager,pt2")
    assert res.exit_code == 1, res.output
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and "refuses it" in lines[0] and "model.pt2" in lines[0]
    assert not (tmp_path / MARKER).exists(), "the pickled payload ran"
    assert _snapshot(handed_run / "bench.json") == before  # an earlier bench.json is kept as it was


def test_vtk_written_torchscript_loads_without_asking(handed_run):
    res = _bench(handed_run, "--runtime", "torchscript")
    assert res.exit_code == 0, res.output


def test_torchscript_from_elsewhere_needs_consent(handed_run, monkeypatch, tmp_path):
    # another user's machine: this vtk has no record of having written the file
    monkeypatch.setenv("VTK_STATE_DIR", str(tmp_path / "another-user"))
    before = _snapshot(handed_run / "bench.json")
    res = _bench(handed_run, "--runtime", "eager,torchscript")
    assert res.exit_code == 1 and len(res.output.strip().splitlines()) == 1
    assert "is TorchScript, which is code" in res.output and "--trust-code" in res.output
    assert _snapshot(handed_run / "bench.json") == before
    res = _bench(handed_run, "--runtime", "eager,torchscript", "--trust-code")
    assert res.exit_code == 0, res.output


def test_torchscript_metadata_is_read_without_loading_the_program(handed_run, monkeypatch):
    from vtk_vision.exporters import read_artifact_metadata

    monkeypatch.setattr(torch.jit, "load", lambda *a, **k: pytest.fail("torch.jit.load was called"))
    assert read_artifact_metadata(handed_run / "exports" / "model.torchscript")["model"] == "lenet5"
