"""`vtk bench --quick` and `--max-time`: a first look that says what it skipped, an overall cap that leaves
rows it did not reach empty, and progress on one rewritten line on a terminal."""

from __future__ import annotations

import json
import time

from click.testing import CliRunner
from vtk_vision.cli import cli

from tests.test_bench import _fake_runtime, _time

TINY = ["--warmup-s", "0", "--min-iters", "2", "--min-s", "0"]


def test_rows_past_the_deadline_are_skipped_never_estimated(monkeypatch):
    _fake_runtime(monkeypatch, "slow", lambda: (lambda: time.sleep(0.01)))
    rows = _time("slow", batch_sizes=(1, 2, 3), min_s=0.1, deadline=time.monotonic() + 0.05)
    assert [r.status for r in rows] == ["ok", "skipped", "skipped"]  # the row under way finishes; no new one
    assert rows[1].latency_ms is None and rows[1].images_per_s is None and "--max-time" in rows[1].reason
    (late,) = _time("slow", deadline=time.monotonic() - 1)
    assert late.status == "skipped" and late.latency_ms is None


def test_max_time_lists_the_rows_it_did_not_reach(trained_run, shared_data, tmp_path):
    """A cap shorter than loading the data: the first runtime's rows still run, so there is a result."""
    res = CliRunner(env={"VTK_DATA_DIR": str(shared_data)}).invoke(
        cli, ["bench", str(trained_run), "--runtime", "eager,onnx", "--batch-sizes", "16,32", "--threads", "1",
              *TINY, "--max-time", "0.001", "--json", str(tmp_path / "b.json")], obj={})
    assert res.exit_code == 0, res.output
    rows = json.loads((tmp_path / "b.json").read_text())["rows"]
    assert [(r["runtime"], r["batch"], r["status"]) for r in rows] == [
        ("eager", 16, "ok"), ("eager", 32, "ok"), ("onnx", 16, "skipped"), ("onnx", 32, "skipped")]
    assert all(r["latency_ms"] is None and r["accuracy"] is None for r in rows[2:])
    assert "skipped: onnx on cpu: --max-time was spent before this row started" in res.output


def test_quick_times_one_batch_and_one_thread_count_and_says_what_it_skipped(trained_run, shared_data, tmp_path):
    env = {"VTK_DATA_DIR": str(shared_data)}
    res = CliRunner(env=env).invoke(cli, ["bench", str(trained_run), "--runtime", "onnx", "--quick", "--batch-sizes",
                                          "8", "--min-s", "0", "--json", str(tmp_path / "q.json")], obj={})
    assert res.exit_code == 0, res.output
    report = json.loads((tmp_path / "q.json").read_text())
    assert {(r["batch"], r["threads"]) for r in report["rows"]} == {(8, max(report["options"]["threads"]))}
    assert report["options"]["min_iters"] == 10 and report["options"]["min_s"] == 0  # given options still apply
    note = next(line for line in res.output.splitlines() if line.startswith("--quick:"))
    assert "batch 8" in note and "re-timing of unstable rows" in note and note in report["notes"]


def test_progress_is_plain_lines_in_a_log_and_one_transient_line_on_a_terminal(trained_run, shared_data, tmp_path,
                                                                               monkeypatch):
    args = ["bench", str(trained_run), "--runtime", "onnx", "--batch-sizes", "8,16", "--threads", "1", *TINY,
            "--json", str(tmp_path / "p.json")]
    runner = CliRunner(env={"VTK_DATA_DIR": str(shared_data)})
    logged = runner.invoke(cli, args, obj={})
    assert logged.exit_code == 0 and "row 2 of 2: onnx on cpu, batch 16" in logged.stderr
    from vtk_vision.cli import app

    monkeypatch.setattr(app.SafeConsole, "is_terminal", property(lambda self: True))
    shown = runner.invoke(cli, args, obj={})
    assert shown.exit_code == 0 and "row 2 of 2" not in shown.stderr.split("\x1b[2K")[-1]  # cleared at the end
    assert "\n" not in "".join(part for part in shown.stderr.split("\r") if "row 1 of 2" in part).strip()
