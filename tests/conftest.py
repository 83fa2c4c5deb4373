"""Shared fixtures: where the real data sets are, and the CUDA skip marker."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("VTK_SHARED_DATA", ROOT.parent / "shared" / "datasets"))


def pytest_addoption(parser):
    parser.addoption("--benchmarks", action="store_true",
                     help="run the opt-in pytest-benchmark tests in tests/benchmarks")
    parser.addoption("--browser", action="store_true",
                     help="run the opt-in tests that open vtk's HTML report in headless Chromium")


def pytest_collection_modifyitems(config, items):
    gpu = torch.cuda.is_available()
    no_gpu = pytest.mark.skip(reason="needs an NVIDIA GPU with a working CUDA driver; none on this machine")
    opt_in = pytest.mark.skip(reason="benchmarks are opt-in: pytest tests/benchmarks --benchmarks")
    for item in items:
        if item.get_closest_marker("cuda") and not gpu:  # the marker, not keywords: a param id may say "cuda"
            item.add_marker(no_gpu)
        if "benchmark" in item.fixturenames and not config.getoption("--benchmarks"):
            item.add_marker(opt_in)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real MNIST / Fashion-MNIST / CIFAR-10 files (../shared/datasets)."""
    if not (SHARED_DATA / "MNIST" / "raw").is_dir():
        pytest.skip(f"real data sets not found at {SHARED_DATA}; set VTK_SHARED_DATA")
    return SHARED_DATA


@pytest.fixture(autouse=True, scope="session")
def _isolated_state(tmp_path_factory):
    """The whole session gets its own tensor cache and state folder (trusted artifacts), never the user's.
    Session-scoped, so that session fixtures (the shared trained run) are isolated too."""
    base = tmp_path_factory.getbasetemp()
    saved = {k: os.environ.get(k) for k in ("VTK_CACHE_DIR", "VTK_STATE_DIR")}
    os.environ.update(VTK_CACHE_DIR=str(base / "vtk-cache"), VTK_STATE_DIR=str(base / "vtk-state"))
    yield
    for k, v in saved.items():
        os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)


@pytest.fixture(scope="session")
def trained_run(shared_data, tmp_path_factory) -> Path:
    """One LeNet-5 run (5% of Fashion-MNIST, one epoch), trained once through the CLI and shared by the
    export and bench tests. Tests that damage a run copy it first."""
    from click.testing import CliRunner
    from vtk_vision.cli import cli

    runs = tmp_path_factory.mktemp("shared-runs")
    res = CliRunner(env={"VTK_DATA_DIR": str(shared_data), "VTK_RUNS_DIR": str(runs)}).invoke(
        cli, ["train", "lenet5", "--subset", "0.05", "--epochs", "1", "--device", "cpu"], obj={})
    assert res.exit_code == 0, res.output
    return runs / (runs / "latest").read_text().strip()


@pytest.fixture(scope="session")
def exported_run(trained_run, shared_data, tmp_path_factory):
    """The shared trained run, copied once and exported in every format by vtk."""
    from click.testing import CliRunner
    from vtk_vision.cli import cli

    run = tmp_path_factory.mktemp("exported") / trained_run.name
    shutil.copytree(trained_run, run)
    res = CliRunner(env={"VTK_DATA_DIR": str(shared_data)}).invoke(cli, ["export", str(run), "--format", "all"], obj={})
    assert res.exit_code == 0, res.output
    return run


@pytest.fixture
def handed_run(exported_run, tmp_path, shared_data, monkeypatch):
    """A copy of a run exported in every format by vtk, as someone might hand it over."""
    monkeypatch.setenv("VTK_DATA_DIR", str(shared_data))
    run = tmp_path / "runs" / exported_run.name
    shutil.copytree(exported_run, run)
    return run


def provenance(model, prep, classes=None, dataset: str | None = "random"):
    """The Provenance an export records, for a model built in a test."""
    from vtk_vision.runs.schema import Provenance

    return Provenance(model.vtk_info, tuple(classes or [f"c{i}" for i in range(model.vtk_info.num_classes)]),
                      prep.spec, dataset)
