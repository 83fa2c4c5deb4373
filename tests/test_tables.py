"""Tables that fit an 80-column terminal and cut nothing; listing data without decoding; small output fixes."""

from __future__ import annotations

import json
import os
import pty
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image
from vtk_vision.cli import cli

from tests.data_fakes import fake_mnist

BOX = "┏┃┡│└┗━"


def _vtk(*args: str, data: Path | None = None):
    return CliRunner(env={"VTK_DATA_DIR": str(data)} if data else {}).invoke(cli, list(args), obj={})


@pytest.fixture
def terminal80(monkeypatch):
    """The console as an 80-column terminal (CliRunner's stdout is no terminal)."""
    from vtk_vision.cli import app

    monkeypatch.setattr(app.SafeConsole, "is_terminal", property(lambda self: True))
    monkeypatch.setattr(app.console, "width", 80)


def _table_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line[:1] in BOX]


def _fits(output: str) -> None:
    lines = _table_lines(output)
    assert lines, output
    assert "…" not in output and max(len(line) for line in lines) <= 80, output


def _column(output: str, index: int) -> list[str]:
    """The cells of column `index` of a rich table, each put back together from the lines it folded over."""
    cells: list[str] = []
    for line in output.splitlines():
        if not line.startswith("│"):
            continue
        parts = [p.strip() for p in line.split("│")[1:-1]]
        if parts[0] or not cells:  # a new row starts where its first column has text
            cells.append(parts[index])
        else:
            cells[-1] += parts[index]
    return cells


@pytest.fixture(scope="module")
def deep_data(tmp_path_factory) -> Path:
    """Fake MNIST under a long path: the 'found at' column is the one that must survive."""
    return fake_mnist(tmp_path_factory.mktemp("data") / ("a-rather-long-folder-name-" * 2) / "datasets")


@pytest.fixture
def run_copy(trained_run, tmp_path) -> Path:
    return Path(shutil.copytree(trained_run, tmp_path / "runs" / trained_run.name,
                                ignore=shutil.ignore_patterns(".lock")))


@pytest.mark.parametrize("args", [("models",), ("summary", "lenet5", "--input-size", "28", "--input-size", "32"),
                                  ("datasets", "--data-dir", "DATA")], ids=["models", "summary", "datasets"])
def test_tables_fit_80_columns(terminal80, deep_data, args):
    res = _vtk(*[str(deep_data) if a == "DATA" else a for a in args])
    assert res.exit_code == 0, res.output
    _fits(res.output)
    if args[0] == "summary":  # torchinfo's own table too, narrowed to output shape and parameters
        assert max(len(line) for line in res.output.splitlines() if line.startswith(("=", "│", "├", "Layer"))) <= 80
        assert "Mult-Adds" not in res.output and "Total mult-adds" in res.output
    if args[0] == "datasets":
        assert _column(res.output, 1)[0] == str(deep_data / "MNIST" / "raw")  # folded inside its cell, whole


def test_run_tables_fit_80_columns(terminal80, run_copy, shared_data):
    for args in (("runs", "--runs-dir", str(run_copy.parent)), ("eval", str(run_copy))):
        res = _vtk(*args, data=shared_data)
        assert res.exit_code == 0, res.output
        _fits(res.output)
    narrow = _vtk("export", str(run_copy), "--format", "onnx", data=shared_data)
    assert narrow.exit_code == 0, narrow.output
    _fits(narrow.output)
    table_text = "".join(_table_lines(narrow.output))
    assert "model.onnx" in table_text and "KB" in table_text  # file and size: what you need after exporting
    assert re.search(r"^max abs diff: \d", narrow.output, re.M)  # moved below the table (one row: one line)


