"""The documentation site builds cleanly, and the code it prints runs as printed.

`mkdocs build --strict` fails on a broken link, a missing anchor or a page
left out of the nav. Every "Use it outside vtk" snippet is run, exactly as the
page prints it, on files vtk has just exported, and must name the class
`vtk predict` names for the same picture: a snippet that drifts from what
vtk writes fails here, not in a deployer's hands.
"""

from __future__ import annotations

import importlib.util
import linecache
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from vtk_vision.exporters.formats import FORMATS

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
SNIPPET = re.compile(r"<!-- snippet: (\w+) -->\n```python\n(.+?)\n```", re.S)
# every runtime that loads a file `--format all` writes: the formats, and those reading another format's file
# (openvino). The on-request formats (ExecuTorch, OpenVINO IR, the web page) are shown run by their own
# runtimes on their pages (deploy-targets.md, browser.md) and checked by their own tests.
FILE_RUNTIMES = sorted(f.name for f in FORMATS.values() if f.has_file and f.in_all)


def snippets(path: Path) -> dict[str, str]:
    found = SNIPPET.findall(path.read_text())
    names = [name for name, _ in found]
    assert len(set(names)) == len(names), f"{path.name} marks a snippet name twice: {names}"
    return dict(found)


def test_the_site_builds_strict(tmp_path):
    """No broken link or anchor, no page outside the nav, no warning at all (strict turns each into a failure)."""
    if importlib.util.find_spec("mkdocs") is None or importlib.util.find_spec("material") is None:
        pytest.skip("mkdocs-material is not installed: pip install -e '.[docs]'")
    res = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
                         cwd=ROOT, capture_output=True, text=True, timeout=300,
                         env=os.environ | {"NO_MKDOCS_2_WARNING": "1"})  # Material's banner about its successor
    assert res.returncode == 0, res.stdout + res.stderr
    assert not re.search(r"^WARNING ", res.stderr, re.M), res.stderr
    pages = {p.relative_to(DOCS).with_suffix(".html") for p in DOCS.rglob("*.md")}
    assert pages and all((tmp_path / "site" / p).is_file() for p in pages)


def test_every_file_format_has_a_snippet():
    """A new format (or a runtime that reads one) needs its "outside vtk" snippet before the suite passes."""
    assert sorted(snippets(DOCS / "outside-vtk.md")) == FILE_RUNTIMES


def test_the_readme_shows_the_onnx_snippet_as_the_docs_do():
    readme, docs = snippets(ROOT / "README.md"), snippets(DOCS / "outside-vtk.md")
    assert list(readme) == ["onnx"] and readme["onnx"] == docs["onnx"]


@pytest.fixture(scope="module")
def picture(exported_run, shared_data, tmp_path_factory) -> tuple[Path, str]:
    """A test image the run is surest of, saved as a 40x40 RGB PNG (so a snippet must convert and resize it
    as vtk does), and the class `vtk predict` gives it."""
    import vtk_vision as vtk
    from vtk_vision.cli import cli
    from vtk_vision.core.inference import logits_of

    run = vtk.load(exported_run)
    images = run.dataset(str(shared_data)).test.images[:50]
    top2 = logits_of(run.model, run.preprocess, images).softmax(1).topk(2).values
    best = int((top2[:, 0] - top2[:, 1]).argmax())
    folder = tmp_path_factory.mktemp("picture")
    path = folder / "image.png"
    Image.fromarray(images[best, 0].numpy(), "L").convert("RGB").resize((40, 40), Image.NEAREST).save(path)
    res = CliRunner().invoke(cli, ["predict", str(exported_run), str(path), "--out", str(folder / "p.png")], obj={})
    assert res.exit_code == 0, res.output
    line = next(x for x in res.output.splitlines() if x.startswith("image.png: "))
    return path, line.removeprefix("image.png: ").rsplit(" ", 1)[0]


@pytest.mark.parametrize("runtime", FILE_RUNTIMES)
def test_the_outside_vtk_snippet_runs_as_printed(runtime, exported_run, picture, tmp_path):
    """The page's snippet, unchanged, in a folder holding only the exported file and image.png, in a fresh
    Python that has not imported vtk: it prints the class vtk predicts, and nothing else."""
    code = snippets(DOCS / "outside-vtk.md")[runtime]
    artifact = f"model{FORMATS[FORMATS[runtime].artifact_format].suffix}"
    shutil.copy(exported_run / "exports" / artifact, tmp_path / artifact)
    shutil.copy(picture[0], tmp_path / "image.png")
    (tmp_path / "snippet.py").write_text(code + "\n")
    res = subprocess.run([sys.executable, "snippet.py"], cwd=tmp_path, capture_output=True, text=True,
                         timeout=300, env=os.environ | {"OMP_NUM_THREADS": "1"})
    assert res.returncode == 0, res.stderr
    assert res.stdout == picture[1] + "\n", (res.stdout, picture[1])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([artifact, "image.png", "snippet.py"])


def test_the_python_api_example_runs(shared_data, tmp_path, monkeypatch):
    """The notebook-sized example of the Python API page runs as printed: train an object, export, bench, load."""
    page = (DOCS / "python-api.md").read_text()
    [code] = re.findall(r"```python\n(.+?)\n```", page, re.S)[:1]
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("VTK_DATA_DIR", str(shared_data))
    monkeypatch.setenv("VTK_RUNS_DIR", str(tmp_path / "runs"))
    cell = "<ipython-input-1>"  # as IPython runs a cell: its source in linecache under the cell's name
    linecache.cache[cell] = (len(code), None, code.splitlines(keepends=True), cell)
    namespace = {"__name__": "__main__"}
    exec(compile(code, cell, "exec"), namespace)
    run, onnx, report, again = (namespace[k] for k in ("run", "onnx", "report", "again"))
    assert onnx.passed and onnx.accuracy == run.record.accuracy["test"]
    assert {(r.runtime, r.batch) for r in report.ok()} == {("eager", 1), ("eager", 64), ("onnx", 1), ("onnx", 64)}
    assert type(again.model).__name__ == "TinyNet" and run.record.model.source["kind"] == "file"
