"""vtk report: one self-contained HTML page per run, its missing parts named, everything from files escaped."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner
from vtk_vision.cli import cli

SECTIONS = ("summary", "curves", "confusion", "misclassified", "exports", "bench", "environment")
HOSTILE = "<script>alert(1)</script>"


def _vtk(*args: str, data: Path | None = None):
    env = {"VTK_DATA_DIR": str(data)} if data else {}
    return CliRunner(env=env).invoke(cli, list(args), obj={})


def _copy(run: Path, dest: Path, fresh: bool = False) -> Path:
    """A copy of the shared run; `fresh`: as training left it, without what other tests exported, benched
    or evaluated into the shared folder."""
    later = ("exports", "bench.json", "confusion.png", "misclassified.png", "predictions.png", "report.html")
    shutil.copytree(run, dest, ignore=shutil.ignore_patterns(".lock", *(later if fresh else ())))
    return dest


def _bench_json(run: Path) -> dict:
    """bench.json as vtk bench writes it, plus fields the bench is growing (threads, raw samples, an unstable
    flag, memory per runtime) and a failed row whose reason is markup."""
    ok = {"runtime": "onnx", "provider": "cpu", "batch": 1, "precision": "fp32", "status": "ok", "reason": None,
          "artifact": str(run / "exports" / "model.onnx"), "size_bytes": 271192, "accuracy": 0.5331,
          "accuracy_delta": 0.0, "latency_ms": {"n": 4, "p50": 0.0422, "p90": 0.0537, "p99": 0.061,
                                                "samples": [0.04, 0.0422, 0.05, 0.061]},
          "images_per_s": 23669.2, "threads": 2, "unstable": True, "memory": {"peak_rss_mb": 853.3}}
    failed = {"runtime": "openvino", "provider": "cpu", "batch": 8, "precision": "int8", "status": "failed",
              "reason": "<b>no artifact</b>", "size_bytes": None, "latency_ms": None}
    return {"dataset": "fashion-mnist", "test_images": 10000, "time_includes": "one call",
            "model": {"name": "lenet5"},
            "environment": {"cpu": "AMD EPYC", "cpu_features_text": "AVX2", "threads": 2, "gpu": None,
                            "versions": {"torch": "x", "onnxruntime": "y"}},
            "rows": [ok, failed]}


@pytest.fixture(scope="module")
def full_run(trained_run, shared_data, tmp_path_factory) -> Path:
    """The shared run exported (onnx), evaluated, benched (a written bench.json: timing is not under test),
    with a class name and a data source that are markup."""
    run = _copy(trained_run, tmp_path_factory.mktemp("report") / "run")
    for args in (("export", str(run), "--format", "onnx"), ("eval", str(run))):
        res = _vtk(*args, data=shared_data)
        assert res.exit_code == 0, res.output
    (run / "bench.json").write_text(json.dumps(_bench_json(run)))
    record = json.loads((run / "run.json").read_text())
    record["data"]["classes"][0] = HOSTILE
    record["data"]["source"] = '<img src="https://example.com/x.png">'
    (run / "run.json").write_text(json.dumps(record))
    return run


def _sources(page: str) -> list[str]:
    return re.findall(r'\b(?:src|href)\s*=\s*"([^"]*)"', page)


def test_a_fresh_run_names_the_command_for_each_missing_part(trained_run, tmp_path):
    run = _copy(trained_run, tmp_path / "run", fresh=True)
    res = _vtk("report", str(run))
    assert res.exit_code == 0, res.output
    out = run / "report.html"
    assert f"wrote {out.resolve()}" in res.output and out.is_file()
    page = out.read_text()
    for anchor in SECTIONS:
        assert f'<section id="{anchor}">' in page
    assert "not exported yet: <code>vtk export " in page and "not benched yet: <code>vtk bench " in page
    assert page.count("not evaluated yet: <code>vtk eval ") == 2  # confusion matrix and gallery
    assert "test accuracy" in page and "61,990" in page  # the summary: accuracy per split, parameters
    assert page.count("data:image/png;base64,") == 1  # the training curves, and nothing made up for the rest
    assert [line for line in res.output.splitlines() if line.startswith("not in it yet: ")] == [
        f"not in it yet: vtk {c} {run.resolve()}" for c in ("eval", "export", "bench")]


def test_every_part_of_a_used_run_is_in_one_self_contained_page(full_run, tmp_path):
    out = tmp_path / "elsewhere" / "r.html"
    out.parent.mkdir()
    res = _vtk("report", str(full_run), "--out", str(out))
    assert res.exit_code == 0, res.output
    page = out.read_text()
    assert "not in it yet" not in res.output and "not exported" not in page and "not benched" not in page
    assert page.count("data:image/png;base64,") == 5  # curves, confusion, gallery, bench plot, recommendation
    assert "ship onnx/cpu/b1/t2" in page.split('id="recommend"')[1]  # the one benched row, named
    assert all(s.startswith(("data:image/png;base64,", "#")) for s in _sources(page))  # nothing from a network
    assert "<link" not in page and "@import" not in page and "url(" not in page
    exports = page.split('id="exports"')[1].split("</section>")[0]
    assert "model.onnx" in exports and "100.00%" in exports  # top-1 agreement with eager PyTorch
    bench = page.split('id="bench"')[1].split("</section>")[0]
    for header in ("runtime", "p50 ms", "images/s", "threads", "memory peak_rss_mb", "samples"):
        assert f"<th>{header}</th>" in bench
    assert "ok (unstable)" in bench and "4 values" in bench  # the flag shown, raw samples counted not printed
    assert "failed: &lt;b&gt;no artifact&lt;/b&gt;" in bench and "openvino int8" in bench


def test_text_from_files_is_escaped(full_run, tmp_path):
    out = tmp_path / "r.html"
    assert _vtk("report", str(full_run), "--out", str(out)).exit_code == 0
    page = out.read_text()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script" not in page
    assert "&lt;img src=&quot;https://example.com/x.png&quot;&gt;" in page and "<img src=\"https" not in page


def test_an_unreadable_bench_json_is_said_and_the_rest_is_written(full_run, tmp_path):
    run = _copy(full_run, tmp_path / "run")
    (run / "bench.json").write_text("{half a file")
    res = _vtk("report", str(run))
    assert res.exit_code == 0, res.output
    page = (run / "report.html").read_text()
    assert "bench.json is unreadable" in page and "model.onnx" in page


def test_not_a_run_is_one_line_and_no_file(tmp_path):
    res = _vtk("report", str(tmp_path), "--out", str(tmp_path / "r.html"))
    assert res.exit_code == 1 and len(res.output.strip().splitlines()) == 1 and "not a vtk run folder" in res.output
    assert not (tmp_path / "r.html").exists()


def test_the_page_renders_in_a_real_browser(full_run, tmp_path, request):
    """Opt-in (--browser): headless Chromium draws the page; the screenshot must exist and not be blank."""
    if not request.config.getoption("--browser"):
        pytest.skip("browser test is opt-in: pytest tests/test_report.py --browser")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("chromium is not installed (Debian: apt-get install chromium)")
    page, shot = tmp_path / "report.html", tmp_path / "shot.png"
    assert _vtk("report", str(full_run), "--out", str(page)).exit_code == 0
    subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", f"--screenshot={shot}",
                    "--window-size=1200,3000", page.resolve().as_uri()], capture_output=True, timeout=120, check=False)
    assert shot.is_file() and shot.stat().st_size > 0
    from PIL import Image

    with Image.open(shot) as im:
        colours = im.convert("L").getextrema()
    assert im.size == (1200, 3000) and colours[1] - colours[0] > 100  # not one flat colour
