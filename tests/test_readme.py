"""The README's test command is the one CI runs."""

import linecache
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    command = re.search(r"^TEST_COMMAND='(.+)'$", ci, re.M).group(1)
    readme = (ROOT / "README.md").read_text()
    quick_start = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.+?)\n```", quick_start, re.S)
    assert len(blocks) == 2, "the Quick start holds exactly two commands"
    assert blocks[1] == command


def test_the_readme_python_example_runs(shared_data, tmp_path, monkeypatch):
    """The notebook-sized example under 'From Python' runs as printed: train an object, export, bench, load."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("### From Python", 1)[1]
    [code] = re.findall(r"```python\n(.+?)\n```", section, re.S)[:1]
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