def test_wide_keeps_every_column_folded(terminal80, deep_data):
    narrow = _vtk("datasets", "--data-dir", str(deep_data))
    wide = _vtk("datasets", "--data-dir", str(deep_data), "--wide")
    assert "classes" not in "".join(_table_lines(narrow.output))
    assert "classes" in "".join(_table_lines(wide.output)) and "…" not in wide.output
    assert max(len(line) for line in _table_lines(wide.output)) <= 80  # folded to the terminal, not cut


def test_piped_output_keeps_every_column(deep_data):
    """Not a terminal: nothing is left out, however wide."""
    res = _vtk("datasets", "--data-dir", str(deep_data))
    header = next(line for line in res.output.splitlines() if line.startswith("┃"))
    assert all(c in header for c in ("found at", "decoded", "train", "test", "shape", "classes"))
    assert "Mult-Adds" in _vtk("summary", "lenet5").output


def test_datasets_in_a_real_80_column_pseudo_terminal(deep_data):
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "vtk_vision.cli", "datasets", "--data-dir", str(deep_data)],
                            stdout=slave, stderr=slave, env=os.environ | {"COLUMNS": "80", "TERM": "xterm"})
    os.close(slave)
    chunks = []
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(master)
    assert proc.wait(timeout=120) == 0
    output = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", b"".join(chunks).decode()).replace("\r", "")
    _fits(output)
    assert "found at" in output and "classes" not in "".join(_table_lines(output))


def test_datasets_lists_without_decoding_or_unpacking(tmp_path, monkeypatch):
    root = fake_mnist(tmp_path / "data")
    with tarfile.open(root / "cifar10-jpeg.tar.gz", "w:gz") as tar:  # would be unpacked by a load
        tar.add(root / "MNIST", arcname="cifar10")
    monkeypatch.setenv("VTK_CACHE_DIR", str(tmp_path / "cache"))
    rows = {r["name"]: r for r in json.loads(_vtk("datasets", "--data-dir", str(root), "--json").output)}
    assert not [p for p in (tmp_path / "cache").rglob("*") if p.is_file()]  # nothing decoded, nothing unpacked
    assert rows["mnist"]["decoded"] is False and (rows["mnist"]["train"], rows["mnist"]["test"]) == (60, 20)
    assert rows["mnist"]["mean"] is None  # a statistic needs the pixels: not made up
    cifar = rows["cifar10"]
    assert cifar["source"] == str(root / "cifar10-jpeg.tar.gz") and cifar["train"] is None and not cifar["decoded"]
    from vtk_vision.data import load_dataset

    load_dataset("mnist", root)
    rows = {r["name"]: r for r in json.loads(_vtk("datasets", "--data-dir", str(root), "--json").output)}
    assert rows["mnist"]["decoded"] is True and rows["mnist"]["train"] == 60 and len(rows["mnist"]["mean"]) == 1
    assert rows["mnist-rgb"]["shape"] == [3, 28, 28] and len(rows["mnist-rgb"]["mean"]) == 3


def test_summary_total_agrees_with_torchinfo():
    res = _vtk("summary", "lenet5", "--input-size", "28", "--input-size", "32")
    torchinfo = re.findall(r"Estimated Total Size \(MB\): ([\d.]+)", res.output)
    ours = re.findall(r"│ 1x\d\dx\d\d │[^│]*│[^│]*│\s*([\d.]+) │", res.output)
    assert torchinfo == ours == ["0.24", "0.36"], res.output
    assert "est. total (MB)" in res.output


def test_show_says_the_full_path(tmp_path, monkeypatch):
    root = fake_mnist(tmp_path / "data")
    monkeypatch.chdir(tmp_path)
    res = _vtk("show", "mnist", "--n", "2", "--data-dir", str(root))
    assert res.exit_code == 0 and f"wrote {tmp_path.resolve() / 'grid.png'}" in res.output


