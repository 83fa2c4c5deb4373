"""`vtk predict FILE IMAGE...`: an exported artifact classifies images as its run does, from its own metadata;
files vtk must not load are refused in one line, and no picture is drawn over an earlier one."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from vtk_vision.cli import cli


def _vtk(*args: str):
    return CliRunner().invoke(cli, list(args), obj={})


@pytest.fixture
def images(tmp_path, monkeypatch) -> list[Path]:
    monkeypatch.chdir(tmp_path)
    out = []
    for i, (top, bottom) in enumerate(((6, 22), (2, 12))):
        a = np.zeros((28, 28), np.uint8)
        a[top:bottom, 8:20] = 200
        Image.fromarray(a).save(tmp_path / f"item{i}.png")
        out.append(tmp_path / f"item{i}.png")
    return out


def _answers(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("item")]


@pytest.mark.parametrize("name", ["model.onnx", "model.pt2", "model.torchscript"])
def test_an_artifact_answers_as_its_run_does(exported_run, images, tmp_path, name):
    by_run = _vtk("predict", str(exported_run), *map(str, images), "--out", str(tmp_path / "run.png"))
    by_file = _vtk("predict", str(exported_run / "exports" / name), *map(str, images))
    assert by_file.exit_code == 0, by_file.output
    assert _answers(by_file.output) == _answers(by_run.output) and len(_answers(by_run.output)) == 2
    assert (tmp_path / "predictions-item0-and-1-more.png").is_file()


def test_a_second_predict_draws_beside_the_first(exported_run, images, tmp_path):
    onnx = str(exported_run / "exports" / "model.onnx")
    for expected in ("predictions-item0.png", "predictions-item0-2.png"):
        res = _vtk("predict", onnx, str(images[0]))
        assert res.exit_code == 0 and res.output.rstrip().endswith(expected), res.output


def test_an_untrusted_torchscript_file_is_refused_before_it_loads(exported_run, images, tmp_path):
    class Payload(torch.nn.Module):
        def forward(self, x):
            return x.flatten(1)[:, :10]

    handed = tmp_path / "handed.torchscript"
    torch.jit.save(torch.jit.script(Payload()), str(handed))  # written here, not by vtk export
    res = _vtk("predict", str(handed), str(images[0]))
    assert res.exit_code == 1 and "--trust-code" in res.output and len(res.output.strip().splitlines()) == 1
    assert not list(tmp_path.glob("predictions*"))


def test_a_file_without_vtk_metadata_or_a_non_image_says_what_to_do(exported_run, images, tmp_path):
    import onnx

    bare = onnx.load(str(exported_run / "exports" / "model.onnx"))
    del bare.metadata_props[:]
    onnx.save(bare, str(tmp_path / "bare.onnx"))
    res = _vtk("predict", str(tmp_path / "bare.onnx"), str(images[0]))
    assert res.exit_code == 1 and "no vtk metadata" in res.output, res.output
    assert len(res.output.strip().splitlines()) == 1
    (tmp_path / "notes.txt").write_text("not an image")
    res = _vtk("predict", str(exported_run / "exports" / "model.onnx"), str(tmp_path / "notes.txt"))
    assert res.exit_code == 1 and "tree" not in res.output and "image files" in res.output, res.output
    res = _vtk("predict", str(exported_run / "exports" / "model.onnx"))
    assert res.exit_code == 2 and "give image files" in res.output
    assert not list(tmp_path.glob("predictions*"))
    assert _vtk("predict", str(exported_run / "exports" / "model.onnx"), str(images[0])).exit_code == 0


def test_a_copied_artifact_keeps_working_elsewhere(exported_run, images, tmp_path):
    """The metadata travels in the file: a copy on its own, away from its run folder, still answers."""
    alone = Path(shutil.copy(exported_run / "exports" / "model.onnx", tmp_path / "shipped.onnx"))
    res = _vtk("predict", str(alone), str(images[1]))
    assert res.exit_code == 0 and len(_answers(res.output)) == 1, res.output