def test_sweep_fits_80_columns_and_names_the_real_latest_pointer(terminal80, tmp_path, monkeypatch, shared_data):
    monkeypatch.chdir(tmp_path)
    res = _vtk("sweep", "lenet5", "--runs-dir", "d", "--subset", "0.02", "--epochs", "1", "--lr", "0.01,0.02",
               "--device", "cpu", data=shared_data)
    assert res.exit_code == 0, res.output
    _fits(res.output)
    latest = re.search(r"\((\S+) now points to it\)", res.output).group(1)
    assert latest == str(tmp_path.resolve() / "d" / "latest") and Path(latest).is_file()


def test_predict_hints_when_an_image_is_far_brighter_than_the_training_data(run_copy, tmp_path):
    white = np.full((28, 28), 235, np.uint8)
    white[8:20, 8:20] = 20
    Image.fromarray(white).save(tmp_path / "white.png")
    Image.fromarray(255 - white).save(tmp_path / "dark.png")
    res = _vtk("predict", str(run_copy), str(tmp_path / "white.png"), "--out", str(tmp_path / "p.png"))
    assert res.exit_code == 0, res.output
    hints = [line for line in res.output.splitlines() if line.startswith("hint: ")]
    assert len(hints) == 1 and "white.png" in hints[0] and "dark backgrounds" in hints[0]
    res = _vtk("predict", str(run_copy), str(tmp_path / "dark.png"), "--out", str(tmp_path / "p.png"))
    assert res.exit_code == 0 and "hint:" not in res.output


def _render(renderable, width: int = 80) -> str:
    import io

    from rich.console import Console

    out = io.StringIO()
    Console(file=out, width=width, color_system=None).print(renderable)
    return out.getvalue()


BENCH_LIKE = ["runtime", "provider", "batch", "status", "size", "accuracy", "p50 ms", "p99 ms", "images/s",
              "memory", "a future column"]


def _bench_like_rows() -> list[list[str]]:
    sizes = {"eager": "-", "onnx": "271 KB", "torchscript": "256 KB", "openvino-ir": "280 KB"}
    return [[rt, "cpu", str(b), "ok", sizes[rt], "75.71%", "0.0412", f"0.0{i}{b}9", "24,272", f"{300 + i + b}.5 MB",
             "cold 1.2 ms"] for i, rt in enumerate(sizes) for b in (1, 64)]


def test_columns_that_do_not_fit_move_below_the_table_by_priority():
    from vtk_vision.present.tables import table

    rows = _bench_like_rows()
    text = _render(table("bench", BENCH_LIKE, rows, right={"batch"}, width=64, key=("runtime", "batch"),
                         optional=("p99 ms", "memory", "provider", "a future column", "size")), width=64)
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 64 and "…" not in text, text
    below = [line for line in lines if line[:1] not in BOX and line.strip()]
    assert "provider: cpu" in below  # one value for every row: one line
    at = below.index("size: eager -, onnx 271 KB, torchscript 256 KB,")  # follows the runtime: one line,
    assert below[at + 1] == "  openvino-ir 280 KB"  # wrapped after a comma, never inside "280 KB"
    assert "a future column: cold 1.2 ms" in below
    assert "onnx, batch 64: p99 ms 0.01649, memory 365.5 MB" in below  # the rest: a line per row
    assert "torchscript" in text.replace("│", " ").split()  # never broken mid-word
    header = next(line for line in lines if line.startswith("┃"))
    assert "accuracy" in header and "p50 ms" in header and "p99 ms" not in header


def test_a_table_that_fits_moves_nothing_and_words_stay_whole_when_cells_wrap():
    from vtk_vision.present.tables import table

    rows = _bench_like_rows()
    wide = _render(table(None, BENCH_LIKE, rows, optional=("p99 ms",), width=None), width=200)
    assert "p99 ms" in next(line for line in wide.splitlines() if line.startswith("┃"))
    narrow = _render(table(None, ["format", "status"], [["torchscript", "FAILED: the exporter could not trace"]],
                           width=30), width=30)
    assert "torchscript" in narrow and max(len(line) for line in narrow.splitlines()) <= 30
    assert all(w in narrow for w in ("exporter", "could", "trace"))
